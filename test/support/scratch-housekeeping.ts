// The local provider's background scratch work, as its directories show it to any process (the
// worker doing it may be another one): busy while a torn-down instance is being deleted or a spare
// made; spareReady once a spare waits. For what must not compete with that work, such as the drill
// benchmark, and for the test of that work.
import { existsSync, readdirSync } from 'node:fs';
import { scratchWorkDirs } from '../../activities/providers/local';

export function scratchHousekeeping(home: string, region: string): { busy: boolean; spareReady: boolean } {
  const { trash, spares } = scratchWorkDirs(home, region);
  const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
  const spare = entries(spares);
  return {
    busy: entries(trash).length > 0 || spare.some((name) => name.startsWith('.building-')),
    spareReady: spare.some((name) => !name.startsWith('.')),
  };
}
