// An AgentWorkerPool's children in the order the reconciler applies them: one list that the
// reconciler and `l0 render` both walk. Pure.
import { type KubernetesObject } from "@kubernetes/client-node";
import { type ResolvedAgentWorkerPool, type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { type DefaultImages } from "../images.js";
import { buildNetworkPolicy, buildPdb, buildServiceAccount, buildWorkerDeployment } from "./build.js";

export interface PoolChild {
  kind: "ServiceAccount" | "Deployment" | "NetworkPolicy" | "PodDisruptionBudget";
  obj: KubernetesObject;
}

/** ServiceAccount, worker Deployment at `replicas`, NetworkPolicy, PodDisruptionBudget. */
export function poolChildren(
  pool: ResolvedAgentWorkerPool,
  run: ResolvedTrainingRun | undefined,
  replicas: number,
  images: DefaultImages,
): PoolChild[] {
  return [
    { kind: "ServiceAccount", obj: buildServiceAccount(pool) },
    { kind: "Deployment", obj: buildWorkerDeployment(pool, run, replicas, images) },
    { kind: "NetworkPolicy", obj: buildNetworkPolicy(pool, run) },
    { kind: "PodDisruptionBudget", obj: buildPdb(pool) },
  ];
}
