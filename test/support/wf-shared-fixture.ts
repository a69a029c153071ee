// A fixture that the tests of one file share, made once before them with a Temporal client and
// closed after them: the beforeAll/afterAll pair such files would otherwise each write out.
import type { Client } from '@temporalio/client';
import { client } from './stack';

/**
 * Registers the beforeAll that makes the fixture (`make`, given a Temporal client; within
 * `timeoutMs`) and the afterAll that closes it, then the client's connection. Call it at the top of
 * a test file; the function it returns gives the fixture inside a test.
 */
export function sharedFixture<T extends { close(): Promise<void> }>(
  make: (temporal: Client) => Promise<T>,
  timeoutMs = 300_000,
): () => T {
  let temporal: Client | undefined;
  let fixture: T | undefined;
  beforeAll(async () => {
    temporal = await client();
    fixture = await make(temporal);
  }, timeoutMs);
  afterAll(async () => {
    await fixture?.close();
    await temporal?.connection.close();
  });
  return () => {
    if (!fixture) throw new Error('the shared fixture was not made: its beforeAll failed, or it ran outside a test');
    return fixture;
  };
}
