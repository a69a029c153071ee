// What `lifeboat --help` prints, and the error that prints it after a message (exit 2).
export const USAGE = `usage:
  lifeboat dev up [-f plan] | down | status [--json]   local stack: Temporal dev server, local PG regions, worker (serving the plan)
  lifeboat worker [-f plan] [--region name]...    run a worker (one task queue per region; --region: only those)
  lifeboat plan validate [-f plan]
  lifeboat drill <db> [-f plan] [--from-latest-backup] [--json]
  lifeboat drill --all [-f plan] [--concurrency N] [--json]   every database, as child workflows, N at a time
  lifeboat backup <db> [-f plan] [--json]
  lifeboat backups list <db> [-f plan] [--json]
  lifeboat readiness <db> [-f plan] [--json]       is it recoverable now? backup age, DR copy, standby, drill recency
  lifeboat failover <db> [-f plan] [--planned | --unplanned | --zonal] [--yes] [--json]
  lifeboat approve <workflow-id> [-f plan] [--reason text]
  lifeboat failback <db> [-f plan] [--yes] [--discard-divergent] [--json]
  lifeboat status <db> [-f plan] [--json]
  lifeboat sweep [-f plan] [--json]               delete scratch instances of drills no longer running (terminated ones leave theirs)
  lifeboat schedule apply [-f plan] [--json]       make Temporal Schedules match the plan's schedule: blocks
  lifeboat schedule list [--json]  /  schedule pause | unpause | trigger <schedule-id> [--reason text]
  lifeboat traffic [-f plan]                      the traffic pointer (stable proxy ports) and canary writer
  lifeboat codec-server [--port N] [--host addr] [--origin URL]...   decrypts payloads for the Temporal UI and CLI
  lifeboat report <workflow-id> [--html out.html] [--md out.md]      evidence report of a finished run (Markdown on stdout by default)
  lifeboat report <db> --history [--last N] [--html out.html] [--md out.md]   RTO and RPO of the last N (30) drills against the objectives
Without -f, the built-in demo plan (two local regions, the seeded "orders" database) is used.`;

/** Bad usage: the message (if any), then the usage, on stderr; exit 2. */
export class UsageError extends Error {}
