// The rollout hub: turns the dataset into question groups, leases their episodes to workers
// (through the TaskBook), and assembles training batches with rewards and advantages. The
// training loop drives it with beginStep / batch / evaluate; the gRPC service (service.ts)
// calls lease / heartbeat / release / submit / stats. No method holds state across an await.
import { randomBytes } from "node:crypto";
import { type Registry } from "prom-client";
import { L0Error } from "../../../lib/errors.js";
import { type Logger, silentLogger } from "../../../lib/log.js";
import { l0 } from "../../../lib/proto.js";
import { hasSignal } from "./advantage.js";
import { assembleBatch, type EvalResult } from "./assemble.js";
import { type GroupRec, TaskBook, type TaskRec } from "./book.js";
import { CHECKPOINT_FORMAT, type HubCheckpoint } from "./checkpoint.js";
import { type Dataset, type Question, QuestionSource, reportSkippedLines } from "./dataset.js";
import { type EvalJudge, Evaluations } from "./evaluation.js";
import { HubMetrics } from "./metrics.js";
import { type Batch, toTrainSamples } from "./samples.js";
import { WorkWaiters } from "./waiters.js";
import { type HubSettings } from "./settings.js";
import { RecentStats, statsResponse, WorkerLiveness } from "./recent.js";

export { type EvalResult } from "./assemble.js";
import { isInfrastructureFailure } from "./validate.js";

export interface HubOptions {
  settings: HubSettings;
  train: Dataset;
  eval?: Dataset;
  registry: Registry;
  logger?: Logger;
  /** Unix milliseconds (deadlines go to workers as unix time). */
  clock?: () => number;
  leaseTimeoutMs?: number;
  /** Failed attempts of one episode before its group is dropped. */
  maxAttempts?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** State to resume from (readCheckpoint). */
  resume?: HubCheckpoint | null;
  /** Grades held-out answers (spec.evaluation.judge); none: EM, F1 and reward only. */
  judge?: EvalJudge | null;
}

interface StepState {
  step: number;
  /** Groups counted toward this step: carried over plus spawned. */
  considered: number;
  budget: number;
}

export class Hub {
  readonly settings: HubSettings;
  readonly book: TaskBook;
  readonly metrics: HubMetrics;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #leaseTimeoutMs: number;
  readonly #source: QuestionSource;
  readonly #eval?: Dataset;
  #phase = l0.v1.HubPhase.HUB_PHASE_WAITING;
  #step = 0;
  #policyVersion = 0;
  #current: StepState | null = null;
  #ready: GroupRec[] = [];
  #pending: Question[] = [];
  #batchWaiter: { step: number; resolve: (b: Batch) => void } | null = null;
  readonly #evals: Evaluations;
  #rewardMean = 0;
  /** Consecutive served batches without a trained sample (Stats.empty_steps). */
  #emptySteps = 0;
  readonly #workers: WorkerLiveness;
  readonly #waiters = new WorkWaiters();
  readonly #recent: RecentStats;
  #timer: NodeJS.Timeout | null = null;

  constructor(opts: HubOptions) {
    this.settings = opts.settings;
    this.#log = opts.logger ?? silentLogger();
    this.#clock = opts.clock ?? Date.now;
    this.#leaseTimeoutMs = opts.leaseTimeoutMs ?? 60_000;
    this.#eval = opts.eval;
    this.#recent = new RecentStats(this.#clock);
    this.#workers = new WorkerLiveness(this.#clock, this.#leaseTimeoutMs);
    this.metrics = new HubMetrics(opts.registry, {
      backlog: () => this.backlog(),
      leasesActive: () => this.book.count.leased,
      policyVersion: () => this.#policyVersion,
      step: () => this.#step,
    });
    this.book = new TaskBook({
      clock: this.#clock,
      leaseTimeoutMs: this.#leaseTimeoutMs,
      maxAttempts: opts.maxAttempts ?? 3,
      backoffBaseMs: opts.backoffBaseMs ?? 1000,
      backoffMaxMs: opts.backoffMaxMs ?? 30_000,
      weights: opts.settings.weights,
      instance: randomBytes(4).toString("hex"),
      metrics: this.metrics,
      onGroupFinished: (g) => this.#onGroupFinished(g),
      onQueued: (k) => this.#waiters.wake(k),
    });
    this.#evals = new Evaluations(this.book, this.#log, opts.judge ?? null);
    reportSkippedLines(this.#log, this.metrics, { train: opts.train, eval: opts.eval });
    const cp = opts.resume;
    this.#source = new QuestionSource(opts.train, opts.settings.dataset.shuffleSeed, cp?.cursor);
    if (cp) this.#restore(cp, opts.train);
  }

  #restore(cp: HubCheckpoint, train: Dataset): void {
    if (cp.dataset.size !== train.questions.length)
      this.#log.warn("dataset changed since the checkpoint; resuming by position", {
        was: cp.dataset.size,
        now: train.questions.length,
      });
    this.#step = cp.step;
    this.#policyVersion = cp.policyVersion;
    this.#pending = cp.pending.flatMap((i) => train.questions[i] ?? []);
    this.book.groupSeq = cp.groupSeq;
    Object.assign(this.book.totals, cp.totals);
    this.#rewardMean = cp.rewardMean;
    this.#evals.last = cp.evaluation;
    if (this.#step >= this.settings.maxSteps) this.#phase = l0.v1.HubPhase.HUB_PHASE_DONE;
    this.#log.info("hub resumed", {
      step: cp.step,
      policyVersion: cp.policyVersion,
      pending: this.#pending.length,
    });
  }

  /** Starts the expiry sweep timer (leases also expire on every call; the timer covers idle times). */
  start(): void {
    const every = Math.min(1000, Math.max(20, this.#leaseTimeoutMs / 10));
    this.#timer = setInterval(() => this.book.sweep(), every);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#waiters.wakeAll();
  }

  get phase(): l0.v1.HubPhase {
    return this.#phase;
  }
  get step(): number {
    return this.#step;
  }
  get policyVersion(): number {
    return this.#policyVersion;
  }

  // ---- the training loop's side -------------------------------------------------------------

  /**
   * Starts collecting step `this.step + 1` with `policyVersion` (the trainer has made sure the
   * engines serve it): takes back leases and unserved samples too old for maxStaleness, and
   * issues groups.
   */
  async beginStep(policyVersion: number, opts: { signal?: AbortSignal } = {}): Promise<{ step: number }> {
    if (this.#current)
      throw new L0Error("FailedPrecondition", `step ${this.#current.step} is still collecting`);
    if (this.#step >= this.settings.maxSteps)
      throw new L0Error("FailedPrecondition", `all ${this.settings.maxSteps} steps are done`);
    this.#policyVersion = policyVersion;
    opts.signal?.throwIfAborted();
    const minVersion = policyVersion - this.settings.maxStaleness;
    const revoked = this.book.revokeOlderThan(minVersion);
    const recycled = this.book.recycleStale(minVersion);
    this.#ready = this.#ready.filter((g) => g.status === "complete");
    const B = this.settings.batchSize;
    this.#current = {
      step: this.#step + 1,
      considered: this.#ready.length + this.book.count.openTrainGroups,
      budget: Math.max(B, Math.ceil(this.settings.maxOversample * B)),
    };
    this.#setPhase(l0.v1.HubPhase.HUB_PHASE_ROLLOUT);
    this.#log.info("step started", {
      step: this.#current.step,
      policyVersion,
      carried: this.#current.considered,
      revoked,
      recycled,
    });
    this.#topUp();
    return { step: this.#current.step };
  }

  /** Resolves with the step's batch once batchSize complete groups exist (or the over-sampling cap is hit). */
  batch(step: number, opts: { signal?: AbortSignal } = {}): Promise<Batch> {
    if (!this.#current || this.#current.step !== step)
      return Promise.reject(new L0Error("FailedPrecondition", `step ${step} is not being collected`));
    if (this.#batchWaiter)
      return Promise.reject(new L0Error("FailedPrecondition", `batch(${step}) already awaited`));
    return new Promise<Batch>((resolve, reject) => {
      const onAbort = (): void => {
        this.#batchWaiter = null;
        reject(new L0Error("Unavailable", `batch(${step}) aborted`));
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.#batchWaiter = {
        step,
        resolve: (b) => {
          opts.signal?.removeEventListener("abort", onAbort);
          resolve(b);
        },
      };
      this.#tryServe();
    });
  }

  /**
   * Scores every held-out question once (n = 1) with `policyVersion` (which becomes the hub's
   * version); never trained on. May run beside a step's rollout with that step's version.
   */
  evaluate(policyVersion: number, opts: { signal?: AbortSignal } = {}): Promise<EvalResult> {
    const ds = this.#eval;
    if (!ds) return Promise.reject(new L0Error("FailedPrecondition", "no spec.dataset.evalPath configured"));
    // Eval episodes are leased with the hub's policy version like any other; it can only move
    // between steps, never under a step that is still collecting.
    if (this.#current && policyVersion !== this.#policyVersion)
      return Promise.reject(
        new L0Error(
          "FailedPrecondition",
          `step ${this.#current.step} is collecting with policy version ${this.#policyVersion}, not ${policyVersion}`,
        ),
      );
    this.#policyVersion = policyVersion;
    const size = this.settings.dataset.evalSize;
    const questions = size > 0 ? ds.questions.slice(0, size) : ds.questions;
    return this.#evals.start(questions, { step: this.#step, version: policyVersion }, opts.signal);
  }

  /** Marks the run finished: nothing more is leased for training. */
  finish(): void {
    this.#setPhase(l0.v1.HubPhase.HUB_PHASE_DONE);
  }

  snapshot(): HubCheckpoint {
    const pending = [...this.book.live].filter((g) => !g.eval).map((g) => g.question.index);
    return {
      format: CHECKPOINT_FORMAT,
      savedAtUnixMs: this.#clock(),
      step: this.#step,
      policyVersion: this.#policyVersion,
      cursor: { ...this.#source.cursor },
      pending: [...pending, ...this.#pending.map((q) => q.index)],
      groupSeq: this.book.groupSeq,
      totals: { ...this.book.totals },
      rewardMean: this.#rewardMean,
      evaluation: this.#evals.last,
      dataset: { path: this.settings.dataset.path, size: this.#source.dataset.questions.length },
    };
  }

  // ---- group bookkeeping --------------------------------------------------------------------

  #onGroupFinished(g: GroupRec): void {
    if (g.eval) {
      this.#evals.groupFinished(g);
      return;
    }
    if (g.status === "complete") {
      const totals = g.tasks.map((t) => t.result!.score.total);
      if (this.settings.dynamicSampling && !hasSignal(totals)) {
        this.book.dropGroup(g, "no_signal", `all ${totals.length} rewards equal ${totals[0]}`);
        return; // dropGroup re-entered this handler
      }
      this.#ready.push(g);
    } else {
      this.#log.info("group dropped", { group: g.id, reason: g.dropReason, detail: g.dropDetail });
    }
    this.#topUp();
    this.#tryServe();
  }

  #topUp(): void {
    const cur = this.#current;
    if (!cur || this.#phase !== l0.v1.HubPhase.HUB_PHASE_ROLLOUT) return;
    let want = this.settings.batchSize - this.#ready.length - this.book.count.openTrainGroups;
    while (want > 0 && cur.considered < cur.budget) {
      this.book.addGroup(this.#pending.shift() ?? this.#source.next(), this.settings.groupSize, false);
      cur.considered++;
      want--;
    }
  }

  #tryServe(): void {
    const w = this.#batchWaiter;
    const cur = this.#current;
    if (!w || !cur) return;
    const B = this.settings.batchSize;
    const full = this.#ready.length >= B;
    if (!full && !(this.book.count.openTrainGroups === 0 && cur.considered >= cur.budget)) return;
    const groups = this.#ready.slice(0, B);
    this.#ready = this.#ready.slice(groups.length);
    const s = this.settings;
    const batch = assembleBatch(
      groups,
      { step: cur.step, policyVersion: this.#policyVersion, short: !full },
      { algorithm: s.algorithm, gamma: s.gamma, normalizeStd: s.normalizeStd },
    );
    for (const g of groups) this.book.markServed(g); // the batch holds the results now
    this.#rewardMean = batch.rewardMean;
    this.#emptySteps = toTrainSamples(batch).length === 0 ? this.#emptySteps + 1 : 0;
    this.#step = cur.step;
    this.#current = null;
    this.#batchWaiter = null;
    this.#setPhase(l0.v1.HubPhase.HUB_PHASE_TRAINING);
    if (s.maxStaleness > 0 && this.#step < s.maxSteps) {
      // Asynchronous rollouts: the next step's groups are sampled while the learner trains
      // (with this version, at most maxStaleness behind when they are trained on).
      const want = B - this.#ready.length - this.book.count.openTrainGroups;
      for (let i = 0; i < want; i++)
        this.book.addGroup(this.#pending.shift() ?? this.#source.next(), s.groupSize, false);
    }
    this.metrics.batches.inc({ result: full ? "full" : "short" });
    this.#log.info("batch served", {
      step: batch.step,
      groups: groups.length,
      short: batch.short,
      rewardMean: batch.rewardMean,
    });
    w.resolve(batch);
  }

  // ---- the workers' side (called by service.ts after validation) ----------------------------

  #trainLeasable(): boolean {
    return (
      this.#phase === l0.v1.HubPhase.HUB_PHASE_ROLLOUT ||
      (this.#phase === l0.v1.HubPhase.HUB_PHASE_TRAINING && this.settings.maxStaleness > 0)
    );
  }

  lease(workerId: string, max: number): l0.v1.ITask[] {
    this.#workers.seen(workerId);
    const tasks = this.book.lease(
      workerId,
      max,
      { train: this.#trainLeasable(), eval: this.#evals.running },
      this.#policyVersion,
    );
    return tasks.map((t) => this.#taskMessage(t));
  }

  #taskMessage(t: TaskRec): l0.v1.ITask {
    const l = t.lease!;
    return {
      taskId: t.id,
      leaseId: l.id,
      groupId: t.group.id,
      prompt: t.group.question.prompt,
      agent: this.settings.agent,
      policyVersion: l.version,
      deadlineUnixMs: l.deadline,
      attempt: t.attempts,
      eval: t.group.eval,
      run: this.settings.run,
    };
  }

  heartbeat(workerId: string, leases: l0.v1.ILeaseProgress[]): l0.v1.ILeaseState[] {
    this.#workers.seen(workerId);
    return this.book.heartbeat(leases.map((l) => l.leaseId!));
  }

  release(workerId: string, leaseIds: string[], reason: string): string[] {
    const released = this.book.release(leaseIds);
    if (released.length > 0)
      this.#log.info("leases released", { worker: workerId, count: released.length, reason });
    return released;
  }

  submit(t: l0.v1.ITrajectory): l0.v1.ISubmitResponse {
    if (t.workerId) this.#workers.seen(t.workerId);
    const before = this.book.totals.completed;
    const res = this.book.submit(t, this.#policyVersion, this.settings.maxStaleness);
    if (this.book.totals.completed > before) this.#recent.episode(t.turns ?? []);
    else if (!res.duplicate && isInfrastructureFailure(t.end!))
      this.#log.warn("episode failed", {
        task: t.taskId,
        worker: t.workerId,
        end: t.end,
        detail: t.endDetail,
      });
    return res;
  }

  /** Episodes leasable now plus leased: what the autoscaler scales on. */
  backlog(): number {
    const c = this.book.count;
    return (this.#trainLeasable() ? c.queuedTrain : 0) + (this.#evals.running ? c.queuedEval : 0) + c.leased;
  }

  stats(): l0.v1.IStatsResponse {
    return statsResponse({
      count: this.book.count,
      totals: this.book.totals,
      oldestQueuedMs: this.book.oldestQueuedMs(this.#clock()),
      recent: this.#recent,
      activeWorkers: this.#workers.active(),
      backlog: this.backlog(),
      policyVersion: this.#policyVersion,
      step: this.#step,
      maxSteps: this.settings.maxSteps,
      rewardMean: this.#rewardMean,
      phase: this.#phase,
      lastEval: this.#evals.last,
      emptySteps: this.#emptySteps,
    });
  }

  // ---- long polls ---------------------------------------------------------------------------

  /** Resolves when work may have become leasable, or after ms (Lease long polls). */
  waitForWork(ms: number, signal?: AbortSignal): Promise<void> {
    return this.#waiters.wait(ms, signal);
  }

  #setPhase(p: l0.v1.HubPhase): void {
    if (this.#phase === p) return;
    this.#phase = p;
    this.#waiters.wakeAll();
  }
}
