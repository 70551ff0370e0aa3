// `l0 render`: every object the operator would create for the TrainingRuns and AgentWorkerPools of
// a manifest, like `helm template`. It resolves each object as the reconcilers do (validateRun /
// validatePool: the CRD's schema, defaults and CEL rules, then the preflights) and walks the same
// child lists (runChildren, poolChildren) and builders (token Secret, trainer Job attempt 0, owned
// pool), so a preview cannot drift from what a cluster gets. Values only the API server or the
// operator knows at run time are placeholders: the run token and owner UIDs. Pure but for reading
// nothing: the caller parses the file.
import { type KubernetesObject } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { type AgentWorkerPool, type ResolvedTrainingRun, type TrainingRun } from "../gen/crds/index.js";
import { invalidFields } from "../lib/errors.js";
import { BUILTIN_IMAGES, type DefaultImages } from "./images.js";
import { buildOwnedPool, inlineReplicas } from "./trainingrun/build-inference.js";
import { buildTokenSecret, buildTrainerJob } from "./trainingrun/build.js";
import { TLS_KEYS } from "../lib/tls.js";
import { runChildren } from "./trainingrun/children.js";
import { validatePool, validateRun } from "./validate.js";
import { poolChildren } from "./workerpool/children.js";

type K = KubernetesObject;
/** What the token Secret holds in a rendering: the operator generates the real one at the first reconcile. */
export const TOKEN_PLACEHOLDER = "generated-by-the-operator";
/** Likewise the run's TLS material (operator/run-tls.ts). */
const TLS_PLACEHOLDER = Object.fromEntries(
  Object.values(TLS_KEYS).map((k) => [k, Buffer.from(TOKEN_PLACEHOLDER).toString("base64")]),
);

export interface RenderOptions {
  /** Namespace of objects that name none (kubectl's default). */
  namespace: string;
  images: DefaultImages;
}

const DEFAULTS: RenderOptions = { namespace: "default", images: BUILTIN_IMAGES };

/** The objects of one manifest (several YAML documents allowed), in the order the operator applies them. */
export function renderManifest(text: string, source: string, opts: Partial<RenderOptions> = {}): K[] {
  const o = { ...DEFAULTS, ...opts };
  const docs = parseAllDocuments(text);
  const objs: Record<string, unknown>[] = [];
  docs.forEach((d, i) => {
    if (d.errors.length)
      throw invalidFields([{ field: `${source}: document ${i + 1}`, description: d.errors[0]!.message }]);
    const v = d.toJSON() as unknown;
    if (v !== null && v !== undefined) objs.push(v as Record<string, unknown>);
  });
  const withNs = (x: Record<string, unknown>, i: number) => {
    const meta = (x.metadata ?? {}) as Record<string, unknown>;
    if (typeof meta.name !== "string" || !meta.name)
      throw invalidFields([
        { field: `${source}: document ${i + 1}: metadata.name`, description: "is required" },
      ]);
    return { ...x, metadata: { namespace: o.namespace, ...meta } };
  };
  const runs = objs.flatMap((x, i) => (x.kind === "TrainingRun" ? [withNs(x, i) as TrainingRun] : []));
  const pools = objs.flatMap((x, i) =>
    x.kind === "AgentWorkerPool" ? [withNs(x, i) as AgentWorkerPool] : [],
  );
  const other = objs.findIndex((x) => x.kind !== "TrainingRun" && x.kind !== "AgentWorkerPool");
  if (other >= 0)
    throw invalidFields([
      {
        field: `${source}: document ${other + 1}: kind`,
        description: `must be TrainingRun or AgentWorkerPool, got ${JSON.stringify(objs[other]!.kind)}`,
      },
    ]);
  const resolved = runs.map((r) => resolveRun(r, source));
  const runOf = (ns: string, name: string) =>
    resolved.find((r) => r.metadata!.namespace === ns && r.metadata!.name === name);
  return [
    ...resolved.flatMap((r) => renderRun(r, o.images)),
    ...pools.flatMap((p) => {
      const ns = p.metadata!.namespace!;
      return renderPool(p, runOf(ns, p.spec.hubRef.name), p.spec.replicas ?? 1, source, o.images);
    }),
  ];
}

function resolveRun(run: TrainingRun, source: string): ResolvedTrainingRun {
  const v = validateRun(run);
  if ("invalid" in v)
    throw invalidFields([
      { field: `${source}: TrainingRun ${run.metadata!.name}`, description: v.invalid.message },
    ]);
  return v.run;
}

/** A resolved run's objects: token Secret, run-wide children, trainer Job, and its inline pool's. */
export function renderRun(run: ResolvedTrainingRun, images: DefaultImages = BUILTIN_IMAGES): K[] {
  const out: K[] = [
    buildTokenSecret(run, TOKEN_PLACEHOLDER, TLS_PLACEHOLDER),
    ...runChildren(run, images, false).map((c) => c.obj),
    buildTrainerJob(run, 0, images),
  ];
  if (!run.spec.workers) return out;
  // As the run reconciler creates it: a new autoscaled pool starts at minReplicas.
  const pool = buildOwnedPool(run, inlineReplicas(run, false));
  pool.spec.replicas ??= run.spec.workers.autoscaling.minReplicas;
  out.push(pool as K);
  return [...out, ...renderPool(pool, run, pool.spec.replicas, "TrainingRun", images)];
}

function renderPool(
  pool: AgentWorkerPool,
  run: ResolvedTrainingRun | undefined,
  replicas: number,
  source: string,
  images: DefaultImages,
): K[] {
  const v = validatePool(pool);
  if ("invalid" in v)
    throw invalidFields([
      { field: `${source}: AgentWorkerPool ${pool.metadata!.name}`, description: v.invalid.message },
    ]);
  const stopped = !run || run.spec.suspend;
  return poolChildren(v.pool, run, stopped ? 0 : replicas, images).map((c) => c.obj);
}
