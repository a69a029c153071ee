// `lifeboat status <db>`: where the database's primary is, how far its standby trails, and the last
// drill and the last failover or failback with their outcome, RTO and RPO.
import type { LifeboatEnv } from '../worker/env';
import { buildProviders } from '../worker/main';
import { databaseOf, planRegions, recoversByRestore, replicaSetOf, type LoadedPlan } from '../worker/plan';
import { recordNameOf } from '../activities/cross-cloud';
import { TopologyStore } from '../activities/topology';
import { connectClient } from '../worker/temporal';
import { listRuns, numberAttribute, stringAttribute, visibilityString } from '../activities/visibility';
import { OutcomeAttr, RpoSecondsAttr, RtoSecondsAttr, RunbookAttr } from '../workflows/search-attributes';
import type { NodeRef } from '../workflows/types';
import { formatSeconds } from './evidence/terminal';

interface LastRun {
  workflowId: string;
  runbook: string;
  status: string;
  outcome: string | null;
  startedAt: string;
  rtoSeconds: number | null;
  rpoSeconds: number | null;
}

export async function status(env: LifeboatEnv, plan: LoadedPlan, database: string, json: boolean): Promise<number> {
  const db = databaseOf(plan, database);
  const home = planRegions(plan).find((r) => r.name === db.primary.region)!;
  const provider = buildProviders(env)[home.provider];
  const nodes: Array<{
    node: string;
    role: string;
    detail: string;
    writable: boolean;
    lagBytes: number | null;
    lagSeconds: number | null;
  }> = [];
  let topologyNote: string | null = null;
  if (db.dr.standby) {
    const set = replicaSetOf(plan, database);
    const topology = await provider.topology(set).catch((err: Error) => {
      topologyNote = err.message;
      return null;
    });
    if (topology) {
      const add = async (node: NodeRef | null, role: string, primary: NodeRef | null) => {
        if (!node) return;
        const s = await provider.nodeStatus(node);
        const lag =
          primary && role === 'standby' && s.reachable
            ? await provider.replicationLag(primary, node).catch(() => null)
            : null;
        // A fenced node that takes writes is a fence violation: the worker of its region fences it again.
        const detail = role === 'fenced' && s.writable ? `FENCE VIOLATION: ${s.detail} (listed as fenced)` : s.detail;
        nodes.push({
          node: `${node.region}/${node.name}`,
          role,
          detail,
          writable: s.writable,
          lagBytes: lag?.lagBytes ?? null,
          lagSeconds: lag?.lagSeconds ?? null,
        });
      };
      await add(topology.primary, 'primary', null);
      await add(topology.standby, 'standby', topology.primary);
      for (const f of topology.fenced) await add(f, 'fenced', null);
      topologyNote = `topology epoch ${topology.epoch}, updated ${topology.updatedAt} by ${topology.updatedBy}`;
    }
  } else if (recoversByRestore(plan, database)) {
    // Across clouds there is no standby: the record says which side serves the database now.
    const record = new TopologyStore(env.home).read(recordNameOf(database));
    const serving = record?.primary
      ? `${record.primary.region}/${record.primary.name}`
      : `${db.primary.region}/${db.primary.instance ?? 'server'}`;
    nodes.push({
      node: serving,
      role: 'primary',
      detail: `${record ? `serving since ${record.updatedAt}` : 'home (never moved)'}; not probed`,
      writable: true,
      lagBytes: null,
      lagSeconds: null,
    });
    for (const f of record?.fenced ?? [])
      nodes.push({
        node: `${f.region}/${f.name}`,
        role: 'fenced',
        detail: 'read-only since the move',
        writable: false,
        lagBytes: null,
        lagSeconds: null,
      });
    topologyNote = `cross-cloud: recovers from portable backups into ${db.dr.region} (no standby; RPO is the newest copy's age)`;
  } else {
    // The primary's server: the local region's own, or the RDS instance the plan names.
    const node: NodeRef =
      home.provider === 'local'
        ? { region: db.primary.region, name: 'server' }
        : {
            region: db.primary.region,
            name: db.primary.instance ?? db.primary.cluster ?? '',
            // A cloud node's location: its AWS region, or its Google Cloud project.
            location: String(home.settings?.[home.provider === 'gcp' ? 'project' : 'awsRegion']),
            ...(db.primary.credentials && { credentials: db.primary.credentials }),
          };
    const s = db.primary.cluster
      ? { detail: 'Aurora cluster: not probed (status needs dr.globalCluster)', writable: false }
      : await provider.nodeStatus(node);
    nodes.push({
      node: `${node.region}/${node.name}`,
      role: 'primary',
      detail: s.detail,
      writable: s.writable,
      lagBytes: null,
      lagSeconds: null,
    });
    topologyNote = 'no standby (dr.standby is false): backups and drills only';
  }

  let lastDrill: LastRun | null = null;
  let lastFailover: LastRun | null = null;
  let temporalNote: string | null = null;
  try {
    const client = await connectClient();
    const find = async (runbooks: string[]): Promise<LastRun | null> => {
      const query = `LifeboatDatabase = ${visibilityString(database)} AND (${runbooks.map((r) => `LifeboatRunbook = '${r}'`).join(' OR ')})`;
      for await (const run of listRuns(client, query, { pageSize: 1, limit: 1 })) {
        return {
          workflowId: run.workflowId,
          runbook: stringAttribute(run, RunbookAttr) ?? '?',
          status: run.status.replace('WORKFLOW_EXECUTION_STATUS_', ''),
          outcome: stringAttribute(run, OutcomeAttr) ?? null,
          startedAt: run.startTime?.toISOString() ?? '?',
          rtoSeconds: numberAttribute(run, RtoSecondsAttr) ?? null,
          rpoSeconds: numberAttribute(run, RpoSecondsAttr) ?? null,
        };
      }
      return null;
    };
    lastDrill = await find(['drill']);
    lastFailover = await find(['failover', 'failback']);
  } catch (err) {
    temporalNote = `Temporal not reachable: ${(err as Error).message}`;
  }

  const writablePrimaries = nodes.filter((n) => n.writable).length;
  if (json) {
    process.stdout.write(
      JSON.stringify(
        { database, nodes, topology: topologyNote, writablePrimaries, lastDrill, lastFailover, temporal: temporalNote },
        null,
        2,
      ) + '\n',
    );
  } else {
    const out: string[] = [`${database}: ${topologyNote ?? ''}`];
    for (const n of nodes) {
      const lag =
        n.role === 'standby'
          ? `  lag ${n.lagBytes ?? '?'} bytes, ${n.lagSeconds === null ? '?' : formatSeconds(n.lagSeconds)}`
          : '';
      out.push(`  ${n.role.padEnd(8)} ${n.node.padEnd(32)} ${n.detail}${lag}`);
    }
    if (writablePrimaries > 1) out.push(`  DANGER: ${writablePrimaries} writable primaries`);
    const line = (what: string, r: LastRun | null) =>
      r
        ? `  last ${what.padEnd(9)} ${r.startedAt}  ${r.runbook} ${r.outcome ?? r.status.toLowerCase()}  RTO ${formatSeconds(r.rtoSeconds)}  RPO ${formatSeconds(r.rpoSeconds)}  ${r.workflowId}`
        : `  last ${what.padEnd(9)} none`;
    out.push(line('drill', lastDrill), line('failover', lastFailover));
    if (temporalNote) out.push(`  ${temporalNote}`);
    process.stdout.write(out.join('\n') + '\n');
  }
  return writablePrimaries > 1 ? 1 : 0;
}
