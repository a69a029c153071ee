// Where a chaos test kills a runbook's worker: a few named steps by default, every step boundary of
// a baseline run with LIFEBOAT_CHAOS=full (see test/chaos/harness.ts).
import { boundariesOf, boundary, FULL, type Boundary } from '../chaos/harness';
import type { RunbookReport } from '../../workflows/types';

/**
 * The boundaries of `steps` (reduced, the default); with LIFEBOAT_CHAOS=full, every step boundary
 * that `baseline` (a run without disruption, itself checked) went through today, in its order.
 */
export async function killPoints(
  steps: string[],
  baseline: () => Promise<{ report: RunbookReport }>,
): Promise<Boundary[]> {
  return FULL ? boundariesOf((await baseline()).report) : steps.map((step) => boundary(step));
}
