// Deleting a run: stop its workers first (none keeps a lease against a hub going away), then
// delete every child it owns, or that a `--cascade=orphan` delete left ownerless, record the end,
// and release the finalizer. The one other place (beside reconciler.ts) that writes to the API.
import { type KubernetesObject } from "@kubernetes/client-node";
import { type TrainingRun } from "../../gen/crds/index.js";
import { FINALIZER, isOwnedBy, orphanedChildOf } from "../labels.js";
import { type ReconcileContext, type Result } from "../runtime/controller.js";
import { type EventRecorder } from "../runtime/events.js";
import { type Informer } from "../runtime/informer.js";
import { type Kind, type KubeApi, isStatus } from "../runtime/kube.js";

type K = KubernetesObject;

export interface FinalizeDeps {
  api: KubeApi;
  recorder: EventRecorder;
  cacheFor: (kind: Kind) => Informer<K>;
}

export async function finalizeRun(
  deps: FinalizeDeps,
  run: TrainingRun & K,
  ctx: ReconcileContext,
): Promise<Result> {
  const { api, recorder, cacheFor } = deps;
  if (!(run.metadata?.finalizers ?? []).includes(FINALIZER)) return {};
  const ns = run.metadata!.namespace!;
  const uid = run.metadata!.uid!;
  // Workers first, so none holds a lease against a hub that is going away; then everything we own.
  const order: Kind[] = [
    "AgentWorkerPool",
    "Deployment",
    "Job",
    "Service",
    "NetworkPolicy",
    "ConfigMap",
    "Secret",
  ];
  let deleted = 0;
  for (const kind of order) {
    const cache = cacheFor(kind);
    // Owned, or orphaned by a `--cascade=orphan` delete racing this finalizer: the token
    // Secret, run.json and the NetworkPolicies must not outlive the run either way.
    const children = [
      ...cache.ownedBy(uid).filter((c) => isOwnedBy(c, run)),
      ...cache.list(ns).filter((c) => orphanedChildOf(c, run)),
    ];
    for (const child of children) {
      await api.delete(kind, ns, child.metadata!.name!, { propagation: "Background" }).catch((e: unknown) => {
        if (!isStatus(e, 404)) throw e;
      });
      deleted++;
    }
  }
  await recorder.record(run, {
    type: "Normal",
    reason: "Deleted",
    message: `run deleted in phase ${run.status?.phase ?? "none"} at step ${run.status?.step ?? 0}; ${deleted} owned object(s) deleted`,
  });
  ctx.logger.info("finalized", { phase: run.status?.phase, step: run.status?.step, deleted });
  const finalizers = (run.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER);
  await api
    .mergePatch("TrainingRun", ns, run.metadata!.name!, {
      metadata: { finalizers, resourceVersion: run.metadata?.resourceVersion },
    })
    .catch((e: unknown) => {
      if (!isStatus(e, 404)) throw e;
    });
  return {};
}
