// Every child process Lifeboat starts gets an allow-listed environment (activities/pg/process.ts,
// childEnv): PATH, the locale, TZ and the PG* settings its call passes; nothing of the worker's own.
// The worker's environment here carries a Temporal key, a codec key, a webhook URL, cloud
// credentials and an `env:` password; a script run through run()/runPiped() and a real postmaster
// started by LocalCluster.start() (its /proc/<pid>/environ, read as root) hold none of them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { findPgBin } from '../../activities/pg/binaries';
import { LocalCluster } from '../../activities/pg/cluster';
import { freePort } from '../../activities/pg/ports';
import { childEnv, run, runPiped } from '../../activities/pg/process';
import { env } from '../support/stack';

const WORKER_ONLY = {
  LIFEBOAT_X: 'lifeboat-secret',
  LIFEBOAT_WEBHOOK_URL: 'https://hooks.example/T0/secret-token',
  TEMPORAL_Y: 'temporal-api-key',
  AWS_Z: 'aws-secret',
  GOOGLE_W: 'google-secret',
  ORDERS_DB_PASSWORD: 'env-password',
};
const LEAKED = /^(LIFEBOAT_|TEMPORAL_|AWS_|GOOGLE_|ORDERS_DB_PASSWORD$|PGPASSWORD$)/;

function names(envText: string, separator: string): string[] {
  return envText
    .split(separator)
    .filter(Boolean)
    .map((line) => line.slice(0, line.indexOf('=')));
}

describe("a child process's environment", () => {
  const saved: Record<string, string | undefined> = {};
  beforeAll(() => {
    for (const [name, value] of Object.entries({ ...WORKER_ONLY, TZ: 'UTC', LC_MESSAGES: 'C' })) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
  });
  afterAll(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  test('a command run through run() holds PATH, the locale, TZ and the PG* its call passed, and no LIFEBOAT_*, TEMPORAL_*, AWS_*, GOOGLE_* or env: password', async () => {
    const out = await run('env', [], {
      env: { PGHOST: '127.0.0.1', PGPASSFILE: '/nonexistent/pgpass', PGAPPNAME: 'lifeboat' },
    });
    const seen = names(out, '\n');
    expect(seen.filter((n) => LEAKED.test(n))).toEqual([]);
    expect(seen.sort()).toEqual(
      ['LC_MESSAGES', 'PATH', 'PGAPPNAME', 'PGHOST', 'PGPASSFILE', 'TZ', ...(process.env.LANG ? ['LANG'] : [])].sort(),
    );
    expect(out).not.toMatch(/secret|api-key|env-password/);
  });

  test('runPiped (how pg_dump runs) gives the same allow-listed environment when its call passes none', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await runPiped('env', [], {}, sink);
    const seen = names(Buffer.concat(chunks).toString(), '\n');
    expect(seen.filter((n) => LEAKED.test(n))).toEqual([]);
    expect(seen).toContain('PATH');
  });

  test("a call site that passes anything but the allow-list (e.g. the worker's whole environment) fails before anything starts, naming the variable and not its value", async () => {
    expect(() => childEnv({ AWS_Z: 'aws-secret' })).toThrow(/may not be given AWS_Z/);
    expect(() => childEnv({ PGPASSWORD: 'pw' })).toThrow(/may not be given PGPASSWORD/);
    await expect(run('true', [], { env: process.env })).rejects.toThrow(/a child process may not be given [A-Z_]+:/);
    await expect(run('true', [], { env: process.env })).rejects.not.toThrow(/secret/);
  });

  test("a real postmaster started by LocalCluster.start() (pg_ctl, as the postgres OS user) holds none of the worker's variables in /proc/<pid>/environ", async () => {
    const cluster = new LocalCluster(join(env().home, `child-env-${process.pid}`), findPgBin(env().pgBin));
    try {
      await cluster.init({ name: 'child-env', port: await freePort(), disposable: true });
      await cluster.start();
      const pid = Number(readFileSync(join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      const seen = names(environ, '\0');
      expect(seen).toContain('PATH');
      expect(seen.filter((n) => LEAKED.test(n))).toEqual([]);
      expect(environ).not.toMatch(/secret|api-key|env-password/);
    } finally {
      await cluster.destroy().catch(() => undefined);
    }
  });
});
