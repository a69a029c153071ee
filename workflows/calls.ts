// How a runbook calls an activity: in the region it acts on (one task queue per region), with a
// named options preset, and a one-line summary that the Temporal UI shows against the event.
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { regionTaskQueue, type RegionSpec } from './types';

type Input<K extends keyof Activities> = Parameters<Activities[K]>[0];
type Output<K extends keyof Activities> = Awaited<ReturnType<Activities[K]>>;

export function callIn<K extends keyof Activities>(
  region: RegionSpec,
  preset: ActivityOptions,
  name: K,
  summary: string,
  input: Input<K>,
): Promise<Output<K>> {
  const activities = proxyActivities<Activities>(preset);
  const fn = activities[name] as unknown as {
    executeWithOptions(options: ActivityOptions, args: [Input<K>]): Promise<Output<K>>;
  };
  return fn.executeWithOptions({ taskQueue: regionTaskQueue(region.name), summary }, [input]);
}
