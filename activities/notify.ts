// Notifications: one JSON POST to the webhook the worker is configured with (LIFEBOAT_WEBHOOK_URL),
// Slack-compatible (`text`) with the structured fields beside it for any other receiver. The URL often
// carries a token, so it lives only in the worker's environment: never in history, logs or reports,
// and no message this file makes repeats any part of it that could be one.
//
// Every POST is signed and carries an idempotency key (README, "Notifications"):
//   X-Lifeboat-Timestamp: <unix seconds when this delivery was sent>
//   X-Lifeboat-Signature: v1=<hex HMAC-SHA256, keyed with the webhook secret, of "<timestamp>.<raw body>">
//   Idempotency-Key:      <hex SHA-256 of workflow id, run id, activity id and event>: the same on
//                         every retry of one notification, different for every other one
//   X-Lifeboat-Event:     the event name
// A redirect is not followed (the answer is a failure; its Location is never requested).
import { createHash, createHmac } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ErrorType } from '../workflows/types';
import { verdict } from './errors';
import type { ActivityIo } from './providers/provider';

export interface Notification {
  event:
    | 'drill.failed'
    | 'failover.started'
    | 'failover.approval_needed'
    | 'failover.finished'
    | 'readiness.problem'
    | 'fence.violation';
  database: string;
  runbook: string;
  /** One line a person reads first. */
  summary: string;
  outcome?: 'passed' | 'failed';
  reason?: string;
  rtoSeconds?: number | null;
  rpoSeconds?: number | null;
}

export interface NotifyConfig {
  webhookUrl?: string;
  /** The HMAC-SHA256 key every POST is signed with (LIFEBOAT_WEBHOOK_SECRET or LIFEBOAT_WEBHOOK_SECRET_FILE). */
  webhookSecret?: string;
  /** The Temporal UI's base URL, for a link to the run. */
  uiUrl?: string;
}

/** Which notification this is: the run and the activity sending it (the same for all its retries). */
export interface NotificationOrigin {
  workflowId?: string;
  runId?: string;
  namespace?: string;
  activityId?: string;
}

export const TIMESTAMP_HEADER = 'X-Lifeboat-Timestamp';
export const SIGNATURE_HEADER = 'X-Lifeboat-Signature';
export const EVENT_HEADER = 'X-Lifeboat-Event';
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/** The signature header's value for `body` sent at `timestamp` (unix seconds). */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Stable across retries of one notification (same run, same activity, same event); never random. */
export function idempotencyKey(origin: NotificationOrigin, event: string): string {
  return createHash('sha256')
    .update([origin.workflowId ?? '', origin.runId ?? '', origin.activityId ?? '', event].join('\n'))
    .digest('hex');
}

function originFromContext(): NotificationOrigin {
  const { workflowExecution, workflowNamespace, activityId } = Context.current().info;
  return {
    workflowId: workflowExecution?.workflowId,
    runId: workflowExecution?.runId,
    namespace: workflowNamespace,
    activityId,
  };
}

export async function sendNotification(
  config: NotifyConfig,
  note: Notification,
  io: Pick<ActivityIo, 'signal'>,
  origin: NotificationOrigin = originFromContext(),
): Promise<{ sent: boolean }> {
  if (!config.webhookUrl) return { sent: false };
  if (!config.webhookSecret) {
    throw verdict(
      ErrorType.InvalidInput,
      'the webhook has no signing key: set LIFEBOAT_WEBHOOK_SECRET or LIFEBOAT_WEBHOOK_SECRET_FILE on the worker',
    );
  }
  const hook = webhookTarget(config.webhookUrl);
  const link =
    config.uiUrl && origin.workflowId && origin.runId
      ? `${config.uiUrl}/namespaces/${encodeURIComponent(origin.namespace ?? 'default')}/workflows/${encodeURIComponent(origin.workflowId)}/${origin.runId}/history`
      : null;
  const body = JSON.stringify({
    text: `[lifeboat] ${note.summary}${note.reason ? `: ${note.reason}` : ''}${link ? ` <${link}|open in Temporal>` : ''}`,
    ...note,
    workflowId: origin.workflowId,
    runId: origin.runId,
    link,
  });
  const timestamp = Math.floor(Date.now() / 1000);
  const response = await fetch(hook.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'lifeboat',
      [TIMESTAMP_HEADER]: String(timestamp),
      [SIGNATURE_HEADER]: webhookSignature(config.webhookSecret, timestamp, body),
      [EVENT_HEADER]: note.event,
      [IDEMPOTENCY_HEADER]: idempotencyKey(origin, note.event),
      ...(hook.authorization && { authorization: hook.authorization }),
    },
    body,
    redirect: 'manual',
    signal: AbortSignal.any([io.signal, AbortSignal.timeout(10_000)]),
  }).catch((err: Error & { cause?: { code?: string; message?: string } }) => {
    // No cause is attached and the URL is not repeated: either may hold its token.
    const why = [err.message, err.cause?.code ?? err.cause?.message].filter(Boolean).join(': ');
    throw new Error(`the webhook did not answer: ${hook.scrub(why)}`);
  });
  await response.body?.cancel();
  if (response.ok) return { sent: true };
  if (response.status >= 300 && response.status < 400) {
    throw verdict(
      ErrorType.ProviderRejected,
      `the webhook answered HTTP ${response.status}, a redirect, which Lifeboat does not follow (its Location was not requested): set LIFEBOAT_WEBHOOK_URL to the final address`,
    );
  }
  if ([400, 401, 403, 404, 410].includes(response.status)) {
    throw verdict(
      ErrorType.ProviderRejected,
      `the webhook refused the notification with HTTP ${response.status}: check LIFEBOAT_WEBHOOK_URL`,
    );
  }
  throw new Error(`the webhook answered HTTP ${response.status}; retrying`);
}

/**
 * The address fetch is given (credentials in the URL moved to an Authorization header: fetch refuses
 * such a URL with an error that quotes it whole), and a scrubber for any text that might quote the URL
 * or a part of it that could be a secret: user, password, path segments, query values.
 */
export function webhookTarget(raw: string): { url: string; authorization?: string; scrub(text: string): string } {
  const url = new URL(raw);
  const secrets = new Set<string>([raw]);
  const add = (value: string) => {
    if (value.length < 4) return;
    secrets.add(value);
    try {
      secrets.add(decodeURIComponent(value));
    } catch {
      // not percent-encoded
    }
  };
  let authorization: string | undefined;
  if (url.username || url.password) {
    add(url.username);
    add(url.password);
    authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  secrets.add(url.toString());
  for (const segment of url.pathname.split('/')) add(segment);
  for (const [name, value] of url.searchParams) {
    add(value);
    add(encodeURIComponent(value));
    add(`${name}=${value}`);
  }
  const ordered = [...secrets].sort((a, b) => b.length - a.length);
  return {
    url: url.toString(),
    authorization,
    scrub: (text) => ordered.reduce((out, secret) => out.split(secret).join('[REDACTED]'), text),
  };
}

/**
 * A notification from outside any run (the worker's fence watch): the same webhook, signed the same
 * way, with no run link. `key` identifies the event for the receiver's idempotency (one per violation).
 */
export async function sendWorkerNotification(
  config: NotifyConfig,
  note: Notification,
  signal: AbortSignal,
  key: string,
): Promise<{ sent: boolean }> {
  return sendNotification(config, note, { signal }, { activityId: key });
}
