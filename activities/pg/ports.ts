// A port that is free on 127.0.0.1 right now, for a server Lifeboat is about to start (a scratch
// instance, a standby). Another process may take it first; starting the server then fails and the
// activity's retry picks another.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}
