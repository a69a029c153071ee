// Encrypted payloads end to end: a real drill through a worker and client that share the AES-256-GCM
// codec (worker/codec.ts). The plan's check names and SQL, the data the checks read, a database
// error quoting data, the start's summary and memo all carry marker strings; the raw history (read
// without the codec, as the Temporal server and a UI without the codec server see it) must hold none
// of them, while the same history decoded with the key must hold every one (so this test can fail).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Payload } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { AesGcmCodec, CodecKeys, lifeboatDataConverter } from '../../worker/codec';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startCodecServer } from '../../services/codec-server';
import { DEMO_SET, temporalCli } from '../../scripts/dev/stack';
import { createLogger } from '../../worker/logger';
import { listRuns, stringAttribute } from '../../activities/visibility';
import { DatabaseAttr } from '../../workflows/search-attributes';
import { RUNBOOK_TASK_QUEUE, type RunbookReport } from '../../workflows/types';
import { client, demoDrillInput, env, historyText, LogCapture, startWorker } from '../support/stack';
import { runbookReport } from '../../workflows/runbook-failure';

const tag = randomBytes(4).toString('hex');
const MARKERS = {
  checkName: `lbmark-checkname-${tag}`,
  sqlLiteral: `lbmark-sqlliteral-${tag}`,
  dataSample: `lbmark-datasample-${tag}`,
  errorSample: `lbmark-errsample-${tag}`,
  summary: `lbmark-summary-${tag}`,
  memo: `lbmark-memo-${tag}`,
};
// The data markers never appear in the plan: the database builds them from base64, as a real check
// would read a customer's row, so they can only reach history through results and errors.
const fromDatabase = (text: string) =>
  `convert_from(decode('${Buffer.from(text).toString('base64')}', 'base64'), 'utf8')`;

const keys = CodecKeys.parse(`test-${tag} ${randomBytes(32).toString('base64')}\n`, 'encrypted-history test');
const codec = new AesGcmCodec(keys);

/** Every payload in a history (search attributes aside: the codec never sees those), with where it sits. */
function payloadsOf(node: unknown, path = ''): { path: string; payload: Payload }[] {
  if (node === null || typeof node !== 'object' || node instanceof Uint8Array) return [];
  const record = node as Record<string, unknown>;
  if (record.data instanceof Uint8Array && record.metadata && typeof record.metadata === 'object')
    return [{ path, payload: record as Payload }];
  return Object.entries(record).flatMap(([k, v]) => (k === 'searchAttributes' ? [] : payloadsOf(v, `${path}.${k}`)));
}

const encodingOf = (p: Payload) => Buffer.from(p.metadata?.encoding ?? []).toString('utf8');

function regionPasswords(): string[] {
  return ['local-a', 'local-b'].map((r) =>
    readFileSync(join(env().home, 'regions', r, 'cluster', 'pgpass'), 'utf8')
      .trim()
      .split(':')
      .slice(4)
      .join(':'),
  );
}

describe('encrypted payloads: a drill through the AES-256-GCM codec', () => {
  const logs = new LogCapture();
  let report: RunbookReport;
  let raw: temporal.api.history.v1.IHistory;
  let decodedText: string;
  let rawMemo: Payload[];
  let memo: unknown;
  let workflowId: string;

  beforeAll(async () => {
    const dataConverter = lifeboatDataConverter(keys)!;
    const worker = await startWorker({ capture: logs, dataConverter });
    try {
      const sealed = await client(dataConverter);
      const input = demoDrillInput({
        checks: [
          { name: MARKERS.checkName, sql: `select '${MARKERS.sqlLiteral}' is not null` },
          // Returns a data sample: the check fails and its detail quotes what it read.
          { name: 'sample row', sql: `select ${fromDatabase(MARKERS.dataSample)}` },
          // A database error quoting the value it choked on.
          { name: 'bad cast', sql: `select (${fromDatabase(MARKERS.errorSample)})::int > 0` },
        ],
      });
      workflowId = `test/encrypted/${tag}`;
      const handle = await sealed.workflow.start('drill', {
        taskQueue: RUNBOOK_TASK_QUEUE,
        workflowId,
        args: [input],
        staticSummary: `Drill ${MARKERS.summary}`,
        memo: { note: MARKERS.memo },
      });
      report = await runbookReport(handle);
      // Read as the server and a UI without the codec server see it: a client with no codec.
      const plain = await client();
      raw = await plain.workflow.getHandle(workflowId).fetchHistory();
      const described = await plain.workflowService.describeWorkflowExecution({
        namespace: 'default',
        execution: { workflowId },
      });
      rawMemo = Object.values(described.workflowExecutionInfo?.memo?.fields ?? {});
      memo = (await sealed.workflow.getHandle(workflowId).describe()).memo;
      const payloads = payloadsOf(raw).map((p) => p.payload);
      decodedText = historyText(await codec.decode(payloads));
    } finally {
      await worker.stop();
    }
  });

  test('the drill ran with the codec and its report (decrypted by the client) quotes the data the checks read', () => {
    expect(report.outcome).toBe('failed');
    expect(report.checks.find((c) => c.name === MARKERS.checkName)).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'sample row')).toMatchObject({
      ok: false,
      detail: expect.stringContaining(MARKERS.dataSample),
    });
    expect(report.checks.find((c) => c.name === 'bad cast')).toMatchObject({
      ok: false,
      detail: expect.stringContaining(MARKERS.errorSample),
    });
    expect(memo).toEqual({ note: MARKERS.memo });
  });

  test('every payload in the raw history is encrypted (inputs, activity arguments and results, summaries, memo, the report), patch markers aside', () => {
    // The SDK core writes patched() markers itself, past the codec: they hold the patch id, a name
    // in the runbook's code, never data.
    const isPatchMarker = (path: string) => /\.markerRecordedEventAttributes\.details\.patch-data\./.test(path);
    const payloads = payloadsOf(raw).filter((p) => !isPatchMarker(p.path));
    expect(payloads.length).toBeGreaterThan(20);
    const clear = payloads
      .filter((p) => encodingOf(p.payload) !== 'binary/encrypted')
      .map((p) => `${p.path} (${encodingOf(p.payload)})`);
    expect(clear).toEqual([]);
    for (const { payload } of payloads)
      expect(Buffer.from(payload.metadata!['encryption-key-id']!).toString()).toBe(keys.encryptingId);
    const patches = payloadsOf(raw).filter((p) => isPatchMarker(p.path));
    for (const { payload } of patches)
      expect(Buffer.from(payload.data!).toString()).toMatch(/^\{"id":"[\w-]+","deprecated":(true|false)\}$/);
  });

  test('no marker, and no region password, appears in the raw history: neither its JSON nor any payload decoded as text', () => {
    const json = historyToJSON(raw);
    const text = historyText(raw);
    for (const marker of [...Object.values(MARKERS), ...regionPasswords()]) {
      expect(json).not.toContain(marker);
      expect(text).not.toContain(marker);
    }
    // The memo as the server hands it out (describe, list) is ciphertext too.
    expect(rawMemo.map(encodingOf)).toEqual(['binary/encrypted']);
    expect(historyText(rawMemo)).not.toContain(MARKERS.memo);
  });

  test('the same history decrypted with the key holds every marker (what the codec server shows the UI), and still no password', () => {
    for (const marker of Object.values(MARKERS)) expect(decodedText).toContain(marker);
    for (const password of regionPasswords()) expect(decodedText).not.toContain(password);
  });

  test('the Temporal CLI shows the history decrypted through the codec server (the protocol the UI speaks), and ciphertext without it', async () => {
    const token = randomBytes(24).toString('hex');
    const server = await startCodecServer({
      keys,
      logger: createLogger('silent'),
      port: 0,
      origins: ['http://localhost:8233'],
      token,
    });
    try {
      // The JSON output keeps payload data base64: decode every data field to search it.
      const show = async (...extra: string[]) => {
        const args = [
          'workflow',
          'show',
          '--workflow-id',
          workflowId,
          '--address',
          process.env.TEMPORAL_ADDRESS!,
          '--output',
          'json',
          ...extra,
        ];
        const { stdout } = await promisify(execFile)(temporalCli(env()), args, { maxBuffer: 64 * 1024 * 1024 });
        return [
          stdout,
          ...[...stdout.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)].map((m) =>
            Buffer.from(m[1]!, 'base64').toString('utf8'),
          ),
        ].join('\n');
      };
      const decoded = await show('--codec-endpoint', `${server.url}/{namespace}`, '--codec-auth', `Bearer ${token}`);
      // The memo is not part of the history.
      for (const marker of Object.values(MARKERS).filter((m) => m !== MARKERS.memo)) expect(decoded).toContain(marker);
      const sealed = await show();
      for (const marker of Object.values(MARKERS)) expect(sealed).not.toContain(marker);
    } finally {
      await server.close();
    }
  });

  test("a process without the key still lists runs through Lifeboat's listRuns, where the SDK's list fails on the sealed memo", async () => {
    const plain = await client();
    const query = `WorkflowId = '${workflowId}'`;
    const listed = [];
    for await (const run of listRuns(plain, query)) listed.push(run);
    expect(listed.map((r) => [r.workflowId, r.status, stringAttribute(r, DatabaseAttr)])).toEqual([
      // The drill fails (its hostile check), so it is a Failed workflow.
      [workflowId, 'WORKFLOW_EXECUTION_STATUS_FAILED', 'orders'],
    ]);
    // Why listRuns exists: one sealed run breaks every listing that reaches it through the SDK.
    await expect(
      (async () => {
        for await (const run of plain.workflow.list({ query })) void run;
      })(),
    ).rejects.toThrow(/binary\/encrypted/);
  });

  test('the worker logs hold no marker and no password, and the report no password', () => {
    expect(logs.text).toContain('worker ready');
    for (const marker of [...Object.values(MARKERS), ...regionPasswords()]) expect(logs.text).not.toContain(marker);
    for (const password of regionPasswords()) expect(JSON.stringify(report)).not.toContain(password);
  });
});

describe('encrypted payloads: failure messages', () => {
  // An error message can quote what it failed on (a database error quotes the row). Here an
  // activity fails on a database that does not exist, its name carrying a marker, and a runbook
  // fails on input whose bad value carries another (a workflow-side failure: the bundled converter).
  const missing = `lbmark_missing_${tag}`;
  const badMode = `lbmark-mode-${tag}`;
  let raw: temporal.api.history.v1.IHistory;
  let rawFailover: temporal.api.history.v1.IHistory;
  let outcome: string;
  let failoverError: string;

  beforeAll(async () => {
    const dataConverter = lifeboatDataConverter(keys)!;
    const worker = await startWorker({ dataConverter });
    try {
      const sealed = await client(dataConverter);
      const base = demoDrillInput();
      const handle = await sealed.workflow.start('drill', {
        taskQueue: RUNBOOK_TASK_QUEUE,
        workflowId: `test/encrypted-failure/${tag}`,
        args: [{ ...base, primary: { ...base.primary, database: missing } }],
      });
      outcome = await handle.result().then(
        (r) => `completed ${(r as RunbookReport).outcome}: ${(r as RunbookReport).reason ?? ''}`,
        (err: Error & { cause?: Error }) => `failed: ${err.cause?.message ?? err.message}`,
      );
      raw = await (await client()).workflow.getHandle(`test/encrypted-failure/${tag}`).fetchHistory();
      const failover = await sealed.workflow.start('failover', {
        taskQueue: RUNBOOK_TASK_QUEUE,
        workflowId: `test/encrypted-failover/${tag}`,
        args: [
          {
            database: 'orders',
            replicaSet: DEMO_SET,
            mode: badMode,
            approval: { preApproved: true, timeoutSeconds: 60 },
          },
        ],
      });
      failoverError = await failover.result().then(
        () => 'completed',
        (err: Error & { cause?: Error }) => `failed: ${err.cause?.message ?? err.message}`,
      );
      rawFailover = await (await client()).workflow.getHandle(`test/encrypted-failover/${tag}`).fetchHistory();
    } finally {
      await worker.stop();
    }
  });

  test('the client, holding the key, reads the real messages', () => {
    expect(outcome).toContain(missing);
    expect(failoverError).toContain(badMode);
  });

  test.each([
    ['an activity failure', () => raw, () => missing],
    ['a workflow failure', () => rawFailover, () => badMode],
  ])(
    '%s: the raw history has its message and stack trace encrypted; the key reveals them',
    async (_what, history, marker) => {
      const failures = (history().events ?? []).flatMap((e) =>
        [
          e.activityTaskFailedEventAttributes?.failure,
          e.workflowExecutionFailedEventAttributes?.failure,
          e.activityTaskStartedEventAttributes?.lastFailure,
        ].filter((f) => f),
      );
      expect(failures.length).toBeGreaterThan(0);
      for (const failure of failures) {
        expect(failure!.message).toBe('Encoded failure');
        expect(encodingOf(failure!.encodedAttributes!)).toBe('binary/encrypted');
      }
      expect(historyToJSON(history())).not.toContain(marker());
      expect(historyText(history())).not.toContain(marker());
      expect(historyText(await codec.decode(payloadsOf(history()).map((p) => p.payload)))).toContain(marker());
    },
  );
});
