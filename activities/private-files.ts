// Files Lifeboat keeps on disk (backups, manifests, staged dumps, the canary ledger, topology records,
// markers): private to the worker's OS user (0600 files in 0700 directories), and written so that a
// reader sees the old content or the new, never half of either, whatever crashes when.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const PRIVATE_FILE = 0o600;
export const PRIVATE_DIR = 0o700;

/** Makes `dir` (and any missing parent, each 0700) and sets `dir` itself to `mode` (0700) if it was there already. */
export function privateDir(dir: string, mode = PRIVATE_DIR): string {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
  chmodSync(dir, mode);
  return dir;
}

/**
 * A temporary name beside `file` that no other writer uses: this process's pid and a random suffix,
 * so two attempts of one activity (in this worker or another, even overlapping after a timeout) never
 * write into each other's file. It starts with a dot and ends in `.tmp`: listings skip it.
 */
export function tempPathFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Writes `data` to `file` atomically and durably: a unique temporary file beside it (created 0600,
 * never shared), fsynced, renamed over `file`, and the directory fsynced so the rename itself survives
 * a power cut. A crash at any point leaves the previous `file` as it was.
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode = PRIVATE_FILE): void {
  const tmp = tempPathFor(file);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(file));
}

/** fsync of a file already written (e.g. a streamed dump), before it is renamed into place. */
export function fsyncFile(file: string): void {
  fsyncPath(file);
}

/** fsync of a directory: makes the creations and renames in it durable. */
export function fsyncDir(dir: string): void {
  fsyncPath(dir);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Renames a fully written (and fsynced) file into place and makes the rename durable. */
export function publishFile(tmp: string, file: string): void {
  renameSync(tmp, file);
  fsyncDir(dirname(file));
}
