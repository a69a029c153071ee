// The real @google-cloud/sql clients, pointed at a Cloud SQL fake, as tests build them.
import { v1 } from '@google-cloud/sql';
import { OAuth2Client } from 'google-auth-library';
import type { CloudSqlFake } from './server';

/**
 * Any token does for the fake. Node's own fetch: gaxios would otherwise load node-fetch by a dynamic
 * import, which jest's CommonJS sandbox refuses (a worker under plain node is not affected).
 */
export function fakeAuth(): OAuth2Client {
  const auth = new OAuth2Client({ transporterOptions: { fetchImplementation: fetch } });
  auth.setCredentials({ access_token: 'fake-token' });
  return auth;
}

/** Client options for the fake: REST, plain HTTP, its host and port. */
export function fakeClientOptions(fake: CloudSqlFake) {
  return { fallback: true as const, apiEndpoint: fake.endpoint.host, port: fake.endpoint.port, protocol: 'http' as const, authClient: fakeAuth() };
}

export function adminClients(fake: CloudSqlFake) {
  const options = fakeClientOptions(fake);
  const clients = {
    instances: new v1.SqlInstancesServiceClient(options),
    backupRuns: new v1.SqlBackupRunsServiceClient(options),
    operations: new v1.SqlOperationsServiceClient(options),
  };
  return { ...clients, close: () => Promise.all(Object.values(clients).map((c) => c.close())).then(() => undefined) };
}
