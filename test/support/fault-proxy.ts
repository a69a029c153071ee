// A reverse proxy in front of moto (or the Cloud SQL fake) that makes the cloud misbehave on purpose:
// throttling, 5xx answers and timeouts, by rule, for chosen actions. Everything else is forwarded
// untouched (method, path, headers, body), so what reaches the server is what the SDK sent. It counts
// what it saw, so a test can tell a retry Temporal made (one more request, one more activity attempt)
// from one the SDK made inside a single attempt (one more request, the same attempt).
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * throttling and unavailable are answered by the proxy (the request never reaches the server);
 * timeout forwards the request, drops the server's answer and cuts the connection: the call may have
 * acted, and the client cannot know (what it sees when a request times out after the server took it).
 */
export type Fault = 'throttling' | 'unavailable' | 'timeout';

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
  /** RDS: the Query API action. Cloud SQL: the method and the route with its ids as `*`. */
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
  /** Whose API is behind the proxy: how actions are named and faults answered. Default rds. */
  dialect?: 'rds' | 'cloudsql';
  /** How long a timeout fault holds the connection after the server answered, before cutting it. Default 500 ms. */
  timeoutMs?: number;
}

export async function startFaultProxy(
  target: string,
  rules: FaultRule[],
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  for (const rule of rules) {
    if ((rule.first === undefined) === (rule.rate === undefined)) {
      throw new Error(
        `fault rule for ${rule.action} sets ${rule.first === undefined ? 'neither' : 'both'} of first and rate; expected exactly one`,
      );
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
    void readBody(req).then(
      (body) => {
        const params = new URLSearchParams(isForm(req.headers) ? body.toString('utf8') : '');
        const action =
          options.dialect === 'cloudsql'
            ? restRoute(req.method, req.url)
            : (params.get('Action') ?? `${req.method} ${req.url}`);
        const seen: ProxiedRequest = { action, region: signedRegion(req.headers), params };
        proxy.counts[seen.action] = (proxy.counts[seen.action] ?? 0) + 1;
        const fault = faultFor(seen);
        proxy.log.push({ action: seen.action, region: seen.region, ...(fault && { fault }) });
        if (fault) proxy.injected[seen.action] = (proxy.injected[seen.action] ?? 0) + 1;
        if (fault === 'timeout') loseAnswer(upstream, req, body, res, options.timeoutMs ?? 500);
        else if (fault) answerWithFault(res, fault, options.dialect ?? 'rds');
        else forward(upstream, req, body, res);
      },
      (err: Error) => res.destroy(err),
    );
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

/**
 * Sends the client's request on to the server and hands its answer to `onAnswer`. Raw headers keep the
 * SDK's spelling and order (host included): the signed headers stay as signed.
 */
function sendUpstream(
  upstream: URL,
  req: IncomingMessage,
  body: Buffer,
  res: ServerResponse,
  onAnswer: (answer: IncomingMessage) => void,
): void {
  const out = request(
    {
      protocol: upstream.protocol,
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: req.rawHeaders,
    },
    onAnswer,
  );
  out.on('error', (err) => res.destroy(err));
  out.end(body);
}

/** The request reaches the server, and its answer the client. */
function forward(upstream: URL, req: IncomingMessage, body: Buffer, res: ServerResponse): void {
  sendUpstream(upstream, req, body, res, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
    answer.pipe(res);
  });
}

/** The request reaches the server; its answer is read and dropped, and the client's connection cut. */
function loseAnswer(upstream: URL, req: IncomingMessage, body: Buffer, res: ServerResponse, holdMs: number): void {
  sendUpstream(upstream, req, body, res, (answer) => {
    answer.resume();
    answer.on('end', () => setTimeout(() => res.destroy(), holdMs));
  });
}

/** RDS answers in its Query-protocol XML (the SDK parses the Code into the error's name); Cloud SQL in Google's JSON envelope. */
function answerWithFault(res: ServerResponse, fault: Exclude<Fault, 'timeout'>, dialect: 'rds' | 'cloudsql'): void {
  if (dialect === 'cloudsql') {
    const [code, status, message] =
      fault === 'throttling'
        ? [429, 'RESOURCE_EXHAUSTED', 'Quota exceeded (injected by the test fault proxy)']
        : [503, 'UNAVAILABLE', 'The service is currently unavailable (injected by the test fault proxy)'];
    const json = JSON.stringify({
      error: {
        code,
        message,
        status,
        errors: [{ message, domain: 'global', reason: fault === 'throttling' ? 'rateLimitExceeded' : 'backendError' }],
      },
    });
    res.writeHead(code, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(json),
    });
    res.end(json);
    return;
  }
  const [status, type, code, message] =
    fault === 'throttling'
      ? [400, 'Sender', 'Throttling', 'Rate exceeded']
      : [503, 'Receiver', 'ServiceUnavailable', 'Service unavailable (injected by the test fault proxy)'];
  const xml = `<ErrorResponse><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`;
  res.writeHead(status, {
    'content-type': 'text/xml',
    'content-length': Buffer.byteLength(xml),
    'x-amzn-requestid': 'fault-proxy',
  });
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

// `GET /v1/projects/p/instances/i/backupRuns/7?x=1` is named `GET /v1/projects/*/instances/*/backupRuns/*`:
// one name per route, whatever the ids.
function restRoute(method: string | undefined, url: string | undefined): string {
  const segments = (url ?? '/').split('?')[0]!.split('/');
  // ['', 'v1', 'projects', id, 'instances', id, ...]: every id sits at an odd index from 3 on.
  return `${method} ${segments.map((s, i) => (i >= 3 && i % 2 === 1 ? '*' : s)).join('/')}`;
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
