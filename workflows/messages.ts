// Messages to the failover and failback runbooks, shared by both and by the CLI.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Progress } from './steps';
import type { Approval } from './types';

/** Approve a waiting failover or failback; the validator rejects a wrong database or a stale plan. */
export const approveFailoverUpdate = defineUpdate<{ accepted: boolean; workflowId: string }, [Approval]>('approve');

export const failoverProgressQuery = defineQuery<Progress>('failoverProgress');
export const failbackProgressQuery = defineQuery<Progress>('failbackProgress');
/** Named after the workflow type, as the CLI's progress view asks for it. */
export const crossCloudProgressQuery = defineQuery<Progress>('crossCloudFailoverProgress');
