// What the hub's Stats report beyond its book: short-window figures (completed episodes per
// second over the last 10 s, the engine's seconds per model turn over the last 256 completed
// episodes), which workers are alive, and the response itself, built by a pure function.
import { type l0 } from "../../../lib/proto.js";
import { type LastEvaluation } from "./evaluation.js";

const WINDOW_S = 10;
const RING = 256;

export class RecentStats {
  readonly #buckets = new Array<number>(WINDOW_S + 1).fill(0);
  readonly #bucketSecond = new Array<number>(WINDOW_S + 1).fill(-1);
  readonly #llm = new Float64Array(RING);
  readonly #turns = new Float64Array(RING);
  #i = 0;
  #llmSum = 0;
  #turnSum = 0;

  constructor(private readonly clock: () => number) {}

  episode(turns: readonly { llmSeconds?: number | null }[]): void {
    const sec = Math.floor(this.clock() / 1000);
    const b = sec % this.#buckets.length;
    if (this.#bucketSecond[b] !== sec) {
      this.#bucketSecond[b] = sec;
      this.#buckets[b] = 0;
    }
    this.#buckets[b]!++;
    let llm = 0;
    for (const t of turns) llm += t.llmSeconds ?? 0;
    const slot = this.#i++ % RING;
    this.#llmSum += llm - this.#llm[slot]!;
    this.#turnSum += turns.length - this.#turns[slot]!;
    this.#llm[slot] = llm;
    this.#turns[slot] = turns.length;
  }

  episodesPerSecond(): number {
    const sec = Math.floor(this.clock() / 1000);
    let n = 0;
    // The current second is partial; count the WINDOW_S full seconds before it.
    for (let s = sec - WINDOW_S; s < sec; s++) {
      const b = ((s % this.#buckets.length) + this.#buckets.length) % this.#buckets.length;
      if (this.#bucketSecond[b] === s) n += this.#buckets[b]!;
    }
    return n / WINDOW_S;
  }

  llmSecondsPerTurn(): number {
    return this.#turnSum > 0 ? this.#llmSum / this.#turnSum : 0;
  }
}

/** Workers seen (lease, heartbeat, submit) within the lease timeout count as active. */
export class WorkerLiveness {
  readonly #lastSeen = new Map<string, number>();
  constructor(
    private readonly clock: () => number,
    private readonly timeoutMs: number,
  ) {}

  seen(worker: string): void {
    this.#lastSeen.set(worker, this.clock());
  }

  /** Active workers now; forgets the others. */
  active(): number {
    const now = this.clock();
    for (const [w, at] of this.#lastSeen) if (now - at > this.timeoutMs) this.#lastSeen.delete(w);
    return this.#lastSeen.size;
  }
}

export interface StatsInput {
  count: { queuedTrain: number; queuedEval: number; backoff: number; leased: number };
  totals: { completed: number; failed: number; retried: number; groupsDropped: number };
  oldestQueuedMs: number;
  recent: RecentStats;
  activeWorkers: number;
  backlog: number;
  policyVersion: number;
  step: number;
  maxSteps: number;
  rewardMean: number;
  phase: l0.v1.HubPhase;
  lastEval: LastEvaluation | null;
  /** Consecutive steps without a trained sample. */
  emptySteps?: number;
}

export function statsResponse(i: StatsInput): l0.v1.IStatsResponse {
  return {
    queued: i.count.queuedTrain + i.count.queuedEval + i.count.backoff,
    leased: i.count.leased,
    completed: i.totals.completed,
    failed: i.totals.failed,
    retried: i.totals.retried,
    groupsDropped: i.totals.groupsDropped,
    oldestQueuedAgeSeconds: i.oldestQueuedMs / 1000,
    episodesPerSecond: i.recent.episodesPerSecond(),
    backlog: i.backlog,
    policyVersion: i.policyVersion,
    step: i.step,
    maxSteps: i.maxSteps,
    rewardMean: i.rewardMean,
    phase: i.phase,
    activeWorkers: i.activeWorkers,
    llmSecondsPerTurn: i.recent.llmSecondsPerTurn(),
    evalAccuracy: i.lastEval?.accuracy ?? 0,
    emptySteps: i.emptySteps ?? 0,
    lastEval: i.lastEval && {
      step: i.lastEval.step,
      accuracy: i.lastEval.accuracy,
      judge: i.lastEval.judge,
    },
  };
}
