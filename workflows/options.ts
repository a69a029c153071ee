// Named activity option presets. Every preset sets a start-to-close timeout, a bounded retry
// policy and the non-retryable failure types, so a verdict (bad checksum, missing database) fails
// the step at once while a hiccup (a dropped connection, a busy server) is retried with backoff.
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from './types';

// On cancellation a runbook waits for the activity to stop before it tears down: otherwise a
// teardown could race a scratch instance that is still being created, and leak it.
const waitForCancellation = { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED };

/**
 * A quick call: a query, a canary write, an instance status check. Every activity heartbeats every
 * 2 s while it runs (activities/instrument.ts), so a dead worker is noticed by the heartbeat timeout
 * in 10 s, not by the start-to-close one a minute later: that minute would be added to a failover's RTO.
 */
export const quickCall: ActivityOptions = {
  ...waitForCancellation,
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '10 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '15 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/**
 * Moving or reading a whole database: a dump, a copy, a restore, a full-table checksum.
 * The heartbeat timeout, not the start-to-close one, is what notices a dead worker, so it is short.
 */
export const longTransfer: ActivityOptions = {
  ...waitForCancellation,
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '15 seconds',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    maximumAttempts: 4,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/** Bringing up a scratch instance: slower than a query, far shorter than a transfer. */
export const provisioning: ActivityOptions = {
  ...waitForCancellation,
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/**
 * Tearing down what a runbook created. It keeps trying for a long while (a leaked scratch
 * instance costs money and hides the next drill's problems), yet never blocks the report forever.
 */
export const teardown: ActivityOptions = {
  ...waitForCancellation,
  startToCloseTimeout: '5 minutes',
  scheduleToCloseTimeout: '1 hour',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: [],
  },
};

/** A notification: a few quick tries; a runbook never waits long on a webhook, nor fails for one. */
export const notification: ActivityOptions = {
  ...waitForCancellation,
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: '10 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/**
 * Fencing a primary that may be dead or unreachable (unplanned failover): one short deadline, after
 * which the runbook records the fence as unconfirmed and carries on. It never waits on a dark region.
 */
export const fenceWithDeadline: ActivityOptions = {
  ...waitForCancellation,
  startToCloseTimeout: '20 seconds',
  scheduleToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '5 seconds',
    maximumAttempts: 3,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/**
 * A readiness probe: read-only and quick. The schedule-to-start timeout is part of the check: a
 * region whose queue no worker polls is found in minutes, not left waiting for one to appear.
 */
export const readinessProbe: ActivityOptions = {
  ...waitForCancellation,
  scheduleToStartTimeout: '2 minutes',
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '20 seconds',
    maximumAttempts: 3,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/**
 * The scratch sweep of a readiness run: listing and a few deletes, each heartbeating. A delete the
 * platform is slow to confirm is retried by the next sweep; a readiness run never waits long on it.
 */
export const scratchSweep: ActivityOptions = {
  ...waitForCancellation,
  scheduleToStartTimeout: '2 minutes',
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 3,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};
