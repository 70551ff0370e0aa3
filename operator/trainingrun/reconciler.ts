// The TrainingRun reconciler: the only code in this folder that talks to the API server. Each
// reconcile re-reads the run and its children from the caches and runs the numbered steps below;
// status is gathered in memory, written once, and events are recorded after that write succeeds.
import { randomBytes } from "node:crypto";
import { type KubernetesObject, type V1Job, type V1Secret } from "@kubernetes/client-node";
import { type AgentWorkerPool, type TrainingRun } from "../../gen/crds/index.js";
import {
  ATTEMPT_LABEL,
  COMPONENT_LABEL,
  FINALIZER,
  RUN_LABEL,
  isOwnedBy,
  names,
  orphanedChildOf,
  stableJson,
} from "../labels.js";
import { type ReconcileContext, type Request, type Result } from "../runtime/controller.js";
import { BUILTIN_IMAGES, type DefaultImages } from "../images.js";
import { conditionDiffers } from "../runtime/conditions.js";
import { ensureChild } from "../runtime/ensure.js";
import { type EventRecorder, type PendingEvent } from "../runtime/events.js";
import { type Informer } from "../runtime/informer.js";
import { type Kind, type KubeApi, isStatus } from "../runtime/kube.js";
import {
  buildConfigMap,
  buildHubService,
  buildTokenSecret,
  buildTrainerJob,
  buildTrainerNetworkPolicy,
  buildTrainerService,
} from "./build.js";
import {
  buildInference,
  buildInferenceNetworkPolicy,
  buildOwnedPool,
  inlineReplicas,
} from "./build-inference.js";
import { hubTarget } from "../hub-stats.js";
import { validateRun } from "../validate.js";
import { type HubStatsSource } from "./hub.js";
import {
  type JobView,
  SPEC_REASONS,
  type Verdict,
  trainerAction,
  trainerFailureFromPods,
  viewJob,
} from "./policy.js";
import { type RunObservation, computeRunStatus } from "./status.js";
import { rejectedChild, scaledOutside, unschedulableTrainer, workersProblem } from "./stuck.js";

type K = KubernetesObject;
export interface RunCaches {
  runs: Informer<TrainingRun & K>;
  secrets: Informer<K>;
  configMaps: Informer<K>;
  services: Informer<K>;
  jobs: Informer<K>;
  deployments: Informer<K>;
  networkPolicies: Informer<K>;
  pools: Informer<AgentWorkerPool & K>;
}

export interface RunReconcilerDeps {
  api: KubeApi;
  caches: RunCaches;
  recorder: EventRecorder;
  hub: HubStatsSource;
  now?: () => Date;
  newToken?: () => string;
  /** How often a running run's hub Stats are read. */
  statsIntervalMs?: number;
  /** Images for runs that name none. */
  images?: DefaultImages;
}

const attemptOf = (o: K): number => Number(o.metadata?.labels?.[ATTEMPT_LABEL] ?? -1);

export class TrainingRunReconciler {
  readonly #d: Required<RunReconcilerDeps>;

  constructor(deps: RunReconcilerDeps) {
    this.#d = {
      ...deps,
      now: deps.now ?? (() => new Date()),
      newToken: deps.newToken ?? (() => randomBytes(32).toString("base64url")),
      statsIntervalMs: deps.statsIntervalMs ?? 15_000,
      images: deps.images ?? BUILTIN_IMAGES,
    };
  }

  reconcile = async (req: Request, ctx: ReconcileContext): Promise<Result> => {
    const { api, caches } = this.#d;
    // 1. Read the run; gone means its children are the garbage collector's.
    const cached = caches.runs.get(req.namespace, req.name);
    if (!cached) return {};
    const events: PendingEvent[] = [];

    // 2. Deletion: stop workers, record the end, delete what we own, release the finalizer.
    if (cached.metadata?.deletionTimestamp) return this.#finalize(cached, ctx);
    let run: TrainingRun & K = cached;
    if (!(run.metadata?.finalizers ?? []).includes(FINALIZER)) {
      const finalizers = [...(run.metadata?.finalizers ?? []), FINALIZER];
      run = await api.mergePatch("TrainingRun", req.namespace, req.name, {
        metadata: { finalizers, resourceVersion: run.metadata?.resourceVersion },
      });
    }
    const uid = run.metadata!.uid!;
    const generation = run.metadata?.generation ?? 0;

    // 3. Validate what the schema could not (CEL rules, cross-field checks): no hot loop on a bad spec.
    const valid = validateRun(run);
    // Succeeded and Failed are terminal (except a Failed that only an invalid spec caused): the
    // reason and message are carried over from the condition that recorded the end.
    const phase = run.status?.phase;
    const endCond = run.status?.conditions?.find(
      (c) => c.type === (phase === "Succeeded" ? "Complete" : "Failed"),
    );
    const ended =
      (phase === "Succeeded" || phase === "Failed") && !SPEC_REASONS.has(endCond?.reason ?? "")
        ? { phase, why: { reason: endCond?.reason ?? phase, message: endCond?.message ?? "" } }
        : undefined;
    const obs: RunObservation = {
      generation,
      suspended: !!run.spec.suspend,
      restarts: run.status?.restarts ?? 0,
      maxSteps: run.spec.algorithm?.maxSteps ?? 100,
      ended: ended as RunObservation["ended"],
    };
    if ("invalid" in valid) {
      obs.invalid = valid.invalid;
      if (
        phase !== "Failed" ||
        endCond?.reason !== valid.invalid.reason ||
        endCond.message !== valid.invalid.message
      )
        events.push({ type: "Warning", reason: valid.invalid.reason, message: valid.invalid.message });
      await this.#writeStatus(run, obs, events, ctx);
      return {};
    }
    const spec = valid.run;

    // 4. Observe the trainer Jobs: the highest attempt is current (survives a lost status write).
    const jobs = caches.jobs.ownedBy(uid).filter((j) => j.metadata?.labels?.[COMPONENT_LABEL] === "trainer");
    const attempt = Math.max(obs.restarts, ...jobs.map(attemptOf));
    obs.restarts = attempt;
    const current = jobs.find((j) => attemptOf(j) === attempt);
    let view: JobView | undefined = current ? viewJob(current as V1Job as never, attempt) : undefined;
    if (view?.failed && !ended)
      view = { ...view, failed: (await this.#whyFailed(req, attempt, ctx)) ?? view.failed };
    const stopped = !!ended;

    // 5. Run-wide children: token (created once), run.json, Services, inference.
    const ensure = async (kind: Kind, desired: K, fields?: readonly string[]) => {
      const actual = this.#cacheFor(kind).get(req.namespace, desired.metadata!.name!);
      const r = await ensureChild(api, kind, desired, actual, { ownerUid: uid, fields });
      if (r.outcome === "created" || r.outcome === "updated")
        ctx.logger.info(`child ${r.outcome}`, { kind, child: desired.metadata!.name });
      if (r.outcome === "foreign")
        events.push({
          type: "Warning",
          reason: "NameTaken",
          message: `${kind} ${desired.metadata!.name} exists and is not owned by this run`,
        });
      if (r.rejected) obs.problem ??= rejectedChild(kind, desired.metadata!.name!, r.rejected);
      return r;
    };
    if (!caches.secrets.get(req.namespace, names.token(req.name))) {
      await ensure("Secret", buildTokenSecret(spec, this.#d.newToken()));
      events.push({
        type: "Normal",
        reason: "TokenCreated",
        message: `created run token Secret ${names.token(req.name)}`,
      });
    }
    await ensure("ConfigMap", buildConfigMap(spec));
    await ensure("Service", buildTrainerService(spec));
    await ensure("Service", buildHubService(spec));
    await ensure("NetworkPolicy", buildTrainerNetworkPolicy(spec));
    if (spec.spec.inference) {
      const { deployment, service } = buildInference(spec, this.#d.images);
      if (stopped || spec.spec.suspend) deployment.spec!.replicas = 0;
      await ensure("Deployment", deployment);
      await ensure("Service", service);
      await ensure("NetworkPolicy", buildInferenceNetworkPolicy(spec));
    } else {
      await this.#deleteOwned("Deployment", req.namespace, names.inference(req.name), uid, ctx);
      await this.#deleteOwned("Service", req.namespace, names.inference(req.name), uid, ctx);
      await this.#deleteOwned("NetworkPolicy", req.namespace, names.inference(req.name), uid, ctx);
    }

    // 6. The trainer: gang restart, fail, complete, or keep the current Job in step.
    if (!stopped) {
      const action = trainerAction(view, obs.restarts, spec.spec.trainer?.maxRestarts ?? 3);
      if (action.kind === "restart") {
        // Create the next attempt before deleting the failed one: a crash in between leaves the
        // highest attempt current, so the restart is counted exactly once.
        const job = buildTrainerJob(spec, action.nextAttempt, this.#d.images);
        await ensure("Job", job);
        await api.delete("Job", req.namespace, view!.name, { propagation: "Background" }).catch((e) => {
          if (!isStatus(e, 404)) throw e;
        });
        obs.restarts = action.nextAttempt;
        obs.restarted = action.why;
        view = { ...viewJob(job as never, action.nextAttempt) };
        events.push({
          type: "Warning",
          reason: "GangRestart",
          message: `trainer failed (${action.why.message}); restart ${obs.restarts}`,
        });
      } else if (action.kind === "fail") {
        obs.failed = action.why;
        events.push({ type: "Warning", reason: "RunFailed", message: action.why.message });
      } else if (action.kind === "complete") {
        obs.completed = true;
        events.push({
          type: "Normal",
          reason: "RunSucceeded",
          message: "the trainer finished; workers scaled to zero",
        });
      } else {
        const job = buildTrainerJob(spec, attempt, this.#d.images);
        // A Job's pod template is immutable: only suspend and the TTL are kept in step; other trainer
        // changes take effect at the next gang restart or resume (docs/operator.md).
        const desired = current
          ? ({
              metadata: job.metadata,
              spec: {
                suspend: job.spec!.suspend,
                ttlSecondsAfterFinished: job.spec!.ttlSecondsAfterFinished,
              },
            } as K)
          : job;
        const r = await ensure("Job", desired, ["spec"]);
        if (r.outcome === "created")
          events.push({
            type: "Normal",
            reason: "TrainerCreated",
            message: `created trainer Job ${job.metadata!.name}`,
          });
        if (r.outcome === "updated" && current && view?.suspended !== job.spec!.suspend)
          events.push({
            type: "Normal",
            reason: job.spec!.suspend ? "Suspended" : "Resumed",
            message: job.spec!.suspend
              ? "trainer pods deleted, workers at zero; checkpoint kept"
              : "resuming from the last checkpoint",
          });
        view = current ? view : viewJob(r.obj as never, attempt);
      }
      // Old attempts are ours and done: delete them (their pods go with them).
      for (const j of jobs)
        if (attemptOf(j) < obs.restarts && j.metadata?.name !== view?.name)
          await this.#deleteOwned("Job", req.namespace, j.metadata!.name!, uid, ctx);
    }
    obs.job = view;

    // 7. Workers: the owned inline pool (at zero when stopped), or the referenced pool's readiness.
    const finished = stopped || !!obs.completed || !!obs.failed;
    if (spec.spec.workers) {
      const pool = buildOwnedPool(spec, inlineReplicas(spec, finished || !!spec.spec.suspend));
      const actual = caches.pools.get(req.namespace, pool.metadata!.name!);
      if (!actual && pool.spec.replicas === undefined)
        pool.spec.replicas = spec.spec.workers.autoscaling?.minReplicas ?? 1;
      const scaled = scaledOutside(actual, pool.spec.replicas);
      if (scaled) events.push(scaled);
      await ensure("AgentWorkerPool", pool as K);
      obs.poolName = pool.metadata!.name!;
    } else if (spec.spec.workerPoolRef) {
      obs.poolName = spec.spec.workerPoolRef.name;
    }
    if (obs.poolName) {
      const pool = caches.pools.get(req.namespace, obs.poolName);
      obs.readyWorkers = pool?.status?.readyReplicas ?? 0;
      if (!finished) obs.problem ??= workersProblem(spec, obs.poolName, pool);
    }
    // Trainer pods that exist but are not running: ask the scheduler's verdict on them.
    const starting =
      !finished && !spec.spec.suspend && !!view && view.active > 0 && view.ready === 0 && !view.complete;
    if (starting && view) obs.problem ??= await this.#whyPending(req, spec, view.attempt, ctx);

    // 8. The hub's Stats, once its pods are up.
    if (!finished && !spec.spec.suspend && view && view.ready > 0) {
      const target = hubTarget(spec, caches.secrets.get(req.namespace, names.token(req.name)) as V1Secret);
      obs.hub =
        "missing" in target
          ? { error: target.missing }
          : await this.#d.hub.stats(target).then(
              (stats) => ({ stats }),
              (err: unknown) => ({ error: `hub ${target.address} unreachable: ${(err as Error).message}` }),
            );
    }

    // 9. Status once, then events. A stuck run tells its story once per new reason.
    if (obs.problem && conditionDiffers(run.status?.conditions, "Degraded", obs.problem))
      events.push({ type: "Warning", ...obs.problem });
    await this.#writeStatus(run, obs, events, ctx);
    const live = !finished && !spec.spec.suspend && view && view.ready > 0;
    // Trainer pods that are not ready yet are a known wait: look again (Stats, or why they pend).
    return live || starting ? { requeueAfterMs: this.#d.statsIntervalMs } : {};
  };

  /** Why the current attempt's pods are not running, if the scheduler said (no node fits). */
  async #whyPending(
    req: Request,
    run: TrainingRun,
    attempt: number,
    ctx: ReconcileContext,
  ): Promise<Verdict | undefined> {
    const selector = `${RUN_LABEL}=${req.name},${COMPONENT_LABEL}=trainer,${ATTEMPT_LABEL}=${attempt}`;
    try {
      const pods = await this.#d.api.list("Pod", req.namespace, { labelSelector: selector });
      return unschedulableTrainer(run, pods.items as never);
    } catch (err) {
      ctx.logger.debug("cannot read the pending trainer pods", { error: (err as Error).message });
      return undefined;
    }
  }

  /** What the failed attempt's pods say about why (termination messages), if anything. */
  async #whyFailed(req: Request, attempt: number, ctx: ReconcileContext): Promise<Verdict | undefined> {
    const selector = `${RUN_LABEL}=${req.name},${COMPONENT_LABEL}=trainer,${ATTEMPT_LABEL}=${attempt}`;
    try {
      const pods = await this.#d.api.list("Pod", req.namespace, { labelSelector: selector });
      return trainerFailureFromPods(pods.items as never);
    } catch (err) {
      ctx.logger.warn("cannot read the failed trainer pods", { error: (err as Error).message });
      return undefined;
    }
  }

  #cacheFor(kind: Kind): Informer<K> {
    const c = this.#d.caches;
    const map: Partial<Record<Kind, Informer<K>>> = {
      Secret: c.secrets,
      ConfigMap: c.configMaps,
      Service: c.services,
      Job: c.jobs,
      Deployment: c.deployments,
      NetworkPolicy: c.networkPolicies,
      AgentWorkerPool: c.pools as unknown as Informer<K>,
    };
    return map[kind]!;
  }

  async #deleteOwned(
    kind: Kind,
    ns: string,
    name: string,
    uid: string,
    ctx: ReconcileContext,
  ): Promise<void> {
    const obj = this.#cacheFor(kind).get(ns, name);
    if (!obj || !(obj.metadata?.ownerReferences ?? []).some((r) => r.uid === uid)) return;
    await this.#d.api.delete(kind, ns, name, { propagation: "Background" }).catch((e: unknown) => {
      if (!isStatus(e, 404)) throw e;
    });
    ctx.logger.info("child deleted", { kind, child: name });
  }

  async #writeStatus(
    run: TrainingRun & K,
    obs: RunObservation,
    events: PendingEvent[],
    ctx: ReconcileContext,
  ) {
    const status = computeRunStatus(run.status, obs, this.#d.now());
    if (stableJson(status) !== stableJson(run.status ?? {})) {
      await this.#d.api.replaceStatus("TrainingRun", { ...run, status });
      if (status.phase !== run.status?.phase) {
        ctx.logger.info("phase changed", { from: run.status?.phase, to: status.phase });
        events.push({
          type: status.phase === "Failed" ? "Warning" : "Normal",
          reason: `Phase${status.phase}`,
          message: `phase ${run.status?.phase ?? "none"} -> ${status.phase}`,
        });
      }
    }
    for (const e of events) await this.#d.recorder.record(run, e);
  }

  async #finalize(run: TrainingRun & K, ctx: ReconcileContext): Promise<Result> {
    const { api } = this.#d;
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
      const cache = this.#cacheFor(kind);
      // Owned, or orphaned by a `--cascade=orphan` delete racing this finalizer: the token
      // Secret, run.json and the NetworkPolicies must not outlive the run either way.
      const children = [
        ...cache.ownedBy(uid).filter((c) => isOwnedBy(c, run)),
        ...cache.list(ns).filter((c) => orphanedChildOf(c, run)),
      ];
      for (const child of children) {
        await api
          .delete(kind, ns, child.metadata!.name!, { propagation: "Background" })
          .catch((e: unknown) => {
            if (!isStatus(e, 404)) throw e;
          });
        deleted++;
      }
    }
    await this.#d.recorder.record(run, {
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
}
