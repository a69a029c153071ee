// The plan's bad-input contract, as the plan tests check it: a PlanError whose message starts with
// the source it names.
import { parsePlan, PlanError } from '../../worker/plan';

/** Parses and returns the PlanError's message; fails the test if anything else happens. */
export function planErrorOf(text: string, source = 'plan.yaml'): string {
  let thrown: unknown;
  try {
    parsePlan(text, source);
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(PlanError);
  const message = (thrown as PlanError).message;
  expect(message.startsWith(`${source}:`)).toBe(true);
  return message;
}
