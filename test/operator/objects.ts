// Validated TrainingRun and AgentWorkerPool objects for the pure builder, policy and status tests:
// what the reconcilers see after validation and defaulting (no server).
import { type ResolvedAgentWorkerPool, type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { parseTrainingRun } from "../../lib/run-config.js";
import { validatePool } from "../../operator/validate.js";

/** A validated run with defaults, like the reconciler sees it. */
export function makeRun(spec: Record<string, unknown> = {}, name = "qa"): ResolvedTrainingRun {
  const r = parseTrainingRun({
    apiVersion: "l0.dev/v1alpha1",
    kind: "TrainingRun",
    metadata: { name, namespace: "ns" },
    spec: { model: { name: "tiny" }, dataset: { path: "/d.jsonl" }, workers: {}, ...spec },
  });
  return { ...r, metadata: { name, namespace: "ns", uid: "run-uid", generation: 1 } };
}

/** A validated pool (of run `qa`) with defaults, like the reconciler sees it. */
export function makePool(spec: Record<string, unknown> = {}): ResolvedAgentWorkerPool {
  const v = validatePool({
    apiVersion: "l0.dev/v1alpha1",
    kind: "AgentWorkerPool",
    metadata: { name: "p", namespace: "ns", uid: "pool-uid" },
    spec: { hubRef: { name: "qa" }, ...spec },
  } as never);
  if ("invalid" in v) throw new Error(v.invalid.message);
  return v.pool;
}
