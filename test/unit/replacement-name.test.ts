// A failback's new replica is named from the node it replaces and its source: the same on every
// retry, and never the name of the node it replaces (found by the chaos suite: a second unplanned
// failover + failback on Cloud SQL named the new home replica after the fenced old one, and stopped).
import { replicaIdFor } from '../../activities/providers/aws';
import { replicaNameFor } from '../../activities/providers/gcp';
import { replacementName } from '../../activities/providers/replacement-name';

describe.each([
  ['Cloud SQL', replicaNameFor],
  ['RDS', replicaIdFor],
])('%s replica names', (_cloud, name) => {
  test('the same node and source give the same name (a retry finds what the first attempt made)', () => {
    expect(name('ledger-main', 'ledger-dr')).toBe(name('ledger-main', 'ledger-dr'));
    expect(name('ledger-main', 'ledger-dr')).toMatch(/^ledger-main-lb[0-9a-f]{6}$/);
    expect(name('ledger-main', 'ledger-dr')).not.toBe(name('ledger-main', 'ledger-dr-2'));
  });

  test('a second round from the same source does not give the replaced node its own name back', () => {
    const first = name('ledger-main', 'ledger-dr');
    const second = name(first, 'ledger-dr');
    expect(second).not.toBe(first);
    expect(second).toMatch(/^ledger-main-lb[0-9a-f]{6}$/);
    expect(name(first, 'ledger-dr')).toBe(second);
    // Nor does any later round come back to a name an earlier round gave (those nodes are still there, fenced).
    const names = [first, second];
    for (let round = 0; round < 20; round++) names.push(name(names.at(-1)!, 'ledger-dr'));
    expect(new Set(names).size).toBe(names.length);
  });
});

test('the base is cut to the cloud limit before the suffix, and an earlier -lb suffix is dropped', () => {
  expect(replacementName(`${'a'.repeat(90)}-lb0a1b2c`, 'src', 80)).toMatch(
    new RegExp(`^${'a'.repeat(80)}-lb[0-9a-f]{6}$`),
  );
  expect(replicaIdFor('Billing_Prod', 'x')).toMatch(/^billing-prod-lb[0-9a-f]{6}$/);
});
