// Backups, manifests, staged dumps, the canary ledger and topology records are 0600 in 0700
// directories, and manifests and markers are written atomically through one helper
// (activities/private-files.ts): a unique temporary file, fsynced, renamed, the directory fsynced.
// A crash between the write and the rename leaves the old file; two writers of one path (two attempts
// of an activity, overlapping) never corrupt it.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { CanaryLedger } from '../../activities/canary-ledger';
import { serverOsUser } from '../../activities/pg/process';
import { DirStore } from '../../activities/portable/dir-store';
import { writeFileAtomic } from '../../activities/private-files';
import type { ActivityIo } from '../../activities/providers/provider';
import { TopologyStore } from '../../activities/topology';
import { env, local } from '../support/stack';

const io = (): ActivityIo => ({
  heartbeat: () => undefined,
  signal: new AbortController().signal,
  logger: pino({ level: 'silent' }),
});
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');
const helperJs = () => join(env().projectRoot, 'dist', 'activities', 'private-files.js');

/** Runs a node script in a child; resolves with its exit code and the signal that ended it. */
function node(
  script: string,
  ...args: string[]
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe('private, atomic files', () => {
  test("a local backup and its copy: dump and manifest 0600, the backup and backups directories 0700, the region directory closed to everyone but the servers' OS user; no temporary file left", async () => {
    const p = local();
    const backupId = `private-${Date.now()}`;
    const ref = await p.createBackup(
      { region: { name: 'local-a', provider: 'local' }, database: 'orders' },
      backupId,
      'test',
      io(),
    );
    const copy = await p.copyBackup(ref, { name: 'local-b', provider: 'local' }, io());
    try {
      for (const r of [ref, copy]) {
        const dir = dirname(r.location);
        expect([r.location, join(dir, 'manifest.json')].map(mode)).toEqual(['0600', '0600']);
        expect([dir, dirname(dir)].map(mode)).toEqual(['0700', '0700']);
        const region = dirname(dirname(dir));
        const servers = serverOsUser();
        // As root, PostgreSQL (the postgres user) must still pass through to its clusters in the region.
        if (servers)
          expect([mode(region), statSync(region).uid, statSync(region).gid]).toEqual(['0710', 0, servers.gid]);
        else expect(mode(region)).toBe('0700');
        expect(readdirSync(dir).sort()).toEqual(['dump.pgdump', 'manifest.json']);
      }
    } finally {
      await p.deleteBackup(ref);
      await p.deleteBackup(copy);
    }
  });

  test("the canary ledger, the topology record and a directory store's objects are 0600 in 0700 directories", async () => {
    const home = mkdtempSync(join(tmpdir(), 'private-files-'));
    new CanaryLedger(home).append({ id: 1, writtenAt: new Date().toISOString(), database: 'orders', epoch: 0 });
    expect([mode(join(home, 'canary')), mode(join(home, 'canary', 'orders.jsonl'))]).toEqual(['0700', '0600']);

    new TopologyStore(home).write(
      { set: 'orders', primary: { region: 'a', name: 'server' }, standby: null, fenced: [], updatedBy: 'test' },
      0,
    );
    expect([mode(join(home, 'topology')), mode(join(home, 'topology', 'orders.json'))]).toEqual(['0700', '0600']);

    const store = new DirStore(join(home, 'store'));
    await store.put('orders/b1/dump.pgdump', Readable.from([Buffer.from('dump bytes')]));
    await store.putText('orders/b1/manifest.json', '{}\n');
    expect([join(home, 'store'), join(home, 'store', 'orders'), join(home, 'store', 'orders', 'b1')].map(mode)).toEqual(
      ['0700', '0700', '0700'],
    );
    expect(['dump.pgdump', 'manifest.json'].map((f) => mode(join(home, 'store', 'orders', 'b1', f)))).toEqual([
      '0600',
      '0600',
    ]);
    expect(await store.list('')).toHaveLength(2);
  });

  test('a crash between the write and the rename (the writer killed at rename) leaves the old manifest intact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'private-crash-'));
    const file = join(dir, 'manifest.json');
    writeFileAtomic(file, '{"generation":"old"}\n');
    // The child is killed (SIGKILL, as a crash or the OOM killer would) the moment it tries to rename.
    const crashed = await node(
      `const fs = require('node:fs');
       fs.renameSync = () => process.kill(process.pid, 'SIGKILL');
       require(process.argv[1]).writeFileAtomic(process.argv[2], JSON.stringify({ generation: 'new', pad: 'x'.repeat(1 << 20) }));
       process.exit(0);`,
      helperJs(),
      file,
    );
    expect(crashed.signal).toBe('SIGKILL');
    expect(readFileSync(file, 'utf8')).toBe('{"generation":"old"}\n');
    // What it had written went to a temporary file of its own, beside the manifest.
    expect(readdirSync(dir).filter((f) => f !== 'manifest.json')).toEqual([
      expect.stringMatching(/^\.manifest\.json\.\d+\.[0-9a-f]{12}\.tmp$/),
    ]);
  });

  test('two processes writing the same manifest at once (two overlapping attempts) both succeed and every read sees one whole manifest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'private-race-'));
    const file = join(dir, 'manifest.json');
    writeFileAtomic(file, JSON.stringify({ writer: 'none' }));
    const writer = (name: string) =>
      node(
        `const { writeFileAtomic } = require(process.argv[1]);
         for (let i = 0; i < 150; i++) writeFileAtomic(process.argv[2], JSON.stringify({ writer: process.argv[3], i, pad: process.argv[3].repeat(200000) }));`,
        helperJs(),
        file,
        name,
      );
    const writers = Promise.all([writer('a'), writer('b')]);
    let done = false;
    void writers.finally(() => (done = true));
    let reads = 0;
    const torn: string[] = [];
    while (!done) {
      const text = readFileSync(file, 'utf8');
      reads++;
      try {
        const m = JSON.parse(text) as { writer: string; pad?: string };
        if (m.writer !== 'none' && m.pad !== m.writer.repeat(200000)) torn.push(text.slice(0, 40));
      } catch {
        torn.push(text.slice(0, 40));
      }
      await new Promise((r) => setImmediate(r));
    }
    const results = await writers;
    expect(results.map((r) => [r.code, r.stderr.split('\n')[0]])).toEqual([
      [0, ''],
      [0, ''],
    ]);
    expect(reads).toBeGreaterThan(10);
    expect(torn).toEqual([]);
    expect(['a', 'b']).toContain((JSON.parse(readFileSync(file, 'utf8')) as { writer: string }).writer);
    expect(readdirSync(dir)).toEqual(['manifest.json']);
  });
});
