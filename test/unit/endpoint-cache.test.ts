// The endpoint cache keeps replay and catch-up polls from asking the platform's API every 100 ms.
import { EndpointCache } from '../../activities/providers/endpoint-cache';

const conn = (port: number) => ({ host: '10.0.0.1', port, user: 'u', password: 'p', database: 'd' });

test('a lookup is made once within the time to live, again after it, and a failed one is not remembered', async () => {
  let lookups = 0;
  const cache = new EndpointCache(50);
  const resolve = async () => conn(5432 + ++lookups);
  expect((await cache.get('a', resolve)).port).toBe(5433);
  expect((await cache.get('a', resolve)).port).toBe(5433);
  expect((await cache.get('b', resolve)).port).toBe(5434);
  await new Promise((r) => setTimeout(r, 60));
  expect((await cache.get('a', resolve)).port).toBe(5435);

  await expect(cache.get('c', async () => Promise.reject(new Error('throttled')))).rejects.toThrow('throttled');
  expect((await cache.get('c', resolve)).port).toBe(5436);
});
