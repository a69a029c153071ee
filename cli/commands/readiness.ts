// `lifeboat readiness <db>`: is the database recoverable now (backup age, DR copy, standby, drill recency).
import { readinessInput } from '../../worker/plan';
import { primaryRunbookCommand } from '../run-runbook';

export const readiness = primaryRunbookCommand({
  runbook: 'readiness',
  inputOf: readinessInput,
  summary: (input) =>
    `Readiness check of ${input.database}: backups, copy in ${input.dr.name}${input.replicaSet ? ', standby' : ''}, drill recency`,
});
