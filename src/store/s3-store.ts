/**
 * Chunks as objects in an S3 bucket: key = PREFIX + the chunk's 64 hex name. Endpoint, region and credentials
 * come only from the SDK's standard configuration (AWS_ENDPOINT_URL(_S3), AWS_REGION, AWS_ACCESS_KEY_ID,
 * AWS_PROFILE, ~/.aws/config and credentials): a vault records its bucket and prefix, never a secret.
 *
 * A put is a create-if-absent (`If-None-Match: *`): chunks are content-addressed, so a 412 means the same
 * bytes are there already (dedup). The SDK's standard retry strategy retries throttling, 5xx and transient
 * network errors only, with backoff; every request has a timeout, so an unreachable server is an error
 * after a bounded wait, never a hang. Failures become one-line S3Errors (SefsError: EIO to a FUSE caller).
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { ChunkNotFound, SefsError } from '../core/errors.js';
import type { ChunkStore } from './chunk-store.js';
import { MAX_CHUNK_FILE } from './disk-store.js';

/** Requests in flight at most (sockets per store). */
export const S3_CONCURRENCY = 32;
/** DeleteObjects takes at most this many keys. */
const DELETE_BATCH = 1000;
const NAME_RE = /^[0-9a-f]{64}$/;

/** Timeouts of one request (the SDK retries on top: at most S3_ATTEMPTS). Tunable for tests and slow links. */
const timeoutMs = (name: string, fallback: number): number => Number(process.env[name]) || fallback;
const REQUEST_TIMEOUT_MS = timeoutMs('SEFS_S3_REQUEST_TIMEOUT_MS', 30_000);
const CONNECT_TIMEOUT_MS = timeoutMs('SEFS_S3_CONNECT_TIMEOUT_MS', 5_000);
const S3_ATTEMPTS = 4;

export class S3Error extends SefsError {
  constructor(message: string) {
    super('S3Error', message);
  }
}

export interface S3Location {
  bucket: string;
  /** '' or ending in '/'. */
  prefix: string;
}

/** `s3://BUCKET[/PREFIX]`, or undefined when `spec` is not an s3:// address. */
export function parseS3Url(spec: string): S3Location | undefined {
  if (!spec.startsWith('s3://')) return undefined;
  const rest = spec.slice(5);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  let prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/^\/+/, '');
  if (prefix && !prefix.endsWith('/')) prefix += '/';
  // Bucket names: 3-63 of lower case letters, digits, dots and hyphens (what every S3 server accepts).
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new S3Error(`${spec}: not a valid bucket name (3-63 of a-z 0-9 . -)`);
  return { bucket, prefix };
}

export const s3Url = (loc: S3Location): string => `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix.replace(/\/$/, '')}` : ''}`;

/** One client per process: its sockets are shared by every store. */
let sharedClient: S3Client | undefined;
function client(): S3Client {
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const agentOptions = { keepAlive: true, maxSockets: S3_CONCURRENCY };
  // The SDK's notice about future Node versions would be a multi-line warning in every command's output and
  // the daemon's log; the version used here is pinned (package.json).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  sharedClient ??= new S3Client({
    // A custom endpoint (radosgw, MinIO...) is addressed path-style: no wildcard DNS needed.
    forcePathStyle: endpoint !== undefined,
    ...(process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || process.env.AWS_PROFILE ? {} : { region: 'us-east-1' }),
    // Bodies are Buffers of known length; checksums only where the API demands them (DeleteObjects).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: S3_ATTEMPTS,
    requestHandler: {
      requestTimeout: REQUEST_TIMEOUT_MS,
      connectionTimeout: CONNECT_TIMEOUT_MS,
      httpAgent: new Agent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    },
  });
  return sharedClient;
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const statusOf = (err: unknown): number | undefined => (err as SdkError)?.$metadata?.httpStatusCode;

/** The one line a user reads for a failed request: what is wrong and what to check. */
export function describeS3(err: unknown, what: string, loc: S3Location): S3Error {
  const e = (err ?? {}) as SdkError;
  const name = e.name ?? e.code ?? '';
  const status = statusOf(err);
  const where = `s3://${loc.bucket}`;
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL ?? 'the default AWS endpoint';
  let text: string;
  if (name === 'NoSuchBucket' || (status === 404 && what === 'checking the bucket')) text = `bucket ${loc.bucket} does not exist (sefs init --chunks ${where} creates it)`;
  else if (['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'CredentialsProviderError', 'ExpiredToken', 'InvalidToken'].includes(name)) text = `bad credentials for ${where} (${name}; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)`;
  else if (name === 'AccessDenied' || status === 403) text = `access denied to ${where} (check the credentials and the bucket's policy)`;
  else if (/Region is missing/i.test(e.message ?? '')) text = 'no S3 region configured (set AWS_REGION)';
  else if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'ETIMEDOUT'].includes(e.code ?? name) || name === 'TimeoutError' || name === 'RequestTimeout')
    text = `S3 endpoint ${endpoint} unreachable (${e.code ?? name})`;
  else text = `${name || 'error'}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(err)}`;
  return new S3Error(`S3 ${what}: ${text}`.replace(/\s*\n\s*/g, ' '));
}

/**
 * A response body read into one buffer of its announced length: the SDK's transformToByteArray gathers the
 * socket's pieces and concatenates them (a copy), and Buffer.from of its result copied once more. Without a
 * length (not sent by S3 servers for a GET, but allowed) the pieces are concatenated once.
 */
async function readBody(body: AsyncIterable<Uint8Array>, length: number | undefined, key: string): Promise<Buffer> {
  if (length === undefined) {
    const pieces: Uint8Array[] = [];
    let size = 0;
    for await (const piece of body) {
      size += piece.length;
      if (size > MAX_CHUNK_FILE) throw new S3Error(`S3 object ${key} is over ${MAX_CHUNK_FILE} bytes: too large for a chunk`);
      pieces.push(piece);
    }
    return Buffer.concat(pieces, size);
  }
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for await (const piece of body) {
    if (at + piece.length > length) throw new S3Error(`S3 object ${key}: more bytes than its length (${length})`);
    out.set(piece, at);
    at += piece.length;
  }
  if (at !== length) throw new S3Error(`S3 object ${key}: ${at} of ${length} bytes received`);
  return out;
}

export interface S3Object {
  hex: string;
  size: number;
  mtimeMs: number;
}

/**
 * Requests in flight, at most S3_CONCURRENCY (the agent's sockets) for the whole process: a request queued in
 * the HTTP agent for a socket would spend its connect timeout waiting there and fail for nothing.
 */
class Slots {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    while (this.free === 0) await new Promise<void>((wake) => this.waiters.push(wake));
    this.free--;
    try {
      return await task();
    } finally {
      this.free++;
      this.waiters.shift()?.();
    }
  }
}
const slots = new Slots(S3_CONCURRENCY);

export class S3Store implements ChunkStore {
  private readonly s3 = client();
  /** `send`, within the process's request slots. */
  private readonly request = ((command: Parameters<S3Client['send']>[0]) => slots.run(() => this.s3.send(command))) as S3Client['send'];

  constructor(readonly loc: S3Location) {}

  get url(): string {
    return s3Url(this.loc);
  }

  keyOf(name: Buffer | string): string {
    return this.loc.prefix + (typeof name === 'string' ? name : name.toString('hex'));
  }

  /** Run a request, its failure told as one line about `what`. */
  private async described<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw describeS3(err, what, this.loc);
    }
  }

  /** Create the bucket when it is missing (init); a bucket that exists and is ours is fine. */
  async ensureBucket(): Promise<boolean> {
    const Bucket = this.loc.bucket;
    try {
      await this.request(new HeadBucketCommand({ Bucket }));
      return false;
    } catch (err) {
      if (statusOf(err) !== 404 && (err as SdkError).name !== 'NotFound' && (err as SdkError).name !== 'NoSuchBucket') throw describeS3(err, 'checking the bucket', this.loc);
    }
    await this.described('creating the bucket', () => this.request(new CreateBucketCommand({ Bucket }))).catch((err: S3Error) => {
      if (!/BucketAlreadyOwnedByYou/.test(err.message)) throw err;
    });
    return true;
  }

  /** Fails with a one-line error when the bucket cannot be reached (mount, stats, gc check this first). */
  async check(): Promise<void> {
    await this.described('checking the bucket', () => this.request(new HeadBucketCommand({ Bucket: this.loc.bucket })));
  }

  async get(name: Buffer): Promise<Buffer> {
    return this.fetch(name);
  }

  /** Bytes [start, end) of a chunk (fewer past its end), one ranged GET: a small read's pieces (core/pieces.ts). */
  async getRange(name: Buffer, start: number, end: number): Promise<Buffer> {
    return this.fetch(name, { start, end });
  }

  private async fetch(name: Buffer, range?: { start: number; end: number }): Promise<Buffer> {
    const Key = this.keyOf(name);
    if (range && range.end <= range.start) return Buffer.alloc(0);
    try {
      // The slot covers the body too: its socket is busy until the body is read.
      return await slots.run(async () => {
        const Range = range && `bytes=${range.start}-${range.end - 1}`;
        const out = await this.s3.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key, Range }));
        if ((out.ContentLength ?? 0) > MAX_CHUNK_FILE) throw new S3Error(`S3 object ${Key} is ${out.ContentLength} bytes: too large for a chunk`);
        return await readBody(out.Body as unknown as AsyncIterable<Uint8Array>, out.ContentLength, Key);
      });
    } catch (err) {
      if (err instanceof S3Error) throw err;
      if ((err as SdkError).name === 'NoSuchKey' || statusOf(err) === 404) throw ChunkNotFound.of(name);
      // A range wholly past the object's end: no bytes (the caller finds the chunk short).
      if (range && statusOf(err) === 416) return Buffer.alloc(0);
      throw describeS3(err, `reading chunk ${name.toString('hex')}`, this.loc);
    }
  }

  async put(name: Buffer, content: Buffer): Promise<void> {
    try {
      await this.request(new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.keyOf(name), Body: content, IfNoneMatch: '*' }));
    } catch (err) {
      // Already there: the same bytes (the key is their hash). 409: a concurrent conditional put of it.
      if (statusOf(err) === 412 || statusOf(err) === 409) return;
      throw describeS3(err, `storing chunk ${name.toString('hex')}`, this.loc);
    }
  }

  async has(name: Buffer): Promise<boolean> {
    try {
      await this.request(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: this.keyOf(name) }));
      return true;
    } catch (err) {
      if (statusOf(err) === 404 || (err as SdkError).name === 'NotFound') return false;
      throw describeS3(err, `looking up chunk ${name.toString('hex')}`, this.loc);
    }
  }

  async delete(name: Buffer): Promise<void> {
    await this.described(`deleting chunk ${name.toString('hex')}`, () => this.request(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key: this.keyOf(name) })));
  }

  /** Delete many chunks with DeleteObjects, a thousand keys a request (a missing key counts as deleted). */
  async deleteMany(hexes: string[]): Promise<void> {
    const all = hexes;
    for (let i = 0; i < all.length; i += DELETE_BATCH) {
      const batch = all.slice(i, i + DELETE_BATCH);
      const out = await this.described('deleting chunks', () =>
        this.request(new DeleteObjectsCommand({ Bucket: this.loc.bucket, Delete: { Objects: batch.map((hex) => ({ Key: this.keyOf(hex) })), Quiet: true } })),
      );
      const errors = out.Errors ?? [];
      if (errors.length > 0) throw new S3Error(`S3 deleting chunks: ${errors.length} of ${batch.length} failed (first: ${errors[0]!.Key}: ${errors[0]!.Code} ${errors[0]!.Message ?? ''})`);
    }
  }

  async sync(): Promise<void> {}

  /** Every chunk object under the prefix, with its size and time (other keys under the prefix are ignored). */
  async *objects(): AsyncGenerator<S3Object> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.described('listing chunks', () =>
        this.request(new ListObjectsV2Command({ Bucket: this.loc.bucket, Prefix: this.loc.prefix, ContinuationToken, MaxKeys: 1000 })),
      );
      for (const o of page.Contents ?? []) {
        const hex = o.Key!.slice(this.loc.prefix.length);
        if (NAME_RE.test(hex)) yield { hex, size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async *names(): AsyncIterable<Buffer> {
    for await (const o of this.objects()) yield Buffer.from(o.hex, 'hex');
  }
}
