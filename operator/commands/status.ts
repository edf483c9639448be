/** `fedgit status`: where every participant stands in the current plan, from git alone. */
import { shortId } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import { readEdgeHistory, readFinalTag, readGlobalHead, readRecordedRejections } from '../store/federation.js';
import { deadlineOf } from '../reconcile/aggregator-decide.js';
import { renderTable } from './table.js';
import { openForReading, type Where } from './locate.js';
import { readDiskUsage, renderBytes, type DiskUsage } from '../git/disk-usage.js';
import { readLfsStoreUsage } from '../lfs/object-store.js';

export async function renderStatus(where: Where, plan: CommittedPlan, nowMs = Date.now()): Promise<string> {
  const edges = plan.plan.edges.map((e) => e.name);
  const locations = where.locate(edges);
  const global = await openForReading(where, locations.global, 'the global repository');
  const head = await readGlobalHead(global, plan);
  const tag = await readFinalTag(global, plan);
  const lines = [`plan ${plan.plan.name} (${shortId(plan.id)}), ${plan.plan.rounds} rounds, ${edges.length} edges, min ${plan.plan.minEdges} after the deadline`];
  if (!head) lines.push('aggregator: no round 0 yet');
  else if (tag) lines.push(`aggregator: finished at round ${head.round} (${shortId(head.oid)}), tagged inference-${plan.plan.name}-${shortId(plan.id)}`);
  else {
    const left = Math.round((deadlineOf(head, plan) - nowMs) / 1000);
    lines.push(`aggregator: global round ${head.round} (${shortId(head.oid)}); round ${head.round + 1} deadline ${left >= 0 ? `in ${left} s` : `passed ${-left} s ago`}`);
  }
  const refused = head && !tag ? await readRecordedRejections(global, plan, head.oid) : [];
  const rows: string[][] = [];
  const edgeDirs: string[] = [];
  for (const edge of edges) {
    const location = locations.edges[edge];
    const repo = location ? await where.open.open(location).catch(() => null) : null;
    if (!repo) {
      rows.push([edge, '', '', 'no repository']);
      continue;
    }
    await repo.refresh().catch(() => undefined);
    edgeDirs.push(repo.gitdir);
    const latest = (await readEdgeHistory(repo, plan, 1))[0];
    const refusal = refused.find((r) => r.edge === edge && r.commit === latest?.oid);
    const state = !latest ? 'nothing pushed yet'
      : refusal ? `its round ${latest.round} update was refused: ${refusal.reason}`
      : head && latest.base === head.oid ? `pushed round ${latest.round}, waiting for merge`
      : tag ? 'done' : `training round ${head ? head.round + 1 : '?'} (or idle)`;
    rows.push([edge, latest ? String(latest.round) : '', latest ? shortId(latest.oid) : '', state]);
  }
  lines.push(renderTable(['edge', 'last round', 'commit', 'state'], rows));
  lines.push(await storageLine(global.gitdir, edgeDirs, head?.round));
  if (refused.length) lines.push(`refused in round ${head!.round + 1} so far (the aggregator's record): ${refused.map((r) => `${r.edge}@${shortId(r.commit)}`).join(', ')}`);
  return lines.join('\n');
}

/**
 * What the repositories take on disk (this machine's copies; every plan's rounds together), and per
 * round of this plan: each round adds a model to the global repository and one to every edge's;
 * with LFS, the models are counted apart, as the objects (and their count) in `lfs/objects`.
 */
async function storageLine(globalDir: string, edgeDirs: readonly string[], round: number | undefined): Promise<string> {
  const total = (u: DiskUsage) => u.loose + u.packed;
  const global = await readDiskUsage(globalDir);
  const edges = await Promise.all(edgeDirs.map(readDiskUsage));
  const edgeBytes = edges.reduce((sum, u) => sum + total(u), 0);
  const perRound = round !== undefined ? ` (~${renderBytes(total(global) / (round + 1))} per global commit of ${round + 1})` : '';
  const line = `storage: global repository ${renderBytes(total(global))}${perRound}, ${renderBytes(global.packed)} of it packed; edge repositories ${renderBytes(edgeBytes)} together`;
  // A plan with `lfs:` keeps its checkpoints beside git, in lfs/objects (what `fedgit prune` trims).
  const lfsGlobal = await readLfsStoreUsage(globalDir);
  const lfsEdges = (await Promise.all(edgeDirs.map(readLfsStoreUsage))).reduce((sum, u) => ({ objects: sum.objects + u.objects, bytes: sum.bytes + u.bytes }), { objects: 0, bytes: 0 });
  if (lfsGlobal.objects + lfsEdges.objects === 0) return line;
  return `${line}; LFS objects: global ${renderBytes(lfsGlobal.bytes)} (${lfsGlobal.objects}), edges ${renderBytes(lfsEdges.bytes)} (${lfsEdges.objects})`;
}
