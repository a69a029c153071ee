// The payload codec (worker/codec.ts): AES-256-GCM over whole payloads, key ids in the metadata,
// rotation by prepending a key, and key material validated at the edge and never printed.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  decodeFromPayloadsAtIndex,
  encodeErrorToFailure,
  encodeToPayloads,
  loadDataConverter,
} from '@temporalio/common/lib/internal-non-workflow';
import {
  AesGcmCodec,
  CodecConfigError,
  CodecKeys,
  codecSettings,
  lifeboatDataConverter,
  PayloadDecryptError,
} from '../../worker/codec';

const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');
const SECRET = 'card 4111-1111-1111-1111 of alice@example.com';

const dir = mkdtempSync(join(tmpdir(), 'lifeboat-codec-'));
let files = 0;
function keyFile(text: string, mode = 0o600): string {
  const path = join(dir, `keys-${files++}`);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

const meta = (payload: Payload, key: string) => Buffer.from(payload.metadata![key]!).toString('utf8');
const plain = (value: unknown) => defaultPayloadConverter.toPayload(value)!;

describe('AesGcmCodec', () => {
  const keys = CodecKeys.parse(`k1 ${KEY_A}\n`, 'test');
  const codec = new AesGcmCodec(keys);

  test('round-trips a payload, metadata included, and hides the data', async () => {
    const original = plain({ note: SECRET });
    const [sealed] = await codec.encode([original]);
    expect(Buffer.from(sealed!.data!).toString('latin1')).not.toContain('alice');
    expect(meta(sealed!, 'encoding')).toBe('binary/encrypted');
    expect(meta(sealed!, 'encryption-key-id')).toBe('k1');
    expect(meta(sealed!, 'encryption-cipher')).toBe('AES256-GCM');
    const [opened] = await codec.decode([sealed!]);
    expect(meta(opened!, 'encoding')).toBe('json/plain');
    expect(defaultPayloadConverter.fromPayload(opened!)).toEqual({ note: SECRET });
  });

  test('each encode uses a fresh IV: the same payload twice gives different ciphertexts', async () => {
    const [a, b] = await codec.encode([plain(SECRET), plain(SECRET)]);
    expect(Buffer.from(a!.data!).subarray(0, 12).equals(Buffer.from(b!.data!).subarray(0, 12))).toBe(false);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  test('payloads that are not encrypted pass through unchanged (histories from before the codec)', async () => {
    const original = plain({ old: true });
    const [out] = await codec.decode([original]);
    expect(out).toBe(original);
  });

  test('rotation: data sealed with the old key opens after a new key is prepended; new data uses the new key', async () => {
    const [old] = await codec.encode([plain(SECRET)]);
    const rotated = new AesGcmCodec(CodecKeys.fromFile(keyFile(`# rotated\nk2 ${KEY_B}\nk1 ${KEY_A}\n`)));
    const [opened] = await rotated.decode([old!]);
    expect(defaultPayloadConverter.fromPayload(opened!)).toBe(SECRET);
    const [fresh] = await rotated.encode([plain('new')]);
    expect(meta(fresh!, 'encryption-key-id')).toBe('k2');
    // A process that has not got the new key yet cannot read it, and says which key it lacks.
    await expect(codec.decode([fresh!])).rejects.toThrow(PayloadDecryptError);
  });

  test('an unknown key id names that id and the ids this process has, never key material', async () => {
    const [sealed] = await new AesGcmCodec(CodecKeys.parse(`gone ${KEY_B}`, 'old-file')).encode([plain(SECRET)]);
    const err = await codec.decode([sealed!]).catch((e: Error) => e);
    expect(err).toBeInstanceOf(PayloadDecryptError);
    expect((err as Error).message).toContain('"gone"');
    expect((err as Error).message).toContain('"k1"');
    expect((err as Error).message).not.toContain(KEY_A);
    expect((err as Error).message).not.toContain(KEY_B);
  });

  test('tampering fails authentication: a flipped ciphertext byte, or a payload relabelled to another key id', async () => {
    const [sealed] = await codec.encode([plain(SECRET)]);
    const data = Buffer.from(sealed!.data!);
    data[20] = data[20]! ^ 0xff;
    await expect(codec.decode([{ ...sealed!, data }])).rejects.toThrow(/failed authentication/);
    // Same key bytes under two ids: the id is bound as associated data, so a relabel is caught.
    const twin = new AesGcmCodec(CodecKeys.parse(`k1 ${KEY_A}\nk1b ${KEY_A}`, 'twins'));
    const relabelled = { ...sealed!, metadata: { ...sealed!.metadata, 'encryption-key-id': Buffer.from('k1b') } };
    await expect(twin.decode([relabelled])).rejects.toThrow(/failed authentication/);
    await expect(codec.decode([{ ...sealed!, data: data.subarray(0, 10) }])).rejects.toThrow(/too short/);
  });
});

describe('key sources are validated at the edge', () => {
  test('a key file open to group or others is refused, naming the file and its mode', () => {
    const path = keyFile(`k1 ${KEY_A}\n`, 0o644);
    expect(() => CodecKeys.fromFile(path)).toThrow(CodecConfigError);
    expect(() => CodecKeys.fromFile(path)).toThrow(`${path} has mode 0644`);
    expect(() => CodecKeys.fromFile(keyFile(`k1 ${KEY_A}\n`, 0o640))).toThrow(/mode 0640/);
    expect(CodecKeys.fromFile(keyFile(`k1 ${KEY_A}\n`, 0o400)).ids).toEqual(['k1']);
  });

  test.each([
    ['a 16-byte key', `k1 ${Buffer.alloc(16).toString('base64')}`, /"k1" is 16 bytes; AES-256 needs exactly 32/],
    ['a 33-byte key', `k1 ${Buffer.alloc(33).toString('base64')}`, /33 bytes/],
    ['bad base64', 'k1 not*base64!', /not base64/],
    ['a duplicate id', `k1 ${KEY_A}\nk1 ${KEY_B}`, /line 2: key id "k1" appears twice/],
    ['a line with three fields', `k1 ${KEY_A} extra`, /line 1: expected "<key-id> <base64 key>"/],
    ['no key at all', '# only a comment\n', /holds no key/],
    ['a bad key id', `k/1 ${KEY_A}`, /key id "k\/1" is not valid/],
  ])('%s is refused with a message that names it', (_what, text, message) => {
    expect(() => CodecKeys.parse(text, 'keys.txt')).toThrow(message);
    try {
      CodecKeys.parse(text, 'keys.txt');
    } catch (err) {
      expect((err as Error).message).toContain('keys.txt');
      expect((err as Error).message).not.toContain(KEY_A);
      expect((err as Error).message).not.toContain(KEY_B);
    }
  });

  test('LIFEBOAT_CODEC_KEY holds one key; both sources at once, or a short token, are refused', () => {
    const home = mkdtempSync(join(tmpdir(), 'lifeboat-codec-home-'));
    const settings = codecSettings({ LIFEBOAT_CODEC_KEY: `env1:${KEY_A}` }, home);
    expect(settings.keys?.ids).toEqual(['env1']);
    expect(settings.port).toBe(8234);
    expect(() => codecSettings({ LIFEBOAT_CODEC_KEY: `env1${KEY_A}` }, home)).toThrow(
      /LIFEBOAT_CODEC_KEY: expected "<key-id>:<base64/,
    );
    expect(() => codecSettings({ LIFEBOAT_CODEC_KEY: `env1:${KEY_A}`, LIFEBOAT_CODEC_KEYS_FILE: '/x' }, home)).toThrow(
      /both set/,
    );
    expect(() => codecSettings({ LIFEBOAT_CODEC_SERVER_TOKEN: 'short' }, home)).toThrow(/at least 16/);
    expect(() => codecSettings({ LIFEBOAT_CODEC_PORT: 'http' }, home)).toThrow(
      /LIFEBOAT_CODEC_PORT=http is not a port/,
    );
    // No keys configured: no codec, payloads stay plain.
    expect(codecSettings({}, home).keys).toBeUndefined();
    expect(lifeboatDataConverter(undefined)).toBeUndefined();
    // The home's key file (what `dev up` makes) is found without any variable.
    writeFileSync(join(home, 'codec-keys'), `dev-1 ${KEY_B}\n`, { mode: 0o600 });
    expect(codecSettings({}, home).keys?.ids).toEqual(['dev-1']);
  });

  test('printing, logging or JSON-encoding the keys shows ids and source only', () => {
    const keys = CodecKeys.parse(`k1 ${KEY_A}\nk0 ${KEY_B}`, 'file.keys');
    for (const text of [
      inspect(keys),
      JSON.stringify(keys),
      String(keys),
      inspect({ nested: { keys } }, { depth: 5 }),
    ]) {
      expect(text).toContain('k1');
      expect(text).not.toContain(KEY_A);
      expect(text).not.toContain(KEY_B);
    }
  });
});

describe('lifeboatDataConverter', () => {
  const converter = loadDataConverter(lifeboatDataConverter(CodecKeys.parse(`k1 ${KEY_A}`, 'test')));

  test('values go out encrypted and come back', async () => {
    const payloads = await encodeToPayloads(converter, { sample: SECRET });
    expect(meta(payloads![0]!, 'encoding')).toBe('binary/encrypted');
    expect(await decodeFromPayloadsAtIndex(converter, 0, payloads!)).toEqual({ sample: SECRET });
  });

  test('failure messages (a database error can quote the data) are encrypted; the error type stays readable', async () => {
    const failure = await encodeErrorToFailure(
      converter,
      ApplicationFailure.nonRetryable(`duplicate key: ${SECRET}`, 'LifeboatCheckFailed'),
    );
    expect(failure.message).toBe('Encoded failure');
    expect(failure.applicationFailureInfo?.type).toBe('LifeboatCheckFailed');
    expect(JSON.stringify(failure)).not.toContain('alice');
    expect(Buffer.from(failure.encodedAttributes!.data!).toString('latin1')).not.toContain('alice');
  });
});
