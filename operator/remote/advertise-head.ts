/**
 * Works around isomorphic-git 1.44's fetch, which throws "Could not find HEAD"
 * — after downloading, before saving the pack — when the server advertises no
 * HEAD. git http-backend leaves HEAD out when it names a missing branch, as in
 * fedgit's global and edge repositories, which have no `main`. We add a HEAD
 * line (at the first advertised ref) to protocol-v1 upload-pack advertisements;
 * fedgit always fetches explicit refs, so the value of HEAD is never used.
 */
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';

const pkt = (line: string) => `${(Buffer.byteLength(line) + 4).toString(16).padStart(4, '0')}${line}`;

/** Pure: the advertisement with a HEAD line first, or unchanged when it has one or no refs. */
export function withHeadAdvertised(body: Buffer): Buffer {
  const lines: string[] = [];
  let at = 0;
  while (at + 4 <= body.length) {
    const length = parseInt(body.subarray(at, at + 4).toString('latin1'), 16);
    if (Number.isNaN(length)) return body;
    lines.push(length === 0 ? '' : body.subarray(at + 4, at + length).toString('latin1'));
    at += length === 0 ? 4 : length;
  }
  const first = lines.findIndex((l) => /^[0-9a-f]{40} /.test(l));
  if (first < 0) return body;
  const [head, caps = ''] = lines[first]!.replace(/\n$/, '').split('\0');
  const [oid, ref] = head!.split(' ');
  if (ref === 'HEAD') return body;
  lines.splice(first, 1, `${oid} HEAD\0${caps}\n`, `${oid} ${ref}\n`);
  return Buffer.from(lines.map((l) => (l === '' ? '0000' : pkt(l))).join(''), 'latin1');
}

async function collect(body: AsyncIterableIterator<Uint8Array> | undefined): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  if (body) for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export function advertisingHead(client: HttpClient): HttpClient {
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const response = await client.request(req);
      if (req.method !== 'GET' || !/\/info\/refs\?service=git-upload-pack$/.test(req.url) || response.statusCode !== 200) return response;
      const body = withHeadAdvertised(await collect(response.body));
      return { ...response, body: (async function* () { yield new Uint8Array(body); })() };
    },
  };
}
