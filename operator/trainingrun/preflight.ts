// Checks of a schema-valid run before anything is built, for specs the API server or the run
// itself would only refuse later (cert-manager's policy-chain shape: small pure checks, the first
// verdict wins). Names that cannot become children (Service names are RFC 1123 labels; a Job's
// name is its pods' job-name label and an indexed pod's hostname is `<job>-<index>`; the run's
// name is a label value), an egress CIDR a NetworkPolicy refuses, a run.json over the 1 MiB a
// ConfigMap holds, and settings that can never train (every group dropped, no reward at all).
import { type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { cidrError, dnsLabelError, labelValueError } from "../k8s-rules.js";
import { names } from "../labels.js";
import { buildTrainerJob, runConfigJson } from "./build.js";
import { INFERENCE_MOUNTED, buildInference } from "./build-inference.js";
import { type PodOverrides, podOverrideConflicts } from "../pod-overrides.js";

import { type Verdict } from "../verdict.js";

export type RunCheck = (run: ResolvedTrainingRun) => Verdict | undefined;

/** The names the run's children get, each with the rule the API server applies to it. */
function childNames(
  run: ResolvedTrainingRun,
): { what: string; name: string; error: (n: string) => string | undefined }[] {
  const name = run.metadata!.name!;
  const t = run.spec.trainer;
  const lastJob = names.trainerJob(name, t.maxRestarts);
  const out = [
    { what: "label value (l0.dev/run)", name, error: labelValueError },
    { what: "Service", name: names.trainerService(name), error: dnsLabelError },
    { what: "Service", name: names.hubService(name), error: dnsLabelError },
    { what: "Job (its name is the pods' job-name label)", name: lastJob, error: labelValueError },
    { what: "trainer pod hostname", name: `${lastJob}-${t.nodes - 1}`, error: dnsLabelError },
  ];
  if (run.spec.inference) out.push({ what: "Service", name: names.inference(name), error: dnsLabelError });
  return out;
}

/** A run whose name makes a child name the API server refuses (too long, or a dot where a label is needed). */
export const childNameCheck: RunCheck = (run) => {
  const bad = childNames(run)
    .map((c) => ({ ...c, why: c.error(c.name) }))
    .filter((c) => c.why);
  if (!bad.length) return undefined;
  const name = run.metadata!.name!;
  return {
    reason: "InvalidName",
    message: `metadata.name ${JSON.stringify(name)} cannot name this run's children: ${bad
      .map((c) => `${c.what} ${JSON.stringify(c.name)}: ${c.why}`)
      .join("; ")}; use a shorter name without dots`,
  };
};

export const egressCheck: RunCheck = (run) => {
  const bad = (run.spec.workers?.tools?.egress ?? [])
    .map((e, i) => ({ i, cidr: e.cidr, why: cidrError(e.cidr) }))
    .filter((e) => e.why);
  if (!bad.length) return undefined;
  return {
    reason: "InvalidSpec",
    message: bad
      .map((e) => `spec.workers.tools.egress[${e.i}].cidr: ${JSON.stringify(e.cidr)}: ${e.why}`)
      .join("; "),
  };
};

/** Bytes of each field of `v` (JSON), to name what makes a document large. */
function largestPath(v: unknown, path: string): { path: string; bytes: number } {
  const bytes = JSON.stringify(v)?.length ?? 0;
  if (v === null || typeof v !== "object") return { path, bytes };
  const entries = Array.isArray(v)
    ? v.map((x, i) => [`${path}[${i}]`, x] as const)
    : Object.entries(v).map(([k, x]) => [`${path}.${k}`, x] as const);
  const sized = entries
    .map(([p, x]) => ({ p, x, n: JSON.stringify(x)?.length ?? 0 }))
    .sort((a, b) => b.n - a.n);
  // Descend while one field holds most of it: that field is what the user should shrink.
  const top = sized[0];
  return top && top.n * 2 > bytes ? largestPath(top.x, top.p) : { path, bytes };
}

const MIB = 1024 * 1024;
export const configSizeCheck: RunCheck = (run) => {
  const size = Buffer.byteLength(runConfigJson(run));
  if (size <= MIB) return undefined;
  const big = largestPath(run.spec, "spec");
  return {
    reason: "InvalidSpec",
    message: `${big.path}: the run's settings (run.json, ${size} bytes) exceed the 1 MiB (${MIB} bytes) a ConfigMap holds; ${big.path} alone is ${big.bytes} bytes`,
  };
};

export const samplingCheck: RunCheck = (run) => {
  const a = run.spec.algorithm;
  if (a.dynamicSampling && a.groupSize === 1)
    return {
      reason: "InvalidSpec",
      message:
        "spec.algorithm.groupSize: 1 with spec.algorithm.dynamicSampling true drops every group (a group of one has no reward spread): use groupSize >= 2 or dynamicSampling false",
    };
  return undefined;
};

export const rewardCheck: RunCheck = (run) => {
  const r = run.spec.reward;
  const weights = [r.exactMatch, r.f1, r.hasAnswer, r.format, r.codeExecution];
  if (weights.every((w) => w === 0))
    return {
      reason: "InvalidSpec",
      message:
        "spec.reward: every weight is 0, so every episode scores 0 and nothing is learned: set at least one weight above 0",
    };
  return undefined;
};

/** podOverrides that name what the operator sets (an env var, volume, mount path or label). */
export const overridesCheck: RunCheck = (run) => {
  const bare = structuredClone(run);
  delete bare.spec.trainer.podOverrides;
  if (bare.spec.inference) delete bare.spec.inference.podOverrides;
  const conflicts = podOverrideConflicts(
    buildTrainerJob(bare, 0).spec!.template,
    "trainer",
    ["trainer"],
    run.spec.trainer.podOverrides as PodOverrides | undefined,
    "spec.trainer.podOverrides",
  );
  if (run.spec.inference)
    conflicts.push(
      ...podOverrideConflicts(
        buildInference(bare).deployment.spec!.template,
        "engine",
        INFERENCE_MOUNTED,
        run.spec.inference.podOverrides as PodOverrides | undefined,
        "spec.inference.podOverrides",
      ),
    );
  if (!conflicts.length) return undefined;
  return { reason: "InvalidSpec", message: conflicts.map((c) => `${c.field}: ${c.description}`).join("; ") };
};

/** In order: names first (nothing can be created), then what would fail later. */
export const RUN_CHECKS: readonly RunCheck[] = [
  childNameCheck,
  egressCheck,
  configSizeCheck,
  samplingCheck,
  rewardCheck,
  overridesCheck,
];

export function preflight(
  run: ResolvedTrainingRun,
  checks: readonly RunCheck[] = RUN_CHECKS,
): Verdict | undefined {
  for (const check of checks) {
    const v = check(run);
    if (v) return v;
  }
  return undefined;
}
