/** Pure render/parse of git tree and commit objects (only what fedgit writes: flat trees of files). */

/** `mode` (as parsed; a tree being written decides its own): `40000` for a subtree, `160000` for a submodule's commit, else a file. */
export type TreeEntry = { readonly name: string; readonly oid: string; readonly mode?: string };
export type Signature = { readonly name: string; readonly email: string; readonly timestamp: number };
export type CommitObject = {
  readonly tree: string;
  readonly parents: readonly string[];
  readonly author: Signature;
  readonly committer: Signature;
  readonly message: string;
};

export function renderTree(entries: readonly TreeEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  return Buffer.concat(sorted.flatMap((e) => [Buffer.from(`100644 ${e.name}\0`, 'utf8'), Buffer.from(e.oid, 'hex')]));
}

export function parseTree(content: Buffer): TreeEntry[] {
  const entries: TreeEntry[] = [];
  let at = 0;
  while (at < content.length) {
    const space = content.indexOf(0x20, at);
    const nul = content.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > content.length) throw new Error('malformed tree object');
    entries.push({ mode: content.subarray(at, space).toString('latin1'), name: content.subarray(space + 1, nul).toString('utf8'), oid: content.subarray(nul + 1, nul + 21).toString('hex') });
    at = nul + 21;
  }
  return entries;
}

function renderSignature(s: Signature): string {
  return `${s.name} <${s.email}> ${Math.floor(s.timestamp)} +0000`;
}

export function renderCommit(c: CommitObject): Buffer {
  const lines = [`tree ${c.tree}`, ...c.parents.map((p) => `parent ${p}`), `author ${renderSignature(c.author)}`, `committer ${renderSignature(c.committer)}`];
  const message = c.message.endsWith('\n') ? c.message : `${c.message}\n`;
  return Buffer.from(`${lines.join('\n')}\n\n${message}`, 'utf8');
}

function parseSignature(text: string): Signature {
  const m = /^(.*) <(.*)> (\d+) [+-]\d{4}$/.exec(text);
  if (!m) throw new Error(`malformed signature: ${text}`);
  return { name: m[1]!, email: m[2]!, timestamp: Number(m[3]) };
}

export function parseCommit(content: Buffer): CommitObject {
  const text = content.toString('utf8');
  const split = text.indexOf('\n\n');
  const headerLines = (split < 0 ? text : text.slice(0, split)).split('\n');
  const message = split < 0 ? '' : text.slice(split + 2);
  let tree = '';
  const parents: string[] = [];
  let author: Signature | undefined;
  let committer: Signature | undefined;
  for (const line of headerLines) {
    const space = line.indexOf(' ');
    const key = line.slice(0, space);
    const value = line.slice(space + 1);
    if (key === 'tree') tree = value;
    else if (key === 'parent') parents.push(value);
    else if (key === 'author') author = parseSignature(value);
    else if (key === 'committer') committer = parseSignature(value);
  }
  if (!tree || !author || !committer) throw new Error('malformed commit object');
  return { tree, parents, author, committer, message };
}
