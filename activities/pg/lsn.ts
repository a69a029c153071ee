// WAL positions ('16/B374D848') as numbers, for comparing and stepping past them.

/** The position one byte past `lsn`: a standby whose replay reached it has replayed the record at `lsn`. */
export function lsnAfter(lsn: string): string {
  const value = parseLsn(lsn) + 1n;
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) throw new Error(`not a WAL position: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}
