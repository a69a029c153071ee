// A directory as an object store: a mounted volume, an NFS share, or simply a disk in another
// region. An object is written under a temporary name, fsynced, then renamed into place.
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { checkKey, ObjectNotFound, type ObjectStore } from './store';

const PARTIAL = '.partial';

export class DirStore implements ObjectStore {
  readonly url: string;

  constructor(private readonly root: string) {
    this.url = `file://${root}`;
  }

  async put(key: string, body: Readable, signal?: AbortSignal): Promise<void> {
    const file = this.path(key);
    mkdirSync(dirname(file), { recursive: true });
    const partial = file + PARTIAL;
    try {
      await pipeline(body, createWriteStream(partial), ...(signal ? [{ signal }] : []));
      const handle = await open(partial, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      renameSync(partial, file);
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
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file + PARTIAL, text);
    renameSync(file + PARTIAL, file);
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
        else if (!entry.name.endsWith(PARTIAL)) keys.push(relative(this.root, full));
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
      rmSync(file + PARTIAL, { force: true });
      // Empty directories left behind are removed up to the root.
      for (let dir = dirname(file); dir.startsWith(this.root) && dir !== this.root; dir = dirname(dir)) {
        if (!existsSync(dir) || readdirSync(dir).length > 0) break;
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  private path(key: string): string {
    return join(this.root, checkKey(key));
  }
}
