// Typed search attributes: what the Temporal UI filters on to answer "when did we last prove orders
// could be restored, and how long did it take?". `lifeboat dev up` registers them on the dev server;
// on another cluster, register them once (see the README).
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';

const key = <T extends SearchAttributeKey<'KEYWORD' | 'DOUBLE'>['type']>(
  name: string,
  type: T,
): SearchAttributeKey<T> => ({ name, type });

export const DatabaseAttr = key('LifeboatDatabase', 'KEYWORD');
export const RunbookAttr = key('LifeboatRunbook', 'KEYWORD');
export const ProviderAttr = key('LifeboatProvider', 'KEYWORD');
export const OutcomeAttr = key('LifeboatOutcome', 'KEYWORD');
export const TriggeredByAttr = key('LifeboatTriggeredBy', 'KEYWORD');
export const RtoSecondsAttr = key('LifeboatRtoSeconds', 'DOUBLE');
export const RpoSecondsAttr = key('LifeboatRpoSeconds', 'DOUBLE');
/** Failover and failback: who let the change go ahead (the CLI user, or the starter for --yes). */
export const ApprovedByAttr = key('LifeboatApprovedBy', 'KEYWORD');

export const ALL_SEARCH_ATTRIBUTES = [
  DatabaseAttr,
  RunbookAttr,
  ProviderAttr,
  OutcomeAttr,
  TriggeredByAttr,
  RtoSecondsAttr,
  RpoSecondsAttr,
  ApprovedByAttr,
];
