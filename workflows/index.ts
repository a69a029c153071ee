// Every runbook, for the worker's workflowsPath.
export { drill, drillProgressQuery } from './drill';
export { backup, backupProgressQuery } from './backup';
