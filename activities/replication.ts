// Failover and failback activities: one side effect each, idempotent, acting on one node of a
// replication set through its provider. The runbooks (workflows/failover.ts, failback.ts) order them.
import {
  ErrorType,
  type Canary,
  type CheckResult,
  type NodeRef,
  type ReplicaSetSpec,
  type SqlCheck,
  type TopologyView,
} from '../workflows/types';
import { wire, type ActivityDeps } from './deps';
import type { LedgerEntry } from './canary-ledger';
import { isVerdict, verdict } from './errors';
import { newestCanary, withClient, writeCanary } from './pg/sql';
import { runChecksWithoutSuperuser } from './pg/roles';
import { STALLED_AFTER_MS } from './pg/replication';
import { drillRunsQuery, listRuns } from './visibility';
import type { NodeStatus } from './providers/provider';
import { NOT_RUNNING } from './providers/provider-base';

export function createReplicationActivities(deps: ActivityDeps) {
  const { activity, provider, temporal } = wire(deps);
  const forSet = (set: ReplicaSetSpec) => provider(set.home);

  return {
    readTopology: activity('readTopology', async ({ set }: { set: ReplicaSetSpec }): Promise<TopologyView> =>
      forSet(set).topology(set),
    ),

    /** Both nodes' roles and the standby's lag, for preflight and for `lifeboat status`. */
    checkReplication: activity(
      'checkReplication',
      async ({ set, primary, standby }: { set: ReplicaSetSpec; primary: NodeRef; standby: NodeRef }) => {
        const p = forSet(set);
        // A node whose region is dark (its platform API unreachable) is "unreachable", not a failed
        // preflight: an unplanned failover exists for exactly that case.
        const statusOf = (node: NodeRef) =>
          p.nodeStatus(node).catch((err: Error): NodeStatus => {
            if (isVerdict(err)) throw err;
            return { ...NOT_RUNNING, detail: `unreachable: ${err.message}` };
          });
        const [primaryStatus, standbyStatus] = await Promise.all([statusOf(primary), statusOf(standby)]);
        const lag =
          primaryStatus.reachable && standbyStatus.reachable
            ? await p.replicationLag(primary, standby).catch(() => null)
            : null;
        return { primary: primaryStatus, standby: standbyStatus, lag };
      },
    ),

    /** A canary row written on one node (the primary at a runbook's start, the new primary in smoke tests). */
    writeCanaryOnNode: activity(
      'writeCanaryOnNode',
      async ({
        set,
        node,
        database,
        token,
      }: {
        set: ReplicaSetSpec;
        node: NodeRef;
        database: string;
        token: string;
      }): Promise<Canary> => withClient(await forSet(set).connectNode(node, database), (c) => writeCanary(c, token)),
    ),

    fenceNode: activity(
      'fenceNode',
      async ({ set, node, mode }: { set: ReplicaSetSpec; node: NodeRef; mode: 'planned' | 'unplanned' }) =>
        forSet(set).fence(node, mode),
    ),

    unfenceNode: activity('unfenceNode', async ({ set, node }: { set: ReplicaSetSpec; node: NodeRef }) => {
      await forSet(set).unfence(node);
      return { existed: true };
    }),

    waitForReplay: activity(
      'waitForReplay',
      async ({ set, node, lsn }: { set: ReplicaSetSpec; node: NodeRef; lsn: string }, io) => ({
        replayLsn: await forSet(set).waitForReplay(node, lsn, io),
      }),
    ),

    promoteNode: activity(
      'promoteNode',
      async ({ set, node, mode }: { set: ReplicaSetSpec; node: NodeRef; mode?: 'planned' | 'unplanned' }, io) =>
        forSet(set).promote(node, io, mode),
    ),

    /** Moves the traffic pointer: the topology record clients resolve the primary from. */
    repointTraffic: activity(
      'repointTraffic',
      async ({
        set,
        next,
        expectedEpoch,
        by,
      }: {
        set: ReplicaSetSpec;
        next: Pick<TopologyView, 'primary' | 'standby' | 'fenced'>;
        expectedEpoch: number;
        by: string;
      }) => forSet(set).repoint(set, next, expectedEpoch, by),
    ),

    /** A zonal failover (regional HA) of the primary, where the platform has one. */
    haFailover: activity('haFailover', async ({ set, node }: { set: ReplicaSetSpec; node: NodeRef }, io) => {
      const p = forSet(set);
      if (!p.haFailover) {
        throw verdict(
          ErrorType.InvalidInput,
          `zonal failover needs regional HA, which the ${p.kind} provider does not have in this version (Cloud SQL with availabilityType REGIONAL does)`,
        );
      }
      return p.haFailover(node, io);
    }),

    /** The standby it returns is the one to record: on RDS a new replica, not `node` itself. */
    rebuildAsStandby: activity(
      'rebuildAsStandby',
      async (
        {
          set,
          node,
          primary,
          discardDivergent,
        }: { set: ReplicaSetSpec; node: NodeRef; primary: NodeRef; discardDivergent?: { by: string } },
        io,
      ) => forSet(set).rebuildAsStandby(node, primary, io, set, discardDivergent ? { discardDivergent } : {}),
    ),

    /** Polls until the standby has replayed everything the primary has (heartbeats while waiting). */
    waitUntilCaughtUp: activity(
      'waitUntilCaughtUp',
      async ({ set, primary, standby }: { set: ReplicaSetSpec; primary: NodeRef; standby: NodeRef }, io) => {
        const p = forSet(set);
        let streamingAt = Date.now();
        for (;;) {
          const lag = await p.replicationLag(primary, standby);
          if (lag.streaming && lag.lagBytes === 0) return lag;
          if (lag.streaming) streamingAt = Date.now();
          else if (Date.now() - streamingAt > STALLED_AFTER_MS) {
            throw verdict(
              ErrorType.StandbyNotReady,
              `${standby.region}/${standby.name} has not streamed from ${primary.region}/${primary.name} for ${STALLED_AFTER_MS / 1000}s; run \`lifeboat failback\` again to rebuild it`,
            );
          }
          io.heartbeat({ phase: 'catching up', lagBytes: lag.lagBytes, streaming: lag.streaming });
          if (io.signal.aborted) throw io.signal.reason ?? new Error('cancelled');
          await new Promise((r) => setTimeout(r, 200));
        }
      },
    ),

    /** On the new primary: a write (a canary) must succeed, the plan's checks must pass. */
    smokeTest: activity(
      'smokeTest',
      async ({
        set,
        node,
        database,
        checks,
        token,
      }: {
        set: ReplicaSetSpec;
        node: NodeRef;
        database: string;
        checks: SqlCheck[];
        token: string;
      }) => {
        const conn = await forSet(set).connectNode(node, database);
        return withClient(conn, async (c) => {
          const results: CheckResult[] = [];
          try {
            const canary = await writeCanary(c, token);
            results.push({ name: 'write on the new primary', ok: true, detail: `canary #${canary.id} committed` });
          } catch (err) {
            results.push({ name: 'write on the new primary', ok: false, detail: (err as Error).message });
          }
          // The plan's SQL runs as a login without superuser, made for it on the new primary.
          results.push(...(await runChecksWithoutSuperuser(conn, checks)));
          return { checks: results };
        });
      },
    ),

    /** The canaries a node holds: the newest, and which of `ids` are missing. */
    /**
     * Which of `canaries` the node lacks, and its newest canary at or before `before`. A canary is its id
     * and its commit time together: after an unplanned failover the new primary's sequence can hand
     * out again ids that the lost writes had, and its own new writes must not count as old history.
     */
    findCanaries: activity(
      'findCanaries',
      async ({
        set,
        node,
        database,
        canaries,
        before,
      }: {
        set: ReplicaSetSpec;
        node: NodeRef;
        database: string;
        canaries: Canary[];
        before?: string;
      }) => {
        const conn = await forSet(set).connectNode(node, database);
        return withClient(conn, async (c) => {
          const newest = await newestCanary(c, before);
          const ids = canaries.map((e) => e.id);
          if (!ids.length || !newest) return { newest, missing: newest ? [] : ids };
          const { rows } = await c.query<{ id: string; written_at: Date }>(
            'select id, written_at from lifeboat.canary where id = any($1::bigint[])',
            [ids],
          );
          const present = new Set(rows.map((r) => `${r.id}@${r.written_at.toISOString()}`));
          return { newest, missing: canaries.filter((e) => !present.has(`${e.id}@${e.writtenAt}`)).map((e) => e.id) };
        });
      },
    ),

    /** What the canary writer had acknowledged: the newest before a time, or every one of a term. */
    acknowledgedCanaries: activity(
      'acknowledgedCanaries',
      async ({
        database,
        before,
        sinceEpoch,
      }: {
        database: string;
        before: string;
        sinceEpoch?: number;
      }): Promise<{ newest: LedgerEntry | null; term: LedgerEntry[] }> => {
        const newest = deps.ledger.newestBefore(database, before);
        const term =
          sinceEpoch === undefined
            ? []
            : deps.ledger.entries(database).filter((e) => e.epoch >= sinceEpoch && e.writtenAt <= before);
        return { newest, term };
      },
    ),

    /** A failover pre-empts drills of its database: they are cancelled (and tear down after themselves). */
    cancelDrills: activity('cancelDrills', async ({ database }: { database: string }) => {
      const client = await temporal('cancel drills with');
      const cancelled: string[] = [];
      for await (const run of listRuns(client, drillRunsQuery(database, 'Running'))) {
        await client.workflow.getHandle(run.workflowId, run.runId).cancel();
        cancelled.push(run.workflowId);
      }
      return { cancelled };
    }),
  };
}
