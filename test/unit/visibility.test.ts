// One way to put a value into a visibility query (activities/visibility.ts): quotes and backslashes
// escaped as the server's list-filter tokenizer reads them. Checked as text, then against the test
// Temporal server: a run whose database name holds a quote is found by that name, and a name ending
// in a backslash still makes a query the server accepts.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { drillRunsQuery, listRuns, visibilityString } from '../../activities/visibility';
import { DatabaseAttr, RunbookAttr } from '../../workflows/search-attributes';
import { client } from '../support/stack';

describe('visibilityString', () => {
  test('quotes a plain value as it is', () => {
    expect(visibilityString('orders')).toBe("'orders'");
  });

  test('escapes a quote and a backslash with a backslash', () => {
    expect(visibilityString("o'brien")).toBe("'o\\'brien'");
    expect(visibilityString('a\\b')).toBe("'a\\\\b'");
    // A trailing backslash must not escape the closing quote.
    expect(visibilityString('x\\')).toBe("'x\\\\'");
    expect(visibilityString("\\'")).toBe("'\\\\\\''");
  });

  test('the drill query of a database', () => {
    expect(drillRunsQuery('orders', 'Finished')).toBe(
      "LifeboatDatabase = 'orders' AND LifeboatRunbook = 'drill' AND (ExecutionStatus = 'Completed' OR (ExecutionStatus = 'Failed' AND LifeboatOutcome = 'failed'))",
    );
    expect(drillRunsQuery("o'r", 'Running', '2026-01-01T00:00:00.000Z')).toBe(
      "LifeboatDatabase = 'o\\'r' AND LifeboatRunbook = 'drill' AND ExecutionStatus = 'Running' AND CloseTime >= '2026-01-01T00:00:00.000Z'",
    );
  });
});

describe('visibilityString against the Temporal server', () => {
  let c: Client;
  const started: WorkflowHandle[] = [];
  beforeAll(async () => {
    c = await client();
  });
  afterAll(async () => {
    for (const handle of started) await handle.terminate('test cleanup').catch(() => undefined);
    await c?.connection.close();
  });

  test("a run of database o'brien is found by that name; a name ending in a backslash still makes a well-formed query", async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    const name = `o'brien-${tag}`;
    // A drill on a task queue no worker polls: it stays Running, its search attributes as given.
    const handle = await c.workflow.start('drill', {
      taskQueue: `nobody-polls-${tag}`,
      workflowId: `visibility-escape-${tag}`,
      args: [],
      typedSearchAttributes: [
        { key: DatabaseAttr, value: name },
        { key: RunbookAttr, value: 'drill' },
      ],
    });
    started.push(handle);
    const found = async (database: string) => {
      const ids: string[] = [];
      for await (const run of listRuns(c, drillRunsQuery(database, 'Running'))) ids.push(run.workflowId);
      return ids;
    };
    const deadline = Date.now() + 30_000;
    while (!(await found(name)).includes(handle.workflowId)) {
      if (Date.now() > deadline)
        throw new Error(`the run of ${JSON.stringify(name)} never showed in visibility under that name`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await found(`obrien-${tag}`)).toEqual([]);
    // Unescaped, the trailing backslash would escape the closing quote: "malformed SQL query". (What
    // it then matches is not asserted: the dev server's SQLite store compares a backslash re-escaped.)
    await expect(found(`x-${tag}\\`)).resolves.toEqual([]);
  });
});
