// A stand-in for the RDS Query API, for the Aurora global database calls moto does not implement
// (SwitchoverGlobalCluster and FailoverGlobalCluster answer HTTP 500 there). It speaks the wire
// protocol the real SDK speaks, so the provider's requests and the SDK's parsing of the answers are
// both exercised: form-encoded POSTs in, XML out, with the element names the SDK's schemas read
// (lists of global clusters are <GlobalClusterMember> elements, as on real RDS). It models one
// global database with two member clusters and records every request, for assertions.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const NS = 'http://rds.amazonaws.com/doc/2014-10-31/';
const ACCOUNT = '123456789012';

export interface StubCluster {
  id: string;
  /** The AWS region it lives in: DescribeDBClusters finds it only when signed for that region. */
  awsRegion: string;
}

export interface RecordedCall {
  action: string;
  /** From the SigV4 credential scope: the region the SDK client signed for. */
  awsRegion: string;
  params: Record<string, string>;
  /** What the stub answered. */
  status: number;
}

export interface InjectedError {
  status: number;
  code: string;
  message?: string;
  /** Answer with an HTML page instead of an RDS error document, as moto does for what it lacks. */
  html?: boolean;
}

type Move = 'switchover' | 'failover';

export interface StubModel {
  globalCluster: string;
  clusters: StubCluster[];
  /** The cluster that writes at the start; awsRegion only where two clusters share the name. */
  writer: { id: string; awsRegion?: string };
}

export const clusterArn = (c: StubCluster): string => `arn:aws:rds:${c.awsRegion}:${ACCOUNT}:cluster:${c.id}`;

export class RdsStub {
  readonly calls: RecordedCall[] = [];
  readonly globalCluster: string;
  readonly clusters: StubCluster[];
  /** The writer is kept by cluster, not by name: two regions may each have a cluster of the same name. */
  private writerCluster: StubCluster;
  /**
   * How many DescribeGlobalClusters answers a move spends in 'switching-over'/'failing-over' before
   * the writer flips: the provider's polling has to wait through them.
   */
  describesPerMove = 0;
  private pending: { target: StubCluster; kind: Move; describesLeft: number } | null = null;
  private readonly injected = new Map<string, InjectedError[]>();
  private seq = 0;

  private readonly server: Server;

  private constructor(model: StubModel) {
    this.globalCluster = model.globalCluster;
    this.clusters = model.clusters;
    this.writerCluster = this.cluster(model.writer.id, model.writer.awsRegion);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) =>
        send(res, 500, `<html><body>stub failure: ${escapeXml(String(err))}</body></html>`, 'text/html'),
      );
    });
  }

  /** Listens on 127.0.0.1 at a free port. The default model: apg-global, writer apg-east, secondary apg-west. */
  static async start(
    model: StubModel = {
      globalCluster: 'apg-global',
      clusters: [
        { id: 'apg-east', awsRegion: 'us-east-1' },
        { id: 'apg-west', awsRegion: 'us-west-2' },
      ],
      writer: { id: 'apg-east' },
    },
  ): Promise<RdsStub> {
    const stub = new RdsStub(model);
    await new Promise<void>((resolve) => stub.server.listen(0, '127.0.0.1', resolve));
    return stub;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
    // The SDK keeps its sockets alive; close() alone would wait for them.
    this.server.closeAllConnections();
    await closed;
  }

  /** By name, and by region where two clusters share the name. */
  cluster(id: string, awsRegion?: string): StubCluster {
    const found = this.clusters.filter((c) => c.id === id && (!awsRegion || c.awsRegion === awsRegion));
    if (found.length !== 1)
      throw new Error(
        `rds stub: ${found.length} clusters ${id} ${awsRegion ? `in ${awsRegion} ` : ''}in the model; expected one`,
      );
    return found[0]!;
  }

  arn(id: string, awsRegion?: string): string {
    return clusterArn(this.cluster(id, awsRegion));
  }

  /** The writer cluster's name. */
  get writer(): string {
    return this.writerCluster.id;
  }

  get writerArn(): string {
    return clusterArn(this.writerCluster);
  }

  /** Moves the writer at once, as a move made outside Lifeboat (the console) would have. */
  setWriter(id: string, awsRegion?: string): void {
    this.writerCluster = this.cluster(id, awsRegion);
  }

  callsOf(action: string): RecordedCall[] {
    return this.calls.filter((c) => c.action === action);
  }

  /** The next `times` requests for `action` get this error instead of their answer. */
  failNext(action: string, error: InjectedError, times = 1): void {
    this.injected.set(action, [...(this.injected.get(action) ?? []), ...Array<InjectedError>(times).fill(error)]);
  }

  /** A move that is already under way, as if an earlier attempt's request had landed. */
  beginMove(target: string, kind: Move, describesLeft: number, awsRegion?: string): void {
    this.pending = { target: this.cluster(target, awsRegion), kind, describesLeft };
  }

  get status(): string {
    if (!this.pending) return 'available';
    return this.pending.kind === 'switchover' ? 'switching-over' : 'failing-over';
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const params = Object.fromEntries(new URLSearchParams(body));
    const action = params.Action ?? '';
    const awsRegion = /Credential=[^/]+\/\d{8}\/([^/]+)\/rds\//.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const call: RecordedCall = { action, awsRegion, params, status: 0 };
    this.calls.push(call);
    const injected = this.injected.get(action)?.shift();
    const answer = injected ? errorAnswer(injected, this.nextId()) : this.answer(action, awsRegion, params);
    call.status = answer.status;
    send(res, answer.status, answer.body, answer.contentType);
  }

  private answer(action: string, awsRegion: string, p: Record<string, string>): Answer {
    switch (action) {
      case 'DescribeGlobalClusters': {
        if (p.GlobalClusterIdentifier && p.GlobalClusterIdentifier !== this.globalCluster) {
          return this.error(404, 'GlobalClusterNotFoundFault', `GlobalCluster ${p.GlobalClusterIdentifier} not found.`);
        }
        this.advance();
        return this.ok(
          action,
          `<GlobalClusters><GlobalClusterMember>${this.globalXml()}</GlobalClusterMember></GlobalClusters>`,
        );
      }
      case 'DescribeDBClusters': {
        const inRegion = this.clusters.filter((c) => c.awsRegion === awsRegion);
        const wanted = p.DBClusterIdentifier ? inRegion.filter((c) => c.id === p.DBClusterIdentifier) : inRegion;
        if (p.DBClusterIdentifier && wanted.length === 0)
          return this.error(404, 'DBClusterNotFoundFault', `DBCluster ${p.DBClusterIdentifier} not found.`);
        return this.ok(
          action,
          `<DBClusters>${wanted.map((c) => `<DBCluster>${this.clusterXml(c)}</DBCluster>`).join('')}</DBClusters>`,
        );
      }
      case 'SwitchoverGlobalCluster':
      case 'FailoverGlobalCluster':
        return this.move(action, p, action === 'SwitchoverGlobalCluster' ? 'switchover' : 'failover');
      default:
        return this.error(400, 'InvalidAction', `The action ${action} is not valid for this web service (rds stub).`);
    }
  }

  private move(action: string, p: Record<string, string>, kind: Move): Answer {
    if (p.GlobalClusterIdentifier !== this.globalCluster)
      return this.error(404, 'GlobalClusterNotFoundFault', `GlobalCluster ${p.GlobalClusterIdentifier} not found.`);
    const target = this.clusters.find((c) => clusterArn(c) === p.TargetDbClusterIdentifier);
    if (!target)
      return this.error(
        404,
        'DBClusterNotFoundFault',
        `DBCluster ${p.TargetDbClusterIdentifier} is not a member of ${this.globalCluster}.`,
      );
    if (this.status !== 'available') {
      return this.error(
        400,
        'InvalidGlobalClusterStateFault',
        `Global cluster ${this.globalCluster} is in ${this.status} state; it must be available.`,
      );
    }
    if (target === this.writerCluster)
      return this.error(
        400,
        'InvalidParameterValue',
        `${p.TargetDbClusterIdentifier} is already the writer of ${this.globalCluster}.`,
      );
    this.pending = { target, kind, describesLeft: this.describesPerMove };
    if (this.describesPerMove === 0) this.advance();
    return this.ok(action, `<GlobalCluster>${this.globalXml()}</GlobalCluster>`);
  }

  /** One DescribeGlobalClusters closer to the end of a move; the writer flips when none are left. */
  private advance(): void {
    if (!this.pending) return;
    if (this.pending.describesLeft > 0) {
      this.pending.describesLeft -= 1;
      return;
    }
    this.writerCluster = this.pending.target;
    this.pending = null;
  }

  private globalXml(): string {
    const members = this.clusters
      .map((c) => {
        const isWriter = c === this.writerCluster;
        const readers = isWriter
          ? this.clusters.filter((r) => r !== c).map((r) => `<member>${clusterArn(r)}</member>`)
          : [];
        return `<GlobalClusterMember><DBClusterArn>${clusterArn(c)}</DBClusterArn><Readers>${readers.join('')}</Readers><IsWriter>${isWriter}</IsWriter>${isWriter ? '' : '<SynchronizationStatus>connected</SynchronizationStatus>'}</GlobalClusterMember>`;
      })
      .join('');
    return (
      `<GlobalClusterIdentifier>${escapeXml(this.globalCluster)}</GlobalClusterIdentifier><GlobalClusterResourceId>cluster-stub0000</GlobalClusterResourceId>` +
      `<GlobalClusterArn>arn:aws:rds::${ACCOUNT}:global-cluster:${escapeXml(this.globalCluster)}</GlobalClusterArn><Status>${this.status}</Status>` +
      `<Engine>aurora-postgresql</Engine><EngineVersion>16.4</EngineVersion><StorageEncrypted>true</StorageEncrypted><DeletionProtection>false</DeletionProtection>` +
      `<GlobalClusterMembers>${members}</GlobalClusterMembers>`
    );
  }

  private clusterXml(c: StubCluster): string {
    const host = `${c.id}.cluster-stub.${c.awsRegion}.rds.amazonaws.com`;
    // A global secondary has reader instances only; the writer cluster's first instance writes.
    const writer = c === this.writerCluster;
    return (
      `<DBClusterIdentifier>${c.id}</DBClusterIdentifier><DBClusterArn>${clusterArn(c)}</DBClusterArn><Status>available</Status>` +
      `<Engine>aurora-postgresql</Engine><EngineVersion>16.4</EngineVersion><Port>5432</Port>` +
      `<Endpoint>${host}</Endpoint><ReaderEndpoint>${c.id}.cluster-ro-stub.${c.awsRegion}.rds.amazonaws.com</ReaderEndpoint>` +
      `<DBClusterMembers><DBClusterMember><DBInstanceIdentifier>${c.id}-1</DBInstanceIdentifier><IsClusterWriter>${writer}</IsClusterWriter><PromotionTier>1</PromotionTier></DBClusterMember></DBClusterMembers>`
    );
  }

  private ok(action: string, result: string): Answer {
    return {
      status: 200,
      contentType: 'text/xml',
      body: `<${action}Response xmlns="${NS}"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>${this.nextId()}</RequestId></ResponseMetadata></${action}Response>`,
    };
  }

  private error(status: number, code: string, message: string): Answer {
    return errorAnswer({ status, code, message }, this.nextId());
  }

  private nextId(): string {
    this.seq += 1;
    return `00000000-0000-4000-8000-${String(this.seq).padStart(12, '0')}`;
  }
}

interface Answer {
  status: number;
  body: string;
  contentType: string;
}

function errorAnswer(e: InjectedError, requestId: string): Answer {
  if (e.html)
    return {
      status: e.status,
      contentType: 'text/html',
      body: `<!doctype html><html lang=en><title>${e.status} ${e.code}</title><h1>${e.code}</h1><p>${escapeXml(e.message ?? '')}</p></html>`,
    };
  const type = e.status >= 500 ? 'Receiver' : 'Sender';
  return {
    status: e.status,
    contentType: 'text/xml',
    body: `<ErrorResponse xmlns="${NS}"><Error><Type>${type}</Type><Code>${e.code}</Code><Message>${escapeXml(e.message ?? e.code)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
  };
}

function send(res: ServerResponse, status: number, body: string, contentType: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
