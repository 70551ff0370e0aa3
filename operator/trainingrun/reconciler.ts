// The TrainingRun reconciler: the only code in this folder that talks to the API server. Each
// reconcile re-reads the run and its children from the caches and runs the numbered steps below;
// status is gathered in memory, written once, and events are recorded after that write succeeds.
import { randomBytes } from "node:crypto";
import { type KubernetesObject, type V1Job, type V1Secret } from "@kubernetes/client-node";
import { type AgentWorkerPool, type ResolvedTrainingRun, type TrainingRun } from "../../gen/crds/index.js";
import { ATTEMPT_LABEL, COMPONENT_LABEL, FINALIZER, RUN_LABEL, names, stableJson } from "../labels.js";
import { type ReconcileContext, type Request, type Result } from "../runtime/controller.js";
import { BUILTIN_IMAGES, type DefaultImages } from "../images.js";
import { conditionDiffers } from "../runtime/conditions.js";
import { ensureChild } from "../runtime/ensure.js";
import { type EventRecorder, type PendingEvent } from "../runtime/events.js";
import { type Informer } from "../runtime/informer.js";
import { finalizeRun } from "./finalize.js";
import {
  type Pass,
  type TrainerDeps,
  type TrainerState,
  attemptOf,
  driveTrainer,
  restTrainer,
} from "./trainer.js";
import { type Kind, type KubeApi, isStatus } from "../runtime/kube.js";
import { tlsFromSecretData } from "../../lib/tls.js";
import { issueRunTls, runDnsNames } from "../run-tls.js";
import { buildTokenSecret } from "./build.js";
import { buildOwnedPool, inlineReplicas } from "./build-inference.js";
import { runChildren } from "./children.js";
import { hubTarget } from "../hub-stats.js";
import { validateRun } from "../validate.js";
import { type HubStatsSource } from "./hub.js";
import { type JobView, SPEC_REASONS, trainerFailureFromPods, viewJob } from "./policy.js";
import { type RunObservation, computeRunStatus } from "./status.js";
import {
  nothingTrained,
  rejectedChild,
  scaledOutside,
  unschedulableTrainer,
  workersProblem,
} from "./stuck.js";

type K = KubernetesObject;
export interface RunCaches {
  runs: Informer<TrainingRun & K>;
  secrets: Informer<K>;
  configMaps: Informer<K>;
  claims: Informer<K>;
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

export class TrainingRunReconciler {
  readonly #d: Required<RunReconcilerDeps>;
  readonly #trainerDeps: TrainerDeps;

  constructor(deps: RunReconcilerDeps) {
    this.#d = {
      ...deps,
      now: deps.now ?? (() => new Date()),
      newToken: deps.newToken ?? (() => randomBytes(32).toString("base64url")),
      statsIntervalMs: deps.statsIntervalMs ?? 15_000,
      images: deps.images ?? BUILTIN_IMAGES,
    };
    this.#trainerDeps = {
      api: this.#d.api,
      images: this.#d.images,
      deleteOwned: (kind, ns, name, uid, ctx) => this.#deleteOwned(kind, ns, name, uid, ctx),
    };
  }

  reconcile = async (req: Request, ctx: ReconcileContext): Promise<Result> => {
    // 1. Read the run; gone means its children are the garbage collector's.
    const cached = this.#d.caches.runs.get(req.namespace, req.name);
    if (!cached) return {};
    // 2. Deletion: stop workers, record the end, delete what we own, release the finalizer.
    if (cached.metadata?.deletionTimestamp) return this.#finalize(cached, ctx);
    const run = await this.#withFinalizer(cached, req);
    // 3. Resolve and check the spec; an invalid one gets a condition, not a hot loop.
    const pass = await this.#begin(req, ctx, run);
    if (!pass) return {};
    // 4. Observe the trainer Jobs: the highest attempt is current (survives a lost status write).
    const trainer = await this.#observeTrainer(pass);
    // 5. Run-wide children: token (created once), run.json, Services, inference.
    await this.#ensureRunChildren(pass);
    // 6. The trainer: gang restart, fail, complete, or keep the current Job in step.
    if (pass.stopped) await restTrainer(pass, trainer);
    const view = pass.stopped ? trainer.view : await driveTrainer(this.#trainerDeps, pass, trainer);
    pass.obs.job = view;
    // 7. Workers: the owned inline pool (at zero when stopped), or the referenced pool's readiness.
    const finished = pass.stopped || !!pass.obs.completed || !!pass.obs.failed;
    const active = !finished && !pass.spec.spec.suspend;
    await this.#ensureWorkers(pass, finished);
    // Trainer pods that exist but are not running: ask the scheduler's verdict on them.
    const starting = active && !!view && view.active > 0 && view.ready === 0 && !view.complete;
    if (starting) pass.obs.problem ??= await this.#whyPending(req, pass.spec, view.attempt, ctx);
    // 8. The hub's Stats, once its pods are up.
    const live = active && !!view && view.ready > 0;
    if (live) pass.obs.hub = await this.#readHub(pass);
    if (live) this.#checkTrained(pass);
    // 9. Status once, then events. A stuck run tells its story once per new reason.
    const { obs, events } = pass;
    if (obs.problem && conditionDiffers(run.status?.conditions, "Degraded", obs.problem))
      events.push({ type: "Warning", ...obs.problem });
    await this.#writeStatus(run, obs, events, ctx);
    // Trainer pods that are not ready yet are a known wait: look again (Stats, or why they pend).
    return live || starting ? { requeueAfterMs: this.#d.statsIntervalMs } : {};
  };

  async #withFinalizer(run: TrainingRun & K, req: Request): Promise<TrainingRun & K> {
    if ((run.metadata?.finalizers ?? []).includes(FINALIZER)) return run;
    const finalizers = [...(run.metadata?.finalizers ?? []), FINALIZER];
    return this.#d.api.mergePatch("TrainingRun", req.namespace, req.name, {
      metadata: { finalizers, resourceVersion: run.metadata?.resourceVersion },
    });
  }

  /**
   * The pass's state, or undefined after recording why the run is invalid. Succeeded and Failed
   * are terminal (except a Failed that only an invalid spec caused): the reason and message are
   * carried over from the condition that recorded the end.
   */
  async #begin(req: Request, ctx: ReconcileContext, run: TrainingRun & K): Promise<Pass | undefined> {
    const valid = validateRun(run);
    const phase = run.status?.phase;
    const endCond = run.status?.conditions?.find(
      (c) => c.type === (phase === "Succeeded" ? "Complete" : "Failed"),
    );
    const ended =
      (phase === "Succeeded" || phase === "Failed") && !SPEC_REASONS.has(endCond?.reason ?? "")
        ? { phase, why: { reason: endCond?.reason ?? phase, message: endCond?.message ?? "" } }
        : undefined;
    const obs: RunObservation = {
      generation: run.metadata?.generation ?? 0,
      suspended: !!run.spec.suspend,
      restarts: run.status?.restarts ?? 0,
      maxSteps: "run" in valid ? valid.run.spec.algorithm.maxSteps : 0,
      ended: ended as RunObservation["ended"],
    };
    const events: PendingEvent[] = [];
    if ("invalid" in valid) {
      obs.invalid = valid.invalid;
      const same =
        phase === "Failed" &&
        endCond?.reason === valid.invalid.reason &&
        endCond.message === valid.invalid.message;
      if (!same)
        events.push({ type: "Warning", reason: valid.invalid.reason, message: valid.invalid.message });
      await this.#writeStatus(run, obs, events, ctx);
      return undefined;
    }
    const uid = run.metadata!.uid!;
    const pass: Pass = {
      req,
      ctx,
      run,
      spec: valid.run,
      uid,
      obs,
      events,
      stopped: !!ended,
      ensure: () => undefined as never,
    };
    pass.ensure = (kind, desired, fields) => this.#ensure(pass, kind, desired, fields);
    return pass;
  }

  async #ensure(pass: Pass, kind: Kind, desired: K, fields?: readonly string[]) {
    const { req, ctx, uid, obs, events } = pass;
    const actual = this.#cacheFor(kind).get(req.namespace, desired.metadata!.name!);
    const r = await ensureChild(this.#d.api, kind, desired, actual, { ownerUid: uid, fields });
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
  }

  async #observeTrainer(pass: Pass): Promise<TrainerState> {
    const { req, ctx, uid, obs } = pass;
    const jobs = this.#d.caches.jobs
      .ownedBy(uid)
      .filter((j) => j.metadata?.labels?.[COMPONENT_LABEL] === "trainer");
    const attempt = Math.max(obs.restarts, ...jobs.map(attemptOf));
    obs.restarts = attempt;
    const current = jobs.find((j) => attemptOf(j) === attempt);
    let view: JobView | undefined = current ? viewJob(current as V1Job as never, attempt) : undefined;
    if (view?.failed && !pass.stopped)
      view = { ...view, failed: (await this.#whyFailed(req, attempt, ctx)) ?? view.failed };
    return { jobs, attempt, current, view };
  }

  async #ensureRunChildren(pass: Pass): Promise<void> {
    const { req, spec, uid, ctx, ensure } = pass;
    await this.#ensureTokenSecret(pass);
    for (const c of runChildren(spec, this.#d.images, pass.stopped)) {
      // A retained claim has no owner reference: created once, then the user's (never "foreign").
      if (c.createOnly && this.#cacheFor(c.kind).get(req.namespace, c.obj.metadata!.name!)) continue;
      await ensure(c.kind, c.obj);
    }
    if (!spec.spec.inference) {
      for (const kind of ["Deployment", "Service", "NetworkPolicy"] as const)
        await this.#deleteOwned(kind, req.namespace, names.inference(req.name), uid, ctx);
    }
  }

  /**
   * The run token Secret, created once with the token and the run's TLS material; a Secret
   * from before TLS gets it added (checked live first: a lagging cache must not re-issue it).
   */
  async #ensureTokenSecret(pass: Pass): Promise<void> {
    const { req, spec, ensure } = pass;
    const name = names.token(req.name);
    let secret = this.#d.caches.secrets.get(req.namespace, name) as V1Secret | undefined;
    if (secret && !tlsFromSecretData(secret.data))
      secret = await this.#d.api.get<V1Secret>("Secret", req.namespace, name).catch(() => secret);
    if (secret && tlsFromSecretData(secret.data)) return;
    const token = secret?.data?.token ? Buffer.from(secret.data.token, "base64").toString("utf8") : undefined;
    const tls = await issueRunTls({
      run: `${req.namespace}/${req.name}`,
      dnsNames: runDnsNames(req.name, req.namespace),
      now: this.#d.now(),
    });
    await ensure("Secret", buildTokenSecret(spec, token ?? this.#d.newToken(), tls));
    pass.events.push({
      type: "Normal",
      reason: token ? "TLSIssued" : "TokenCreated",
      message: token
        ? `added the run's TLS certificates to Secret ${name}`
        : `created run token Secret ${name} (token and TLS certificates)`,
    });
  }

  async #ensureWorkers(pass: Pass, finished: boolean): Promise<void> {
    const { req, spec, obs } = pass;
    if (spec.spec.workers) {
      const pool = buildOwnedPool(spec, inlineReplicas(spec, finished || spec.spec.suspend));
      const actual = this.#d.caches.pools.get(req.namespace, pool.metadata!.name!);
      if (!actual && pool.spec.replicas === undefined)
        pool.spec.replicas = spec.spec.workers.autoscaling.minReplicas;
      const scaled = scaledOutside(actual, pool.spec.replicas);
      if (scaled) pass.events.push(scaled);
      await pass.ensure("AgentWorkerPool", pool as K);
      obs.poolName = pool.metadata!.name!;
    } else if (spec.spec.workerPoolRef) obs.poolName = spec.spec.workerPoolRef.name;
    if (!obs.poolName) return;
    const pool = this.#d.caches.pools.get(req.namespace, obs.poolName);
    obs.readyWorkers = pool?.status?.readyReplicas ?? 0;
    if (!finished) obs.problem ??= workersProblem(spec, obs.poolName, pool);
  }

  /** Steps that trained on nothing: Degraded, then Failed (nothingTrained). */
  #checkTrained(pass: Pass): void {
    const hub = pass.obs.hub;
    if (!hub || !("stats" in hub)) return;
    const v = nothingTrained(Number(hub.stats.emptySteps ?? 0), pass.spec.spec.trainer.maxEmptySteps);
    if (!v) return;
    if ("degraded" in v) pass.obs.problem ??= v.degraded;
    else {
      pass.obs.failed = v.failed;
      pass.events.push({ type: "Warning", reason: "RunFailed", message: v.failed.message });
    }
  }

  async #readHub(pass: Pass): Promise<RunObservation["hub"]> {
    const secret = this.#d.caches.secrets.get(pass.req.namespace, names.token(pass.req.name)) as V1Secret;
    const target = hubTarget(pass.spec, secret);
    if ("missing" in target) return { error: target.missing };
    return this.#d.hub.stats(target).then(
      (stats) => ({ stats }),
      (err: unknown) => ({ error: `hub ${target.address} unreachable: ${(err as Error).message}` }),
    );
  }

  /** The trainer pods of one attempt; undefined (logged) when they cannot be listed. */
  async #trainerPods(req: Request, attempt: number, ctx: ReconcileContext): Promise<never[] | undefined> {
    const selector = `${RUN_LABEL}=${req.name},${COMPONENT_LABEL}=trainer,${ATTEMPT_LABEL}=${attempt}`;
    try {
      return (await this.#d.api.list("Pod", req.namespace, { labelSelector: selector })).items as never[];
    } catch (err) {
      ctx.logger.warn("cannot read the trainer pods", { attempt, error: (err as Error).message });
      return undefined;
    }
  }

  /** Why the current attempt's pods are not running, if the scheduler said (no node fits). */
  async #whyPending(req: Request, run: ResolvedTrainingRun, attempt: number, ctx: ReconcileContext) {
    const pods = await this.#trainerPods(req, attempt, ctx);
    return pods && unschedulableTrainer(run, pods);
  }

  /** What the failed attempt's pods say about why (termination messages), if anything. */
  async #whyFailed(req: Request, attempt: number, ctx: ReconcileContext) {
    const pods = await this.#trainerPods(req, attempt, ctx);
    return pods && trainerFailureFromPods(pods);
  }

  #cacheFor(kind: Kind): Informer<K> {
    const c = this.#d.caches;
    const map: Partial<Record<Kind, Informer<K>>> = {
      Secret: c.secrets,
      ConfigMap: c.configMaps,
      PersistentVolumeClaim: c.claims,
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

  #finalize(run: TrainingRun & K, ctx: ReconcileContext): Promise<Result> {
    return finalizeRun(
      { api: this.#d.api, recorder: this.#d.recorder, cacheFor: (k) => this.#cacheFor(k) },
      run,
      ctx,
    );
  }
}
