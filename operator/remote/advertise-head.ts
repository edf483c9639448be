/**
 * Works around isomorphic-git 1.44's fetch, which throws "Could not find HEAD"
 * — after downloading, before saving the pack — when the server advertises no
 * HEAD. git http-backend leaves HEAD out when it names a missing branch, as in
 * fedgit's global and edge repositories, which have no `main`. We add a HEAD
 * line (at the first advertised ref) to protocol-v1 upload-pack advertisements;
 * fedgit always fetches explicit refs, so the value of HEAD is never used.
 */
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { bodyOf, FLUSH, pktLine, readBody, readPktLines } from './pkt-line.js';

/** Pure: the advertisement with a HEAD line first, or unchanged when it has one, has no refs or is not pkt-lines. */
export function withHeadAdvertised(body: Buffer): Buffer {
  const lines = readPktLines(body);
  if (!lines) return body;
  const first = lines.findIndex((l) => l !== null && /^[0-9a-f]{40} /.test(l.toString('latin1', 0, 41)));
  if (first < 0) return body;
  const [head, caps = ''] = lines[first]!.toString('latin1').replace(/\n$/, '').split('\0');
  const [oid, ref] = head!.split(' ');
  if (ref === 'HEAD') return body;
  lines.splice(first, 1, Buffer.from(`${oid} HEAD\0${caps}\n`, 'latin1'), Buffer.from(`${oid} ${ref}\n`, 'latin1'));
  return Buffer.concat(lines.map((l) => (l === null ? FLUSH : pktLine(l))));
}

export function advertisingHead(client: HttpClient): HttpClient {
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const response = await client.request(req);
      if (req.method !== 'GET' || !/\/info\/refs\?service=git-upload-pack$/.test(req.url) || response.statusCode !== 200) return response;
      return { ...response, body: bodyOf(withHeadAdvertised(await readBody(response.body))) };
    },
  };
}
