// What every command gets, and the helpers several of them share.
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { LifeboatEnv } from '../worker/env';
import type { TemporalTarget } from '../worker/temporal';
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

/**
 * A client of the Temporal server, or null once stderr says it cannot be reached and `then`: what
 * to do about it, or what that means for the command.
 */
export async function connectTemporal({
  target,
  then = 'start the local stack with `lifeboat dev up`, or set TEMPORAL_ADDRESS',
}: { target?: TemporalTarget; then?: string } = {}): Promise<Client | null> {
  // The Temporal client loads here, not with this module: plan validate shares it and never connects.
  const { connectClient, temporalTarget } = await import('../worker/temporal');
  target ??= temporalTarget();
  try {
    return await connectClient(target);
  } catch (err) {
    process.stderr.write(
      `cannot reach Temporal at ${target.connectionOptions.address}: ${(err as Error).message}\n${then}\n`,
    );
    return null;
  }
}

/** Who started a run, for the TriggeredBy search attribute and approvals. */
export function whoAmI(): string {
  return process.env.LIFEBOAT_TRIGGERED_BY ?? `cli:${userInfo().username}`;
}
