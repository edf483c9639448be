/**
 * Smart HTTP starts every fetch and every push with a ref advertisement (GET
 * `info/refs?service=…`, protocol v1). fedgit often knows it already, and
 * asking again is a request — on a CGI server, a process or three — on the
 * critical path of every round:
 *
 * - A mirror lists the server's refs to learn what moved, then fetches what
 *   did: the fetch is answered the advertisement the listing received
 *   (`recordAdvertisement`, `replayAdvertisement`). It is the snapshot the
 *   listing saw, which is what the mirror then records; a ref that moves in
 *   between is seen at the next refresh.
 * - A push of a ref from a known value is a compare-and-swap: the value the
 *   push must replace is the mirror's, not whatever the server holds now. The
 *   push is answered an advertisement naming only that ref at that value, with
 *   the capabilities the server announced at its last real advertisement
 *   (`renderReceivePackAdvertisement`). If the server moved, it refuses the
 *   update, as it refuses any push from a stale value.
 *
 * Only a successful advertisement is recorded, only the same service and URL
 * is replayed; every other request goes to the server.
 */
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { bodyOf, FLUSH, pktLine, readBody, readPktLines } from './pkt-line.js';

export type GitService = 'git-upload-pack' | 'git-receive-pack';

export type RecordedAdvertisement = {
  readonly service: GitService;
  readonly url: string;
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
};

const isAdvertisement = (req: GitHttpRequest, service: GitService) => req.method === 'GET' && req.url.endsWith(`/info/refs?service=${service}`);

/** A client that keeps the last successful advertisement of `service` it received (`recorded()`). */
export function recordAdvertisement(client: HttpClient, service: GitService): { http: HttpClient; recorded(): RecordedAdvertisement | undefined } {
  let recorded: RecordedAdvertisement | undefined;
  return {
    http: {
      async request(req) {
        const response = await client.request(req);
        if (!isAdvertisement(req, service) || response.statusCode !== 200) return response;
        const body = await readBody(response.body);
        recorded = { service, url: req.url, statusCode: response.statusCode, statusMessage: response.statusMessage, headers: { ...response.headers }, body };
        return { ...response, body: bodyOf(body) };
      },
    },
    recorded: () => recorded,
  };
}

/** A client that answers the advertisement of `recorded.service` at `recorded.url` with `recorded` (as often as asked), everything else from `client`. */
export function replayAdvertisement(client: HttpClient, recorded: RecordedAdvertisement | undefined): HttpClient {
  return {
    async request(req): Promise<GitHttpResponse> {
      if (!recorded || !isAdvertisement(req, recorded.service) || req.url !== recorded.url) return client.request(req);
      return { url: recorded.url, method: 'GET', statusCode: recorded.statusCode, statusMessage: recorded.statusMessage, headers: { ...recorded.headers }, body: bodyOf(recorded.body) };
    },
  };
}

/** The pkt-lines of an advertisement as text (`''` for a flush); undefined when it is not one. */
const pktLines = (body: Buffer): string[] | undefined => readPktLines(body)?.map((l) => (l === null ? '' : l.toString('latin1')));

/** The capabilities a protocol-v1 advertisement announces (after the NUL of its first ref line), or undefined. */
export function advertisedCapabilities(body: Buffer): string | undefined {
  const first = pktLines(body)?.find((l) => /^[0-9a-f]{40} /.test(l));
  const caps = first?.replace(/\n$/, '').split('\0')[1];
  return caps === undefined || /[\r\n]/.test(caps) ? undefined : caps;
}

/** An upload-pack advertisement of `refs` (sorted, as git sends them), with `capabilities` (as the server announced them). */
export function renderUploadPackAdvertisement(refs: ReadonlyMap<string, string>, capabilities: string): Buffer {
  if (refs.size === 0) throw new Error('an advertisement names at least one ref');
  if (/[\0\r\n]/.test(capabilities)) throw new Error('capabilities must be one line');
  const lines = [...refs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([ref, oid], i) => {
    checkRefLine(ref, oid);
    return pktLine(`${oid} ${ref}${i === 0 ? `\0${capabilities}` : ''}\n`);
  });
  return Buffer.concat([pktLine('# service=git-upload-pack\n'), FLUSH, ...lines, FLUSH]);
}

function checkRefLine(ref: string, oid: string): void {
  if (!/^[0-9a-f]{40}$/.test(oid)) throw new Error(`not an object id: ${oid}`);
  if (!/^refs\/[^\0\s]+$/.test(ref)) throw new Error(`not a ref name: ${ref}`);
}

/** A receive-pack advertisement that names only `ref` at `oid`, with `capabilities` (as a server announced them). */
export function renderReceivePackAdvertisement(ref: string, oid: string, capabilities: string): Buffer {
  checkRefLine(ref, oid);
  if (/[\0\r\n]/.test(capabilities)) throw new Error('capabilities must be one line');
  return Buffer.concat([pktLine('# service=git-receive-pack\n'), FLUSH, pktLine(`${oid} ${ref}\0${capabilities}\n`), FLUSH]);
}
