// Shared by the unit tests: the plan most of them start from, and the environment the CLI runs in.

/**
 * The minimal plan of the README ("The plan file"), without its checks: one database, orders, from
 * local-a to local-b. `more` is YAML appended as it is: more fields of orders (four spaces in) or
 * more databases (two spaces in), each line ending in a newline.
 */
export function ordersPlan(more = ''): string {
  return `regions:
  local-a: { provider: local }        # the dev stack's two local regions
  local-b: { provider: local }
databases:
  orders:
    primary: { region: local-a, database: orders }
    dr: { region: local-b }
    objectives: { rpo: 15m, rto: 30m }
${more}`;
}

/**
 * The caller's environment for a CLI run, without its Temporal and Lifeboat settings (profiles, API
 * keys, log levels), then only the Temporal address and Lifeboat home given.
 */
export function cliEnv(temporalAddress: string | undefined, home: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('TEMPORAL_') && !key.startsWith('LIFEBOAT_')) env[key] = value;
  }
  env.TEMPORAL_ADDRESS = temporalAddress;
  env.LIFEBOAT_HOME = home;
  return env;
}
