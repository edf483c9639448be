/**
 * Every commit a repository's refs reach (all branches and tags, all parents), with its plan and
 * round trailers and the LFS objects it needs: those its pointers name and, for a round 0 that
 * starts from pretrained weights, those of its source commit. What `decideRetention` needs to know
 * who still points to an object. Read from git alone; no LFS object is read or fetched.
 */
import type { Repository } from '../git/repository.js';
import { TRAILER, trailerAll } from '../git/names.js';
import { parseGlobalRecord } from '../store/records.js';
import type { CommitObjects } from './retention.js';

export async function readCommitObjects(repo: Repository): Promise<CommitObjects[]> {
  const queue = [...new Set((await repo.listRefs('refs/')).values())];
  const seen = new Set<string>();
  const found: CommitObjects[] = [];
  while (queue.length > 0) {
    const oid = queue.pop()!;
    if (seen.has(oid)) continue;
    seen.add(oid);
    // A ref or parent that is no readable commit throws: what it would protect is unknown, so nothing is pruned.
    const commit = await repo.readCommit(oid);
    const plans = trailerAll(commit.trailers, TRAILER.plan);
    const rounds = trailerAll(commit.trailers, TRAILER.round);
    // A commit with no, or more than one, plan or round is of no round: it keeps what it points to.
    const round = rounds.length === 1 && /^\d{1,9}$/.test(rounds[0]!) ? Number(rounds[0]) : undefined;
    const oids = (await repo.readLfsPointers(oid)).map((p) => p.pointer.oid);
    // Round 0 of a plan that starts from pretrained weights: its audit reads the source commit's weights too.
    const source = parseGlobalRecord(commit)?.source;
    const pretrained = source && /^pretrained [0-9a-f]{40}$/.test(source) ? source.slice('pretrained '.length) : undefined;
    if (pretrained) oids.push(...(await repo.readLfsPointers(pretrained).catch(() => [])).map((p) => p.pointer.oid));
    found.push({ commit: oid, planId: plans.length === 1 ? plans[0] : undefined, round, oids });
    queue.push(...commit.parents);
  }
  return found;
}
