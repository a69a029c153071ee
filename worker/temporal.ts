// How Lifeboat reaches Temporal: the standard client environment (TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS files, temporal.toml profiles) through envconfig,
// defaulting to the local dev server.
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { lifeboatDataConverter, type CodecKeys } from './codec';
import { loadEnv } from './env';

export interface TemporalTarget {
  connectionOptions: NativeConnectionOptions;
  namespace: string;
  /**
   * The payload codec (AES-256-GCM, worker/codec.ts) when keys are configured: the client, the
   * workers and the activities' client must all share it, or one side cannot read the other's data.
   */
  dataConverter?: DataConverter;
}

/** Where Temporal is, and the codec for its payloads (by default the keys the environment names). */
export function temporalTarget(codecKeys: CodecKeys | undefined = loadEnv().codec.keys): TemporalTarget {
  const config = loadClientConnectConfig();
  return {
    connectionOptions: { address: 'localhost:7233', ...config.connectionOptions },
    namespace: config.namespace ?? 'default',
    dataConverter: lifeboatDataConverter(codecKeys),
  };
}

export async function connectClient(target = temporalTarget()): Promise<Client> {
  const connection = await Connection.connect({ ...target.connectionOptions, connectTimeout: '5s' } as Parameters<
    typeof Connection.connect
  >[0]);
  return new Client({ connection, namespace: target.namespace, dataConverter: target.dataConverter });
}

/** The Temporal UI page of one run, where the address is a local dev server (else null). */
export function uiLink(target: TemporalTarget, workflowId: string, runId: string, uiBase?: string): string | null {
  const base = uiBase ?? (isLocal(target.connectionOptions.address) ? 'http://localhost:8233' : null);
  if (!base) return null;
  return `${base}/namespaces/${encodeURIComponent(target.namespace)}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`;
}

function isLocal(address: string | undefined): boolean {
  return !address || /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(address);
}
