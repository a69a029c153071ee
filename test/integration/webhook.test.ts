// Webhook deliveries (activities/notify.ts) against local HTTP receivers: every POST is signed
// (X-Lifeboat-Signature: v1=HMAC-SHA256 of "<X-Lifeboat-Timestamp>.<body>") and carries an
// Idempotency-Key that a retry repeats; a redirect is a failure and its Location is never requested;
// credentials in the URL (user:password@, ?token=) appear in no error.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { sendNotification, type Notification, type NotificationOrigin } from '../../activities/notify';
import type { ActivityIo } from '../../activities/providers/provider';
import { webhookSecret } from '../../worker/env';
import { failure } from '../support/unit-failure';

const SECRET = 'whsec-0123456789abcdef';
const io = (): ActivityIo => ({
  heartbeat: () => undefined,
  signal: new AbortController().signal,
  logger: pino({ level: 'silent' }),
});
const note: Notification = {
  event: 'drill.failed',
  database: 'orders',
  runbook: 'drill',
  summary: 'drill of orders failed',
  reason: '1 of 3 data checks failed',
};
const origin: NotificationOrigin = {
  workflowId: 'lifeboat/orders/drill/1',
  runId: 'run-1',
  namespace: 'default',
  activityId: '7',
};

interface Received {
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

async function receiver(
  answer: (req: Received) => { status: number; headers?: Record<string, string> },
): Promise<{ server: Server; base: string; requests: Received[] }> {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const got = { url: req.url ?? '', headers: req.headers, body };
      requests.push(got);
      const { status, headers } = answer(got);
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** What a receiver does: recompute the HMAC over "<timestamp>.<raw body>" and compare in constant time. */
function signatureValid(req: Received, secret: string): boolean {
  const timestamp = String(req.headers['x-lifeboat-timestamp']);
  const given = Buffer.from(String(req.headers['x-lifeboat-signature']));
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${timestamp}.${req.body}`).digest('hex')}`);
  return (
    /^\d+$/.test(timestamp) &&
    Math.abs(Date.now() / 1000 - Number(timestamp)) < 300 &&
    given.length === expected.length &&
    timingSafeEqual(given, expected)
  );
}

describe('webhook deliveries', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  test('every POST is signed over "<timestamp>.<body>" with the configured key; a retry of the same notification (500, then 200) carries the same Idempotency-Key; another event or step gets another', async () => {
    let fail = 1;
    const hook = await receiver(() => (fail-- > 0 ? { status: 500 } : { status: 200 }));
    servers.push(hook.server);
    const config = { webhookUrl: `${hook.base}/hook`, webhookSecret: SECRET };

    await expect(sendNotification(config, note, io(), origin)).rejects.toThrow(
      'the webhook answered HTTP 500; retrying',
    );
    await expect(sendNotification(config, note, io(), origin)).resolves.toEqual({ sent: true });
    await sendNotification(config, { ...note, event: 'failover.finished' }, io(), origin);
    await sendNotification(config, note, io(), { ...origin, activityId: '9' });

    expect(hook.requests).toHaveLength(4);
    for (const req of hook.requests) {
      expect(signatureValid(req, SECRET)).toBe(true);
      expect(signatureValid(req, 'another-key-0123456789')).toBe(false);
      expect(req.headers['idempotency-key']).toMatch(/^[0-9a-f]{64}$/);
    }
    // A receiver that checks the signature notices a changed body.
    expect(
      signatureValid({ ...hook.requests[0]!, body: hook.requests[0]!.body.replace('orders', 'billing') }, SECRET),
    ).toBe(false);
    const keys = hook.requests.map((r) => r.headers['idempotency-key']);
    expect(keys[1]).toBe(keys[0]);
    expect(new Set(keys).size).toBe(3);
    expect(hook.requests[0]!.headers['x-lifeboat-event']).toBe('drill.failed');
    expect(JSON.parse(hook.requests[1]!.body)).toMatchObject({
      event: 'drill.failed',
      workflowId: origin.workflowId,
      runId: origin.runId,
    });
  });

  test('a 302 to a second server is a non-retryable failure and the second server is never asked', async () => {
    const second = await receiver(() => ({ status: 200 }));
    const first = await receiver(() => ({ status: 302, headers: { location: `${second.base}/elsewhere` } }));
    servers.push(first.server, second.server);
    const err = await failure(
      sendNotification({ webhookUrl: `${first.base}/hook`, webhookSecret: SECRET }, note, io(), origin),
    );
    expect(err).toMatchObject({ type: 'LifeboatProviderRejected', nonRetryable: true });
    expect(err.message).toMatch(/HTTP 302, a redirect, which Lifeboat does not follow/);
    expect(err.message).not.toContain(second.base);
    expect(first.requests).toHaveLength(1);
    expect(second.requests).toHaveLength(0);
  });

  test('credentials in the URL (user:secret@, ?token=secret) are sent as the receiver expects yet appear in no error: refused, failing, unreachable', async () => {
    const hook = await receiver((req) => ({ status: req.url.includes('mode=refuse') ? 403 : 500 }));
    servers.push(hook.server);
    const port = (hook.server.address() as AddressInfo).port;
    const config = (url: string) => ({ webhookUrl: url, webhookSecret: SECRET });
    const messages: string[] = [];
    for (const url of [
      `http://user:secret@127.0.0.1:${port}/hook?token=secret&mode=refuse`,
      `http://user:secret@127.0.0.1:${port}/hook?token=secret`,
      `http://hook-user:secret@127.0.0.1:1/hook?token=secret`,
    ]) {
      const err = await failure(sendNotification(config(url), note, io(), origin));
      messages.push(err.message, err.stack ?? '', JSON.stringify(err));
    }
    expect(messages.join('\n')).toMatch(/HTTP 403[\s\S]*HTTP 500[\s\S]*did not answer/);
    expect(messages.join('\n')).not.toContain('secret');
    // The receiver still got its credentials: as Basic authorization and its query parameter.
    expect(hook.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from('user:secret').toString('base64')}`);
    expect(hook.requests[0]!.url).toBe('/hook?token=secret&mode=refuse');
  });

  test('the key comes from LIFEBOAT_WEBHOOK_SECRET or LIFEBOAT_WEBHOOK_SECRET_FILE (never echoed in an error), else a random one made 0600 in LIFEBOAT_HOME', () => {
    const home = mkdtempSync(join(tmpdir(), 'webhook-key-'));
    expect(webhookSecret({ LIFEBOAT_WEBHOOK_SECRET: SECRET }, home)).toBe(SECRET);
    writeFileSync(join(home, 'key'), `${SECRET}-from-file\n`);
    expect(webhookSecret({ LIFEBOAT_WEBHOOK_SECRET_FILE: join(home, 'key') }, home)).toBe(`${SECRET}-from-file`);
    expect(() => webhookSecret({ LIFEBOAT_WEBHOOK_SECRET: 'short-secret' }, home)).toThrow(
      /^LIFEBOAT_WEBHOOK_SECRET is shorter than 16 bytes/,
    );
    expect(() => webhookSecret({ LIFEBOAT_WEBHOOK_SECRET: 'short-secret' }, home)).not.toThrow(/short-secret/);
    expect(() =>
      webhookSecret({ LIFEBOAT_WEBHOOK_SECRET: SECRET, LIFEBOAT_WEBHOOK_SECRET_FILE: join(home, 'key') }, home),
    ).toThrow(/both set/);
    expect(() => webhookSecret({ LIFEBOAT_WEBHOOK_SECRET_FILE: join(home, 'missing') }, home)).toThrow(
      /cannot be read \(ENOENT\)/,
    );
    const made = webhookSecret({}, home);
    expect(made).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(join(home, 'webhook-secret'), 'utf8').trim()).toBe(made);
    expect(statSync(join(home, 'webhook-secret')).mode & 0o777).toBe(0o600);
    expect(webhookSecret({}, home)).toBe(made); // made once
  });
});
