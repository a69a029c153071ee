// A reverse proxy in front of moto that makes AWS misbehave on purpose: throttling and 5xx answers,
// by rule, for chosen Query API actions. Everything else is forwarded untouched (method, path,
// headers, body), so what reaches moto is what the SDK sent. It counts what it saw, so a test can
// tell a retry Temporal made (one more request, one more activity attempt) from one the SDK made
// inside a single attempt (one more request, the same attempt).
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'throttling' | 'unavailable';

export interface FaultRule {
  /** The Query API action (the form body's Action field), or '*' for every action. */
  action: string;
  fault: Fault;
  /** Fail the first `first` matching requests, then let the rest through. */
  first?: number;
  /** Fail each matching request with this probability (a seeded draw per rule and action). */
  rate?: number;
  /** Narrows the rule further, e.g. to one region or one identifier. */
  when?: (req: ProxiedRequest) => boolean;
}

export interface ProxiedRequest {
  action: string;
  /** The AWS region from the SigV4 credential scope, or '' for an unsigned request. */
  region: string;
  params: URLSearchParams;
}

export interface FaultProxy {
  /** The URL to give the SDK as its endpoint. */
  endpoint: string;
  /** Requests seen per action, faults included. */
  counts: Record<string, number>;
  /** Faults injected per action. */
  injected: Record<string, number>;
  /** Every request in arrival order, with the fault it got if any. */
  log: { action: string; region: string; fault?: Fault }[];
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Seeds the generators behind `rate` rules, so a failing run can be repeated. */
  seed?: number;
}

export async function startFaultProxy(target: string, rules: FaultRule[], options: FaultProxyOptions = {}): Promise<FaultProxy> {
  for (const rule of rules) {
    if ((rule.first === undefined) === (rule.rate === undefined)) {
      throw new Error(`fault rule for ${rule.action} sets ${rule.first === undefined ? 'neither' : 'both'} of first and rate; expected exactly one`);
    }
  }
  const upstream = new URL(target);
  // How many requests each rule has matched so far: `first` counts per rule, not per action.
  const matched = rules.map(() => 0);
  // One generator per rule and action: the n-th DescribeDBSnapshots gets the same draw however the
  // calls of other actions (a scratch instance made alongside the backup) interleave with it.
  const generators = new Map<string, () => number>();
  const draw = (rule: number, action: string): number => {
    const key = `${rule}/${action}`;
    let next = generators.get(key);
    if (!next) generators.set(key, (next = mulberry32(hash(`${options.seed ?? 1}/${key}`))));
    return next();
  };
  const proxy: FaultProxy = { endpoint: '', counts: {}, injected: {}, log: [], close: () => Promise.resolve() };

  const faultFor = (req: ProxiedRequest): Fault | undefined => {
    for (const [i, rule] of rules.entries()) {
      if (rule.action !== '*' && rule.action !== req.action) continue;
      if (rule.when && !rule.when(req)) continue;
      matched[i]! += 1;
      if (rule.first !== undefined ? matched[i]! <= rule.first : draw(i, req.action) < rule.rate!) return rule.fault;
    }
    return undefined;
  };

  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const params = new URLSearchParams(isForm(req.headers) ? body.toString('utf8') : '');
      const seen: ProxiedRequest = { action: params.get('Action') ?? `${req.method} ${req.url}`, region: signedRegion(req.headers), params };
      proxy.counts[seen.action] = (proxy.counts[seen.action] ?? 0) + 1;
      const fault = faultFor(seen);
      proxy.log.push({ action: seen.action, region: seen.region, ...(fault && { fault }) });
      if (fault) {
        proxy.injected[seen.action] = (proxy.injected[seen.action] ?? 0) + 1;
        answerWithFault(res, fault);
        return;
      }
      forward(upstream, req, body, res);
    }, (err: Error) => res.destroy(err));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve, reject) => {
      // The SDK keeps connections alive: without this, close() waits for them to idle out.
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    });
  return proxy;
}

/** Raw headers keep the SDK's spelling and order (host included): the signed headers stay as signed. */
function forward(upstream: URL, req: IncomingMessage, body: Buffer, res: ServerResponse): void {
  const out = request(
    { protocol: upstream.protocol, hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.rawHeaders },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
      answer.pipe(res);
    },
  );
  out.on('error', (err) => res.destroy(err));
  out.end(body);
}

/** What RDS answers, in its Query-protocol XML: the SDK parses the Code into the error's name. */
function answerWithFault(res: ServerResponse, fault: Fault): void {
  const [status, type, code, message] =
    fault === 'throttling' ? [400, 'Sender', 'Throttling', 'Rate exceeded'] : [503, 'Receiver', 'ServiceUnavailable', 'Service unavailable (injected by the test fault proxy)'];
  const xml = `<ErrorResponse><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`;
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml), 'x-amzn-requestid': 'fault-proxy' });
  res.end(xml);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function isForm(headers: IncomingHttpHeaders): boolean {
  return (headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
}

/** `Credential=AKID/20240101/us-west-2/rds/aws4_request` in the Authorization header. */
function signedRegion(headers: IncomingHttpHeaders): string {
  return /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(headers.authorization ?? '')?.[1] ?? '';
}

/** FNV-1a: turns the seed and the stream's name into a generator seed. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A small seeded generator: the same seed gives the same fault pattern for the same request order. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
