/** The current plan, read from the plan repository's head and checked; a bad plan commit is reported, not fatal. */
import { parsePlan, type CommittedPlan, type PlanChecks } from '../plan/plan.js';
import { readPlanHead } from '../store/federation.js';
import { shortId, PLAN_BRANCH, PLAN_FILE } from '../git/names.js';
import type { Repository } from '../git/repository.js';
import type { Log } from '../contracts.js';

export class PlanSource {
  private cached: CommittedPlan | null = null;
  private reportedBad: string | null = null;

  constructor(private readonly repo: Repository, private readonly checks: PlanChecks, private readonly log: Log) {}

  refresh(): Promise<void> {
    return this.repo.refresh();
  }

  async current(): Promise<CommittedPlan | null> {
    // A plan commit is immutable: while the branch stays put, neither the plan nor its verdict changes.
    const id = await this.repo.readRef(PLAN_BRANCH);
    if (!id) return null;
    if (this.cached?.id === id) return this.cached;
    if (this.reportedBad === id) return null;
    const head = await readPlanHead(this.repo);
    if (!head) return null;
    try {
      const plan = parsePlan(head.text, `${PLAN_FILE}@${shortId(head.id)}`, this.checks);
      this.cached = { id: head.id, plan, text: head.text };
      this.log.info(`plan ${plan.name} (${shortId(head.id)}): ${plan.rounds} rounds, edges ${plan.edges.map((e) => e.name).join(', ')}`, { planId: head.id });
      return this.cached;
    } catch (e) {
      if (this.reportedBad !== head.id) this.log.error(`ignoring invalid plan commit ${shortId(head.id)}: ${(e as Error).message}`, { planId: head.id });
      this.reportedBad = head.id;
      return null;
    }
  }
}
