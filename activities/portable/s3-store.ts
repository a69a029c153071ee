// An S3 bucket (or a prefix in one) as an object store. A put is a multipart upload read from the
// stream one 8 MiB part at a time: the object appears only when CompleteMultipartUpload succeeds, so
// no half object is ever visible, and any failure or abort aborts the upload so its parts are not
// kept (should that call fail too, the bucket's lifecycle rule for incomplete uploads is the backstop).
// Each part carries a CRC32 that S3 checks on receipt.
//
// Credentials come from the standard AWS chain and AWS_ENDPOINT_URL is honoured, both by the SDK.
import { addAbortSignal, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import type { StoreSpec } from '../../workflows/types';
import { BucketStore, listScope, ObjectNotFound, type ObjectStore } from './store';

/** S3's part size floor is 5 MiB; one part is all a put ever holds in memory. */
export const PART_SIZE = 8 << 20;

type S3Spec = Extract<StoreSpec, { kind: 's3' }>;

export class S3Store extends BucketStore implements ObjectStore {
  private readonly client: S3Client;

  constructor(spec: S3Spec, client?: S3Client) {
    super(spec);
    this.client = client ?? newClient(spec.awsRegion);
  }

  async put(key: string, body: Readable, signal?: AbortSignal): Promise<void> {
    const target = { Bucket: this.spec.bucket, Key: this.key(key) };
    const options = { abortSignal: signal };
    let upload: (typeof target & { UploadId: string }) | undefined;
    const completed: CompletedPart[] = [];
    try {
      for await (const part of readParts(signal ? addAbortSignal(signal, body) : body)) {
        if (!upload) {
          // A short first part is the whole object: one PutObject does.
          if (part.length < PART_SIZE) return await this.putOne(target, part, signal);
          const created = await this.client.send(
            new CreateMultipartUploadCommand({ ...target, ChecksumAlgorithm: 'CRC32' }),
            options,
          );
          upload = { ...target, UploadId: created.UploadId! };
        }
        const PartNumber = completed.length + 1;
        const sent = await this.client.send(
          new UploadPartCommand({ ...upload, PartNumber, Body: part, ChecksumAlgorithm: 'CRC32' }),
          options,
        );
        completed.push({ PartNumber, ETag: sent.ETag!, ChecksumCRC32: sent.ChecksumCRC32! });
      }
      if (!upload) return await this.putOne(target, Buffer.alloc(0), signal);
      signal?.throwIfAborted();
      await this.client.send(
        new CompleteMultipartUploadCommand({ ...upload, MultipartUpload: { Parts: completed } }),
        options,
      );
    } catch (err) {
      // Not under the caller's signal: it may be the very reason we are here.
      if (upload) await this.client.send(new AbortMultipartUploadCommand(upload)).catch(() => undefined);
      throw err;
    }
  }

  async get(key: string, signal?: AbortSignal): Promise<Readable> {
    try {
      const got = await this.client.send(new GetObjectCommand({ Bucket: this.spec.bucket, Key: this.key(key) }), {
        abortSignal: signal,
      });
      // In Node the SDK's body is the HTTP response itself.
      const body = got.Body as Readable;
      return signal ? addAbortSignal(signal, body) : body;
    } catch (err) {
      if (isMissing(err)) throw new ObjectNotFound(`no object ${key} in ${this.url}`);
      throw err;
    }
  }

  async putText(key: string, text: string): Promise<void> {
    await this.putOne(
      { Bucket: this.spec.bucket, Key: this.key(key), ContentType: 'text/plain; charset=utf-8' },
      Buffer.from(text, 'utf8'),
    );
  }

  async getText(key: string): Promise<string | null> {
    try {
      const got = await this.client.send(new GetObjectCommand({ Bucket: this.spec.bucket, Key: this.key(key) }));
      return await got.Body!.transformToString('utf8');
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const scope = listScope(this.spec.prefix, prefix);
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.spec.bucket, Prefix: scope.query, ContinuationToken }),
      );
      for (const object of page.Contents ?? []) {
        const key = scope.keyOf(object.Key!);
        if (key !== null) keys.push(key);
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return keys;
  }

  async delete(keys: string[]): Promise<void> {
    // S3 answers a delete of a missing key with success.
    for (const key of keys)
      await this.client.send(new DeleteObjectCommand({ Bucket: this.spec.bucket, Key: this.key(key) }));
  }

  private async putOne(
    target: { Bucket: string; Key: string; ContentType?: string },
    body: Buffer,
    signal?: AbortSignal,
  ): Promise<void> {
    // ContentLength spelled out: the SDK cannot tell an empty body from a stream of unknown length.
    await this.client.send(
      new PutObjectCommand({ ...target, Body: body, ContentLength: body.length, ChecksumAlgorithm: 'CRC32' }),
      { abortSignal: signal },
    );
  }
}

function newClient(awsRegion: string): S3Client {
  return new S3Client({
    region: awsRegion,
    // The SDK's own retries stay on here (unlike the RDS client): a retried part costs 8 MiB, a
    // retried activity would send the whole backup again.
    // A hung request must fail rather than outlast the activity; the time runs until the answer's
    // headers, so it covers sending one part. Reading a body has no limit: a reader may pause.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000, throwOnRequestTimeout: true },
    // An endpoint override (the SDK reads AWS_ENDPOINT_URL itself) means an S3-compatible server such
    // as MinIO or moto, reached by address: bucket names go in the path, not the host name.
    forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL),
  });
}

/** The stream cut into PART_SIZE buffers; only the last may be shorter. Each is filled in place. */
async function* readParts(body: Readable): AsyncGenerator<Buffer, void, undefined> {
  let part = Buffer.allocUnsafe(PART_SIZE);
  let size = 0;
  for await (const chunk of body) {
    const data: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    for (let at = 0; at < data.length;) {
      const copied = data.copy(part, size, at);
      at += copied;
      size += copied;
      if (size === PART_SIZE) {
        yield part;
        part = Buffer.allocUnsafe(PART_SIZE);
        size = 0;
      }
    }
  }
  if (size > 0) yield part.subarray(0, size);
}

function isMissing(err: unknown): boolean {
  return err instanceof Error && (err.name === 'NoSuchKey' || err.name === 'NotFound');
}
