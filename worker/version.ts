// Which code a runbook ran: the package version and the git commit of the checkout the worker runs
// from. It becomes the worker's deployment build ID, so every workflow task in the history says which
// build made it, and the runbook copies it into its report (evidence: "this drill ran runbook X").
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { childEnv } from '../activities/pg/process';

/** `lifeboat@0.1.0+g4501a81c2d3e`, `+…-dirty` with uncommitted changes; without git, just the package. */
export function runbookVersion(projectRoot: string): string {
  const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  const base = `${pkg.name}@${pkg.version}`;
  const git = (...args: string[]) =>
    spawnSync('git', ['-C', projectRoot, ...args], {
      encoding: 'utf8',
      timeout: 5000,
      env: childEnv({ HOME: process.env.HOME }),
    });
  const head = git('rev-parse', '--short=12', 'HEAD');
  if (head.status !== 0 || !head.stdout.trim()) return base;
  // Tracked files only: build output and local state are not the runbook.
  const dirty = git('status', '--porcelain', '--untracked-files=no').stdout.trim() !== '';
  return `${base}+g${head.stdout.trim()}${dirty ? '-dirty' : ''}`;
}
