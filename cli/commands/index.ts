// Every `lifeboat` command, by the name typed on the command line; one file each, loaded only when
// it runs: a command's imports (the Temporal client, the worker, the dev stack) cost the others
// nothing, so `lifeboat plan validate` or `--help` starts without the SDK.
import type { Command } from '../context';

export const COMMANDS: ReadonlyMap<string, () => Promise<Command>> = new Map([
  ['dev', async () => (await import('./dev')).dev],
  ['worker', async () => (await import('./worker')).worker],
  ['plan', async () => (await import('./plan')).plan],
  ['drill', async () => (await import('./drill')).drill],
  ['backup', async () => (await import('./backup')).backup],
  ['readiness', async () => (await import('./readiness')).readiness],
  ['backups', async () => (await import('./backups')).backups],
  ['failover', async () => (await import('./failover')).failover],
  ['failback', async () => (await import('./failback')).failback],
  ['approve', async () => (await import('./approve')).approve],
  ['status', async () => (await import('./status')).status],
  ['sweep', async () => (await import('./sweep')).sweep],
  ['traffic', async () => (await import('./traffic')).traffic],
  ['schedule', async () => (await import('./schedule')).schedule],
  ['codec-server', async () => (await import('./codec-server')).codecServer],
  ['report', async () => (await import('./report')).report],
]);
