// Plain data shared by the runbooks, the activities and the command line.
// Nothing here may import runtime code: workflows/ is bundled into the deterministic sandbox.

export type ProviderKind = 'local' | 'aws' | 'gcp';

/** A region as the plan names it. Settings are non-secret, provider-specific knobs. */
export interface RegionSpec {
  name: string;
  provider: ProviderKind;
  settings?: Record<string, string | number | boolean>;
  /** Where this region keeps portable (pg_dump) backups: what crosses clouds. */
  store?: StoreSpec;
}

/**
 * Object storage for portable backups: a bucket and prefix, or a directory. Only names travel:
 * the worker's own credentials (AWS chain, Application Default Credentials) reach the bucket.
 */
export type StoreSpec =
  | { kind: 's3'; bucket: string; prefix: string; awsRegion: string }
  | { kind: 'gcs'; bucket: string; prefix: string }
  | { kind: 'dir'; path: string };

/**
 * Where a worker finds a password: `env:NAME` (an environment variable of the worker) or
 * `file:/path`. Only this reference travels through workflow history; the secret never does.
 */
export interface CredentialsRef {
  user: string;
  password: string;
}

/** One database in one region. Credentials are never part of this: providers resolve them. */
export interface DatabaseTarget {
  region: RegionSpec;
  database: string;
  /** The platform's name for the server holding it (an RDS DB instance identifier); local needs none. */
  instance?: string;
  /** Aurora: the DB cluster identifier instead of an instance. */
  cluster?: string;
  credentials?: CredentialsRef;
}

export interface Objectives {
  rpoSeconds: number;
  rtoSeconds: number;
}

/** A plan check passes when its query returns one row whose first column is true. */
export interface SqlCheck {
  name: string;
  sql: string;
}

export interface DrillInput {
  /** The database's name in the plan (also the business key in workflow IDs). */
  database: string;
  primary: DatabaseTarget;
  dr: RegionSpec;
  objectives: Objectives;
  checks: SqlCheck[];
  /** Restore the newest existing copy in the DR region instead of taking a new backup. */
  fromLatestBackup: boolean;
  /**
   * Portable backups (pg_dump + manifest in the regions' object stores) instead of the platform's
   * own: set when the DR region is on another provider, whose platform cannot read this one's backups.
   */
  portable?: boolean;
  /** Portable drills into a cloud region: the admin login the scratch instance is made with. */
  drCredentials?: CredentialsRef;
  /** sha256 of the plan file that produced this input, so the audit trail names the exact plan. */
  planDigest: string;
  triggeredBy: string;
}

export interface BackupInput {
  database: string;
  primary: DatabaseTarget;
  dr: RegionSpec;
  /** How many Lifeboat-made backups to keep per region; older ones are pruned. */
  keep: number;
  /** As for DrillInput: portable backups in the regions' object stores. */
  portable?: boolean;
  planDigest: string;
  triggeredBy: string;
}

/** A node of a replication set: one PostgreSQL server, by the region it runs in and its name there. */
export interface NodeRef {
  region: string;
  name: string;
  /** Cloud nodes: the platform's region (an AWS region code) the server lives in. */
  location?: string;
  /** Cloud nodes: who Lifeboat connects as, by reference. */
  credentials?: CredentialsRef;
  /** Aurora: the node is a DB cluster, a member of this global database. */
  globalCluster?: string;
}

/**
 * A replication set: the home region's server and its streaming standby in the DR region. Named
 * after its home region; every database the plan puts on that server moves with it.
 */
export interface ReplicaSetSpec {
  set: string;
  home: RegionSpec;
  dr: RegionSpec;
  /** Cloud sets: the platform's names of the home primary and of its cross-region replica. */
  nodes?: { home: string; dr: string };
  credentials?: CredentialsRef;
  /** Aurora: the global database whose member clusters are the nodes. */
  globalCluster?: string;
}

export interface TopologyView {
  set: string;
  primary: NodeRef | null;
  standby: NodeRef | null;
  fenced: NodeRef[];
  epoch: number;
  /** Epoch at which the current primary took over: canaries written since belong to its term. */
  primarySinceEpoch: number;
  updatedAt: string;
  updatedBy: string;
}

export interface Approval {
  database: string;
  /** sha256 of the plan the approver looked at: a different plan is a stale approval. */
  planDigest: string;
  approvedBy: string;
  reason: string;
}

export interface FailoverInput {
  /** The database's name in the plan (the business key in workflow IDs). */
  database: string;
  /** Its name in PostgreSQL: smoke tests and canaries go there. */
  pgDatabase: string;
  /**
   * planned/unplanned: the standby in the DR region takes over. zonal: the platform's regional HA
   * moves the primary to its standby in another zone of the same region (Cloud SQL); no topology change.
   */
  mode: 'planned' | 'unplanned' | 'zonal';
  replicaSet: ReplicaSetSpec;
  objectives: Objectives;
  checks: SqlCheck[];
  approval: { preApproved: boolean; timeoutSeconds: number };
  planDigest: string;
  triggeredBy: string;
}

export type FailbackInput = Omit<FailoverInput, 'mode'> & {
  /**
   * A former primary that took writes after the fork is rebuilt anyway, a copy of it kept first
   * (`lifeboat failback --discard-divergent`). Without it the failback stops and names the writes.
   */
  discardDivergent?: boolean;
};

/**
 * A failover (or failback) across clouds, where no streaming replication reaches: the database is
 * recovered from a portable backup into `to`. Planned: `from` is fenced and a final backup taken, so
 * nothing is lost. Unplanned: the newest copy already in `to`'s store is restored, and everything
 * written after it is lost (the report says how much, from data).
 */
export interface CrossCloudInput {
  /** The database's name in the plan. */
  database: string;
  /** Its name in PostgreSQL, the same on both sides. */
  pgDatabase: string;
  /** failover: home to DR; failback: DR to home. One runbook, the two ends swapped. */
  direction: 'failover' | 'failback';
  mode: 'planned' | 'unplanned';
  /** Where the database is served now; its region's store holds its portable backups. */
  from: DatabaseTarget;
  /** Where it is recovered into: the DR instance (failover) or the home primary (failback). */
  to: DatabaseTarget;
  objectives: Objectives;
  checks: SqlCheck[];
  approval: { preApproved: boolean; timeoutSeconds: number };
  planDigest: string;
  triggeredBy: string;
}

/**
 * A readiness check of one database: is it still recoverable the way the plan says, right now? Read-only:
 * it lists backups, reads the standby's state and asks Temporal about drills; it creates nothing.
 */
export interface ReadinessInput {
  database: string;
  primary: DatabaseTarget;
  dr: RegionSpec;
  objectives: Objectives;
  /** Backups are portable (in the regions' object stores). */
  portable?: boolean;
  /** The streaming standby the plan keeps in DR, if it keeps one. */
  replicaSet?: ReplicaSetSpec;
  /** A drill of this database must have passed within this long. */
  drillWindowSeconds: number;
  /** How long a region's worker may take to pick up a probe before the region counts as unserved (default 120). */
  regionAnswerSeconds?: number;
  planDigest: string;
  triggeredBy: string;
}

export interface Canary {
  id: number;
  /** ISO-8601, as committed on the server (server clock). */
  writtenAt: string;
}

export interface TableStats {
  /** schema-qualified, e.g. public.orders */
  table: string;
  rows: number;
  /** Order-independent digest of the table's rows (see algorithm). */
  checksum: string;
  /** How checksum was computed (activities/pg/digest.ts); absent in older manifests, which used md5-text. */
  algorithm?: 'hash_record_extended' | 'md5-text' | 'columns-v2';
  /** columns-v2: the columns hashed by their text form (the others as stored). */
  textColumns?: string[];
  /** An unlogged table: pg_dump carries its rows, a physical restore brings it back empty. */
  unlogged?: boolean;
}

/** A sequence's position when the manifest was read. */
export interface SequenceStats {
  /** schema-qualified, e.g. public.orders_id_seq */
  sequence: string;
  /** bigint as text; null when the manifest's login could not read it (see unreadable). */
  lastValue: string | null;
  isCalled: boolean;
  increment: string;
  unreadable?: string;
}

/** The database's large objects: how many, total bytes, and a digest over OID, size and content. */
export interface LargeObjectStats {
  count: number;
  bytes: number;
  checksum: string;
}

export interface BackupManifest {
  formatVersion: 1;
  backupId: string;
  database: string;
  provider: ProviderKind;
  sourceRegion: string;
  createdAt: string;
  /** Workflow that made it: retention only ever touches backups that carry this. */
  createdBy: string;
  /** What the bytes are: a pg_dump custom-format file (local), an RDS DB snapshot (aws), a Cloud SQL backup run (gcp). */
  dumpFormat: 'pg_dump-custom' | 'rds-snapshot' | 'cloudsql-backup-run';
  serverVersion: string;
  serverVersionNum: number;
  sizeBytes: number;
  sha256: string;
  tables: TableStats[];
  newestCanary: Canary | null;
  /** Absent in manifests written before sequences were recorded (they are then not compared). */
  sequences?: SequenceStats[];
  /** Absent in older manifests; `unreadable` when the manifest's login could not read them all. */
  largeObjects?: LargeObjectStats | { unreadable: string };
  /**
   * The roles the database uses (owners, grantees, grantors, their memberships both ways), never a
   * password. Absent in manifests written before Lifeboat restored roles: those restore and verify
   * without them.
   */
  roles?: RoleRecord[];
  /** Per object, its owner and privileges (activities/pg/access.ts). Absent in older manifests. */
  access?: ObjectAccess[];
}

/** A role as the backup's server had it; no password. */
export interface RoleRecord {
  name: string;
  superuser: boolean;
  login: boolean;
  inherit: boolean;
  createdb: boolean;
  createrole: boolean;
  replication: boolean;
  bypassrls: boolean;
  /** -1: no limit. */
  connectionLimit: number;
  /** ISO 8601, 'infinity', or null (no limit). */
  validUntil: string | null;
  /** The roles it is a member of (predefined pg_* roles included), and whether with ADMIN OPTION. */
  memberOf: Array<{ role: string; admin: boolean }>;
}

/**
 * One privilege holder of an object: `privileges` are PostgreSQL's ACL letters in a fixed order
 * (r SELECT, a INSERT, w UPDATE, d DELETE, D TRUNCATE, x REFERENCES, t TRIGGER, X EXECUTE, U USAGE,
 * C CREATE, c CONNECT, T TEMPORARY, ...), each followed by `*` when held WITH GRANT OPTION.
 * `grantee` is a role name, or PUBLIC.
 */
export interface AclEntry {
  grantee: string;
  privileges: string;
  grantor: string;
}

/** Owner and privileges of one object, named without OIDs (a large object by its own OID, which a restore keeps). */
export interface ObjectAccess {
  /** table, view, materialized view, sequence, foreign table, schema, function, procedure, aggregate, type, domain, large object, database, default privileges */
  kind: string;
  /** As PostgreSQL names it with only pg_catalog on the search path: public.orders, public.f(integer). */
  name: string;
  owner: string;
  /** Every privilege, the owner's default ones included (an ACL never set is written out as its default). */
  acl: AclEntry[];
  /** Column privileges, by column name. */
  columns?: Record<string, AclEntry[]>;
  /** Default privileges only: the schema they apply in (null: everywhere), and the kind of object. */
  schema?: string | null;
  objects?: 'tables' | 'sequences' | 'functions' | 'types' | 'schemas';
}

/** Where a backup (or a copy of it) lives. */
export interface BackupRef {
  backupId: string;
  database: string;
  region: string;
  provider: ProviderKind;
  createdAt: string;
  sizeBytes: number;
  sha256: string;
  /** Provider-specific locator: a file path for the local provider, an ARN for AWS, a URL for a portable backup. */
  location: string;
  /** A portable backup: the object store that holds it (its provider is the one it was taken from). */
  store?: StoreSpec;
  /**
   * Its copy to another region hashes the bytes it reads and keeps nothing that differs from the
   * manifest (a local or portable backup): the copy need not wait for the backup's verify.
   */
  copyChecksSource?: boolean;
}

/** An isolated instance that exists only for the length of a drill. */
export interface ScratchInstance {
  name: string;
  region: RegionSpec;
  database: string;
  /** A restored copy keeps the source's roles: the source's credentials reach it. */
  credentials?: CredentialsRef;
  /**
   * Restored from a portable backup by pg_restore, which brings no roles: the platform makes the
   * instance with `credentials` as its admin login (the DR side's credentials, not the source's).
   */
  portable?: boolean;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  /**
   * Could not be compared exactly (detail says why): neither failed nor passed. ok is true so the
   * run does not fail on it; reports show it as "not compared", not as a pass.
   */
  notCompared?: boolean;
}

export interface RestoreVerification {
  tables: CheckResult[];
  /** Sequences' positions and the large objects against the manifest (absent in results before they were recorded). */
  objects?: CheckResult[];
  checks: CheckResult[];
  newestCanary: Canary | null;
  /** Owners, privileges and roles against the manifest; absent for manifests that record none (and in older histories). */
  access?: CheckResult[];
}

export type StepStatus = 'pending' | 'running' | 'completed' | 'failed' | 'skipped';

export interface StepRecord {
  name: string;
  status: StepStatus;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  detail?: string;
}

export type Outcome = 'passed' | 'failed';

export interface RunbookReport {
  workflowId: string;
  runId: string;
  runbook: 'drill' | 'backup' | 'failover' | 'failback' | 'readiness';
  database: string;
  provider: ProviderKind;
  outcome: Outcome;
  /** Why the run failed, in one line, when it did. */
  reason?: string;
  startedAt: string;
  finishedAt: string;
  objectives: Objectives;
  /** Declared start to smoke tests passing on the recovered database; null when they never passed. */
  rtoSeconds: number | null;
  /** Newest canary before the declared start minus the newest canary found in the recovered data. */
  rpoSeconds: number | null;
  backup?: BackupRef;
  copies: BackupRef[];
  steps: StepRecord[];
  checks: CheckResult[];
  cleanup: CheckResult[];
  /** The build of Lifeboat that ran the runbook (package version and git commit), from the worker. */
  runbookVersion?: string;
  /** Cross-cloud failover and failback: where from and to, and the data loss the path can promise. */
  crossCloud?: {
    from: string;
    to: string;
    /** Planned: 0 (a final backup after the fence). Unplanned: the age of the newest copy at the start. */
    rpoPromiseSeconds: number | null;
    /** The target's earlier database, renamed and kept rather than dropped, if there was one. */
    setAside: string | null;
  };
  /** Failover and failback: the mode, who approved, how the fence went, lag at the decision, the topology after. */
  failover?: {
    mode: 'planned' | 'unplanned' | 'zonal' | 'failback';
    approval: Approval | null;
    fence: { confirmed: boolean; how: string } | null;
    lagAtDecision: { bytes: number | null; seconds: number | null } | null;
    walGapBytes: number | null;
    /**
     * A planned switchover: seconds from the start of the fence until the record pointed clients at
     * the new primary, the time no client could write. rtoSeconds adds what comes before the fence
     * (preflight, start canary, approval) and after (smoke tests, the RPO check).
     */
    writeOutageSeconds?: number;
    topology: TopologyView | null;
    /** Writes a former primary took after the fork, discarded on the operator's word: where the copy is. */
    discardedDivergence?: { node: string; detail: string; preservedAt: string; by: string } | null;
  };
}

/** What an activity hands back: its value and the attempt that produced it, for the report. */
export interface Attempted<T> {
  value: T;
  attempt: number;
}

/** Failure types. Stable strings: retry policies, tests and the CLI match on them. */
export const ErrorType = {
  InvalidInput: 'LifeboatInvalidInput',
  RegionNotReady: 'LifeboatRegionNotReady',
  DatabaseNotFound: 'LifeboatDatabaseNotFound',
  BackupNotFound: 'LifeboatBackupNotFound',
  BackupChecksumMismatch: 'LifeboatBackupChecksumMismatch',
  BackupManifestInvalid: 'LifeboatBackupManifestInvalid',
  ServerVersionTooOld: 'LifeboatServerVersionTooOld',
  DataVerificationFailed: 'LifeboatDataVerificationFailed',
  NoStandby: 'LifeboatNoStandby',
  StandbyNotReady: 'LifeboatStandbyNotReady',
  TopologyConflict: 'LifeboatTopologyConflict',
  /** The platform refused the call for a reason a retry cannot change (a quota, a bad setting). */
  ProviderRejected: 'LifeboatProviderRejected',
  /** The platform's credentials lack a permission (see the IAM policy in the README). */
  AccessDenied: 'LifeboatAccessDenied',
  /** A workflow's input differs from the plan the worker loaded (a run started by hand, a stale plan). */
  InputMismatch: 'LifeboatInputMismatch',
  /** A former primary took writes after the fork: rebuilding it would discard them. */
  DivergentWrites: 'LifeboatDivergentWrites',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

/** Every type above is a verdict, not a hiccup: retrying cannot change it. */
export const NON_RETRYABLE_ERROR_TYPES: string[] = Object.values(ErrorType);

/** One task queue per region, so a region's work runs on workers that can reach it. */
export function regionTaskQueue(region: string): string {
  return `lifeboat-${region}`;
}

/**
 * The workflow ID of every failover and failback of a database (topology and cross-cloud runbooks):
 * the per-database lock. Temporal keeps at most one open run per ID, and workers refuse a topology
 * run started under any other ID (worker/input-check.ts), so the lock holds for runs started by hand.
 */
export function topologyLockId(database: string): string {
  return `lifeboat/${database}/failover`;
}

/** The queue runbooks (workflow tasks) run on. */
export const RUNBOOK_TASK_QUEUE = 'lifeboat';
