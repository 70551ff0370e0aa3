// Why a valid run cannot make progress, from what the reconcile observed: a child the API server
// refused, the referenced AgentWorkerPool missing, the worker pool itself degraded (e.g. its pods
// refused), trainer pods no node can hold. Each verdict names the object and the field to
// change; the run shows it as Degraded (kstatus) and records an Event when it changes. Pure.
import { type AgentWorkerPool, type TrainingRun } from "../../gen/crds/index.js";
import { FIELD_MANAGER } from "../runtime/kube.js";
import { type Verdict } from "../verdict.js";

interface PodLike {
  metadata?: { name?: string };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** Trainer pods the scheduler cannot place (PodScheduled=False, Unschedulable), if any. */
export function unschedulableTrainer(run: TrainingRun, pods: readonly PodLike[]): Verdict | undefined {
  for (const p of pods) {
    const c = p.status?.conditions?.find((x) => x.type === "PodScheduled");
    if (p.status?.phase === "Pending" && c?.status === "False" && c.reason === "Unschedulable") {
      const t = run.spec.trainer ?? {};
      return {
        reason: "TrainerUnschedulable",
        message: `trainer pod ${p.metadata?.name} cannot be scheduled: ${c.message ?? "no node fits"} (spec.trainer.gpusPerNode ${t.gpusPerNode ?? 1}, spec.trainer.resources, spec.trainer.nodeSelector)`,
      };
    }
  }
  return undefined;
}

/** The workers' side: a referenced pool that does not exist, or a pool that reports Degraded. */
export function workersProblem(
  run: TrainingRun,
  poolName: string,
  pool: AgentWorkerPool | undefined,
): Verdict | undefined {
  if (!pool)
    return run.spec.workerPoolRef
      ? {
          reason: "WorkerPoolNotFound",
          message: `spec.workerPoolRef.name: AgentWorkerPool ${JSON.stringify(poolName)} does not exist in namespace ${run.metadata?.namespace}`,
        }
      : undefined;
  const d = pool.status?.conditions?.find((c) => c.type === "Degraded" && c.status === "True");
  return d
    ? { reason: "WorkersDegraded", message: `AgentWorkerPool ${poolName}: ${d.reason}: ${d.message}` }
    : undefined;
}

/** A child the API server refused with 422: which one, and the server's own words. */
export const rejectedChild = (kind: string, name: string, why: string): Verdict => ({
  reason: "ChildRejected",
  message: `${kind} ${name} was refused by the API server: ${why}`,
});

interface ManagedEntry {
  manager?: string;
  subresource?: string;
  fieldsV1?: { "f:spec"?: { "f:replicas"?: unknown } };
}

/**
 * A run-owned pool that someone else scaled (`kubectl scale`, an HPA): the run puts its own
 * replicas back, so say who was overridden and what to change instead. The pool's managedFields
 * tell who last set spec.replicas; undefined when it was the operator or nothing differs.
 */
export function scaledOutside(
  pool: AgentWorkerPool | undefined,
  want: number | undefined,
): { type: "Warning"; reason: string; message: string } | undefined {
  if (!pool || want === undefined || pool.spec.replicas === undefined || pool.spec.replicas === want)
    return undefined;
  const managed = (
    (pool.metadata as { managedFields?: ManagedEntry[] } | undefined)?.managedFields ?? []
  ).filter((m) => m.fieldsV1?.["f:spec"]?.["f:replicas"] !== undefined);
  const other = managed.find((m) => m.manager !== FIELD_MANAGER);
  if (!other) return undefined;
  const name = pool.metadata?.name;
  return {
    type: "Warning",
    reason: "ScaleReverted",
    message: `AgentWorkerPool ${name} was scaled to ${pool.spec.replicas} by ${other.manager}; a run-owned pool follows the run, so it goes back to ${want}: change spec.workers.replicas of the run, or enable spec.workers.autoscaling`,
  };
}

/**
 * A run that trains on nothing (every group dropped or failed: no engine answers, the reward never
 * varies, every episode errors) must not end Succeeded: after one empty step it is Degraded, after
 * spec.trainer.maxEmptySteps consecutive ones it fails, with the same reason.
 */
export function nothingTrained(
  emptySteps: number,
  maxEmptySteps: number,
): { degraded: Verdict } | { failed: Verdict } | undefined {
  if (emptySteps <= 0) return undefined;
  const why = {
    reason: "NothingTrained",
    message: `${emptySteps} consecutive training step(s) had no trained sample: every group was dropped or failed (see the hub's groups_dropped and failed counts, the workers' logs and the inference engine)`,
  };
  if (emptySteps < maxEmptySteps) return { degraded: why };
  return {
    failed: { ...why, message: `${why.message}; spec.trainer.maxEmptySteps is ${maxEmptySteps}` },
  };
}
