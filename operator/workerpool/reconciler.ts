// The AgentWorkerPool reconciler: replicas (fixed, from the autoscaler seam, or zero when the run
// is stopped), then the worker Deployment, ServiceAccount, NetworkPolicy and PDB, then status once.
import { type KubernetesObject, type V1Deployment } from "@kubernetes/client-node";
import {
  type AgentWorkerPool,
  type ResolvedAgentWorkerPool,
  type ResolvedTrainingRun,
  type TrainingRun,
} from "../../gen/crds/index.js";
import { type Recommendation, type ReplicaRecommender } from "../autoscaler/api.js";
import { stableJson } from "../labels.js";
import { type ReconcileContext, type Request, type Result } from "../runtime/controller.js";
import { BUILTIN_IMAGES, type DefaultImages } from "../images.js";
import { ensureChild } from "../runtime/ensure.js";
import { type EventRecorder, type PendingEvent } from "../runtime/events.js";
import { type Informer } from "../runtime/informer.js";
import { type Kind, type KubeApi } from "../runtime/kube.js";
import { selectorString } from "./build.js";
import { type PoolChild, poolChildren } from "./children.js";
import { type PoolMetrics } from "./metrics.js";
import { type EpisodeReader, httpEpisodeReader, markDeletionCost } from "./scale-down.js";
import { validatePool, validateRun } from "../validate.js";
import { type PoolObservation, computePoolStatus, stopReason } from "./status.js";
import { type Condition, conditionDiffers } from "../runtime/conditions.js";
import { type Verdict } from "../verdict.js";
import { rejectedChild } from "../trainingrun/stuck.js";
import { startProblem } from "./health.js";

type K = KubernetesObject;

/** One reconcile's state: the stored and the resolved pool, what was observed, events to record. */
interface PoolPass {
  req: Request;
  ctx: ReconcileContext;
  cached: Pool;
  pool: ResolvedAgentWorkerPool;
  obs: PoolObservation;
  events: PendingEvent[];
}
type Pool = AgentWorkerPool & K;
export interface PoolCaches {
  pools: Informer<Pool>;
  runs: Informer<TrainingRun & K>;
  deployments: Informer<K>;
  serviceAccounts: Informer<K>;
  networkPolicies: Informer<K>;
  pdbs: Informer<K>;
}

export interface PoolReconcilerDeps {
  api: KubeApi;
  caches: PoolCaches;
  recorder: EventRecorder;
  recommender: ReplicaRecommender;
  now?: () => Date;
  /** Images for pools that name none. */
  images?: DefaultImages;
  /** l0_pool_* gauges; absent = none. */
  metrics?: PoolMetrics;
  /** Active episodes of worker pods, for their deletion cost before a scale-down (default: HTTP). */
  readEpisodes?: EpisodeReader;
}

export class WorkerPoolReconciler {
  readonly #d: Required<Omit<PoolReconcilerDeps, "metrics">> & Pick<PoolReconcilerDeps, "metrics">;
  constructor(deps: PoolReconcilerDeps) {
    this.#d = {
      ...deps,
      now: deps.now ?? (() => new Date()),
      images: deps.images ?? BUILTIN_IMAGES,
      readEpisodes: deps.readEpisodes ?? httpEpisodeReader,
    };
  }

  reconcile = async (req: Request, ctx: ReconcileContext): Promise<Result> => {
    const cached = this.#d.caches.pools.get(req.namespace, req.name);
    if (!cached || cached.metadata?.deletionTimestamp) {
      if (!cached) this.#d.recommender.forget(req.namespace, req.name);
      this.#d.metrics?.forget(req.namespace, req.name);
      return {};
    }
    const deploy = this.#d.caches.deployments.get(req.namespace, `${req.name}-workers`) as
      V1Deployment | undefined;
    const obs: PoolObservation = {
      generation: cached.metadata?.generation ?? 0,
      desired: 0,
      replicas: deploy?.status?.replicas ?? 0,
      ready: deploy?.status?.readyReplicas ?? 0,
      scaled: false,
      selector: "",
    };
    // 1. Resolve and check the pool; an invalid one keeps what it has and says why (no hot loop).
    const valid = validatePool(cached);
    if ("invalid" in valid) return this.#invalid(cached, obs, valid.invalid);
    const pass: PoolPass = { req, ctx, cached, pool: valid.pool, obs, events: [] };
    obs.selector = selectorString(pass.pool);
    const run = this.#d.caches.runs.get(req.namespace, pass.pool.spec.hubRef.name);
    // 2. Replicas: zero while the run is missing/suspended/finished, else the autoscaler's or spec's.
    obs.stopped = stopReason(pass.pool, run);
    let result: Result = {};
    if (obs.stopped) obs.desired = 0;
    else if (pass.pool.spec.autoscaling.enabled) result = await this.#autoscale(pass);
    else obs.desired = pass.pool.spec.replicas ?? 1;
    // 3. Children, for the run as its programs see it (an invalid run: no hub address); one the
    // API refuses is a condition, not a retry loop.
    const checked = run && validateRun(run);
    const rejected = await this.#ensureChildren(pass, checked && "run" in checked ? checked.run : undefined);
    // 4. Status once, then events. Workers that cannot start make the pool Degraded, said once.
    const problem = rejected ?? startProblem(deploy);
    if (problem) {
      obs.degraded = problem;
      if (conditionDiffers(pass.cached.status?.conditions as Condition[] | undefined, "Degraded", problem))
        pass.events.push({ type: "Warning", ...problem });
    }
    await this.#writeStatus(pass.cached, obs, pass.events);
    const a = pass.pool.spec.autoscaling;
    this.#d.metrics?.observe(req.namespace, req.name, obs.ready, a.enabled ? a.maxReplicas : undefined);
    return result;
  };

  async #invalid(cached: Pool, obs: PoolObservation, invalid: Verdict): Promise<Result> {
    obs.invalid = invalid;
    obs.desired = obs.replicas;
    const prev = cached.status?.conditions?.find((c) => c.type === "Degraded");
    const was = prev?.reason === invalid.reason && prev.message === invalid.message;
    await this.#writeStatus(
      cached,
      obs,
      was ? [] : [{ type: "Warning", reason: invalid.reason, message: invalid.message }],
    );
    return {};
  }

  /** Step 2 with autoscaling: the recommendation, written through the pool's own replicas. */
  async #autoscale(pass: PoolPass): Promise<Result> {
    const { req, ctx, pool, obs } = pass;
    const current = pool.spec.replicas ?? 1;
    const rec = await this.#d.recommender
      .recommend(pool, this.#d.now())
      .catch((err: unknown): Recommendation => ({
        replicas: current,
        reason: "RecommenderError",
        message: (err as Error).message,
        degraded: { reason: "AutoscalerError", message: (err as Error).message },
      }));
    obs.desired = rec.replicas;
    obs.backlog = rec.backlog;
    obs.recommendation = { replicas: rec.replicas, reason: rec.reason, message: rec.message };
    obs.degraded = rec.degraded;
    if (rec.replicas < current) {
      // Best effort, before lowering replicas: idle workers go first. A failure only costs the
      // ordering (the workers drain and hand their leases back), so it never blocks the scale.
      await markDeletionCost(this.#d.api, req.namespace, selectorString(pool), this.#d.readEpisodes).then(
        (r) => ctx.logger.debug("deletion cost marked", r),
        (err: unknown) => ctx.logger.warn("deletion cost not marked", { error: (err as Error).message }),
      );
    }
    if (rec.replicas !== current) {
      // Through the object (not the Deployment) so kubectl, the HPA and KEDA see the same number.
      pass.cached = await this.#d.api.mergePatch<Pool>("AgentWorkerPool", req.namespace, req.name, {
        spec: { replicas: rec.replicas },
      });
      obs.scaled = true;
      pass.events.push({
        type: "Normal",
        reason: "Scaled",
        message: `${current} -> ${rec.replicas} workers: ${rec.reason}: ${rec.message}`,
      });
    }
    return { requeueAfterMs: rec.requeueAfterMs ?? pool.spec.autoscaling.pollingInterval * 1000 };
  }

  /** Step 3: the pool's children; returns why the API refused one, if it did. */
  async #ensureChildren(pass: PoolPass, run: ResolvedTrainingRun | undefined): Promise<Verdict | undefined> {
    const { req, ctx, pool, obs, events } = pass;
    const { caches } = this.#d;
    let rejected: Verdict | undefined;
    const ensure = async (kind: Kind, cache: Informer<K>, desired: K) => {
      const actual = cache.get(req.namespace, desired.metadata!.name!);
      const r = await ensureChild(this.#d.api, kind, desired, actual, {
        ownerUid: pass.cached.metadata!.uid!,
      });
      if (r.outcome === "created" || r.outcome === "updated")
        ctx.logger.info(`child ${r.outcome}`, { kind, child: desired.metadata!.name });
      if (r.outcome === "foreign")
        events.push({
          type: "Warning",
          reason: "NameTaken",
          message: `${kind} ${desired.metadata!.name} exists and is not owned by this pool`,
        });
      if (r.rejected) rejected ??= rejectedChild(kind, desired.metadata!.name!, r.rejected);
      return r;
    };
    const cacheOf: Record<PoolChild["kind"], Informer<K>> = {
      ServiceAccount: caches.serviceAccounts,
      Deployment: caches.deployments,
      NetworkPolicy: caches.networkPolicies,
      PodDisruptionBudget: caches.pdbs,
    };
    for (const c of poolChildren(pool, run, obs.desired, this.#d.images)) {
      const r = await ensure(c.kind, cacheOf[c.kind], c.obj);
      if (c.kind === "Deployment" && r.outcome === "created")
        events.push({
          type: "Normal",
          reason: "WorkersCreated",
          message: `created Deployment ${r.obj.metadata!.name}`,
        });
    }
    return rejected;
  }

  async #writeStatus(pool: Pool, obs: PoolObservation, events: PendingEvent[]): Promise<void> {
    const status = computePoolStatus(pool.status, obs, this.#d.now());
    if (stableJson(status) !== stableJson(pool.status ?? {})) {
      const fresh = { ...pool, status };
      await this.#d.api.replaceStatus("AgentWorkerPool", fresh);
    }
    for (const e of events) await this.#d.recorder.record(pool, e);
  }
}
