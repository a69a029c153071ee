// Every runbook, for the worker's workflowsPath.
export { drill, drillProgressQuery } from './drill';
export { backup, backupProgressQuery } from './backup';
export { failover, failoverProgressQuery, approveFailoverUpdate } from './failover';
export { failback, failbackProgressQuery } from './failback';
export { crossCloudFailover, crossCloudProgressQuery } from './cross-cloud';
export { fleetDrill, fleetDrillProgressQuery } from './fleet';
export { readiness, readinessProgressQuery } from './readiness';
