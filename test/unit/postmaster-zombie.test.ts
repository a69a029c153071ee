// A killed postmaster stays a zombie until its parent reaps it (on a container whose PID 1 does not
// reap, for good): pg_ctl still calls it running, so a fence would fail. isRunning treats it as dead.
// PostgreSQL, too, takes a zombie's pid in a lock file for a live postmaster and refuses to start
// (and so does pg_rewind's single-user recovery): start() clears such locks first.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findPgBin } from '../../activities/pg/binaries';
import { LocalCluster, postmasterIsZombie } from '../../activities/pg/cluster';
import { freePort } from '../../activities/pg/ports';
import { serverOsUser } from '../../activities/pg/process';
import { withClient } from '../../activities/pg/sql';
import { env } from '../support/stack';

/**
 * A zombie: sh starts a short sleep, then becomes a long sleep that never waits for it. Both run as
 * the servers' OS user, as a postmaster does: PostgreSQL takes another user's pid (EPERM) for stale.
 */
async function zombie(dir: string): Promise<{ zombiePid: number; parent: ChildProcess }> {
  const user = serverOsUser();
  if (user) chownSync(dir, user.uid, user.gid);
  const parent = spawn('sh', ['-c', `sleep 0.2 & echo $! > ${dir}/child; exec sleep 60`], {
    stdio: 'ignore',
    ...(user && { uid: user.uid, gid: user.gid }),
  });
  await new Promise((r) => setTimeout(r, 1000));
  return { zombiePid: Number(readFileSync(join(dir, 'child'), 'utf8').trim()), parent };
}

test('a lock file naming an unreaped dead process is a zombie; a live process and a missing one are not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zombie-'));
  const lock = join(dir, 'postmaster.pid');
  const { zombiePid, parent } = await zombie(dir);
  try {
    writeFileSync(lock, `${zombiePid}\n/data\n`);
    expect(postmasterIsZombie(lock)).toBe(true);
    writeFileSync(lock, `${parent.pid}\n/data\n`);
    expect(postmasterIsZombie(lock)).toBe(false);
    writeFileSync(lock, '999999999\n');
    expect(postmasterIsZombie(lock)).toBe(false);
  } finally {
    parent.kill('SIGKILL');
  }
});

test("a cluster whose lock files name a killed, unreaped postmaster starts (its locks are cleared); a live process's locks are left, and refuse", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zombie-'));
  const { zombiePid, parent } = await zombie(dir);
  const cluster = new LocalCluster(join(env().home, `zombie-locks-${process.pid}`), findPgBin(env().pgBin));
  const port = await freePort();
  try {
    await cluster.init({ name: 'zombie-locks', port, disposable: true });
    const pidFile = join(cluster.dataDir, 'postmaster.pid');
    const socketLock = join(cluster.runDir, `.s.PGSQL.${port}.lock`);
    const plant = (pid: number) => {
      mkdirSync(cluster.runDir, { recursive: true });
      writeFileSync(pidFile, `${pid}\n${cluster.dataDir}\n`);
      writeFileSync(socketLock, `${pid}\n${cluster.dataDir}\n`);
    };

    // What a SIGKILLed postmaster leaves when nobody reaps it: PostgreSQL alone would refuse.
    plant(zombiePid);
    await cluster.start();
    expect(
      await withClient(cluster.connection('postgres'), async (c) => (await c.query('select 1 as one')).rows[0].one),
    ).toBe(1);
    await cluster.stop('fast');

    // A live process named in the locks: not ours to judge, so PostgreSQL's own refusal stands.
    plant(parent.pid!);
    await expect(cluster.start()).rejects.toThrow(/another postmaster|lock file .* already exists/i);
    expect(existsSync(pidFile) || existsSync(socketLock)).toBe(true);
  } finally {
    parent.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    await cluster.destroy().catch(() => undefined);
  }
});
