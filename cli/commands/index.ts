// Every `lifeboat` command, by the name typed on the command line; one file each.
import type { Command } from '../context';
import { approve } from './approve';
import { backup } from './backup';
import { backups } from './backups';
import { codecServer } from './codec-server';
import { dev } from './dev';
import { drill } from './drill';
import { failback } from './failback';
import { failover } from './failover';
import { plan } from './plan';
import { readiness } from './readiness';
import { report } from './report';
import { schedule } from './schedule';
import { status } from './status';
import { sweep } from './sweep';
import { traffic } from './traffic';
import { worker } from './worker';

export const COMMANDS: ReadonlyMap<string, Command> = new Map([
  ['dev', dev],
  ['worker', worker],
  ['plan', plan],
  ['drill', drill],
  ['backup', backup],
  ['readiness', readiness],
  ['backups', backups],
  ['failover', failover],
  ['failback', failback],
  ['approve', approve],
  ['status', status],
  ['sweep', sweep],
  ['traffic', traffic],
  ['schedule', schedule],
  ['codec-server', codecServer],
  ['report', report],
]);
