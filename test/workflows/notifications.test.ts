// Notifications to a webhook (LIFEBOAT_WEBHOOK_URL), received by a small HTTP server here: a failed
// drill, a failover waiting for approval, starting and finishing. A webhook that answers 500 is
// retried; the URL's token never reaches history or logs; a passed drill sends nothing.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { failbackInput, failoverInput } from '../../worker/plan';
import { RUNBOOK_TASK_QUEUE, type RunbookReport } from '../../workflows/types';
import { createReplicaSet, lockId, startTopologyRunbook, type ReplicaSetFixture } from '../support/replica-set';
import { client, demoDrillInput, historyText, LogCapture, startWorker, type RunningWorker } from '../support/stack';

const TOKEN = 'hook-Token-5f0e';

describe('notifications to a webhook (a local HTTP receiver)', () => {
  let server: Server;
  let worker: RunningWorker;
  let fx: ReplicaSetFixture;
  const received: Array<Record<string, unknown>> = [];
  let failNext = 0;
  let requests = 0;
  let refuse = false;
  const logs = new LogCapture();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        requests++;
        if (!req.url?.includes(TOKEN) || refuse) return void res.writeHead(403).end();
        if (failNext > 0) {
          failNext--;
          return void res.writeHead(500).end();
        }
        received.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    process.env.LIFEBOAT_WEBHOOK_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/${TOKEN}`;
    fx = await createReplicaSet({ home: 'ntf-a', dr: 'ntf-b', database: 'ntfdb' });
    worker = await startWorker({ regions: ['local-a', 'local-b', 'ntf-a', 'ntf-b'], capture: logs });
  }, 120_000);

  afterAll(async () => {
    delete process.env.LIFEBOAT_WEBHOOK_URL;
    await worker?.stop();
    await fx?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  async function drill(checks: Array<{ name: string; sql: string }>) {
    const handle = await (await client()).workflow.start('drill', {
      taskQueue: RUNBOOK_TASK_QUEUE,
      workflowId: `test/notify/drill/${Date.now()}`,
      args: [demoDrillInput({ checks })],
    });
    return { report: (await handle.result()) as RunbookReport, history: historyText(await handle.fetchHistory()) };
  }

  test('a failed drill sends drill.failed with the reason (a webhook answering 500 is retried); a passed drill sends nothing; the token stays out of history and logs', async () => {
    received.length = 0;
    const passed = await drill([]);
    expect(passed.report.outcome).toBe('passed');
    expect(received).toEqual([]);

    failNext = 1;
    requests = 0;
    const { report, history } = await drill([{ name: 'books balance', sql: 'select false' }]);
    expect(report.outcome).toBe('failed');
    expect(requests).toBe(2); // the 500, then the retry that was taken
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
    expect(history).not.toContain(TOKEN);
    expect(logs.text).not.toContain(TOKEN);
  });

  test('a webhook that refuses (403) is not retried and does not change the drill\'s outcome; the report says the notification was not sent', async () => {
    refuse = true;
    try {
      const { report } = await drill([{ name: 'books balance', sql: 'select false' }]);
      expect(report.outcome).toBe('failed');
      expect(report.reason).toMatch(/^1 of \d+ data checks failed: books balance/);
      const step = report.steps.find((s) => s.name === 'notify drill.failed');
      expect(step).toMatchObject({ status: 'skipped', detail: expect.stringContaining('HTTP 403') });
      expect(step!.detail).not.toContain(TOKEN);
    } finally {
      refuse = false;
    }
  });

  test('a failover says when it waits for approval and how it ended; an approved one says it started and finished', async () => {
    received.length = 0;
    const waiting = await startTopologyRunbook(await client(), 'failover', failoverInput(fx.plan, 'ntfdb', { mode: 'planned', preApproved: false, triggeredBy: 'test', approvalTimeoutSeconds: 2 }));
    const timedOut = (await waiting.result()) as RunbookReport;
    expect(timedOut.outcome).toBe('failed');
    expect(received.map((r) => r.event)).toEqual(['failover.approval_needed', 'failover.finished']);
    expect(received[0]).toMatchObject({ text: expect.stringContaining(`lifeboat approve ${lockId('ntfdb')}`) });
    expect(received[1]).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('approval timed out') });

    received.length = 0;
    const moved = (await (await startTopologyRunbook(await client(), 'failover', failoverInput(fx.plan, 'ntfdb', { mode: 'planned', preApproved: true, triggeredBy: 'test' }))).result()) as RunbookReport;
    expect(moved.outcome).toBe('passed');
    const back = (await (await startTopologyRunbook(await client(), 'failback', failbackInput(fx.plan, 'ntfdb', { preApproved: true, triggeredBy: 'test' }))).result()) as RunbookReport;
    expect(back.outcome).toBe('passed');
    expect(received.map((r) => [r.event, r.runbook, r.outcome ?? null])).toEqual([
      ['failover.started', 'failover', null],
      ['failover.finished', 'failover', 'passed'],
      ['failover.started', 'failback', null],
      ['failover.finished', 'failback', 'passed'],
    ]);
  }, 180_000);
});
