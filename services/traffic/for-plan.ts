// `lifeboat traffic`: the traffic side of every replication set in a plan, until SIGINT/SIGTERM.
// Proxy ports are stable: the set of the plan's n-th standby-protected primary region listens on
// the stack's PostgreSQL port base - 1 - n (25430 for the demo's local-a; see stackPorts).
import type { LifeboatEnv } from '../../worker/env';
import { createLogger } from '../../worker/logger';
import type { LoadedPlan } from '../../worker/plan';
import { stackPorts } from '../../scripts/dev/stack';
import { runTraffic, type TrafficSet } from './main';

export function trafficSets(plan: LoadedPlan, pgBase: number): TrafficSet[] {
  const sets = new Map<string, TrafficSet>();
  for (const db of Object.values(plan.plan.databases)) {
    if (!db.dr.standby) continue;
    const set = db.primary.region;
    const entry = sets.get(set) ?? {
      set,
      port: pgBase - 1 - sets.size,
      databases: [],
      credentialsFrom: { region: set, name: 'server' },
    };
    if (!entry.databases.includes(db.primary.database)) entry.databases.push(db.primary.database);
    sets.set(set, entry);
  }
  return [...sets.values()];
}

export async function runTrafficForPlan(env: LifeboatEnv, plan: LoadedPlan): Promise<void> {
  const logger = createLogger(env.logLevel);
  const sets = trafficSets(plan, stackPorts(process.env, env).pgBase);
  const traffic = await runTraffic({ env, sets, logger });
  logger.info({ sets: sets.map((s) => ({ set: s.set, port: s.port, databases: s.databases })) }, 'traffic ready');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await traffic.close();
}
