// Checks of a schema-valid AgentWorkerPool for what the API server would refuse in its children:
// its name and its run's name become label values (63 characters) on the worker pods, and each
// tools.egress CIDR becomes a NetworkPolicy ipBlock. Pure; the first verdict wins.
import { type AgentWorkerPool, type ResolvedAgentWorkerPool } from "../../gen/crds/index.js";
import { type PodOverrides, podOverrideConflicts } from "../pod-overrides.js";
import { buildWorkerDeployment } from "./build.js";
import { cidrError, labelValueError } from "../k8s-rules.js";
import { type Verdict } from "../verdict.js";

export function poolPreflight(pool: AgentWorkerPool): Verdict | undefined {
  const name = pool.metadata?.name ?? "";
  for (const [field, value] of [
    ["metadata.name", name],
    ["spec.hubRef.name", pool.spec.hubRef.name],
  ] as const) {
    const why = labelValueError(value);
    if (why)
      return {
        reason: "InvalidName",
        message: `${field} ${JSON.stringify(value)} cannot be the worker pods' label value: ${why}`,
      };
  }
  const bad = (pool.spec.tools?.egress ?? [])
    .map((e, i) => ({ i, cidr: e.cidr, why: cidrError(e.cidr) }))
    .filter((e) => e.why);
  if (bad.length)
    return {
      reason: "InvalidSpec",
      message: bad
        .map((e) => `spec.tools.egress[${e.i}].cidr: ${JSON.stringify(e.cidr)}: ${e.why}`)
        .join("; "),
    };
  return overridesProblem(pool as ResolvedAgentWorkerPool);
}

/** podOverrides that name what the operator sets in the worker pod. */
function overridesProblem(pool: ResolvedAgentWorkerPool): Verdict | undefined {
  const o = pool.spec.podOverrides as PodOverrides | undefined;
  if (!o) return undefined;
  const bare = structuredClone(pool);
  delete bare.spec.podOverrides;
  const t = buildWorkerDeployment(bare, undefined, 0).spec!.template;
  const conflicts = podOverrideConflicts(t, "worker", ["worker"], o, "spec.podOverrides");
  if (!conflicts.length) return undefined;
  return { reason: "InvalidSpec", message: conflicts.map((c) => `${c.field}: ${c.description}`).join("; ") };
}
