// The task book: every episode of every question group, its lease, its attempts and its result.
// All state changes are synchronous (no await inside), so a gRPC handler sees a consistent book
// and nothing is held across an await. Each operation is O(1) amortized in the number of tasks:
// queues are FIFO deques with lazily skipped stale entries, lease expiry is a FIFO of deadlines
// (every lease gets the same timeout, so deadlines arrive in order) and backoff is a min-heap.
import { l0 } from "../../../lib/proto.js";
import { type Question } from "./dataset.js";
import { type HubMetrics } from "./metrics.js";
import { type RewardWeights, scoreTrajectory } from "./reward.js";
import { Deque, MinHeap } from "./queue.js";
import { type GroupRec, type LeaseRec, type TaskRec, type TaskStatus } from "./records.js";
import { endName, isInfrastructureFailure, submittedTask } from "./validate.js";

export { type GroupRec, type LeaseRec, type Scored, type TaskRec } from "./records.js";

export interface BookOptions {
  clock: () => number;
  leaseTimeoutMs: number;
  /** Failed attempts (infrastructure failures, expiries) after which the task's group is dropped. */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  weights: RewardWeights;
  /** Makes lease ids unique across hub restarts. */
  instance: string;
  metrics: HubMetrics;
  /** Called when a group completes (every task done) or is dropped. */
  onGroupFinished: (g: GroupRec) => void;
  /** Called when k tasks became leasable, to wake long polls. */
  onQueued: (k: number) => void;
}

interface Entry {
  task: TaskRec;
  seq: number;
}

/** Backoff before retry k (1-based): base * 2^(k-1), capped. */
export const backoffMs = (k: number, base: number, max: number): number =>
  Math.min(max, base * 2 ** Math.max(0, k - 1));

export class TaskBook {
  readonly queues = { train: new Deque<Entry>(), eval: new Deque<Entry>() };
  readonly leases = new Map<string, LeaseRec>();
  /** Every lease ever issued by this instance -> its task, to tell "finished elsewhere" from "unknown". */
  readonly #leaseHistory = new Map<string, TaskRec>();
  readonly #submits = new Map<string, l0.v1.ISubmitResponse>();
  readonly #expiry = new Deque<{ lease: LeaseRec; deadline: number }>();
  readonly #backoff = new MinHeap<Entry>();
  /** Groups neither served nor dropped. */
  readonly live = new Set<GroupRec>();
  /** Every group of this run by id (served ones keep no trajectories): O(groups issued) memory. */
  readonly groups = new Map<string, GroupRec>();
  readonly count = { queuedTrain: 0, queuedEval: 0, backoff: 0, leased: 0, openTrainGroups: 0 };
  readonly totals = { completed: 0, failed: 0, retried: 0, groupsDropped: 0, stale: 0 };
  #groupSeq = 0;
  #leaseSeq = 0;

  constructor(readonly opts: BookOptions) {}

  get groupSeq(): number {
    return this.#groupSeq;
  }
  set groupSeq(n: number) {
    this.#groupSeq = n;
  }

  #setStatus(t: TaskRec, s: TaskStatus): void {
    const c = this.count;
    if (t.status === "queued") {
      if (t.group.eval) c.queuedEval--;
      else c.queuedTrain--;
    } else if (t.status === "backoff") c.backoff--;
    else if (t.status === "leased") c.leased--;
    t.status = s;
    if (s === "queued") {
      if (t.group.eval) c.queuedEval++;
      else c.queuedTrain++;
    } else if (s === "backoff") c.backoff++;
    else if (s === "leased") c.leased++;
  }

  #enqueue(t: TaskRec): void {
    this.#setStatus(t, "queued");
    t.queuedAt = this.opts.clock();
    t.qseq++;
    (t.group.eval ? this.queues.eval : this.queues.train).push({ task: t, seq: t.qseq });
  }

  /** Creates a group of n tasks for a question and queues them. */
  addGroup(question: Question, n: number, evalGroup: boolean): GroupRec {
    const id = `g${++this.#groupSeq}`;
    const g: GroupRec = { id, question, eval: evalGroup, tasks: [], done: 0, status: "open" };
    for (let i = 0; i < n; i++) {
      const t: TaskRec = {
        id: `${id}.${i}`,
        group: g,
        status: "backoff",
        attempts: 0,
        failures: 0,
        queuedAt: 0,
        qseq: 0,
      };
      this.count.backoff++; // #enqueue moves it out of "backoff"
      g.tasks.push(t);
      this.#enqueue(t);
    }
    this.live.add(g);
    this.groups.set(id, g);
    if (!evalGroup) this.count.openTrainGroups++;
    this.opts.onQueued(n);
    return g;
  }

  /** Expires overdue leases and releases tasks whose backoff is over. Amortized O(1) per lease. */
  sweep(now = this.opts.clock()): void {
    for (let e = this.#expiry.peek(); e && e.deadline <= now; e = this.#expiry.peek()) {
      this.#expiry.shift();
      if (e.lease.active && e.lease.deadline === e.deadline) {
        this.#endLease(e.lease);
        this.opts.metrics.episodes.inc({ outcome: "lease_expired" });
        this.#fail(
          e.lease.task,
          "lease_expired",
          `worker ${e.lease.workerId} sent no heartbeat before the deadline`,
        );
      }
    }
    let woken = 0;
    while ((this.#backoff.peekKey() ?? Infinity) <= now) {
      const e = this.#backoff.pop()!;
      if (e.task.status === "backoff" && e.task.qseq === e.seq) {
        this.#enqueue(e.task);
        woken++;
      }
    }
    if (woken > 0) this.opts.onQueued(woken);
  }

  #endLease(l: LeaseRec): void {
    l.active = false;
    this.leases.delete(l.id);
    if (l.task.lease === l) l.task.lease = undefined;
  }

  /** A failed attempt: retry after a backoff, or drop the whole group once attempts run out. */
  #fail(t: TaskRec, reason: string, detail: string): void {
    t.failures++;
    this.totals.failed++;
    if (t.failures >= this.opts.maxAttempts) {
      this.dropGroup(t.group, reason, `task ${t.id} failed ${t.failures} times; last: ${detail}`);
      return;
    }
    this.totals.retried++;
    this.opts.metrics.retried.inc();
    this.#setStatus(t, "backoff");
    t.qseq++;
    this.#backoff.push(
      this.opts.clock() + backoffMs(t.failures, this.opts.backoffBaseMs, this.opts.backoffMaxMs),
      {
        task: t,
        seq: t.qseq,
      },
    );
  }

  dropGroup(g: GroupRec, reason: string, detail: string): void {
    if (g.status === "dropped" || g.status === "served") return;
    if (g.status === "open" && !g.eval) this.count.openTrainGroups--;
    g.status = "dropped";
    g.dropReason = reason;
    g.dropDetail = detail;
    for (const t of g.tasks) {
      if (t.lease) this.#endLease(t.lease);
      this.#setStatus(t, "dropped");
    }
    this.live.delete(g);
    this.totals.groupsDropped++;
    this.opts.metrics.groupsDropped.inc({ reason });
    this.opts.onGroupFinished(g);
  }

  /** Marks a complete group as consumed by a batch and lets go of its per-task state. */
  /** The group's batch or evaluation has its results: keep the record, drop the trajectories. */
  markServed(g: GroupRec): void {
    g.status = "served";
    this.live.delete(g);
    for (const t of g.tasks) t.result = undefined;
  }

  /** Takes up to max leasable tasks (eval first when allowed) and leases them to a worker. */
  lease(workerId: string, max: number, allow: { train: boolean; eval: boolean }, version: number): TaskRec[] {
    const now = this.opts.clock();
    this.sweep(now);
    const out: TaskRec[] = [];
    for (const [kind, q] of [
      ["eval", this.queues.eval],
      ["train", this.queues.train],
    ] as const) {
      if (!allow[kind]) continue;
      while (out.length < max && q.length > 0) {
        const e = q.shift()!;
        if (e.task.status !== "queued" || e.task.qseq !== e.seq) continue;
        const t = e.task;
        const l: LeaseRec = {
          id: `${this.opts.instance}-${++this.#leaseSeq}`,
          task: t,
          workerId,
          deadline: now + this.opts.leaseTimeoutMs,
          version,
          active: true,
        };
        t.lease = l;
        t.attempts++;
        this.#setStatus(t, "leased");
        this.leases.set(l.id, l);
        this.#leaseHistory.set(l.id, t);
        this.#expiry.push({ lease: l, deadline: l.deadline });
        out.push(t);
      }
    }
    return out;
  }

  heartbeat(leaseIds: string[]): l0.v1.ILeaseState[] {
    const now = this.opts.clock();
    this.sweep(now);
    return leaseIds.map((id) => {
      const l = this.leases.get(id);
      if (l) {
        l.deadline = now + this.opts.leaseTimeoutMs;
        this.#expiry.push({ lease: l, deadline: l.deadline });
        return { leaseId: id, status: l0.v1.LeaseStatus.LEASE_STATUS_ACTIVE, deadlineUnixMs: l.deadline };
      }
      const t = this.#leaseHistory.get(id);
      const finished = t && (t.status === "done" || t.status === "dropped");
      return {
        leaseId: id,
        status: finished ? l0.v1.LeaseStatus.LEASE_STATUS_FINISHED : l0.v1.LeaseStatus.LEASE_STATUS_NOT_FOUND,
      };
    });
  }

  /** Hands leases back without counting a failure; the tasks are queued again at once. */
  release(leaseIds: string[]): string[] {
    const released: string[] = [];
    for (const id of leaseIds) {
      const l = this.leases.get(id);
      if (!l) continue;
      this.#endLease(l);
      this.#enqueue(l.task);
      released.push(id);
    }
    if (released.length > 0) this.opts.onQueued(released.length);
    return released;
  }

  /** Takes back every lease granted with a policy version below minVersion (strict on-policy). */
  revokeOlderThan(minVersion: number): number {
    let n = 0;
    for (const l of [...this.leases.values()]) {
      if (l.version >= minVersion || l.task.group.eval) continue;
      this.#endLease(l);
      this.#enqueue(l.task);
      n++;
    }
    if (n > 0) this.opts.onQueued(n);
    return n;
  }

  /** Re-samples finished training episodes sampled below minVersion in groups not yet served. */
  recycleStale(minVersion: number): number {
    let n = 0;
    for (const g of this.live) {
      if (g.eval) continue;
      for (const t of g.tasks) {
        if (t.status !== "done" || Number(t.result?.trajectory.policyVersion ?? 0) >= minVersion) continue;
        t.result = undefined;
        g.done--;
        if (g.status === "complete") {
          g.status = "open";
          this.count.openTrainGroups++;
        }
        this.#enqueue(t);
        n++;
      }
    }
    this.totals.stale += n;
    if (n > 0) {
      this.opts.metrics.stale.inc(n);
      this.opts.onQueued(n);
    }
    return n;
  }

  /**
   * Takes one finished episode. Idempotent by trajectory id. `currentVersion`/`maxStaleness`
   * decide whether the sample is still on-policy enough to train on.
   */
  submit(t: l0.v1.ITrajectory, currentVersion: number, maxStaleness: number): l0.v1.ISubmitResponse {
    const tid = t.trajectoryId!;
    const seen = this.#submits.get(tid);
    if (seen) return { ...seen, duplicate: true };
    this.sweep();
    const task = submittedTask(this.#leaseHistory.get(t.leaseId!), t);
    const end = t.end!;
    const lease = this.leases.get(t.leaseId!);
    const answer = (r: l0.v1.ISubmitResponse): l0.v1.ISubmitResponse => {
      this.#submits.set(tid, r);
      return r;
    };
    this.opts.metrics.episodes.inc({ outcome: endName(end) });
    if (t.durationSeconds) this.opts.metrics.episodeDuration.observe(t.durationSeconds);
    if (isInfrastructureFailure(end)) {
      if (!lease)
        return answer({ accepted: false, detail: "lease had already expired; the task was retried" });
      this.#endLease(lease);
      this.#fail(task, endName(end), t.endDetail || endName(end));
      const dropped = task.group.status === "dropped";
      return answer({
        accepted: false,
        detail: dropped
          ? `attempts exhausted; group ${task.group.id} dropped`
          : `infrastructure failure; retry ${task.failures} scheduled`,
      });
    }
    if (currentVersion - Number(t.policyVersion ?? 0) > maxStaleness) {
      if (lease) {
        this.#endLease(lease);
        this.#enqueue(task);
        this.opts.onQueued(1);
      }
      this.totals.stale++;
      this.opts.metrics.stale.inc();
      return answer({
        accepted: false,
        detail: `stale: sampled with policy version ${Number(t.policyVersion ?? 0)}, hub is at ${currentVersion} (maxStaleness ${maxStaleness}); re-sampling`,
      });
    }
    // An agent outcome is a real sample, also from a lease that expired meanwhile (the work is
    // done; a newer lease on the same task, if any, is told FINISHED on its next heartbeat).
    if (task.lease) this.#endLease(task.lease);
    const score = scoreTrajectory(t, task.group.question.answers, this.opts.weights);
    task.result = { trajectory: t, score };
    this.#setStatus(task, "done");
    this.totals.completed++;
    if (!task.group.eval) this.opts.metrics.reward.observe(score.total);
    const g = task.group;
    g.done++;
    if (g.done === g.tasks.length && g.status === "open") {
      g.status = "complete";
      if (!g.eval) this.count.openTrainGroups--;
      this.opts.onGroupFinished(g);
    }
    return answer(
      g.status === "dropped"
        ? { accepted: false, detail: `scored, but group ${g.id} was dropped: ${g.dropReason ?? ""}` }
        : { accepted: true, detail: "" },
    );
  }

  /** Age of the oldest leasable task, ms (0 when none); drops stale queue heads on the way. */
  oldestQueuedMs(now: number): number {
    let oldest = Infinity;
    for (const q of [this.queues.train, this.queues.eval]) {
      for (let e = q.peek(); e; e = q.peek()) {
        if (e.task.status === "queued" && e.task.qseq === e.seq) {
          oldest = Math.min(oldest, e.task.queuedAt);
          break;
        }
        q.shift();
      }
    }
    return oldest === Infinity ? 0 : now - oldest;
  }
}
