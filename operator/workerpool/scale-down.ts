// Before a scale-down: mark each worker pod's pod-deletion-cost with its active episodes, so the
// ReplicaSet controller removes idle workers first and running episodes are not cut (the workers
// drain either way; this only saves their work). I/O only; the decision is deletionCostPatches.
import { type KubernetesObject } from "@kubernetes/client-node";
import { type WorkerPodAddress, readActiveEpisodes } from "../autoscaler/active-episodes.js";
import { deletionCostPatches } from "../autoscaler/deletion-cost.js";
import { type KubeApi, isStatus } from "../runtime/kube.js";
import { WORKER_METRICS_PORT } from "./build.js";

/** Active episodes per pod name, for the pods that answered (see readActiveEpisodes). */
export type EpisodeReader = (pods: WorkerPodAddress[]) => Promise<Map<string, number>>;

export const httpEpisodeReader: EpisodeReader = (pods) =>
  readActiveEpisodes(pods, { port: WORKER_METRICS_PORT, timeoutMs: 1000 });

type Pod = KubernetesObject & { status?: { podIP?: string } };

/** Patches the pool's live pods whose cost changed; returns how many pods answered and were patched. */
export async function markDeletionCost(
  api: KubeApi,
  namespace: string,
  selector: string,
  read: EpisodeReader,
): Promise<{ pods: number; answered: number; patched: number }> {
  const list = await api.list<Pod>("Pod", namespace, { labelSelector: selector });
  const live = list.items.filter((p) => !p.metadata?.deletionTimestamp);
  const active = await read(live.map((p) => ({ name: p.metadata!.name!, ip: p.status?.podIP })));
  const patches = deletionCostPatches(
    live.map((p) => ({ name: p.metadata!.name!, annotations: p.metadata?.annotations })),
    active,
  );
  for (const p of patches)
    await api.mergePatch("Pod", namespace, p.pod, { metadata: { annotations: p.annotations } }).catch((e) => {
      if (!isStatus(e, 404)) throw e; // gone meanwhile: nothing to protect
    });
  return { pods: live.length, answered: active.size, patched: patches.length };
}
