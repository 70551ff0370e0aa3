// A model of the system the autoscaler drives, on a fake clock (1 s ticks), shared by the
// simulation tests and `npm run bench -- autoscale`. Two variants:
// - "rate" (the model): each ready worker completes episodes at a fixed rate, the engine
//   caps total episodes per second (its knee at a known worker count), new pods take
//   `podStartSeconds` to become ready, the learner trains `trainSeconds` between rollouts.
// - "episodes": the same engine, but episodes are discrete, of fixed length when the engine has
//   room, and share the engine when it does not (processor sharing, as continuous batching
//   does). This one has the synchronous tail: a step's last wave of episodes runs with the engine
//   half idle, which rewards holding more of the batch in flight than the knee.
// Engine latency per turn grows with episodes in flight past the knee (queueing) in both.
// Not modelled: per-episode length variance, and work lost when a busy pod is removed
// (workers release leases on drain, so it is requeued; the model requeues it with no loss).
import { decide, initialPoolState, type PoolState, type Reason } from "../../operator/autoscaler/decide.js";
import { type AutoscalingConfig, type HubPhase, type StatsSample } from "../../operator/autoscaler/types.js";

export interface SystemParams {
  mode: "rate" | "episodes";
  episodesPerWorker: number;
  /** Episodes per second one worker completes when the engine has room. */
  workerEpisodesPerSecond: number;
  /**
   * Engine cap on total episodes per second (knee = cap / workerEpisodesPerSecond workers), or
   * the cap at each second (an engine that gains inference replicas).
   */
  engineEpisodesPerSecond: number | ((t: number) => number);
  podStartSeconds: number;
  /** Engine seconds per model turn when unloaded; grows with demand past the knee. */
  llmSecondsPerTurn: number;
}

export interface Workload {
  name: string;
  /** Seconds before the first step (hub waiting, backlog 0). */
  quietSeconds: number;
  /** Episodes per step; Infinity = a sustained backlog (asynchronous rollouts, or a spike). */
  batch: number;
  trainSeconds: number;
  durationSeconds: number;
}

export type Scaler = (
  now: number,
  stats: StatsSample,
  current: number,
) => { replicas: number; reason: string };

export interface Trace {
  at: number;
  replicas: number;
  ready: number;
  backlog: number;
  phase: HubPhase;
  reason: string;
}

export interface SimResult {
  episodes: number;
  /** Episodes per wall second over the whole run. */
  throughput: number;
  podSeconds: number;
  scaleChanges: number;
  maxReplicas: number;
  steps: number;
  trace: Trace[];
}

const EPS_WINDOW_S = 10;

interface Pod {
  readyAt: number;
  /** Progress (0..1) of each episode the pod runs ("episodes" mode). */
  running: number[];
}

/** Runs the workload for its duration, polling `scaler` every `pollSeconds`. Deterministic. */
export function simulate(
  sys: SystemParams,
  w: Workload,
  scaler: Scaler,
  opts: { pollSeconds: number; initialReplicas: number; t0?: number },
): SimResult {
  const t0 = opts.t0 ?? 1_700_000_000_000;
  const episodeSeconds = sys.episodesPerWorker / sys.workerEpisodesPerSecond;
  const engine = (t: number) =>
    typeof sys.engineEpisodesPerSecond === "number"
      ? sys.engineEpisodesPerSecond
      : sys.engineEpisodesPerSecond(t);
  const kneeInFlight = (t: number) => engine(t) * episodeSeconds;
  const pods: Pod[] = Array.from({ length: opts.initialReplicas }, () => ({ readyAt: 0, running: [] }));
  let phase: HubPhase = w.quietSeconds > 0 ? "Waiting" : "Rollout";
  let phaseEnds = w.quietSeconds;
  let remaining = phase === "Rollout" ? w.batch : 0; // episodes of the step not completed
  let queued = remaining; // "episodes" mode: not yet on a worker
  let step = phase === "Rollout" ? 1 : 0;
  let episodes = 0;
  let podSeconds = 0;
  let scaleChanges = 0;
  let maxReplicas = pods.length;
  const completions: number[] = new Array(w.durationSeconds + 1).fill(0);
  const trace: Trace[] = [];
  const readyPods = (t: number) => pods.filter((p) => p.readyAt <= t);
  const inFlight = (t: number) =>
    sys.mode === "episodes"
      ? pods.reduce((n, p) => n + p.running.length, 0)
      : Math.min(readyPods(t).length * sys.episodesPerWorker, remaining);

  for (let t = 0; t < w.durationSeconds; t++) {
    if (t % opts.pollSeconds === 0) {
      const ready = readyPods(t).length;
      const from = Math.max(0, t - EPS_WINDOW_S);
      const done = completions.slice(from, t).reduce((a, b) => a + b, 0);
      const stats: StatsSample = {
        at: t0 + t * 1000,
        backlog: phase === "Rollout" ? Math.ceil(remaining - 1e-9) : 0,
        phase,
        step,
        episodesPerSecond: done / Math.max(1, t - from),
        activeWorkers: ready,
        llmSecondsPerTurn:
          phase === "Rollout" ? sys.llmSecondsPerTurn * Math.max(1, inFlight(t) / kneeInFlight(t)) : 0,
      };
      const { replicas, reason } = scaler(t0 + t * 1000, stats, pods.length);
      if (replicas !== pods.length) scaleChanges++;
      while (pods.length < replicas) pods.push({ readyAt: t + sys.podStartSeconds, running: [] });
      if (pods.length > replicas) {
        // Deletion cost: not-ready pods first, then those with the fewest episodes; their
        // episodes are released back to the queue.
        pods.sort(
          (a, b) => (b.readyAt > t ? 1 : 0) - (a.readyAt > t ? 1 : 0) || a.running.length - b.running.length,
        );
        for (const gone of pods.splice(0, pods.length - replicas)) queued += gone.running.length;
      }
      maxReplicas = Math.max(maxReplicas, pods.length);
      trace.push({ at: t, replicas: pods.length, ready, backlog: stats.backlog, phase, reason });
    }
    podSeconds += pods.length;
    if (phase === "Rollout") {
      let done = 0;
      if (sys.mode === "rate") {
        const rate = Math.min(readyPods(t).length * sys.workerEpisodesPerSecond, engine(t));
        done = Math.min(rate, remaining);
      } else {
        for (const p of readyPods(t)) {
          while (queued >= 1 && p.running.length < sys.episodesPerWorker) {
            p.running.push(0);
            queued--;
          }
        }
        const n = inFlight(t);
        const speed = Math.min(1 / episodeSeconds, engine(t) / Math.max(1, n));
        for (const p of pods) {
          p.running = p.running.map((x) => x + speed);
          const before = p.running.length;
          p.running = p.running.filter((x) => x < 1 - 1e-9);
          done += before - p.running.length;
        }
      }
      remaining -= done;
      episodes += done;
      completions[t] = done;
      if (remaining <= 1e-9) {
        phase = "Training";
        phaseEnds = t + 1 + w.trainSeconds;
      }
    } else if (t + 1 >= phaseEnds && (phase === "Training" || phase === "Waiting")) {
      phase = "Rollout";
      remaining = w.batch;
      queued = w.batch;
      step++;
    }
  }
  return {
    episodes,
    throughput: episodes / w.durationSeconds,
    podSeconds,
    scaleChanges,
    maxReplicas,
    steps: step,
    trace,
  };
}

/** The autoscaler under test as a Scaler: the pure decision with its state carried along. */
export function autoscaler(cfg: AutoscalingConfig): Scaler & { reasons: Reason[] } {
  let state: PoolState = initialPoolState();
  const reasons: Reason[] = [];
  const fn = (now: number, stats: StatsSample, current: number) => {
    const d = decide(cfg, state, current, { ok: true, sample: stats }, now);
    state = d.state;
    reasons.push(d.reason);
    return { replicas: d.replicas, reason: d.reason };
  };
  return Object.assign(fn, { reasons });
}

/** The ceiling: always at `replicas`. */
export const fixed =
  (replicas: number): Scaler =>
  () => ({ replicas, reason: "Fixed" });
