// The name of an instance made to replace a node (a failback's new replica of the current primary).
import { createHash } from 'node:crypto';

/**
 * `<base>-lb<6 hex>`: the node's name without an earlier `-lb` suffix, then a hash of the source,
 * and of the node when it is itself a replacement. The same node and source give the same name on
 * every retry (a retry finds what the first attempt made). Each round of failover and failback
 * replaces a different node, so gets a new name: were the source alone hashed, a second round from
 * the same source would name the new replica after the node it replaces, which is still there
 * (fenced), and the failback would stop. `shape` makes a candidate a valid identifier for the cloud.
 */
export function replacementName(
  node: string,
  source: string,
  maxBase: number,
  shape: (name: string) => string = (name) => name,
): string {
  const original = node.replace(/-lb[0-9a-f]{6}$/, '');
  const salt = original === node ? source : `${source} replacing ${node}`;
  return shape(`${original.slice(0, maxBase)}-lb${createHash('sha256').update(salt).digest('hex').slice(0, 6)}`);
}
