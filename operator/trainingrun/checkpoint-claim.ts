// The trainer's checkpoint volume: a claim the run names (checkpoint.claimName), the claim the
// operator creates from checkpoint.storage (owned by the run unless retained), or an emptyDir that
// a gang restart or suspend loses (tests, l0 local). Pure.
import { type V1PersistentVolumeClaim, type V1Volume } from "@kubernetes/client-node";
import { type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { RUN_LABEL, labels, names, ownerRef } from "../labels.js";

/** The claim for checkpoint.storage; none when the run names its own claim or asks for none. */
export function buildCheckpointClaim(run: ResolvedTrainingRun): V1PersistentVolumeClaim | undefined {
  const ck = run.spec.checkpoint;
  if (ck.claimName || !ck.storage) return undefined;
  const name = run.metadata!.name!;
  const st = ck.storage;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: names.checkpoints(name),
      namespace: run.metadata!.namespace,
      labels: labels(name, "trainer", { [RUN_LABEL]: name }),
      // Retained: no owner, so the garbage collector leaves it when the run is deleted.
      ...(st.retain ? {} : { ownerReferences: [ownerRef(run)] }),
    },
    spec: {
      accessModes: [st.accessMode],
      resources: { requests: { storage: String(st.size) } },
      ...(st.storageClassName ? { storageClassName: st.storageClassName } : {}),
    },
  };
}

/** The trainer pod's `checkpoints` volume. */
export function checkpointVolume(run: ResolvedTrainingRun): V1Volume {
  const ck = run.spec.checkpoint;
  const claimName = ck.claimName ?? (ck.storage ? names.checkpoints(run.metadata!.name!) : undefined);
  return claimName
    ? { name: "checkpoints", persistentVolumeClaim: { claimName } }
    : { name: "checkpoints", emptyDir: {} };
}
