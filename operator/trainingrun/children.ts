// The run-wide children a TrainingRun reconcile keeps in step (step 5), in the order they are
// applied: one list that the reconciler and `l0 render` both walk, so what a user previews is
// what the operator creates. The token Secret (created once, never rebuilt) and the trainer Job
// (one per attempt, under the gang-restart policy) are the callers' own. Pure.
import { type KubernetesObject } from "@kubernetes/client-node";
import { type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { type DefaultImages } from "../images.js";
import { type Kind } from "../runtime/kube.js";
import { buildConfigMap, buildHubService, buildTrainerNetworkPolicy, buildTrainerService } from "./build.js";
import { buildInference, buildInferenceNetworkPolicy } from "./build-inference.js";
import { buildCheckpointClaim } from "./checkpoint-claim.js";

export interface Child {
  kind: Kind;
  obj: KubernetesObject;
  /** Created when missing and never kept in step (an object the run does not own). */
  createOnly?: boolean;
}

/** run.json, the trainer's Services and NetworkPolicy, and the inference tier (at zero when stopped or suspended). */
export function runChildren(run: ResolvedTrainingRun, images: DefaultImages, stopped: boolean): Child[] {
  const claim = buildCheckpointClaim(run);
  const out: Child[] = [
    ...(claim
      ? [
          {
            kind: "PersistentVolumeClaim" as const,
            obj: claim,
            createOnly: run.spec.checkpoint.storage!.retain,
          },
        ]
      : []),
    { kind: "ConfigMap", obj: buildConfigMap(run) },
    { kind: "Service", obj: buildTrainerService(run) },
    { kind: "Service", obj: buildHubService(run) },
    { kind: "NetworkPolicy", obj: buildTrainerNetworkPolicy(run) },
  ];
  if (run.spec.inference) {
    const { deployment, service } = buildInference(run, images);
    if (stopped || run.spec.suspend) deployment.spec!.replicas = 0;
    out.push(
      { kind: "Deployment", obj: deployment },
      { kind: "Service", obj: service },
      { kind: "NetworkPolicy", obj: buildInferenceNetworkPolicy(run) },
    );
  }
  return out;
}
