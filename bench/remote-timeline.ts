/**
 * Where a round over HTTP with webhooks goes, read from what the git server
 * recorded (nginx's access log with `$msec` and `$request_time`, and its
 * webhook delivery log), all on the same clock. Pure: the bench hands the
 * logs in and prints the result.
 *
 * A round is the time between two pushes of the global repository by the
 * aggregator. Inside it, for each edge, the chain is: the server's hook
 * delivers the global push to the edge (hook start-up, then the POST) → the
 * edge lists, fetches, trains, commits and pushes its update → the server
 * delivers that push to the aggregator → the aggregator lists and fetches the
 * edge repositories, merges and pushes the next global commit. The edge whose
 * delivery to the aggregator ends last is on the critical path.
 */
import type { AccessLogEntry, WebhookDelivery } from '../test/helpers/git-server.js';

export type RoundPhases = {
  /** The global push's log line (nginx, when its answer was sent) → the critical edge's endpoint answered the delivery. */
  readonly toEdgeMs: number;
  /** Of which the delivery's POST (from the deliverer starting it to the answer). */
  readonly deliverToEdgeMs: number;
  /** The edge's endpoint answered → its own push ended (listing, fetching, training, committing, pushing). */
  readonly edgeWorkMs: number;
  /** Of which in requests to the server (sum of nginx's request times), and how many. */
  readonly edgeServerMs: number;
  readonly edgeRequests: number;
  /** The edge push's log line → the aggregator's endpoint answered the delivery. */
  readonly toAggregatorMs: number;
  readonly deliverToAggregatorMs: number;
  /** The aggregator's endpoint answered → the next global push ended. */
  readonly aggregatorWorkMs: number;
  readonly aggregatorServerMs: number;
  readonly aggregatorRequests: number;
  readonly roundMs: number;
};

export type Timeline = {
  readonly rounds: readonly RoundPhases[];
  readonly median: RoundPhases;
  /** Per kind of request (`GET info/refs upload-pack`, `POST git-upload-pack`…): how many, and nginx's median and total time. */
  readonly byKind: ReadonlyArray<{ readonly kind: string; readonly count: number; readonly medianMs: number; readonly totalMs: number }>;
};

const isPush = (r: AccessLogEntry, repo: string) => r.method === 'POST' && r.path === `/${repo}.git/git-receive-pack` && r.status === 200;
const startOf = (r: AccessLogEntry) => r.endMs - r.requestMs;

/** The phases of every complete round in the logs, and their medians (each phase's own median); `edgeHooks`: edge → its webhook URL. */
export function roundTimeline(log: readonly AccessLogEntry[], deliveries: readonly WebhookDelivery[], aggregator: string, edgeHooks: Readonly<Record<string, string>>): Timeline {
  const globalPushes = log.filter((r) => r.user === aggregator && isPush(r, 'global')).sort((a, b) => a.endMs - b.endMs);
  const rounds: RoundPhases[] = [];
  const sum = (rs: AccessLogEntry[]) => rs.reduce((a, r) => a + r.requestMs, 0);
  // A delivery may start before nginx logs the push it follows (the hook runs before the answer
  // is complete), so deliveries are placed by the start of the pushes, the log by their end.
  for (let i = 1; i < globalPushes.length; i++) {
    const [p0, p1] = [globalPushes[i - 1]!, globalPushes[i]!];
    const [t0, t1] = [p0.endMs, p1.endMs];
    const chains = Object.entries(edgeHooks).flatMap(([edge, hookUrl]) => {
      const toEdge = deliveries.find((d) => d.repo === 'global' && d.url === hookUrl && d.status === 204 && d.at >= startOf(p0) && d.at < startOf(p1));
      const push = log.find((r) => r.user === edge && isPush(r, `edge-${edge}`) && r.endMs > t0 && r.endMs <= t1);
      if (!toEdge || !push) return [];
      const toAggregator = deliveries.find((d) => d.repo === `edge-${edge}` && d.status === 204 && d.at >= startOf(push) && d.at < startOf(p1));
      if (!toAggregator) return [];
      const edgeRequests = log.filter((r) => r.user === edge && startOf(r) >= toEdge.at && r.endMs <= push.endMs);
      return [{ edge, toEdge, push, toAggregator, edgeRequests }];
    });
    if (chains.length === 0) continue;
    const answered = (d: WebhookDelivery) => d.at + d.ms;
    const last = chains.reduce((a, b) => (answered(b.toAggregator) > answered(a.toAggregator) ? b : a));
    const aggregatorFrom = answered(last.toAggregator);
    const aggregatorRequests = log.filter((r) => r.user === aggregator && startOf(r) >= aggregatorFrom && r.endMs <= t1);
    rounds.push({
      toEdgeMs: answered(last.toEdge) - t0,
      deliverToEdgeMs: last.toEdge.ms,
      edgeWorkMs: last.push.endMs - answered(last.toEdge),
      edgeServerMs: sum(last.edgeRequests),
      edgeRequests: last.edgeRequests.length,
      toAggregatorMs: aggregatorFrom - last.push.endMs,
      deliverToAggregatorMs: last.toAggregator.ms,
      aggregatorWorkMs: t1 - aggregatorFrom,
      aggregatorServerMs: sum(aggregatorRequests),
      aggregatorRequests: aggregatorRequests.length,
      roundMs: t1 - t0,
    });
  }
  const median = Object.fromEntries(
    (Object.keys(rounds[0] ?? {}) as Array<keyof RoundPhases>).map((k) => {
      const sorted = rounds.map((r) => r[k]).sort((a, b) => a - b);
      return [k, sorted[Math.floor(sorted.length / 2)] ?? 0];
    }),
  ) as RoundPhases;
  return { rounds, median, byKind: byKind(log) };
}

/** A request's kind, without the repository: what the server runs for it. */
export function requestKind(r: AccessLogEntry): string {
  const service = /service=(git-[a-z-]+)/.exec(r.query)?.[1];
  const tail = r.path.replace(/^.*\.git\//, '');
  return `${r.method} ${tail}${service ? ` ${service}` : ''}`;
}

function byKind(log: readonly AccessLogEntry[]): Timeline['byKind'] {
  const groups = new Map<string, number[]>();
  for (const r of log) groups.set(requestKind(r), [...(groups.get(requestKind(r)) ?? []), r.requestMs]);
  return [...groups].sort(([a], [b]) => a.localeCompare(b)).map(([kind, ms]) => {
    const sorted = [...ms].sort((a, b) => a - b);
    return { kind, count: ms.length, medianMs: sorted[Math.floor(sorted.length / 2)]!, totalMs: ms.reduce((a, b) => a + b, 0) };
  });
}

export function describeTimeline(t: Timeline): string {
  const m = t.median;
  return [
    `median over ${t.rounds.length} rounds, each phase on its own (the edge on the critical path of each round):`,
    `    global push logged → edge's webhook answered        ${m.toEdgeMs} ms (the POST itself ${m.deliverToEdgeMs} ms)`,
    `    edge: webhook answered → its push ended              ${m.edgeWorkMs} ms (${m.edgeRequests} requests, ${m.edgeServerMs} ms of them in the server)`,
    `    edge push logged → aggregator's webhook answered     ${m.toAggregatorMs} ms (the POST itself ${m.deliverToAggregatorMs} ms)`,
    `    aggregator: webhook answered → next global push      ${m.aggregatorWorkMs} ms (${m.aggregatorRequests} requests, ${m.aggregatorServerMs} ms of them in the server)`,
    `    round ${m.roundMs} ms`,
    `  requests by kind (count, nginx's median time): ${t.byKind.map((k) => `${k.kind} ×${k.count} ${k.medianMs} ms`).join('; ')}`,
    `  the git server's floor on the critical path (2 pushes, 2 fetches at those medians): ${serverFloorMs(t)} ms`,
  ].join('\n');
}

/**
 * What the server alone spends on a round's critical path, whatever the participants do: the
 * aggregator's push, the edge's fetch and push, the aggregator's fetch. (Push events that name the
 * old and new value spare the listing before each fetch; operator/remote/remote-link.ts.)
 */
export function serverFloorMs(t: Timeline): number {
  const median = (kind: string) => t.byKind.find((k) => k.kind === kind)?.medianMs ?? 0;
  return 2 * median('POST git-receive-pack') + 2 * median('POST git-upload-pack');
}
