// A killed postmaster stays a zombie until its parent reaps it (on a container whose PID 1 does not
// reap, for good): pg_ctl still calls it running, so a fence would fail. isRunning treats it as dead.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postmasterIsZombie } from '../../activities/pg/cluster';

test('a lock file naming an unreaped dead process is a zombie; a live process and a missing one are not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zombie-'));
  const lock = join(dir, 'postmaster.pid');
  // sh starts a short sleep, then becomes a long sleep that never waits for it: the short one, once
  // exited, stays a zombie child of the long one.
  const parent = spawn('sh', ['-c', `sleep 0.2 & echo $! > ${dir}/child; exec sleep 30`], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const child = readFileSync(join(dir, 'child'), 'utf8').trim();
    writeFileSync(lock, `${child}\n/data\n`);
    expect(postmasterIsZombie(lock)).toBe(true);
    writeFileSync(lock, `${parent.pid}\n/data\n`);
    expect(postmasterIsZombie(lock)).toBe(false);
    writeFileSync(lock, '999999999\n');
    expect(postmasterIsZombie(lock)).toBe(false);
  } finally {
    parent.kill('SIGKILL');
  }
});
