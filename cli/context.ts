// What every command gets, and the helpers several of them share.
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { LifeboatEnv } from '../worker/env';
import { loadPlanFile, type LoadedPlan } from '../worker/plan';
import type { Args } from './args';

export interface CommandContext {
  env: LifeboatEnv;
  args: Args;
  /** The argument after the command: a database, a workflow ID or a subcommand. */
  sub: string | undefined;
  /** A line on stderr: progress and summaries; stdout carries only the result. */
  say: (line: string) => void;
}

/** One command: its exit code (0 succeeded, 1 ran and failed, 2 bad input). */
export type Command = (ctx: CommandContext) => Promise<number>;

/** The plan of -f, or the built-in demo plan. */
export function loadPlan(env: LifeboatEnv, file?: string): LoadedPlan {
  return loadPlanFile(file ?? join(env.projectRoot, 'scripts', 'dev', 'demo-plan.yaml'));
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Who started a run, for the TriggeredBy search attribute and approvals. */
export function whoAmI(): string {
  return process.env.LIFEBOAT_TRIGGERED_BY ?? `cli:${userInfo().username}`;
}
