// The codec server (`lifeboat codec-server`): the Temporal UI/CLI codec protocol (proto3 JSON,
// base64 bytes), CORS for the UI's origin only, the bearer token, the body limit, and logs that
// never carry payloads. In process for the protocol, then through the compiled CLI.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { AesGcmCodec, CodecConfigError, CodecKeys } from '../../worker/codec';
import { createLogger } from '../../worker/logger';
import { MAX_BODY_BYTES, startCodecServer, type RunningCodecServer } from '../../services/codec-server';
import { CLI, lifeboat } from '../support/cli';
import { freePort } from '../support/ports';
import { LogCapture } from '../support/stack';

const UI = 'http://localhost:8233';
const TOKEN = randomBytes(24).toString('hex');
const KEY = randomBytes(32).toString('base64');
const SECRET = `codec-server-secret-${randomBytes(4).toString('hex')}`;
const keys = CodecKeys.parse(`srv-1 ${KEY}`, 'test');

/** A payload as the UI sends it: proto3 JSON, every bytes field base64. */
const asJson = (p: Payload) =>
  temporal.api.common.v1.Payload.toObject(temporal.api.common.v1.Payload.fromObject(p), { bytes: String }) as {
    metadata: Record<string, string>;
    data: string;
  };
const fromJson = (j: unknown) => temporal.api.common.v1.Payload.fromObject(j as Record<string, unknown>);
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function post(
  server: RunningCodecServer | string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const base = typeof server === 'string' ? server : server.url;
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('codec server, in process', () => {
  const logs = new LogCapture();
  let server: RunningCodecServer;
  const auth = { Authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    server = await startCodecServer({
      keys,
      logger: createLogger('debug', logs),
      port: 0,
      origins: [UI],
      token: TOKEN,
    });
  });
  afterAll(() => server.close());

  test('encode then decode round-trips payloads in the protocol JSON (base64 metadata and data), under any path prefix', async () => {
    const original = asJson(defaultPayloadConverter.toPayload({ note: SECRET })!);
    expect(original.metadata.encoding).toBe(b64('json/plain'));
    const encoded = await post(server, '/encode', { payloads: [original] }, auth);
    expect(encoded.status).toBe(200);
    const sealed = ((await encoded.json()) as { payloads: { metadata: Record<string, string>; data: string }[] })
      .payloads;
    expect(sealed[0]!.metadata.encoding).toBe(b64('binary/encrypted'));
    expect(sealed[0]!.metadata['encryption-key-id']).toBe(b64('srv-1'));
    expect(Buffer.from(sealed[0]!.data, 'base64').toString('latin1')).not.toContain(SECRET);
    // What the UI encoded, a worker with the same key reads (and the other way round).
    expect(
      defaultPayloadConverter.fromPayload((await new AesGcmCodec(keys).decode([fromJson(sealed[0])]))[0]!),
    ).toEqual({ note: SECRET });

    // The CLI templates the namespace into the path: only the last segment counts.
    const decoded = await post(server, '/default/decode', { payloads: [...sealed, original] }, auth);
    expect(decoded.status).toBe(200);
    const opened = ((await decoded.json()) as { payloads: unknown[] }).payloads;
    expect(opened).toEqual([original, original]); // an unencrypted payload passes through
    expect(defaultPayloadConverter.fromPayload(fromJson(opened[0]))).toEqual({ note: SECRET });
  });

  test('a payload sealed with a key this server lacks is a 400 naming the key id', async () => {
    const [foreign] = await new AesGcmCodec(CodecKeys.parse(`other ${randomBytes(32).toString('base64')}`, 'x')).encode(
      [defaultPayloadConverter.toPayload(SECRET)!],
    );
    const res = await post(server, '/decode', { payloads: [asJson(foreign!)] }, auth);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/key "other".*"srv-1"/);
  });

  test('CORS: a preflight from the UI origin is allowed with the headers the UI sends; another origin is refused', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/decode`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'content-type,x-namespace,authorization',
        },
      });
    const ok = await preflight(UI);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI);
    const allowed = ok.headers
      .get('access-control-allow-headers')!
      .toLowerCase()
      .split(/\s*,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(['content-type', 'x-namespace', 'authorization']));
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');

    const evil = await preflight('https://evil.example');
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    // Even with the token, a page from another origin gets nothing.
    const post403 = await post(server, '/decode', { payloads: [] }, { ...auth, Origin: 'https://evil.example' });
    expect(post403.status).toBe(403);
    expect(post403.headers.get('access-control-allow-origin')).toBeNull();
    // The UI's own request carries its origin back, so the page may read the answer.
    const fromUi = await post(server, '/decode', { payloads: [] }, { ...auth, Origin: UI });
    expect(fromUi.status).toBe(200);
    expect(fromUi.headers.get('access-control-allow-origin')).toBe(UI);
  });

  test('a missing or wrong token is a 401; the refusal is still readable by the UI origin', async () => {
    const missing = await post(server, '/decode', { payloads: [] }, { Origin: UI });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect(missing.headers.get('access-control-allow-origin')).toBe(UI);
    expect((await post(server, '/decode', { payloads: [] }, { Authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await post(server, '/decode', { payloads: [] }, { Authorization: TOKEN })).status).toBe(401);
    expect((await post(server, '/encode', { payloads: [] }, { Authorization: 'Bearer ' })).status).toBe(401);
  });

  test('bad requests: over the body limit 413, not JSON 400, unknown path 404, GET 405', async () => {
    const big = JSON.stringify({ payloads: [{ data: 'A'.repeat(MAX_BODY_BYTES) }] });
    expect((await post(server, '/decode', big, auth)).status).toBe(413);
    expect((await post(server, '/decode', 'not json', auth)).status).toBe(400);
    expect((await post(server, '/decode', { nope: [] }, auth)).status).toBe(400);
    expect((await post(server, '/metrics', { payloads: [] }, auth)).status).toBe(404);
    const get = await fetch(`${server.url}/decode`, { headers: auth });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toContain('POST');
  });

  test('the log has the requests (route, status, counts) and never a payload, the token or the key', () => {
    expect(logs.text).toContain('codec server ready');
    expect(logs.text).toContain('"status":401');
    expect(logs.text).toContain('"payloads":2');
    for (const leak of [SECRET, b64(SECRET), TOKEN, KEY]) expect(logs.text).not.toContain(leak);
  });

  test('without a token it will not listen beyond loopback; bad origins are refused', async () => {
    const base = { keys, logger: createLogger('silent'), port: 0, origins: [UI] };
    await expect(startCodecServer({ ...base, host: '0.0.0.0' })).rejects.toThrow(CodecConfigError);
    await expect(startCodecServer({ ...base, host: '0.0.0.0' })).rejects.toThrow(/without a token/);
    await expect(startCodecServer({ ...base, origins: ['http://localhost:8233/ui'] })).rejects.toThrow(
      /is not an origin/,
    );
    const withToken = await startCodecServer({ ...base, host: '0.0.0.0', token: TOKEN });
    await withToken.close();
  });
});

describe('lifeboat codec-server (the compiled CLI)', () => {
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  test('serves the UI origin it was given with the keys of the environment, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    child = spawn(
      process.execPath,
      [CLI, 'codec-server', '--port', String(port), '--origin', 'http://localhost:18233'],
      {
        env: { ...process.env, LIFEBOAT_CODEC_KEY: `srv-1:${KEY}`, LIFEBOAT_CODEC_SERVER_TOKEN: TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 20_000;
    while (!out.includes('codec server ready')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`codec-server did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = `http://127.0.0.1:${port}`;
    const [sealed] = await new AesGcmCodec(keys).encode([defaultPayloadConverter.toPayload(SECRET)!]);
    const res = await post(
      url,
      '/decode',
      { payloads: [asJson(sealed!)] },
      { Authorization: `Bearer ${TOKEN}`, Origin: 'http://localhost:18233' },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:18233');
    expect(
      defaultPayloadConverter.fromPayload(fromJson(((await res.json()) as { payloads: unknown[] }).payloads[0])),
    ).toBe(SECRET);
    expect((await post(url, '/decode', { payloads: [] })).status).toBe(401);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain(KEY);
  });

  test('refusals exit 2 with the reason: no keys, a public address without a token, a key of the wrong length', async () => {
    const noKeys = await lifeboat(['codec-server'], { LIFEBOAT_CODEC_KEY: '', LIFEBOAT_CODEC_KEYS_FILE: '' });
    expect(noKeys.code).toBe(2);
    expect(noKeys.stderr).toContain('no codec keys');
    const open = await lifeboat(['codec-server', '--host', '0.0.0.0', '--port', String(await freePort())], {
      LIFEBOAT_CODEC_KEY: `srv-1:${KEY}`,
      LIFEBOAT_CODEC_SERVER_TOKEN: '',
    });
    expect(open.code).toBe(2);
    expect(open.stderr).toContain('without a token');
    const shortKey = await lifeboat(['codec-server'], {
      LIFEBOAT_CODEC_KEY: `srv-1:${Buffer.alloc(16).toString('base64')}`,
    });
    expect(shortKey.code).toBe(2);
    expect(shortKey.stderr).toContain('16 bytes; AES-256 needs exactly 32');
    expect(shortKey.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  });
});
