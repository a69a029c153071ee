// Notifications: one JSON POST to the webhook the worker is configured with (LIFEBOAT_WEBHOOK_URL),
// Slack-compatible (`text`) with the structured fields beside it for any other receiver. The URL often
// carries a token, so it lives only in the worker's environment: never in history, logs or reports.
import { Context } from '@temporalio/activity';
import { ErrorType } from '../workflows/types';
import { verdict } from './errors';
import type { ActivityIo } from './providers/provider';

export interface Notification {
  event: 'drill.failed' | 'failover.started' | 'failover.approval_needed' | 'failover.finished' | 'readiness.problem' | 'fence.violation';
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
  /** The Temporal UI's base URL, for a link to the run. */
  uiUrl?: string;
}

export async function sendNotification(config: NotifyConfig, note: Notification, io: ActivityIo): Promise<{ sent: boolean }> {
  if (!config.webhookUrl) return { sent: false };
  const { workflowExecution } = Context.current().info;
  const namespace = Context.current().info.workflowNamespace;
  const link =
    config.uiUrl && workflowExecution
      ? `${config.uiUrl}/namespaces/${encodeURIComponent(namespace ?? 'default')}/workflows/${encodeURIComponent(workflowExecution.workflowId)}/${workflowExecution.runId}/history`
      : null;
  const body = {
    text: `[lifeboat] ${note.summary}${note.reason ? `: ${note.reason}` : ''}${link ? ` <${link}|open in Temporal>` : ''}`,
    ...note,
    workflowId: workflowExecution?.workflowId,
    runId: workflowExecution?.runId,
    link,
  };
  return deliver(config.webhookUrl, body, io.signal);
}

/** A notification from outside any run (the worker's fence watch): the same webhook, no run link. */
export async function sendWorkerNotification(config: NotifyConfig, note: Notification, signal: AbortSignal): Promise<{ sent: boolean }> {
  if (!config.webhookUrl) return { sent: false };
  return deliver(config.webhookUrl, { text: `[lifeboat] ${note.summary}${note.reason ? `: ${note.reason}` : ''}`, ...note }, signal);
}

async function deliver(webhookUrl: string, body: Record<string, unknown>, signal: AbortSignal): Promise<{ sent: boolean }> {
  const response = await fetch(webhookUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]),
  }).catch((err: Error) => {
    // The URL is not repeated: it may hold a token.
    throw new Error(`the webhook did not answer: ${err.message}`);
  });
  await response.body?.cancel();
  if (response.ok) return { sent: true };
  if ([400, 401, 403, 404, 410].includes(response.status)) {
    throw verdict(ErrorType.ProviderRejected, `the webhook refused the notification with HTTP ${response.status}: check LIFEBOAT_WEBHOOK_URL`);
  }
  throw new Error(`the webhook answered HTTP ${response.status}; retrying`);
}
