// `lifeboat codec-server`: the Temporal codec server protocol over HTTP, so the Temporal UI (and
// `temporal workflow show --codec-endpoint`) can show encrypted payloads decrypted, with the keys
// staying on this machine. POST <anything>/decode and <anything>/encode take and return
// {"payloads": [...]} in proto3 JSON (every bytes field, metadata values too, is base64).
//
// Who may call it: browsers only from the configured UI origins (CORS), and, when a token is set,
// only requests carrying `Authorization: Bearer <token>`. Without a token it binds loopback only.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Logger } from 'pino';
import { AesGcmCodec, CodecConfigError, PayloadDecryptError, type CodecKeys } from '../worker/codec';

export const MAX_BODY_BYTES = 4 * 1024 * 1024;
const LOOPBACK = ['127.0.0.1', '::1', 'localhost'];
/** What the UI sends besides the body: its namespace, and an access token when configured to pass one. */
const ALLOWED_HEADERS = 'Content-Type, X-Namespace, Authorization';

export interface CodecServerOptions {
  keys: CodecKeys;
  logger: Logger;
  port: number;
  host?: string;
  /** Browser origins allowed to call (the Temporal UI's), e.g. http://localhost:8233. */
  origins: string[];
  /** Required as `Authorization: Bearer <token>` when set. */
  token?: string;
  maxBodyBytes?: number;
}

export interface RunningCodecServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export async function startCodecServer(options: CodecServerOptions): Promise<RunningCodecServer> {
  const host = options.host ?? '127.0.0.1';
  if (!options.token && !LOOPBACK.includes(host)) {
    throw new CodecConfigError(
      `codec server: refusing to listen on ${host} without a token: anyone who reaches it could decrypt every payload. ` +
        'Set LIFEBOAT_CODEC_SERVER_TOKEN (or LIFEBOAT_CODEC_SERVER_TOKEN_FILE), or listen on 127.0.0.1',
    );
  }
  for (const origin of options.origins) {
    if (!isOrigin(origin))
      throw new CodecConfigError(
        `--origin ${origin} is not an origin; expected scheme://host[:port] with no path, e.g. http://localhost:8233`,
      );
  }
  const codec = new AesGcmCodec(options.keys);
  const log = options.logger.child({ component: 'codec-server' });
  const limit = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const context: Context = { codec, origins: options.origins, token: options.token, limit };
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    let payloads = 0;
    let reason: string | undefined;
    try {
      payloads = await handle(req, res, context);
    } catch (err) {
      const known = err instanceof HttpError ? err : null;
      reason = known ? known.message : 'internal error (see the codec server log)';
      if (!known) log.error({ err }, 'codec request failed');
      if (!res.headersSent) {
        corsHeaders(req, res, options.origins);
        for (const [name, value] of Object.entries(known?.headers ?? {})) res.setHeader(name, value);
        sendJson(res, known?.status ?? 500, { error: reason });
      }
    }
    // Method, route, status and counts only: payloads, even encrypted ones, are never logged.
    const entry = {
      method: req.method,
      path: req.url?.split('?')[0],
      status: res.statusCode,
      payloads,
      namespace: req.headers['x-namespace'],
      origin: req.headers.origin,
      ms: Date.now() - started,
    };
    if (reason) log.warn({ ...entry, reason }, 'codec request refused');
    else log.debug(entry, 'codec request');
  };
  const server = createServer((req, res) => void serve(req, res));
  // A refused oversized body is drained, not kept: a client that never stops sending is cut off here.
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new CodecConfigError(
              `codec server: port ${options.port} on ${host} is taken; stop what uses it, or pass --port (or set LIFEBOAT_CODEC_PORT)`,
            )
          : err,
      ),
    );
    server.listen(options.port, host === 'localhost' ? '127.0.0.1' : host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info(
    {
      url,
      origins: options.origins,
      auth: options.token ? 'bearer token' : 'none (loopback only)',
      keys: options.keys.ids,
      encryptingKey: options.keys.encryptingId,
    },
    'codec server ready',
  );
  return { url, port, close: () => closeServer(server) };
}

interface Context {
  codec: AesGcmCodec;
  origins: string[];
  token?: string;
  limit: number;
}

/** Serves one request; resolves with the number of payloads handled. */
async function handle(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<number> {
  const origin = req.headers.origin;
  if (origin !== undefined && !ctx.origins.includes(origin)) {
    // No CORS headers: the browser will not let that page read anything, even this refusal.
    throw new HttpError(
      403,
      `origin ${origin} is not allowed; start the codec server with --origin ${origin} if that is your Temporal UI`,
    );
  }
  corsHeaders(req, res, ctx.origins);
  const route = routeOf(req.url);
  if (req.method === 'OPTIONS') {
    // A preflight carries no Authorization header (browsers strip it): answered before the token check.
    if (req.headers['access-control-request-private-network'] === 'true')
      res.setHeader('Access-Control-Allow-Private-Network', 'true');
    res.writeHead(204).end();
    return 0;
  }
  if (route !== 'encode' && route !== 'decode')
    throw new HttpError(404, 'not found; the codec server answers POST .../encode and POST .../decode');
  if (req.method !== 'POST')
    throw new HttpError(405, `${req.method} is not allowed; use POST`, { Allow: 'POST, OPTIONS' });
  if (ctx.token && !tokenMatches(req.headers.authorization, ctx.token)) {
    throw new HttpError(401, 'missing or wrong token; send Authorization: Bearer <token>', {
      'WWW-Authenticate': 'Bearer realm="lifeboat-codec"',
    });
  }
  const payloads = parsePayloads(await readBody(req, ctx.limit));
  let result: Payload[];
  try {
    result = route === 'decode' ? await ctx.codec.decode(payloads) : await ctx.codec.encode(payloads);
  } catch (err) {
    if (err instanceof PayloadDecryptError) throw new HttpError(400, err.message);
    throw err;
  }
  sendJson(res, 200, {
    payloads: result.map((p) =>
      temporal.api.common.v1.Payload.toObject(temporal.api.common.v1.Payload.fromObject(p), { bytes: String }),
    ),
  });
  return payloads.length;
}

function routeOf(url: string | undefined): string {
  // The protocol: only the last path segment counts (endpoints may sit under /<namespace>/ or deeper).
  const path = (url ?? '/').split('?')[0]!;
  return path.split('/').filter(Boolean).pop() ?? '';
}

function corsHeaders(req: IncomingMessage, res: ServerResponse, origins: string[]): void {
  const origin = req.headers.origin;
  res.setHeader('Vary', 'Origin');
  if (origin === undefined || !origins.includes(origin)) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
  // The UI can be set to "include cross-origin credentials"; the origin is never a wildcard.
  res.setHeader('Access-Control-Allow-Credentials', 'true');
  res.setHeader('Access-Control-Max-Age', '600');
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!match) return false;
  // Equal-length digests, so the comparison takes the same time whatever the caller sent.
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(match[1]!.trim()), digest(token));
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    req.resume();
    throw new HttpError(413, `the body is ${declared} bytes; the limit is ${limit}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new HttpError(413, `the body exceeds the limit of ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parsePayloads(body: Buffer): Payload[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not JSON; expected {"payloads": [...]}');
  }
  const list = (parsed as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(list)) throw new HttpError(400, 'expected a JSON object with a "payloads" array');
  return list.map((item, i) => {
    if (typeof item !== 'object' || item === null) throw new HttpError(400, `payloads[${i}] is not an object`);
    try {
      // proto3 JSON: bytes (data and each metadata value) arrive base64.
      return temporal.api.common.v1.Payload.fromObject(item as Record<string, unknown>);
    } catch (err) {
      throw new HttpError(400, `payloads[${i}] is not a Payload: ${(err as Error).message}`);
    }
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** The CLI entry: serves until SIGINT or SIGTERM. */
export async function runCodecServer(options: CodecServerOptions): Promise<void> {
  const server = await startCodecServer(options);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
}
