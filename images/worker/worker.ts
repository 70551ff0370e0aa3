// The worker loop: keeps K episodes running from hub leases, heartbeats them, submits each
// trajectory idempotently (retrying with backoff), reconnects with backoff, and drains on
// shutdown: stop leasing, let what can finish finish within the grace period, release the rest.
import { isL0Error } from "../../lib/errors.js";
import { type Logger, errorFields } from "../../lib/log.js";
import { l0 } from "../../lib/proto.js";
import { type EpisodeControl } from "./agent/episode.js";
import { type HubApi } from "./hub.js";
import { type LeaseStreak, NO_FAILURES, leaseOutcome } from "./lease-streak.js";
import { type WorkerMetrics } from "./metrics.js";

export interface WorkerOptions {
  workerId: string;
  /** K: concurrent episodes. */
  episodes: number;
  heartbeatMs: number;
  /** Lease long-poll wait. */
  leaseWaitMs: number;
  /** Reconnect backoff: base and cap, ms. */
  backoffMs: number;
  backoffMaxMs: number;
  submitAttempts: number;
}

export type EpisodeRunner = (task: l0.v1.ITask, ctl: EpisodeControl) => Promise<l0.v1.ITrajectory>;

/** Exponential backoff with full jitter in [d/2, d]; `attempt` starts at 1. Pure given `rand`. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, rand = Math.random()): number {
  const d = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(d / 2 + (d / 2) * rand);
}

/** Next heartbeat: the configured period, sooner when a lease would expire before 3 beats. */
export function heartbeatDelay(periodMs: number, nowMs: number, deadlines: number[]): number {
  const soonest = Math.min(...deadlines.filter((d) => d > 0), Infinity);
  return Math.max(200, Math.min(periodMs, Math.floor((soonest - nowMs) / 3)));
}

export const OUTCOME_LABEL: Record<number, string> = {
  [l0.v1.EpisodeEnd.EPISODE_END_ANSWERED]: "answered",
  [l0.v1.EpisodeEnd.EPISODE_END_MAX_TURNS]: "max_turns",
  [l0.v1.EpisodeEnd.EPISODE_END_CONTEXT_EXHAUSTED]: "context_exhausted",
  [l0.v1.EpisodeEnd.EPISODE_END_AGENT_ERROR]: "agent_error",
  [l0.v1.EpisodeEnd.EPISODE_END_SANDBOX_FAILURE]: "sandbox_failure",
  [l0.v1.EpisodeEnd.EPISODE_END_ENGINE_FAILURE]: "engine_failure",
  [l0.v1.EpisodeEnd.EPISODE_END_WORKER_SHUTDOWN]: "worker_shutdown",
};

interface Running {
  task: l0.v1.ITask;
  ac: AbortController;
  turns: number;
  deadline: number;
  /** Set when the hub says the lease is gone: the result is dropped, not submitted. */
  lost: boolean;
  done: Promise<void>;
}

export class Worker {
  readonly #running = new Map<string, Running>();
  #draining = false;
  #drainDeadline = Infinity;
  #wake: (() => void) | null = null;
  #loop: Promise<void> | null = null;
  #hbTimer: NodeJS.Timeout | null = null;
  #connected = false;
  /** Consecutive episodes that ended in a sandbox failure: leasing backs off so a broken host does not burn tasks. */
  #sandboxFailures = 0;
  readonly #sleeps = new Set<() => void>();

  constructor(
    private readonly opts: WorkerOptions,
    private readonly deps: {
      hub: HubApi;
      run: EpisodeRunner;
      metrics: WorkerMetrics;
      logger: Logger;
      /** Wall clock for the lease-failure log (default Date.now). */
      now?: () => number;
    },
  ) {}

  /** Episodes running now (also the l0_worker_episodes_active gauge, for pod-deletion-cost). */
  get active(): number {
    return this.#running.size;
  }
  /** Whether the last hub call succeeded (readiness). */
  get connected(): boolean {
    return this.#connected;
  }
  get draining(): boolean {
    return this.#draining;
  }
  /** Why the worker should not get more work now, or null (readiness). */
  get unhealthy(): string | null {
    if (this.#sandboxFailures >= 3)
      return `the last ${this.#sandboxFailures} episodes failed to get a kernel`;
    return this.#connected ? null : "rollout hub not reachable yet";
  }

  start(): void {
    if (this.#loop) return;
    this.#loop = this.#leaseLoop();
    this.#scheduleHeartbeat();
  }

  /**
   * Stops leasing, waits up to `graceMs` for running episodes to finish and be submitted, then
   * aborts the rest and releases their leases. Resolves when nothing is left.
   */
  async drain(graceMs: number, reason = "worker draining"): Promise<void> {
    this.#draining = true;
    this.#drainDeadline = Date.now() + graceMs;
    this.#wake?.();
    for (const s of this.#sleeps) s();
    const log = this.deps.logger;
    log.info("draining", { active: this.active, graceMs });
    const all = Promise.all([...this.#running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      const left = [...this.#running.values()];
      log.warn("grace period over, releasing unfinished episodes", { episodes: left.length });
      for (const r of left) r.ac.abort();
      await Promise.all(left.map((r) => r.done));
    }
    await this.#loop;
    if (this.#hbTimer) clearTimeout(this.#hbTimer);
    log.info("drained", { reason });
  }

  async #leaseLoop(): Promise<void> {
    const now = this.deps.now ?? Date.now;
    let streak: LeaseStreak = NO_FAILURES;
    while (!this.#draining) {
      const free = this.opts.episodes - this.#running.size;
      if (free <= 0) {
        await new Promise<void>((r) => (this.#wake = r));
        this.#wake = null;
        continue;
      }
      if (this.#sandboxFailures >= 3) {
        const delay = backoffDelay(this.#sandboxFailures - 2, this.opts.backoffMs, this.opts.backoffMaxMs);
        this.deps.logger.warn("sandbox failing, pausing leases", {
          failures: this.#sandboxFailures,
          delayMs: delay,
        });
        await this.#sleep(delay);
        if (this.#draining) break;
      }
      let res: l0.v1.LeaseResponse;
      try {
        res = await this.deps.hub.lease(this.opts.workerId, free, this.opts.leaseWaitMs);
        this.#connected = true;
        const { next, log } = leaseOutcome(streak, true, now());
        streak = next;
        if (log) this.deps.logger.log(log.level, log.message, log.fields);
      } catch (err) {
        this.#connected = false;
        const { next, log } = leaseOutcome(streak, false, now());
        streak = next;
        this.deps.metrics.leaseErrors.inc({ call: "lease" });
        const delay = backoffDelay(streak.failures, this.opts.backoffMs, this.opts.backoffMaxMs);
        if (log)
          this.deps.logger.log(log.level, log.message, {
            ...errorFields(err),
            delayMs: delay,
            ...log.fields,
          });
        await this.#sleep(delay);
        continue;
      }
      if (this.#draining) {
        // Leased while the drain began: hand the tasks straight back, nothing is lost.
        await this.#release(
          res.tasks.map((t) => t.leaseId ?? ""),
          "worker draining",
        );
        break;
      }
      for (const task of res.tasks) this.#startEpisode(task);
      if (res.tasks.length === 0) await this.#sleep(res.retryAfterMs || 250);
    }
  }

  #startEpisode(task: l0.v1.ITask): void {
    const r: Running = {
      task,
      ac: new AbortController(),
      turns: 0,
      deadline: Number(task.deadlineUnixMs ?? 0),
      lost: false,
      done: Promise.resolve(),
    };
    const leaseId = task.leaseId ?? "";
    this.#running.set(leaseId, r);
    this.deps.metrics.episodesActive.set(this.#running.size);
    this.#scheduleHeartbeat();
    const log = this.deps.logger.child({ episode: task.taskId, lease: leaseId, attempt: task.attempt });
    log.debug("episode started");
    r.done = (async () => {
      try {
        const traj = await this.deps.run(task, { signal: r.ac.signal, onTurn: (n) => (r.turns = n) });
        const outcome = OUTCOME_LABEL[traj.end ?? 0] ?? "unknown";
        if (r.lost) {
          this.deps.metrics.episodes.inc({ outcome: "lease_expired" });
          log.info("episode dropped: lease lost", { end: outcome });
        } else if (traj.end === l0.v1.EpisodeEnd.EPISODE_END_WORKER_SHUTDOWN) {
          await this.#release([leaseId], "worker draining");
          this.deps.metrics.episodes.inc({ outcome: "worker_shutdown" });
        } else {
          await this.#submit(traj, log);
          this.deps.metrics.episodes.inc({ outcome });
        }
        if (traj.end === l0.v1.EpisodeEnd.EPISODE_END_SANDBOX_FAILURE) this.#sandboxFailures++;
        else if (traj.end !== l0.v1.EpisodeEnd.EPISODE_END_WORKER_SHUTDOWN) this.#sandboxFailures = 0;
      } catch (err) {
        // runEpisode never throws by contract; if it does, give the task back rather than lose it.
        log.error("episode crashed", errorFields(err));
        await this.#release([leaseId], "worker error");
        this.deps.metrics.episodes.inc({ outcome: "worker_shutdown" });
      } finally {
        this.#running.delete(leaseId);
        this.deps.metrics.episodesActive.set(this.#running.size);
        this.#wake?.();
      }
    })();
  }

  async #submit(traj: l0.v1.ITrajectory, log: Logger): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.deps.hub.submit(traj);
        log.info("episode submitted", {
          end: OUTCOME_LABEL[traj.end ?? 0],
          turns: traj.turns?.length ?? 0,
          accepted: res.accepted,
          duplicate: res.duplicate,
          seconds: traj.durationSeconds,
        });
        return;
      } catch (err) {
        this.deps.metrics.leaseErrors.inc({ call: "submit" });
        // The hub has decided (lease expired or task finished elsewhere): retrying cannot help.
        if (
          isL0Error(err, "NotFound") ||
          isL0Error(err, "FailedPrecondition") ||
          isL0Error(err, "InvalidArgument")
        ) {
          log.warn("submit refused", errorFields(err));
          return;
        }
        const delay = backoffDelay(attempt, this.opts.backoffMs, this.opts.backoffMaxMs);
        const outOfTime = this.#draining && Date.now() + delay > this.#drainDeadline;
        if (attempt >= this.opts.submitAttempts || outOfTime) {
          // The lease expires on the hub and the task is queued again: nothing is lost.
          log.error("submit failed, giving up; the hub will re-queue the task", {
            ...errorFields(err),
            attempt,
          });
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async #release(leaseIds: string[], reason: string): Promise<void> {
    if (leaseIds.length === 0) return;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await this.deps.hub.release(this.opts.workerId, leaseIds, reason);
        return;
      } catch (err) {
        this.deps.metrics.leaseErrors.inc({ call: "release" });
        this.deps.logger.warn("release failed", { ...errorFields(err), attempt, leases: leaseIds.length });
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, this.opts.backoffMs, 2000)));
      }
    }
    // The leases expire on the hub instead; the tasks are re-queued then.
  }

  #scheduleHeartbeat(): void {
    if (this.#hbTimer) clearTimeout(this.#hbTimer);
    if (this.#running.size === 0) return;
    const deadlines = [...this.#running.values()].map((r) => r.deadline);
    this.#hbTimer = setTimeout(
      () => void this.#heartbeat(),
      heartbeatDelay(this.opts.heartbeatMs, Date.now(), deadlines),
    );
  }

  async #heartbeat(): Promise<void> {
    const leases = [...this.#running.entries()].map(([leaseId, r]) => ({ leaseId, turns: r.turns }));
    if (leases.length > 0) {
      try {
        const res = await this.deps.hub.heartbeat(this.opts.workerId, leases);
        this.#connected = true;
        for (const s of res.leases) {
          const r = this.#running.get(s.leaseId ?? "");
          if (!r) continue;
          if (s.status === l0.v1.LeaseStatus.LEASE_STATUS_ACTIVE) r.deadline = Number(s.deadlineUnixMs);
          else if (!r.lost) {
            r.lost = true;
            r.ac.abort();
            this.deps.logger.warn("lease lost, stopping episode", { lease: s.leaseId, status: s.status });
          }
        }
      } catch (err) {
        this.#connected = false;
        this.deps.metrics.leaseErrors.inc({ call: "heartbeat" });
        this.deps.logger.warn("heartbeat failed", errorFields(err));
      }
    }
    this.#scheduleHeartbeat();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.#sleeps.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#sleeps.add(done);
    });
  }
}
