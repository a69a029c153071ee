// `lifeboat report`: an evidence report of one finished run, or the drill history of a database,
// as a self-contained HTML file, Markdown, or both. Exit codes: 0 written; 2 nothing to report
// (unknown workflow, not a runbook, still running) or bad input; 1 Temporal cannot be reached.
import { writeFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import type { LifeboatEnv } from '../../worker/env';
import { connectClient, temporalTarget } from '../../worker/temporal';
import { headline } from './facts';
import { drillHistoryQuery, fetchDrillHistory, fetchRun, NoReport, type Where } from './fetch';
import { historyHtml, runHtml } from './html';
import { historyMarkdown, runMarkdown } from './markdown';

export interface ReportOptions {
  /** A workflow ID, or with `history` a database name. */
  subject: string;
  history: boolean;
  last: number;
  html?: string;
  md?: string;
}

export const DEFAULT_LAST = 30;

export async function report(env: LifeboatEnv, options: ReportOptions): Promise<number> {
  const say = (line: string) => process.stderr.write(line + '\n');
  try {
    if (options.history) drillHistoryQuery(options.subject); // bad input is refused before Temporal is called
  } catch (err) {
    if (err instanceof NoReport) return (say(`lifeboat: ${err.message}`), 2);
    throw err;
  }
  const target = temporalTarget();
  let client: Client;
  try {
    client = await connectClient(target);
  } catch (err) {
    say(
      `cannot reach Temporal at ${target.connectionOptions.address}: ${(err as Error).message}\nstart the local stack with \`lifeboat dev up\`, or set TEMPORAL_ADDRESS`,
    );
    return 1;
  }
  const where: Where = { client, target, uiBase: env.uiUrl };
  const generatedAt = new Date().toISOString();
  let outputs: { html: () => string; md: () => string; what: string };
  try {
    if (options.history) {
      const history = await fetchDrillHistory(where, options.subject, options.last);
      for (const id of history.unreadable)
        say(`warning: ${id} completed, but its result is not a Lifeboat report; left out`);
      const ctx = { database: options.subject, last: options.last, namespace: target.namespace, generatedAt };
      outputs = {
        html: () => historyHtml(history.runs, ctx),
        md: () => historyMarkdown(history.runs, ctx),
        what: `drill history of ${options.subject}: ${history.runs.length} drill(s)`,
      };
    } else {
      const run = await fetchRun(where, options.subject);
      const ctx = { uiLink: run.link, namespace: target.namespace, generatedAt };
      outputs = {
        html: () => runHtml(run.report, ctx),
        md: () => runMarkdown(run.report, ctx),
        what: headline(run.report),
      };
    }
  } catch (err) {
    if (err instanceof NoReport) return (say(`lifeboat: ${err.message}`), 2);
    throw err;
  } finally {
    await client.connection.close();
  }
  if (!options.html && !options.md) {
    process.stdout.write(outputs.md());
    return 0;
  }
  for (const [path, render] of [
    [options.html, outputs.html],
    [options.md, outputs.md],
  ] as const) {
    if (!path) continue;
    try {
      writeFileSync(path, render());
    } catch (err) {
      say(`lifeboat: cannot write the report to ${path}: ${(err as Error).message}`);
      return 2;
    }
    say(`wrote ${path} (${outputs.what})`);
  }
  return 0;
}
