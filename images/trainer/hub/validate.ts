// Boundary checks of Rollout requests: each returns nothing or throws INVALID_ARGUMENT naming
// the offending field (proto field names, as a worker author reads them in rollout.proto).
import { L0Error, invalidField } from "../../../lib/errors.js";
import { l0 } from "../../../lib/proto.js";
import { type TaskRec } from "./records.js";

export const LIMITS = {
  idChars: 256,
  maxTasks: 1024,
  waitMs: 30_000,
  leasesPerCall: 4096,
  turns: 1000,
  finalAnswerChars: 64 * 1024,
};

function id(field: string, v: string | null | undefined): void {
  if (!v) throw invalidField(field, "is required");
  if (v.length > LIMITS.idChars) throw invalidField(field, `must be at most ${LIMITS.idChars} characters`);
}

export function validateLease(r: l0.v1.ILeaseRequest): void {
  id("worker_id", r.workerId);
  const n = r.maxTasks ?? 0;
  if (n < 1 || n > LIMITS.maxTasks)
    throw invalidField("max_tasks", `must be 1..${LIMITS.maxTasks}, got ${n}`);
  const w = r.waitMs ?? 0;
  if (w > LIMITS.waitMs) throw invalidField("wait_ms", `must be at most ${LIMITS.waitMs}, got ${w}`);
}

export function validateHeartbeat(r: l0.v1.IHeartbeatRequest): void {
  id("worker_id", r.workerId);
  const leases = r.leases ?? [];
  if (leases.length > LIMITS.leasesPerCall)
    throw invalidField("leases", `at most ${LIMITS.leasesPerCall} per call, got ${leases.length}`);
  leases.forEach((l, i) => id(`leases[${i}].lease_id`, l.leaseId));
}

export function validateRelease(r: l0.v1.IReleaseRequest): void {
  id("worker_id", r.workerId);
  const ids = r.leaseIds ?? [];
  if (ids.length > LIMITS.leasesPerCall)
    throw invalidField("lease_ids", `at most ${LIMITS.leasesPerCall} per call, got ${ids.length}`);
  ids.forEach((x, i) => id(`lease_ids[${i}]`, x));
}

const KNOWN_ENDS = new Set<number>(
  Object.values(l0.v1.EpisodeEnd).filter(
    (v): v is number => typeof v === "number" && v !== l0.v1.EpisodeEnd.EPISODE_END_UNSPECIFIED,
  ),
);

export function validateSubmit(r: l0.v1.ISubmitRequest): asserts r is { trajectory: l0.v1.ITrajectory } {
  const t = r.trajectory;
  if (!t) throw invalidField("trajectory", "is required");
  id("trajectory.trajectory_id", t.trajectoryId);
  id("trajectory.task_id", t.taskId);
  id("trajectory.lease_id", t.leaseId);
  if (t.end == null || !KNOWN_ENDS.has(t.end))
    throw invalidField("trajectory.end", `must be a known EpisodeEnd, got ${String(t.end ?? 0)}`);
  const turns = t.turns ?? [];
  if (turns.length > LIMITS.turns)
    throw invalidField("trajectory.turns", `at most ${LIMITS.turns} turns, got ${turns.length}`);
  if ((t.finalAnswer ?? "").length > LIMITS.finalAnswerChars)
    throw invalidField("trajectory.final_answer", `at most ${LIMITS.finalAnswerChars} characters`);
  turns.forEach((turn, i) => {
    const ids = turn.responseTokenIds ?? [];
    const lps = turn.responseLogprobs ?? [];
    if (lps.length !== ids.length)
      throw invalidField(
        `trajectory.turns[${i}].response_logprobs`,
        `must have one logprob per response token (${ids.length}), got ${lps.length}`,
      );
    for (let j = 0; j < lps.length; j++) {
      const x = lps[j]!;
      if (!Number.isFinite(x) || x > 1e-3)
        throw invalidField(
          `trajectory.turns[${i}].response_logprobs[${j}]`,
          `must be a finite logprob <= 0, got ${x}`,
        );
    }
  });
}

export function isInfrastructureFailure(end: l0.v1.EpisodeEnd): boolean {
  return (
    end === l0.v1.EpisodeEnd.EPISODE_END_SANDBOX_FAILURE ||
    end === l0.v1.EpisodeEnd.EPISODE_END_ENGINE_FAILURE ||
    end === l0.v1.EpisodeEnd.EPISODE_END_WORKER_SHUTDOWN
  );
}

/** "EPISODE_END_MAX_TURNS" -> "max_turns": the bounded label used in metrics and drop reasons. */
export function endName(end: l0.v1.EpisodeEnd): string {
  return (l0.v1.EpisodeEnd[end] ?? "unspecified").replace(/^EPISODE_END_/, "").toLowerCase();
}

/**
 * The task a submitted trajectory belongs to, by its lease (every lease this hub instance issued
 * is remembered): unknown lease -> NotFound; a lease of another task -> InvalidArgument; a task
 * another attempt already finished -> FailedPrecondition.
 */
export function submittedTask(task: TaskRec | undefined, t: l0.v1.ITrajectory): TaskRec {
  if (!task)
    throw new L0Error("NotFound", `trajectory.lease_id: unknown lease ${JSON.stringify(t.leaseId)}`, {
      reason: "UnknownLease",
    });
  if (task.id !== t.taskId)
    throw new L0Error(
      "InvalidArgument",
      `trajectory.task_id: lease ${t.leaseId} belongs to task ${task.id}, got ${t.taskId}`,
      {
        reason: "InvalidField",
        violations: [{ field: "trajectory.task_id", description: `lease belongs to task ${task.id}` }],
      },
    );
  if (task.status === "done" || task.status === "dropped")
    throw new L0Error(
      "FailedPrecondition",
      `task ${task.id} is already finished (${task.status}) by another attempt`,
      {
        reason: "TaskFinished",
      },
    );
  return task;
}
