// A few seconds' memory of how to reach a managed server. Replay and catch-up waits poll SQL every
// 100-200 ms; looking the endpoint up in the platform's API each time would be hundreds of
// control-plane calls a minute (throttling on RDS, the per-minute quota on Cloud SQL).
import type { PgConnection } from '../pg/sql';

export class EndpointCache {
  private readonly entries = new Map<string, { at: number; conn: Promise<PgConnection> }>();

  constructor(private readonly ttlMs = 10_000) {}

  /** The cached connection for `key`, else `resolve()`'s; a failed lookup is not remembered. */
  get(key: string, resolve: () => Promise<PgConnection>): Promise<PgConnection> {
    const hit = this.entries.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.conn;
    const conn = resolve();
    this.entries.set(key, { at: Date.now(), conn });
    conn.catch(() => this.entries.delete(key));
    return conn;
  }
}
