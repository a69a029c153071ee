// Benchmark: how fast Lifeboat's copy paths move a backup, next to `cp` and a raw S3 SDK call on the
// same file.
//
//   npm run bench:copy -- [--size-mb N] [--runs N] [--no-s3] [--dir DIR]
//
//   --size-mb N   size of the file copied, MiB (default 1024)
//   --runs N      timed copies per contender (default 3); the table gives the median and the best
//   --no-s3       leave out the S3 contenders (no moto_server needed)
//   --dir DIR     where the files go (default: a new directory under LIFEBOAT_HOME, on the same disk as
//                 the dev stack's backups); removed at the end
//
// Needs a build (npm run build); the S3 contenders need moto_server (`bash scripts/setup.sh
// --with-moto`), which it starts on a free port and stops at the end. No dev stack, no Temporal: the
// copy code is called directly, with the real classes a worker uses:
//   local copyBackup        LocalProvider.copyBackup, one region's backup directory to another's:
//                           read, sha256 on the way, write, fsync, rename, manifest
//   portable dir -> dir     PortableBackups.copy between two DirStore regions (a mounted volume in
//                           another region): read, sha256, write, fsync, rename, manifest
//   portable dir -> s3      PortableBackups.copy from a DirStore region to an S3Store region on moto:
//                           sha256 while sending 8 MiB multipart parts, each with a CRC32
//   portable s3 -> dir      PortableBackups.copy back: download, sha256, write, fsync
// and the raw tools on the same file:
//   cp                      `cp` (no fsync: the data may still be in the page cache when it returns)
//   cp + fsync              `cp`, then `sync <file>` (durable, as Lifeboat's copies are)
//   sha256sum + cp + fsync  the shell doing a Lifeboat copy's work: hash, cp, sync, hash the copy, compare
//   SDK PutObject           one streamed PutObject of the file with @aws-sdk/client-s3, no checksum (the
//                           SDK's default for a streamed body, an aws-chunked CRC32 trailer, runs at about
//                           3 MiB/s against moto: minutes per GiB, a moto artefact, so it is not used)
//   SDK GetObject           one GetObject streamed to a file
// The file is random bytes (incompressible). It is read from the page cache on every run (24 GiB of
// memory holds it): these figures are the copy code's cost, not the disk's. moto is a single Python
// process: its S3 is the ceiling of both S3 contenders, far below a real S3 endpoint.
// Figures, not asserts: it exits 1 only when a copy fails.
import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { findPgBin } from '../../activities/pg/binaries';
import { LocalProvider } from '../../activities/providers/local';
import type { ActivityIo } from '../../activities/providers/provider';
import { PortableBackups } from '../../activities/portable/portable-backups';
import { loadEnv } from '../../worker/env';
import type { BackupManifest, BackupRef, RegionSpec, StoreSpec } from '../../workflows/types';
import { startMoto, type MotoServer } from '../../test/support/moto';
import {
  benchIo,
  freePort,
  machineLines,
  median,
  MIB,
  optionsFrom,
  positiveOption,
  runChild,
  runMain,
  say,
  table,
  UsageError,
} from './common';

const BACKUP_ID = 'bench-copy-1';
/** Portable backups are keyed by database name (letters, digits and _ only). */
const DATABASE = 'bench_copy';
const BUCKET = 'lifeboat-bench-copy';
const AWS_REGION = 'us-east-1';

const DEFAULTS = { sizeMb: 1024, runs: 3, s3: true, dir: null as string | null };
type Options = typeof DEFAULTS;

const parseOptions = (argv: string[]): Options =>
  optionsFrom(argv, DEFAULTS, (options) => ({
    '--size-mb': (value, flag) => (options.sizeMb = positiveOption(flag, value(), false)),
    '--runs': (value, flag) => (options.runs = positiveOption(flag, value(), true)),
    '--no-s3': () => (options.s3 = false),
    '--dir': (value) => {
      const dir = value();
      if (!dir) throw new UsageError('--dir (missing): expected a directory');
      options.dir = dir;
    },
  }));

// ---------------------------------------------------------------------------------------------
// The file and the backups made of it

/** `bytes` of random data, written in 8 MiB blocks; returns its sha256. */
async function writeRandomFile(file: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'w');
  try {
    for (let left = bytes; left > 0;) {
      const block = randomBytes(Math.min(left, 8 * MIB));
      hash.update(block);
      await handle.write(block);
      left -= block.length;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

function manifestOf(sizeBytes: number, sha256: string, sourceRegion: string): BackupManifest {
  return {
    formatVersion: 1,
    backupId: BACKUP_ID,
    database: DATABASE,
    provider: 'local',
    sourceRegion,
    createdAt: new Date().toISOString(),
    createdBy: 'scripts/bench/copy-throughput.ts',
    dumpFormat: 'pg_dump-custom',
    serverVersion: 'n/a (random bytes)',
    serverVersionNum: 0,
    sizeBytes,
    sha256,
    tables: [],
    newestCanary: null,
  };
}

/**
 * Places the file as a complete backup where a reader expects one: the dump (a hard link to the
 * file, so no extra copy) and its manifest beside it.
 */
function placeBackup(source: string, dumpPath: string, manifest: BackupManifest): void {
  mkdirSync(dirname(dumpPath), { recursive: true });
  rmSync(dumpPath, { force: true });
  linkSync(source, dumpPath);
  writeFileSync(join(dirname(dumpPath), 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}

// ---------------------------------------------------------------------------------------------
// Contenders

interface Contender {
  name: string;
  /** What its ratios are taken against, by name. */
  against?: string[];
  /** Untimed: makes the destination empty again. */
  reset(): Promise<void>;
  /** Timed. */
  copy(): Promise<void>;
}

interface Setup {
  work: string;
  source: string;
  sizeBytes: number;
  sha256: string;
  io: ActivityIo;
  moto: MotoServer | null;
  s3: S3Client | null;
}

function contenders(setup: Setup, pgBin: string): Contender[] {
  const { work, source, sizeBytes, sha256, io } = setup;
  const list: Contender[] = [];

  const cpTarget = join(work, 'cp', 'copy.bin');
  mkdirSync(dirname(cpTarget), { recursive: true });
  const removeCp = async () => rmSync(cpTarget, { force: true });
  list.push({ name: 'cp', reset: removeCp, copy: () => command('cp', [source, cpTarget]) });
  list.push({
    name: 'cp + fsync',
    reset: removeCp,
    copy: () => command('bash', ['-c', 'cp "$1" "$2" && sync "$2"', 'cp', source, cpTarget]),
  });
  // The shell doing what a Lifeboat copy does: hash, copy, make it durable, hash the copy.
  list.push({
    name: 'sha256sum + cp + fsync',
    reset: removeCp,
    copy: () =>
      command('bash', [
        '-c',
        'a=$(sha256sum < "$1") && cp "$1" "$2" && sync "$2" && b=$(sha256sum < "$2") && [[ "$a" == "$b" ]]',
        'cp',
        source,
        cpTarget,
      ]),
  });

  // The local provider: regions are directories under its home; a backup is <region>/backups/<id>/.
  const local = new LocalProvider({ home: join(work, 'local-home'), pgBin });
  const localFrom: RegionSpec = { name: 'copy-a', provider: 'local' };
  const localTo: RegionSpec = { name: 'copy-b', provider: 'local' };
  const localDump = join(work, 'local-home', 'regions', localFrom.name, 'backups', BACKUP_ID, 'dump.pgdump');
  placeBackup(source, localDump, manifestOf(sizeBytes, sha256, localFrom.name));
  const localRef: BackupRef = {
    backupId: BACKUP_ID,
    database: DATABASE,
    region: localFrom.name,
    provider: 'local',
    createdAt: new Date().toISOString(),
    sizeBytes,
    sha256,
    location: localDump,
  };
  list.push({
    name: 'local copyBackup',
    against: ['cp + fsync', 'sha256sum + cp + fsync'],
    reset: async () => rmSync(join(work, 'local-home', 'regions', localTo.name), { recursive: true, force: true }),
    copy: async () => {
      await local.copyBackup(localRef, localTo, io);
    },
  });

  // Portable backups between stores: a store is where a region keeps them.
  const portable = new PortableBackups({ pgBin, workDir: join(work, 'restore-staging') });
  const dirA: StoreSpec = { kind: 'dir', path: join(work, 'store-a') };
  const dirB: StoreSpec = { kind: 'dir', path: join(work, 'store-b') };
  const regionA: RegionSpec = { name: 'store-a', provider: 'local', store: dirA };
  const regionB: RegionSpec = { name: 'store-b', provider: 'local', store: dirB };
  placeBackup(source, join(dirA.path, DATABASE, BACKUP_ID, 'dump.pgdump'), manifestOf(sizeBytes, sha256, regionA.name));
  const refIn = (region: RegionSpec, store: StoreSpec): BackupRef => ({
    backupId: BACKUP_ID,
    database: DATABASE,
    region: region.name,
    provider: 'local',
    createdAt: new Date().toISOString(),
    sizeBytes,
    sha256,
    location: `${region.name}/${DATABASE}/${BACKUP_ID}/dump.pgdump`,
    store,
  });
  list.push({
    name: 'portable dir -> dir',
    against: ['cp + fsync', 'sha256sum + cp + fsync'],
    reset: () => portable.delete(refIn(regionB, dirB)),
    copy: async () => {
      await portable.copy(refIn(regionA, dirA), regionB, io);
    },
  });

  if (setup.s3) {
    const s3 = setup.s3;
    const s3Spec: StoreSpec = { kind: 's3', bucket: BUCKET, prefix: 'region-s3', awsRegion: AWS_REGION };
    const regionS3: RegionSpec = { name: 'store-s3', provider: 'aws', store: s3Spec };
    const rawKey = 'raw/copy.bin';
    const rawTarget = join(work, 'raw-get', 'copy.bin');
    mkdirSync(dirname(rawTarget), { recursive: true });
    // The raw client sends no checksum (see the header): requestChecksumCalculation WHEN_REQUIRED.
    list.push({
      name: 'SDK PutObject',
      reset: async () => undefined, // a put replaces the object
      copy: async () => {
        await s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: rawKey,
            Body: createReadStream(source, { highWaterMark: MIB }),
            ContentLength: sizeBytes,
          }),
        );
      },
    });
    list.push({
      name: 'portable dir -> s3',
      against: ['SDK PutObject'],
      reset: () => portable.delete(refIn(regionS3, s3Spec)),
      copy: async () => {
        await portable.copy(refIn(regionA, dirA), regionS3, io);
      },
    });
    list.push({
      name: 'SDK GetObject',
      reset: async () => rmSync(rawTarget, { force: true }),
      copy: async () => {
        const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: rawKey }));
        await pipeline(got.Body as Readable, createWriteStream(rawTarget));
      },
    });
    list.push({
      name: 'portable s3 -> dir',
      against: ['SDK GetObject'],
      reset: async () => {
        await portable.delete(refIn(regionB, dirB));
        // Its source is the dir -> s3 copy: made here if that contender has not run yet.
        if (!(await portable.list(regionS3, DATABASE)).length) await portable.copy(refIn(regionA, dirA), regionS3, io);
      },
      copy: async () => {
        await portable.copy(refIn(regionS3, s3Spec), regionB, io);
      },
    });
  }
  return list;
}

async function command(cmd: string, args: string[]): Promise<void> {
  const result = await runChild(cmd, args, { cwd: '/' });
  if (result.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited with ${result.code}: ${result.stderr.trim()}`);
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  const loadBefore = loadavg();
  const env = loadEnv();
  const pgBin = findPgBin(env.pgBin);
  mkdirSync(options.dir ?? env.home, { recursive: true });
  const work = options.dir
    ? mkdtempSync(join(options.dir, 'lifeboat-bench-copy-'))
    : mkdtempSync(join(env.home, 'bench-copy-'));
  const io = benchIo();
  const sizeBytes = Math.round(options.sizeMb * MIB);
  let moto: MotoServer | null = null;
  let s3: S3Client | null = null;
  const times = new Map<string, number[]>();
  let names: Array<{ name: string; against?: string[] }> = [];
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      s3?.destroy();
      await moto?.stop();
      rmSync(work, { recursive: true, force: true });
      say(`removed ${work}`);
    })());
  // Interrupted, it still removes its GiBs and stops moto.
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  try {
    const source = join(work, 'source.bin');
    say(`writing ${(sizeBytes / MIB).toFixed(0)} MiB of random bytes to ${source}`);
    const sha256 = await writeRandomFile(source, sizeBytes);
    if (options.s3) {
      moto = await startMoto(await freePort(), { log: join(work, 'moto-server.log'), detached: false });
      say(`moto_server on ${moto.endpoint} (pid ${moto.pid})`);
      // The SDK reads these itself, so the S3Store the portable copy opens reaches moto too.
      Object.assign(process.env, {
        AWS_ENDPOINT_URL: moto.endpoint,
        AWS_ACCESS_KEY_ID: 'testing',
        AWS_SECRET_ACCESS_KEY: 'testing',
        AWS_REGION,
      });
      s3 = new S3Client({ region: AWS_REGION, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' });
      await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    }
    const list = contenders({ work, source, sizeBytes, sha256, io, moto, s3 }, pgBin);
    names = list.map(({ name, against }) => ({ name, against }));
    for (let run = 0; run < options.runs; run++) {
      // Each run starts at another contender, so none always runs first (or right after a big write).
      const order = list.map((_, i) => list[(i + run) % list.length]!);
      for (const c of order) {
        await c.reset();
        const started = process.hrtime.bigint();
        await c.copy();
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        times.set(c.name, [...(times.get(c.name) ?? []), seconds]);
        say(
          `run ${run + 1}: ${c.name.padEnd(20)} ${seconds.toFixed(2)}s  ${(sizeBytes / MIB / seconds).toFixed(0)} MiB/s`,
        );
      }
    }
  } finally {
    await cleanup();
  }

  const pgVersion = existsSync(join(pgBin, 'postgres'))
    ? (await runChild(join(pgBin, 'postgres'), ['--version'], { cwd: '/' })).stdout.trim()
    : 'n/a';
  const best = (name: string) => Math.min(...times.get(name)!);
  const med = (name: string) => median(times.get(name)!);
  const rate = (seconds: number) => (sizeBytes / MIB / seconds).toFixed(0);
  const rows = names.map(({ name, against }) => [
    name,
    ...times.get(name)!.map((s) => s.toFixed(2)),
    med(name).toFixed(2),
    rate(med(name)),
    rate(best(name)),
    (against ?? []).map((raw) => `${(med(name) / med(raw)).toFixed(2)} x ${raw}`).join('; '),
  ]);
  const out = [
    '',
    ...machineLines(pgVersion, pgBin, loadBefore),
    `file        ${(sizeBytes / MIB).toFixed(0)} MiB of random bytes in ${work}; ${options.runs} runs per contender${options.s3 ? '; S3 = moto_server on loopback' : ''}`,
    '',
    table(
      [
        'contender',
        ...Array.from({ length: options.runs }, (_, i) => `run ${i + 1} s`),
        'median s',
        'MiB/s (median)',
        'MiB/s (best)',
        'time ratio (median)',
      ],
      rows,
    ),
    '',
    "A ratio is the contender's median time over the raw tool's: 1.00 is as fast as the tool, 2.00 twice as slow.",
    "Lifeboat's copies also hash every byte (sha256) and compare it with the manifest, fsync, and publish by rename",
    '(or a completed multipart upload); `cp` does none of that, `cp + fsync` only the fsync; `sha256sum + cp + fsync`',
    'does the same work in two passes (hash the source, copy, sync, hash the copy).',
    '',
  ];
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

runMain(main, 'npm run bench:copy -- [--size-mb N] [--runs N] [--no-s3] [--dir DIR]');
