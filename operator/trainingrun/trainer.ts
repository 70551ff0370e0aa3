// Step 6 of a TrainingRun reconcile: the trainer Job under the gang-restart policy (JobSet's
// failure policy shape): restart every pod of the group when one fails (next attempt first,
// then the failed one deleted), fail after maxRestarts, complete, or keep the current Job in step.
import { type KubernetesObject } from "@kubernetes/client-node";
import { type ResolvedTrainingRun, type TrainingRun } from "../../gen/crds/index.js";
import { type DefaultImages } from "../images.js";
import { type ReconcileContext, type Request } from "../runtime/controller.js";
import { type ensureChild } from "../runtime/ensure.js";
import { type PendingEvent } from "../runtime/events.js";
import { type Kind, type KubeApi, isStatus } from "../runtime/kube.js";
import { type Verdict } from "../verdict.js";
import { ATTEMPT_LABEL } from "../labels.js";
import { buildTrainerJob } from "./build.js";
import { type JobView, trainerAction, trainerSuspend, viewJob } from "./policy.js";
import { type RunObservation } from "./status.js";

type K = KubernetesObject;

export const attemptOf = (o: K): number => Number(o.metadata?.labels?.[ATTEMPT_LABEL] ?? -1);

/** One reconcile's state: the resolved run, what was observed so far, the events to record. */
export interface Pass {
  req: Request;
  ctx: ReconcileContext;
  run: TrainingRun & K;
  spec: ResolvedTrainingRun;
  uid: string;
  obs: RunObservation;
  events: PendingEvent[];
  /** Succeeded or Failed for good: children are kept at rest, the trainer is not driven. */
  stopped: boolean;
  ensure: (kind: Kind, desired: K, fields?: readonly string[]) => ReturnType<typeof ensureChild>;
}

/** The trainer Jobs as observed: every attempt, the current one, and its view. */
export interface TrainerState {
  jobs: K[];
  attempt: number;
  current: K | undefined;
  view: JobView | undefined;
}

export interface TrainerDeps {
  api: KubeApi;
  images: DefaultImages;
  deleteOwned: (kind: Kind, ns: string, name: string, uid: string, ctx: ReconcileContext) => Promise<void>;
}

/** Step 6: applies the gang-restart policy; returns the view of the Job now current. */
export async function driveTrainer(
  d: TrainerDeps,
  pass: Pass,
  t: TrainerState,
): Promise<JobView | undefined> {
  const { req, spec, uid, ctx, obs, events } = pass;
  let view = t.view;
  const action = trainerAction(view, obs.restarts, spec.spec.trainer.maxRestarts);
  if (action.kind === "restart") view = await restartTrainer(d, pass, view!, action.nextAttempt, action.why);
  else if (action.kind === "fail") {
    obs.failed = action.why;
    events.push({ type: "Warning", reason: "RunFailed", message: action.why.message });
  } else if (action.kind === "complete") {
    obs.completed = true;
    events.push({
      type: "Normal",
      reason: "RunSucceeded",
      message: "the trainer finished; workers scaled to zero",
    });
  } else view = await keepTrainer(d, pass, t);
  // Old attempts are ours and done: delete them (their pods go with them).
  for (const j of t.jobs)
    if (attemptOf(j) < obs.restarts && j.metadata?.name !== view?.name)
      await d.deleteOwned("Job", req.namespace, j.metadata!.name!, uid, ctx);
  return view;
}

async function restartTrainer(
  d: TrainerDeps,
  pass: Pass,
  failed: JobView,
  next: number,
  why: Verdict,
): Promise<JobView> {
  // Create the next attempt before deleting the failed one: a crash in between leaves the
  // highest attempt current, so the restart is counted exactly once.
  const job = buildTrainerJob(pass.spec, next, d.images);
  await pass.ensure("Job", job);
  await d.api.delete("Job", pass.req.namespace, failed.name, { propagation: "Background" }).catch((e) => {
    if (!isStatus(e, 404)) throw e;
  });
  pass.obs.restarts = next;
  pass.obs.restarted = why;
  pass.events.push({
    type: "Warning",
    reason: "GangRestart",
    message: `trainer failed (${why.message}); restart ${next}`,
  });
  return viewJob(job as never, next);
}

/** Creates the current attempt's Job, or keeps the fields a Job allows to change in step. */
async function keepTrainer(d: TrainerDeps, pass: Pass, t: TrainerState): Promise<JobView | undefined> {
  const job = buildTrainerJob(pass.spec, t.attempt, d.images);
  // A Job's pod template is immutable: only suspend and the TTL are kept in step; other trainer
  // changes take effect at the next gang restart or resume (docs/operator.md).
  // A queued run's Job: its suspension is Kueue's to lift (trainerSuspend).
  const suspend = trainerSuspend(pass.spec, false);
  const desired = t.current
    ? ({
        metadata: job.metadata,
        spec: { suspend, ttlSecondsAfterFinished: job.spec!.ttlSecondsAfterFinished },
      } as K)
    : job;
  const r = await pass.ensure("Job", desired, ["spec"]);
  if (r.outcome === "created")
    pass.events.push({
      type: "Normal",
      reason: "TrainerCreated",
      message: `created trainer Job ${job.metadata!.name}`,
    });
  if (r.outcome === "updated" && t.current && suspend !== undefined && t.view?.suspended !== suspend)
    pass.events.push({
      type: "Normal",
      reason: suspend ? "Suspended" : "Resumed",
      message: suspend
        ? "trainer pods deleted, workers at zero; checkpoint kept"
        : "resuming from the last checkpoint",
    });
  return t.current ? t.view : viewJob(r.obj as never, t.attempt);
}

/**
 * A run that ended while its trainer still runs (failed by a policy such as nothingTrained, not by
 * the Job): the Job is suspended, so its pods stop holding GPUs; the Job and checkpoint are kept.
 */
export async function restTrainer(pass: Pass, t: TrainerState): Promise<void> {
  const v = t.view;
  if (!t.current || !v || v.complete || v.failed || v.suspended) return;
  const { name, namespace, labels, ownerReferences } = t.current.metadata!;
  const metadata = { name, namespace, labels, ownerReferences };
  await pass.ensure("Job", { metadata, spec: { suspend: true } } as K, ["spec"]);
}
