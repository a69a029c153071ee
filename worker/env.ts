// The environment, read once at the edge. Nothing below the composition root reads process.env.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { codecSettings, type CodecSettings } from './codec-settings';

export interface LifeboatEnv {
  /** Where the local provider keeps regions, backups and scratch instances; the dev stack's state too. */
  home: string;
  /** PostgreSQL bin directory override (LIFEBOAT_PG_BIN). */
  pgBin?: string;
  logLevel: string;
  projectRoot: string;
  /** Base URL of the Temporal UI for links in reports (LIFEBOAT_UI_URL); the dev server's by default. */
  uiUrl?: string;
  /** PEM bundle that RDS server certificates chain to (LIFEBOAT_RDS_CA_FILE). */
  rdsCaFile?: string;
  /** The Cloud SQL Admin API endpoint when not Google's (LIFEBOAT_CLOUDSQL_API=http://host:port for a fake). */
  cloudSqlApi?: { apiEndpoint: string; port: number; protocol: 'http' | 'https' };
  /** Notifications go here (LIFEBOAT_WEBHOOK_URL): generic JSON, Slack-compatible. Often holds a token. */
  webhookUrl?: string;
  /**
   * The key every webhook POST is signed with (HMAC-SHA256): LIFEBOAT_WEBHOOK_SECRET, or the contents
   * of LIFEBOAT_WEBHOOK_SECRET_FILE, else of $LIFEBOAT_HOME/webhook-secret (made, random, on first use).
   * Only when a webhook URL is set.
   */
  webhookSecret?: string;
  /** The Prometheus endpoint (LIFEBOAT_METRICS_PORT, LIFEBOAT_METRICS_HOST, default 127.0.0.1); none when the port is unset. */
  metrics?: { host: string; port: number };
  /** Payload encryption (worker/codec.ts): keys, the codec server's port and token. No keys: payloads stay plain. */
  codec: CodecSettings;
  /** Where `env:NAME` credential references resolve: this process's environment. */
  secrets: Readonly<Record<string, string | undefined>>;
}

export function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find Lifeboat's package.json above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

export function loadEnv(env: NodeJS.ProcessEnv = process.env): LifeboatEnv {
  const root = projectRoot();
  const level = env.LIFEBOAT_LOG_LEVEL ?? 'info';
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(level)) {
    throw new Error(`LIFEBOAT_LOG_LEVEL=${level} is not a log level; expected one of ${levels.join(', ')}`);
  }
  return {
    home: resolve(env.LIFEBOAT_HOME ?? join(root, '.lifeboat')),
    pgBin: env.LIFEBOAT_PG_BIN || undefined,
    logLevel: level,
    projectRoot: root,
    // A dev stack on another UI port (LIFEBOAT_UI_PORT) links to that port.
    uiUrl: env.LIFEBOAT_UI_URL || (env.LIFEBOAT_UI_PORT ? `http://localhost:${env.LIFEBOAT_UI_PORT}` : undefined),
    rdsCaFile: env.LIFEBOAT_RDS_CA_FILE || undefined,
    cloudSqlApi: env.LIFEBOAT_CLOUDSQL_API ? cloudSqlApi(env.LIFEBOAT_CLOUDSQL_API) : undefined,
    webhookUrl: env.LIFEBOAT_WEBHOOK_URL ? webhookUrl(env.LIFEBOAT_WEBHOOK_URL) : undefined,
    webhookSecret: env.LIFEBOAT_WEBHOOK_URL
      ? webhookSecret(env, resolve(env.LIFEBOAT_HOME ?? join(root, '.lifeboat')))
      : undefined,
    metrics: env.LIFEBOAT_METRICS_PORT
      ? { host: env.LIFEBOAT_METRICS_HOST || '127.0.0.1', port: metricsPort(env.LIFEBOAT_METRICS_PORT) }
      : undefined,
    codec: codecSettings(env, resolve(env.LIFEBOAT_HOME ?? join(root, '.lifeboat'))),
    secrets: env,
  };
}

function metricsPort(value: string): number {
  const port = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535))
    throw new Error(
      `LIFEBOAT_METRICS_PORT=${value} is not a port; expected an integer from 0 to 65535 (0: any free port)`,
    );
  return port;
}

function webhookUrl(url: string): string {
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    // The value is not echoed: a webhook URL usually carries its token.
  }
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol))
    throw new Error('LIFEBOAT_WEBHOOK_URL is not an http(s) URL');
  return url;
}

/** The webhook signing key; the value is never echoed, a file's path is. */
export function webhookSecret(env: NodeJS.ProcessEnv, home: string): string {
  const { LIFEBOAT_WEBHOOK_SECRET: value, LIFEBOAT_WEBHOOK_SECRET_FILE: file } = env;
  if (value && file)
    throw new Error('LIFEBOAT_WEBHOOK_SECRET and LIFEBOAT_WEBHOOK_SECRET_FILE are both set; expected one of them');
  const strong = (key: string, where: string): string => {
    if (Buffer.byteLength(key) < 16)
      throw new Error(
        `${where} is shorter than 16 bytes; expected a random key of at least 16 bytes (e.g. openssl rand -hex 32)`,
      );
    return key;
  };
  if (value) return strong(value, 'LIFEBOAT_WEBHOOK_SECRET');
  const path = file || join(home, 'webhook-secret');
  if (!file && !existsSync(path)) {
    // No key configured: one is made for this home, once, for receivers to read from here.
    mkdirSync(home, { recursive: true });
    try {
      writeFileSync(path, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another process made it first
    }
  }
  let key: string;
  try {
    key = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new Error(
      `${file ? 'LIFEBOAT_WEBHOOK_SECRET_FILE' : 'the webhook key file'} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); expected a file holding the webhook signing key`,
    );
  }
  return strong(key, `the webhook key in ${path}`);
}

function cloudSqlApi(url: string): { apiEndpoint: string; port: number; protocol: 'http' | 'https' } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`LIFEBOAT_CLOUDSQL_API=${url} is not a URL; expected http(s)://host:port`);
  }
  const protocol = parsed.protocol === 'http:' ? 'http' : 'https';
  return { apiEndpoint: parsed.hostname, port: Number(parsed.port) || (protocol === 'http' ? 80 : 443), protocol };
}
