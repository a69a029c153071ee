// A plan of local regions as YAML text, for the test files and benchmarks that write a plan for
// databases of their own: the regions the databases name, then each database.

export interface LocalPlanDatabase {
  /** Its key in the plan: lowercase letters, digits and dashes. */
  key: string;
  /** Its name in PostgreSQL. */
  database: string;
  /** The home region (the primary's) and the DR region. */
  home: string;
  dr: string;
  /** The DR region holds a streaming standby of the primary (a replication set), not only copies. */
  standby?: boolean;
  objectives: { rpo: string; rto: string };
  retention?: { keep: number };
  checks: Array<{ name: string; sql: string }>;
}

export function localPlanText(databases: LocalPlanDatabase[]): string {
  const regions = [...new Set(databases.flatMap((d) => [d.home, d.dr]))];
  const lines = [
    'regions:',
    ...regions.map((region) => `  ${region}: { provider: local }`),
    'databases:',
    ...databases.flatMap((d) => [
      `  ${d.key}:`,
      `    primary: { region: ${d.home}, database: ${d.database} }`,
      `    dr: { region: ${d.dr}${d.standby ? ', standby: true' : ''} }`,
      `    objectives: { rpo: ${d.objectives.rpo}, rto: ${d.objectives.rto} }`,
      ...(d.retention ? [`    retention: { keep: ${d.retention.keep} }`] : []),
      '    checks:',
      ...d.checks.flatMap((check) => [`      - name: ${check.name}`, `        sql: ${check.sql}`]),
    ]),
  ];
  return lines.join('\n') + '\n';
}
