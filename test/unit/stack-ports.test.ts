// The local stack's ports: which PostgreSQL port base `dev up`, `dev status` and `lifeboat traffic`
// use when LIFEBOAT_PG_PORT_BASE is not set, and that a stack made earlier keeps the ports it has.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PG_PORT_BASE, stackPorts } from '../../scripts/dev/stack';
import { loadEnv } from '../../worker/env';

describe('stack ports', () => {
  const home = mkdtempSync(join(tmpdir(), 'lifeboat-ports-'));
  const lifeboat = loadEnv({ LIFEBOAT_HOME: home });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  /** What an initialised region cluster leaves on disk (LocalCluster.isInitialized and state()). */
  function madeWithPort(port: number): void {
    const root = join(home, 'regions', 'local-a', 'cluster');
    mkdirSync(join(root, 'data'), { recursive: true });
    writeFileSync(join(root, 'data', 'PG_VERSION'), '15\n');
    writeFileSync(join(root, 'pgpass'), `127.0.0.1:${port}:*:postgres:x\n`);
    writeFileSync(join(root, 'state.json'), JSON.stringify({ name: 'local-a', port, disposable: false }));
  }

  test('a new stack takes its PostgreSQL ports below the ranges the OS hands to outgoing connections', () => {
    expect(stackPorts({}, lifeboat).pgBase).toBe(DEFAULT_PG_PORT_BASE);
    // The traffic pointer takes base - 1, the standby base + 2: all below Linux's 32768-60999.
    expect(DEFAULT_PG_PORT_BASE - 1).toBeGreaterThanOrEqual(1024);
    expect(DEFAULT_PG_PORT_BASE + 2).toBeLessThan(32768);
  });

  test('a stack made earlier keeps the port its first region was made with; LIFEBOAT_PG_PORT_BASE still wins', () => {
    madeWithPort(55431);
    expect(stackPorts({}, lifeboat).pgBase).toBe(55431);
    expect(stackPorts({ LIFEBOAT_PG_PORT_BASE: '26000' }, lifeboat).pgBase).toBe(26000);
    // Without LIFEBOAT_HOME's stack to look at, only the environment and the default count.
    expect(stackPorts({}).pgBase).toBe(DEFAULT_PG_PORT_BASE);
  });

  test('a port variable that is not a port is refused, naming it', () => {
    expect(() => stackPorts({ LIFEBOAT_PG_PORT_BASE: '70000' }, lifeboat)).toThrow(
      /LIFEBOAT_PG_PORT_BASE=70000 is not a port/,
    );
  });
});
