// A directory as an object store: a mounted volume, an NFS share, or simply a disk in another
// region. An object is written under a temporary name of its own (never shared by two writers),
// fsynced, then renamed into place; objects are 0600 in 0700 directories (activities/private-files.ts).
import { createReadStream, createWriteStream, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { processAlive } from '../pg/tool-env';
import { fsyncFile, privateDir, PRIVATE_FILE, publishFile, tempPathFor, writeFileAtomic } from '../private-files';
import { checkKey, ObjectNotFound, type ObjectStore } from './store';

/** How the temporary files of writes in progress (or of writers that died) end: never listed as objects. */
const TEMP = '.tmp';
/** What earlier versions named theirs. */
const LEGACY_PARTIAL = '.partial';

export class DirStore implements ObjectStore {
  readonly url: string;

  constructor(private readonly root: string) {
    this.url = `file://${root}`;
  }

  async put(key: string, body: Readable, signal?: AbortSignal): Promise<void> {
    const file = this.path(key);
    this.dirFor(file);
    const partial = tempPathFor(file);
    try {
      await pipeline(
        body,
        createWriteStream(partial, { mode: PRIVATE_FILE, flags: 'wx' }),
        ...(signal ? [{ signal }] : []),
      );
      fsyncFile(partial);
      publishFile(partial, file);
    } catch (err) {
      rmSync(partial, { force: true });
      throw err;
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<Readable> {
    const file = this.path(key);
    if (!existsSync(file)) throw new ObjectNotFound(`no object ${key} in ${this.url}`);
    return createReadStream(file, { highWaterMark: 1 << 20, ...(signal && { signal }) });
  }

  async putText(key: string, text: string): Promise<void> {
    const file = this.path(key);
    this.dirFor(file);
    writeFileAtomic(file, text);
  }

  async getText(key: string): Promise<string | null> {
    const file = this.path(key);
    return existsSync(file) ? readFileSync(file, 'utf8') : null;
  }

  async list(prefix: string): Promise<string[]> {
    const start = prefix ? this.path(prefix.replace(/\/+$/, '')) : this.root;
    if (!existsSync(start)) return [];
    const keys: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (!entry.name.endsWith(TEMP) && !entry.name.endsWith(LEGACY_PARTIAL))
          keys.push(relative(this.root, full));
      }
    };
    if (statSync(start).isDirectory()) walk(start);
    else keys.push(relative(this.root, start));
    return keys;
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) {
      const file = this.path(key);
      rmSync(file, { force: true });
      rmSync(file + LEGACY_PARTIAL, { force: true });
      // Temporary files of this key's writers that died mid-write.
      const dir = dirname(file);
      const prefix = `.${basename(file)}.`;
      for (const name of existsSync(dir) ? readdirSync(dir) : []) {
        const pid =
          name.startsWith(prefix) && name.endsWith(TEMP) ? Number(name.slice(prefix.length).split('.')[0]) : NaN;
        if (pid && !processAlive(pid)) rmSync(join(dir, name), { force: true });
      }
      // Empty directories left behind are removed up to the root.
      for (let dir = dirname(file); dir.startsWith(this.root) && dir !== this.root; dir = dirname(dir)) {
        if (!existsSync(dir) || readdirSync(dir).length > 0) break;
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  /** The key's directory and those between it and the root, 0700 (the root itself is the operator's). */
  private dirFor(file: string): void {
    const dirs: string[] = [];
    for (let dir = dirname(file); dir !== this.root && dir.startsWith(this.root); dir = dirname(dir)) dirs.unshift(dir);
    if (!existsSync(this.root)) privateDir(this.root);
    for (const dir of dirs) privateDir(dir);
  }

  private path(key: string): string {
    return join(this.root, checkKey(key));
  }
}
