// Policies and status of an AgentWorkerPool, pure: how many replicas it should run now, and its
// status rebuilt from what was observed.
import { type AgentWorkerPool, type AgentWorkerPoolStatus, type TrainingRun } from "../../gen/crds/index.js";
import { type Condition, type ConditionInput, setConditions } from "../runtime/conditions.js";
import { type Verdict } from "../verdict.js";

/** Why the pool must be at zero regardless of scaling, if it must. */
export function stopReason(pool: AgentWorkerPool, run: TrainingRun | undefined): Verdict | undefined {
  if (!run) return { reason: "RunNotFound", message: `TrainingRun ${pool.spec.hubRef.name} does not exist` };
  if (run.metadata?.deletionTimestamp)
    return { reason: "RunDeleting", message: `TrainingRun ${pool.spec.hubRef.name} is being deleted` };
  if (run.spec.suspend)
    return { reason: "RunSuspended", message: `TrainingRun ${pool.spec.hubRef.name} is suspended` };
  const phase = run.status?.phase;
  if (phase === "Succeeded" || phase === "Failed")
    return { reason: "RunFinished", message: `TrainingRun ${pool.spec.hubRef.name} ${phase.toLowerCase()}` };
  return undefined;
}

export interface PoolObservation {
  generation: number;
  invalid?: Verdict;
  desired: number;
  replicas: number;
  ready: number;
  stopped?: Verdict;
  degraded?: Verdict;
  backlog?: number;
  /** The autoscaler's recommendation this reconcile (autoscaled pools only). */
  recommendation?: { replicas: number; reason: string; message: string };
  scaled: boolean;
  selector: string;
}

const stamp = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, "Z");

const C = (type: string, on: boolean, reason: string, message: string): ConditionInput => ({
  type,
  status: on ? "True" : "False",
  reason,
  message,
});

export function computePoolStatus(
  prev: AgentWorkerPool["status"] | undefined,
  o: PoolObservation,
  now: Date,
): AgentWorkerPoolStatus {
  const p = prev ?? {};
  const rolledOut = o.ready >= o.desired && o.replicas === o.desired;
  const degraded = o.invalid ?? o.degraded;
  const conds = [
    C(
      "Ready",
      !o.invalid && rolledOut,
      o.invalid ? o.invalid.reason : rolledOut ? (o.stopped?.reason ?? "AllReady") : "WorkersStarting",
      o.invalid
        ? o.invalid.message
        : `${o.ready}/${o.desired} workers ready${o.stopped ? `: ${o.stopped.message}` : ""}`,
    ),
    C(
      "Progressing",
      !o.invalid && !rolledOut,
      o.invalid ? o.invalid.reason : rolledOut ? "RolledOut" : "Scaling",
      `${o.replicas} -> ${o.desired} replicas`,
    ),
    C("Degraded", !!degraded, degraded?.reason ?? "AsExpected", degraded?.message ?? "no problems observed"),
  ];
  const next: AgentWorkerPoolStatus = {
    ...p,
    observedGeneration: o.generation,
    replicas: o.replicas,
    readyReplicas: o.ready,
    desiredReplicas: o.desired,
    selector: o.selector,
    conditions: setConditions(p.conditions as Condition[] | undefined, conds, now, o.generation),
  };
  if (o.backlog !== undefined) next.backlog = o.backlog;
  if (o.recommendation) {
    // `time` moves only when replicas or reason change, so a steady pool's status stays put.
    const last = p.lastRecommendation;
    const same = last?.replicas === o.recommendation.replicas && last.reason === o.recommendation.reason;
    next.lastRecommendation = { ...o.recommendation, time: same && last?.time ? last.time : stamp(now) };
  }
  // Also when a scale's own status write was lost (409): desired moved since the last status.
  if (o.scaled || (p.desiredReplicas !== undefined && p.desiredReplicas !== o.desired))
    next.lastScaleTime = stamp(now);
  return next;
}
