// The real @google-cloud/sql clients, pointed at a Cloud SQL fake, as tests build them.
import { v1 } from '@google-cloud/sql';
import { OAuth2Client } from 'google-auth-library';
import type { CloudSqlFake } from './server';

/**
 * Any token does for the fake. Node's own fetch: gaxios would otherwise load node-fetch by a dynamic
 * import, which jest's CommonJS sandbox refuses (a worker under plain node is not affected).
 */
export function fakeAuth(): OAuth2Client {
  const auth = new OAuth2Client({ transporterOptions: { fetchImplementation: fetch } });
  auth.setCredentials({ access_token: 'fake-token' });
  return auth;
}

/** Client options for the fake: REST, plain HTTP, its host and port. */
export function fakeClientOptions(fake: CloudSqlFake) {
  return {
    fallback: true as const,
    apiEndpoint: fake.endpoint.host,
    port: fake.endpoint.port,
    protocol: 'http' as const,
    authClient: fakeAuth(),
  };
}

export function adminClients(fake: CloudSqlFake) {
  const options = fakeClientOptions(fake);
  const clients = {
    instances: new v1.SqlInstancesServiceClient(options),
    backupRuns: new v1.SqlBackupRunsServiceClient(options),
    operations: new v1.SqlOperationsServiceClient(options),
  };
  return { ...clients, close: () => Promise.all(Object.values(clients).map((c) => c.close())).then(() => undefined) };
}

type Operation = { name?: string | null; status?: unknown; operationType?: unknown };

/** Polls an operation the fake runs in the background until it is DONE, as the provider does, with a deadline. */
export async function untilDone<T extends Operation>(
  operations: v1.SqlOperationsServiceClient,
  project: string,
  operation: T,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let current = operation;
  while (current.status !== 'DONE') {
    if (Date.now() > deadline)
      throw new Error(
        `operation ${operation.name} (${String(operation.operationType)}) still ${String(current.status)} after ${timeoutMs} ms`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
    [current] = (await operations.get({ project, operation: operation.name! })) as unknown as [T];
  }
  return current;
}
