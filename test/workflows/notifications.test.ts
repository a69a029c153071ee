// Notifications to a webhook (LIFEBOAT_WEBHOOK_URL), received by a small HTTP server here: a failed
// drill, a failover waiting for approval, starting and finishing. A webhook that answers 500 is
// retried with the same Idempotency-Key, each delivery signed (X-Lifeboat-Signature); the URL's
// token, password and query token never reach history or logs; a passed drill sends nothing.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { failbackInput, failoverInput } from '../../worker/plan';
import { RUNBOOK_TASK_QUEUE } from '../../workflows/types';
import { createReplicaSet, lockId, startTopologyRunbook, type ReplicaSetFixture } from '../support/replica-set';
import { client, demoDrillInput, historyText, LogCapture, startWorker, type RunningWorker } from '../support/stack';
import { runbookReport } from '../../workflows/runbook-failure';

const TOKEN = 'hook-Token-5f0e';
const PASSWORD = 'hook-Pass-91c2';
const QUERY_TOKEN = 'hook-Query-77ad';
const SECRET = 'ntf-signing-key-0123456789';

/** The receiver's check: HMAC-SHA256 of "<timestamp>.<raw body>" with the shared key. */
const signedBy = (headers: IncomingHttpHeaders, body: string, key: string) =>
  headers['x-lifeboat-signature'] ===
  `v1=${createHmac('sha256', key)
    .update(`${String(headers['x-lifeboat-timestamp'])}.${body}`)
    .digest('hex')}`;

describe('notifications to a webhook (a local HTTP receiver)', () => {
  let server: Server;
  let worker: RunningWorker;
  let fx: ReplicaSetFixture;
  const received: Array<Record<string, unknown>> = [];
  let failNext = 0;
  let requests = 0;
  const deliveries: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  let refuse = false;
  const logs = new LogCapture();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        requests++;
        deliveries.push({ headers: req.headers, body });
        const basic = `Basic ${Buffer.from(`hookuser:${PASSWORD}`).toString('base64')}`;
        if (
          !req.url?.includes(TOKEN) ||
          !req.url.includes(`token=${QUERY_TOKEN}`) ||
          req.headers.authorization !== basic ||
          refuse
        )
          return void res.writeHead(403).end();
        if (!signedBy(req.headers, body, SECRET)) return void res.writeHead(401).end();
        if (failNext > 0) {
          failNext--;
          return void res.writeHead(500).end();
        }
        received.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    process.env.LIFEBOAT_WEBHOOK_URL = `http://hookuser:${PASSWORD}@127.0.0.1:${(server.address() as AddressInfo).port}/hooks/${TOKEN}?token=${QUERY_TOKEN}`;
    process.env.LIFEBOAT_WEBHOOK_SECRET = SECRET;
    fx = await createReplicaSet({ home: 'ntf-a', dr: 'ntf-b', database: 'ntfdb' });
    worker = await startWorker({ regions: ['local-a', 'local-b', 'ntf-a', 'ntf-b'], capture: logs });
  }, 120_000);

  afterAll(async () => {
    delete process.env.LIFEBOAT_WEBHOOK_URL;
    delete process.env.LIFEBOAT_WEBHOOK_SECRET;
    await worker?.stop();
    await fx?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  async function drill(checks: Array<{ name: string; sql: string }>) {
    const handle = await (
      await client()
    ).workflow.start('drill', {
      taskQueue: RUNBOOK_TASK_QUEUE,
      workflowId: `test/notify/drill/${Date.now()}`,
      args: [demoDrillInput({ checks })],
    });
    return { report: await runbookReport(handle), history: historyText(await handle.fetchHistory()) };
  }

  test("a failed drill sends drill.failed with the reason (a webhook answering 500 is retried, signed, under the same Idempotency-Key); a passed drill sends nothing; the URL's token, password and query token stay out of history and logs", async () => {
    received.length = 0;
    const passed = await drill([]);
    expect(passed.report.outcome).toBe('passed');
    expect(received).toEqual([]);

    failNext = 1;
    requests = 0;
    deliveries.length = 0;
    const { report, history } = await drill([{ name: 'books balance', sql: 'select false' }]);
    expect(report.outcome).toBe('failed');
    expect(requests).toBe(2); // the 500, then the retry that was taken
    expect(deliveries.map((d) => signedBy(d.headers, d.body, SECRET))).toEqual([true, true]);
    expect(deliveries[0]!.headers['idempotency-key']).toMatch(/^[0-9a-f]{64}$/);
    expect(deliveries[1]!.headers['idempotency-key']).toBe(deliveries[0]!.headers['idempotency-key']);
    expect(report.steps.some((s) => s.name.startsWith('notify'))).toBe(false);
    expect(received).toEqual([
      expect.objectContaining({
        event: 'drill.failed',
        database: 'orders',
        workflowId: report.workflowId,
        text: expect.stringContaining('[lifeboat] drill of orders failed: 1 of'),
        reason: expect.stringContaining('books balance'),
      }),
    ]);
    for (const secret of [TOKEN, PASSWORD, QUERY_TOKEN, SECRET]) {
      expect(history).not.toContain(secret);
      expect(logs.text).not.toContain(secret);
    }
  });

  test("a webhook that refuses (403) is not retried and does not change the drill's outcome; the report says the notification was not sent", async () => {
    refuse = true;
    try {
      const { report } = await drill([{ name: 'books balance', sql: 'select false' }]);
      expect(report.outcome).toBe('failed');
      expect(report.reason).toMatch(/^1 of \d+ data checks failed: books balance/);
      const step = report.steps.find((s) => s.name === 'notify drill.failed');
      expect(step).toMatchObject({ status: 'skipped', detail: expect.stringContaining('HTTP 403') });
      for (const secret of [TOKEN, PASSWORD, QUERY_TOKEN]) expect(step!.detail).not.toContain(secret);
    } finally {
      refuse = false;
    }
  });

  test('a failover says when it waits for approval and how it ended; an approved one says it started and finished', async () => {
    received.length = 0;
    const waiting = await startTopologyRunbook(
      await client(),
      'failover',
      failoverInput(fx.plan, 'ntfdb', {
        mode: 'planned',
        preApproved: false,
        triggeredBy: 'test',
        approvalTimeoutSeconds: 2,
      }),
    );
    const timedOut = await runbookReport(waiting);
    expect(timedOut.outcome).toBe('failed');
    expect(received.map((r) => r.event)).toEqual(['failover.approval_needed', 'failover.finished']);
    expect(received[0]).toMatchObject({ text: expect.stringContaining(`lifeboat approve ${lockId('ntfdb')}`) });
    expect(received[1]).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('approval timed out') });

    received.length = 0;
    const moved = await runbookReport(
      await startTopologyRunbook(
        await client(),
        'failover',
        failoverInput(fx.plan, 'ntfdb', { mode: 'planned', preApproved: true, triggeredBy: 'test' }),
      ),
    );
    expect(moved.outcome).toBe('passed');
    const back = await runbookReport(
      await startTopologyRunbook(
        await client(),
        'failback',
        failbackInput(fx.plan, 'ntfdb', { preApproved: true, triggeredBy: 'test' }),
      ),
    );
    expect(back.outcome).toBe('passed');
    expect(received.map((r) => [r.event, r.runbook, r.outcome ?? null])).toEqual([
      ['failover.started', 'failover', null],
      ['failover.finished', 'failover', 'passed'],
      ['failover.started', 'failback', null],
      ['failover.finished', 'failback', 'passed'],
    ]);
  }, 180_000);
});
