// Wires the operator together: one informer per kind (shared by both controllers), the TrainingRun
// and AgentWorkerPool controllers, and optional leader election. Caches start at once (so a
// standby is warm); controllers run only while this replica leads.
import { type KubernetesObject, type V1Secret } from "@kubernetes/client-node";
import { type Registry } from "prom-client";
import { type AgentWorkerPool, type TrainingRun } from "../gen/crds/index.js";
import { type Logger } from "../lib/log.js";
import { type ReplicaRecommender, fixedReplicas } from "./autoscaler/api.js";
import { type HubTarget, hubTarget } from "./hub-stats.js";
import { MANAGED_SELECTOR, names } from "./labels.js";
import { type DefaultImages } from "./images.js";
import { Controller } from "./runtime/controller.js";
import { createEventRecorder } from "./runtime/events.js";
import { Informer, type InformerHandlers } from "./runtime/informer.js";
import { type Kind, type KubeApi } from "./runtime/kube.js";
import { LeaderElector } from "./runtime/leader.js";
import { ControllerMetrics } from "./runtime/metrics.js";
import { controllerOf } from "./runtime/predicates.js";
import { type HubStatsSource, noHub } from "./trainingrun/hub.js";
import { validateRun } from "./validate.js";
import { TrainingRunReconciler } from "./trainingrun/reconciler.js";
import { PoolMetrics } from "./workerpool/metrics.js";
import { type EpisodeReader } from "./workerpool/scale-down.js";
import { WorkerPoolReconciler } from "./workerpool/reconciler.js";

type K = KubernetesObject;

export interface ManagerOptions {
  api: KubeApi;
  logger: Logger;
  registry: Registry;
  /** Watch one namespace; undefined = all. */
  namespace?: string;
  recommender?: ReplicaRecommender;
  /** Builds the recommender with a resolver of a pool's hub address and run token (from the caches). */
  makeRecommender?: (resolveHub: (pool: AgentWorkerPool) => Promise<HubTarget>) => ReplicaRecommender;
  hub?: HubStatsSource;
  resyncMs?: number;
  concurrency?: number;
  now?: () => Date;
  statsIntervalMs?: number;
  /** Active episodes of worker pods before a scale-down (tests; default: each pod's /episodes). */
  readEpisodes?: EpisodeReader;
  /** Images for runs and pools that name none (L0_OPERATOR_DEFAULT_*_IMAGE). */
  images?: DefaultImages;
  relistJitterMs?: number;
  /** Lease to campaign on; undefined = lead at once (single replica, tests). */
  leaderElection?: {
    namespace: string;
    name: string;
    identity: string;
    leaseDurationMs?: number;
    renewDeadlineMs?: number;
    retryPeriodMs?: number;
  };
  /** Called when leadership is lost after having been held (main exits so a fresh process campaigns). */
  onLostLeadership?: () => void;
}

export class Manager {
  readonly runs: Controller;
  readonly pools: Controller;
  readonly metrics: ControllerMetrics;
  readonly #o: ManagerOptions;
  readonly #informers = new Map<Kind, Informer<K>>();
  #elector: LeaderElector | undefined;
  #leading = false;
  #synced = false;

  constructor(o: ManagerOptions) {
    this.#o = o;
    this.metrics = new ControllerMetrics(o.registry);
    const logger = o.logger;
    const recorder = createEventRecorder(o.api, logger);
    const mk = <T extends K>(kind: Kind, handlers: InformerHandlers<T>[], labelSelector?: string) => {
      const inf = new Informer<T>({
        api: o.api,
        kind,
        namespace: o.namespace,
        ...(labelSelector ? { labelSelector } : {}),
        logger,
        relistJitterMs: o.relistJitterMs,
        handlers: {
          add: (x) => handlers.forEach((h) => h.add?.(x)),
          update: (p, x) => handlers.forEach((h) => h.update?.(p, x)),
          delete: (x) => handlers.forEach((h) => h.delete?.(x)),
        },
      });
      this.#informers.set(kind, inf as unknown as Informer<K>);
      return inf;
    };
    const common = {
      logger,
      metrics: this.metrics,
      resyncMs: o.resyncMs ?? 10 * 60_000,
      concurrency: o.concurrency ?? 4,
    };
    // Controllers first (informer handlers enqueue into them); reconcilers get the caches after.
    this.runs = new Controller({
      name: "trainingrun",
      ...common,
      reconcile: (r, c) => runReconciler.reconcile(r, c),
    });
    this.pools = new Controller({
      name: "agentworkerpool",
      ...common,
      reconcile: (r, c) => poolReconciler.reconcile(r, c),
    });
    const key = (ns: string | undefined, name: string) => `${ns ?? ""}/${name}`;
    const ownerKey = (kind: string) => (x: K) => {
      const o = controllerOf(x, kind);
      return o ? [key(x.metadata?.namespace, o.name)] : [];
    };
    const toRun = this.runs.childHandlers(ownerKey("TrainingRun"));
    const toPool = this.pools.childHandlers(ownerKey("AgentWorkerPool"));

    const runs = mk<TrainingRun & K>("TrainingRun", [
      this.runs.primaryHandlers(),
      // Pools follow their run (suspend, finish, deletion): enqueue the pools that name it.
      this.pools.childHandlers((r: TrainingRun & K) =>
        pools
          .list(r.metadata?.namespace)
          .filter((p) => p.spec?.hubRef?.name === r.metadata?.name)
          .map((p) => key(p.metadata?.namespace, p.metadata!.name!)),
      ),
    ]);
    const pools = mk<AgentWorkerPool & K>("AgentWorkerPool", [
      this.pools.primaryHandlers(),
      // The run shows its workers' readiness, owned pool or referenced one.
      this.runs.childHandlers((p: AgentWorkerPool & K) => [
        key(p.metadata?.namespace, p.spec?.hubRef?.name ?? ""),
      ]),
    ]);
    // Only what the operator created: caching every Secret and ConfigMap of the cluster would
    // cost memory and read credentials it has no business with (the run token is labelled).
    const secrets = mk("Secret", [toRun], MANAGED_SELECTOR);
    const configMaps = mk("ConfigMap", [toRun], MANAGED_SELECTOR);
    const services = mk("Service", [toRun]);
    const claims = mk("PersistentVolumeClaim", [toRun], MANAGED_SELECTOR);
    const jobs = mk("Job", [toRun]);
    const deployments = mk("Deployment", [toRun, toPool]);
    const serviceAccounts = mk("ServiceAccount", [toPool]);
    const networkPolicies = mk("NetworkPolicy", [toRun, toPool]);
    const pdbs = mk("PodDisruptionBudget", [toPool]);
    this.runs.resyncFrom(runs as unknown as Informer<K>);
    this.pools.resyncFrom(pools as unknown as Informer<K>);

    const runReconciler = new TrainingRunReconciler({
      api: o.api,
      recorder,
      hub: o.hub ?? noHub,
      now: o.now,
      statsIntervalMs: o.statsIntervalMs,
      images: o.images,
      caches: { runs, secrets, configMaps, claims, services, jobs, deployments, networkPolicies, pools },
    });
    const poolReconciler = new WorkerPoolReconciler({
      api: o.api,
      recorder,
      recommender: o.recommender ?? o.makeRecommender?.((p) => this.resolveHub(p)) ?? fixedReplicas,
      now: o.now,
      images: o.images,
      metrics: new PoolMetrics(o.registry),
      readEpisodes: o.readEpisodes,
      caches: { pools, runs, deployments, serviceAccounts, networkPolicies, pdbs },
    });
  }

  /** A pool's hub: the run's hub Service and the token from the run's Secret, both from the caches. */
  resolveHub(pool: AgentWorkerPool): Promise<HubTarget> {
    const ns = pool.metadata?.namespace ?? "default";
    const runName = pool.spec.hubRef.name;
    const stored = this.informer("TrainingRun").get(ns, runName) as (TrainingRun & K) | undefined;
    if (!stored) return Promise.reject(new Error(`TrainingRun ${runName} not found`));
    const valid = validateRun(stored);
    if ("invalid" in valid)
      return Promise.reject(new Error(`TrainingRun ${runName}: ${valid.invalid.message}`));
    const target = hubTarget(valid.run, this.informer("Secret").get(ns, names.token(runName)) as V1Secret);
    return "missing" in target ? Promise.reject(new Error(target.missing)) : Promise.resolve(target);
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** null when ready (caches synced and, with election, either leading or a warm standby). */
  readiness(): string | null {
    return this.#synced ? null : "caches not synced";
  }

  informer(kind: Kind): Informer<K> {
    return this.#informers.get(kind)!;
  }

  #lead(): void {
    if (this.#leading) return;
    this.#leading = true;
    this.metrics.leader.set(1);
    this.runs.start();
    this.pools.start();
    // Everything is reconciled once on taking over (level-based: nothing depends on missed events).
    for (const kind of ["TrainingRun", "AgentWorkerPool"] as const)
      for (const x of this.informer(kind).list())
        (kind === "TrainingRun" ? this.runs : this.pools).queue.add(
          `${x.metadata?.namespace}/${x.metadata?.name}`,
        );
  }

  async start(): Promise<void> {
    await Promise.all([...this.#informers.values()].map((i) => i.start()));
    this.#synced = true;
    const le = this.#o.leaderElection;
    if (!le) return this.#lead();
    this.#elector = new LeaderElector({
      api: this.#o.api,
      logger: this.#o.logger,
      ...le,
      onStartedLeading: () => this.#lead(),
      onStoppedLeading: () => {
        if (!this.#leading) return;
        this.#leading = false;
        this.metrics.leader.set(0);
        void Promise.all([this.runs.stop(), this.pools.stop()]).then(() => this.#o.onLostLeadership?.());
      },
    });
    this.#elector.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.runs.stop(), this.pools.stop()]);
    if (this.#elector) {
      // Stopping the elector releases the lease; the callback must not call onLostLeadership.
      this.#leading = false;
      await this.#elector.stop();
    }
    this.metrics.leader.set(0);
    await Promise.all([...this.#informers.values()].map((i) => i.stop()));
  }
}
