// Decisions about a run's trainer Job as small pure checks returning {reason, message}
// (cert-manager's policies shape): gang restart, fail, complete. The reason becomes the
// condition's reason. Whether a run is valid at all is operator/validate.ts.
import { EXIT } from "../../lib/run-main.js";
import { type Verdict } from "../verdict.js";

export { type Verdict } from "../verdict.js";

/** Why a trainer Job failed; `config` when a container exited EXIT.config (its configuration or input). */
export interface Failure extends Verdict {
  config?: boolean;
}

/** Reasons of a Failed phase that only the spec caused: fixing the spec recovers the run. */
export const SPEC_REASONS: ReadonlySet<string> = new Set(["InvalidSpec", "InvalidName"]);

/** What the trainer Job's conditions say. */
export interface JobView {
  name: string;
  attempt: number;
  suspended: boolean;
  active: number;
  ready: number;
  complete: boolean;
  failed?: Failure;
  startTime?: string;
}

export type TrainerAction =
  | { kind: "wait" }
  | { kind: "create" }
  | { kind: "restart"; nextAttempt: number; why: Verdict }
  | { kind: "fail"; why: Verdict }
  | { kind: "complete" };

/**
 * Gang-restart policy (JobSet failure_policy shape): one failed Job restarts all, up to maxRestarts.
 * A failure on the configuration or input (exit 2) fails the run at once: a restart would fail
 * the same way (JobSet's FailJobSet action for a matched exit code; Kubernetes podFailurePolicy).
 */
export function trainerAction(
  job: JobView | undefined,
  restarts: number,
  maxRestarts: number,
): TrainerAction {
  if (!job) return { kind: "create" };
  if (job.complete) return { kind: "complete" };
  if (!job.failed) return { kind: "wait" };
  if (job.failed.config)
    return {
      kind: "fail",
      why: { reason: job.failed.reason, message: `not restarted (configuration): ${job.failed.message}` },
    };
  if (restarts >= maxRestarts)
    return {
      kind: "fail",
      why: {
        reason: "BackoffLimitExceeded",
        message: `trainer failed after ${restarts} restart(s) (maxRestarts ${maxRestarts}): ${job.failed.message}`,
      },
    };
  return { kind: "restart", nextAttempt: job.attempt + 1, why: job.failed };
}

interface JobLike {
  metadata?: { name?: string; labels?: Record<string, string> };
  spec?: { suspend?: boolean };
  status?: {
    active?: number;
    ready?: number;
    startTime?: unknown;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** Reads a batch/v1 Job into the view the policies take. */
export function viewJob(job: JobLike, attempt: number): JobView {
  const cond = (t: string) => job.status?.conditions?.find((c) => c.type === t && c.status === "True");
  const failed = cond("Failed");
  return {
    name: job.metadata?.name ?? "",
    attempt,
    suspended: job.spec?.suspend ?? false,
    active: job.status?.active ?? 0,
    ready: job.status?.ready ?? 0,
    complete: !!cond("Complete"),
    failed: failed
      ? { reason: failed.reason || "TrainerFailed", message: failed.message || "the trainer Job failed" }
      : undefined,
    startTime: job.status?.startTime ? String(job.status.startTime) : undefined,
  };
}

interface PodLike {
  status?: {
    containerStatuses?: { name: string; state?: { terminated?: { exitCode?: number; message?: string } } }[];
  };
}

/**
 * Why a trainer pod ended, from a failed container's termination message (the trainer writes
 * `Reason: message`, lib/run-main.ts; with FallbackToLogsOnError the kubelet puts its last log lines
 * there otherwise). Undefined when no failed container left a message.
 */
export function trainerFailureFromPods(pods: readonly PodLike[]): Failure | undefined {
  for (const p of pods)
    for (const c of p.status?.containerStatuses ?? []) {
      const t = c.state?.terminated;
      const text = t?.message?.trim();
      if (!t || !t.exitCode || !text) continue;
      const m = /^([A-Z][A-Za-z0-9]{2,63}): ([\s\S]+)$/.exec(text);
      const message = (m ? m[2]! : text).slice(-1000);
      const reason = m ? m[1]! : "TrainerFailed";
      const why = { reason, message: `${c.name} exited ${t.exitCode} (${reason}): ${message}` };
      return t.exitCode === EXIT.config ? { ...why, config: true } : why;
    }
  return undefined;
}

/**
 * `spec.suspend` the operator asks of the trainer Job; undefined leaves the Job's as it is. A new
 * Job of a queued run is created suspended (Kueue's job integration: a Job labelled with a queue
 * starts suspended and Kueue lifts the suspension when it admits the Workload, and sets it again
 * when it preempts; kueue.sigs.k8s.io/docs/tasks/run/jobs). So for a queued run the operator only
 * ever suspends (the user's spec.suspend) and never lifts a suspension: that is Kueue's alone.
 */
export function trainerSuspend(
  run: { spec: { suspend: boolean; queueName?: string } },
  creating: boolean,
): boolean | undefined {
  if (run.spec.suspend) return true;
  if (!run.spec.queueName) return false;
  return creating ? true : undefined;
}
