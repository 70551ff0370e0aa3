// A run's status rebuilt from what the reconcile observed (never patched piecemeal): phase,
// kstatus conditions and counters. Pure; the reconciler writes the result once if it changed.
import { type TrainingRun, type TrainingRunStatus } from "../../gen/crds/index.js";
import { type Condition, type ConditionInput, setConditions } from "../runtime/conditions.js";
import { type JobView, type Verdict } from "./policy.js";

export type Phase = NonNullable<TrainingRunStatus["phase"]>;

export interface HubView {
  step: number;
  maxSteps: number;
  policyVersion: number;
  rewardMean: number;
  backlog: number;
  /** Consecutive steps without a trained sample (absent from an older hub). */
  emptySteps?: number;
  /** The last finished held-out evaluation (absent before one, and from an older hub). */
  evaluation?: NonNullable<TrainingRunStatus["evaluation"]>;
}

export interface RunObservation {
  generation: number;
  invalid?: Verdict;
  suspended: boolean;
  /** The run already ended (terminal phases never go back). */
  ended?: { phase: "Succeeded" | "Failed"; why: Verdict };
  job?: JobView;
  restarts: number;
  /** The gang restart or failure decided in this reconcile. */
  restarted?: Verdict;
  failed?: Verdict;
  completed?: boolean;
  poolName?: string;
  readyWorkers?: number;
  /** Undefined = not asked (trainer not up); error = asked and failed. */
  hub?: { stats: HubView } | { error: string };
  /** Why the run is stuck though valid (stuck.ts): shown as Degraded while it lasts. */
  problem?: Verdict;
  maxSteps: number;
}

const C = (type: string, status: boolean | "Unknown", reason: string, message: string): ConditionInput => ({
  type,
  status: status === "Unknown" ? "Unknown" : status ? "True" : "False",
  reason,
  message,
});

/** Phase and the five kstatus conditions for an observation. */
export function phaseAndConditions(o: RunObservation): {
  phase: Phase;
  conditions: ConditionInput[];
  why: Verdict;
} {
  const hubError = o.hub && "error" in o.hub ? o.hub.error : undefined;
  const trouble = o.problem ?? (hubError ? { reason: "HubUnreachable", message: hubError } : undefined);
  let phase: Phase;
  let why: Verdict;
  if (o.ended) {
    phase = o.ended.phase;
    why = o.ended.why;
  } else if (o.invalid) {
    phase = "Failed";
    why = o.invalid;
  } else if (o.failed) {
    phase = "Failed";
    why = o.failed;
  } else if (o.completed) {
    phase = "Succeeded";
    why = { reason: "TrainerSucceeded", message: "the trainer finished all steps" };
  } else if (o.suspended) {
    phase = "Suspended";
    why = {
      reason: "Suspended",
      message: "spec.suspend is true: workers at zero, trainer pods deleted, checkpoint kept",
    };
  } else if (o.restarted) {
    phase = "Initializing";
    why = {
      reason: "GangRestart",
      message: `restarting the trainer group (restart ${o.restarts}): ${o.restarted.message}`,
    };
  } else if (!o.job) {
    phase = "Pending";
    why = { reason: "CreatingChildren", message: "creating the run's children" };
  } else if (o.job.ready >= 1 && o.hub && "stats" in o.hub) {
    phase = "Running";
    why = {
      reason: "Training",
      message: `step ${o.hub.stats.step} of ${o.hub.stats.maxSteps || o.maxSteps}`,
    };
  } else {
    phase = "Initializing";
    why = { reason: "TrainerStarting", message: `waiting for trainer pods of ${o.job.name} and the hub` };
  }
  const done = phase === "Succeeded" || phase === "Failed";
  const conditions = [
    C("Ready", phase === "Running", phase === "Running" ? "Training" : why.reason, why.message),
    C("Progressing", !done && phase !== "Suspended", why.reason, why.message),
    C(
      "Degraded",
      !!o.invalid || (!done && !!trouble) || phase === "Failed",
      o.invalid
        ? o.invalid.reason
        : phase === "Failed"
          ? why.reason
          : !done && trouble
            ? trouble.reason
            : "AsExpected",
      o.invalid
        ? o.invalid.message
        : phase === "Failed"
          ? why.message
          : !done && trouble
            ? trouble.message
            : "no problems observed",
    ),
    C(
      "Complete",
      phase === "Succeeded",
      phase === "Succeeded" ? why.reason : "NotComplete",
      phase === "Succeeded" ? why.message : "the run has not completed",
    ),
    C(
      "Failed",
      phase === "Failed",
      phase === "Failed" ? why.reason : "NotFailed",
      phase === "Failed" ? why.message : "the run has not failed",
    ),
  ];
  return { phase, conditions, why };
}

const iso = (d: Date) => d.toISOString().replace(/\.\d+Z$/, "Z");

/** The whole new status; fields the observation does not know keep their last value. */
export function computeRunStatus(
  prev: TrainingRun["status"] | undefined,
  o: RunObservation,
  now: Date,
): TrainingRunStatus {
  const p = prev ?? {};
  const { phase, conditions } = phaseAndConditions(o);
  const stats = o.hub && "stats" in o.hub ? o.hub.stats : undefined;
  const next: TrainingRunStatus = {
    ...p,
    phase,
    observedGeneration: o.generation,
    conditions: setConditions(p.conditions as Condition[] | undefined, conditions, now, o.generation),
    restarts: o.restarts,
    maxSteps: stats?.maxSteps || o.maxSteps,
  };
  if (stats) {
    next.step = stats.step;
    next.policyVersion = stats.policyVersion;
    next.rewardMean = stats.rewardMean;
    next.backlog = stats.backlog;
    if (stats.evaluation) next.evaluation = stats.evaluation;
  }
  if (o.poolName !== undefined) next.workerPool = o.poolName;
  if (o.readyWorkers !== undefined) next.workers = o.readyWorkers;
  if (o.job) next.trainerJob = o.job.name;
  if (o.restarted) next.lastFailure = o.restarted.message;
  if (o.failed) next.lastFailure = o.failed.message;
  if (!next.startTime && o.job?.startTime) next.startTime = o.job.startTime;
  if ((phase === "Succeeded" || phase === "Failed") && !next.completionTime && !o.invalid)
    next.completionTime = iso(now);
  return next;
}
