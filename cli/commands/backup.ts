// `lifeboat backup <db>`: a backup in the primary's region and its copy to the DR region.
import { backupInput } from '../../worker/plan';
import { primaryRunbookCommand } from '../run-runbook';

export const backup = primaryRunbookCommand({
  runbook: 'backup',
  inputOf: backupInput,
  summary: (input) => `Backup of ${input.database}: ${input.primary.region.name} + copy to ${input.dr.name}`,
});
