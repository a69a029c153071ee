// Canary lookups against real PostgreSQL: a canary's time as JavaScript knows it (milliseconds) must
// find the row it came from (microseconds), or an only canary reads as lost data after a failover.
import { newestCanary, withClient, writeCanary } from '../../activities/pg/sql';
import { local } from '../support/stack';

test("the newest canary at or before a canary's own millisecond time is that canary, microseconds notwithstanding", async () => {
  const conn = await local().connectNode({ region: 'local-a', name: 'server' }, 'postgres');
  await withClient(conn, async (c) => {
    await c.query('begin');
    try {
      await c.query('create schema if not exists lifeboat');
      // The row's own time has microseconds past the millisecond JavaScript will round it down to.
      const written = await writeCanary(c, `canary-precision-${Date.now()}`);
      await c.query(
        `update lifeboat.canary set written_at = $1::timestamptz + interval '0.000789 seconds' where id = $2`,
        [written.writtenAt, written.id],
      );
      const found = await newestCanary(c, written.writtenAt);
      expect(found).toEqual(written);
    } finally {
      await c.query('rollback');
    }
  });
});
