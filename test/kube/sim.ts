// The simulation the operator relies on: controller passes (sim-workloads.ts) and a kubelet
// stand-in that schedules pods and moves them Pending -> Running -> Ready, or to Succeeded /
// Failed on test commands (failPod, succeedPod, completeJob, failJob, setPodReady).
import { stamp, type Store } from "./store.js";
import {
  isReady,
  isTerminal,
  ownedBy,
  syncDeployment,
  syncJob,
  syncReplicaSet,
  type WorkloadCtx,
} from "./sim-workloads.js";
import { DEFAULT_ALLOCATABLE, type SimNode, simNode, unschedulable } from "./sim-scheduler.js";
import { clone, type Obj, type ResourceType } from "./types.js";

export interface SimOptions {
  /** false: no controllers and no kubelet (pure API server). Default true. */
  enabled?: boolean;
  /** "ready": pods start and turn Ready by themselves (default); "manual": they stay Pending until startPod(). */
  kubelet?: "ready" | "manual";
  /** "manual": job pods run until a test command ends them (default); "succeed": they succeed at once. */
  jobPods?: "manual" | "succeed";
  /** Node name pods are bound to. Default "sim-node-1". */
  nodeName?: string;
  /** The node's allocatable resources (sim-scheduler.ts DEFAULT_ALLOCATABLE: 32 CPUs, 8 GPUs...). */
  nodeAllocatable?: Record<string, string>;
}

export class Simulation {
  #scheduled = false;
  #stopped = false;
  #idle: (() => void)[] = [];
  #ctx: WorkloadCtx;
  #ips = 0;
  #completing = new Set<string>();
  #failing = new Map<string, number>();
  #manualStarts = new Set<string>();
  readonly opts: Required<SimOptions>;
  /** The one node pods are scheduled on. */
  readonly node: SimNode;

  constructor(
    private readonly store: Store,
    private readonly now: () => Date,
    opts: SimOptions,
  ) {
    this.opts = {
      enabled: true,
      kubelet: "ready",
      jobPods: "manual",
      nodeName: "sim-node-1",
      nodeAllocatable: DEFAULT_ALLOCATABLE,
      ...opts,
    };
    this.node = simNode(this.opts.nodeName, this.opts.nodeAllocatable);
    const t = (group: string, plural: string): ResourceType => {
      const found = store.types.all.find((x) => x.group === group && x.plural === plural);
      if (!found) throw new Error(`sim: no type ${group}/${plural}`);
      return found;
    };
    this.#ctx = { store, now, t, jobs: new Map(), createErrors: new Map() };
    if (this.opts.enabled) {
      store.listeners.push(() => this.#schedule());
      store.gracefulPods = true;
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      try {
        this.pass();
      } catch (err) {
        // A controller error is a bug in the simulation: surface it, keep serving.
        console.error("kube sim pass failed", err);
      }
      if (!this.#scheduled) for (const f of this.#idle.splice(0)) f();
    });
  }

  stop(): void {
    this.#stopped = true;
  }

  get pending(): boolean {
    return this.#scheduled;
  }

  idle(): Promise<void> {
    if (!this.#scheduled) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  #t(group: string, plural: string): ResourceType {
    return this.#ctx.t(group, plural);
  }

  /** One reconcile of every workload and pod. Writes trigger another pass until nothing changes. */
  pass(): void {
    const { store } = this;
    const pods = (): Obj[] => store.list(this.#t("", "pods"));
    for (const d of store.list(this.#t("apps", "deployments")))
      if (!d.metadata.deletionTimestamp) syncDeployment(this.#ctx, d);
    for (const rs of store.list(this.#t("apps", "replicasets"))) syncReplicaSet(this.#ctx, rs, pods());
    for (const j of store.list(this.#t("batch", "jobs")))
      if (!j.metadata.deletionTimestamp) syncJob(this.#ctx, j, pods());
    for (const p of pods()) this.#kubelet(p);
  }

  #jobOf(p: Obj): string | undefined {
    const ref = (p.metadata.ownerReferences ?? []).find((r: Obj) => r.kind === "Job" && r.controller);
    return ref ? `${p.metadata.namespace}/${ref.name}` : undefined;
  }

  #kubelet(p: Obj): void {
    if (p.metadata.deletionTimestamp) {
      // Containers stopped: the kubelet confirms the deletion with a zero grace period.
      if ((p.metadata.deletionGracePeriodSeconds ?? 0) > 0)
        this.store.delete(this.#t("", "pods"), p.metadata.namespace, p.metadata.name, {
          gracePeriodSeconds: 0,
        });
      return;
    }
    if (isTerminal(p)) return;
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    const job = this.#jobOf(p);
    if (job && this.#completing.has(job)) return this.#terminate(p, "Succeeded", 0, "Completed");
    if (job && this.#failing.has(job)) return this.#terminate(p, "Failed", this.#failing.get(job)!, "Error");
    if (!p.spec.nodeName) return this.#schedule1(p);
    if (p.status?.phase === "Pending" && (this.opts.kubelet === "ready" || this.#manualStarts.has(key))) {
      this.#setStatus(p, this.#running(p, true));
      if (job && this.opts.jobPods === "succeed")
        this.#terminate(
          this.store.peek(this.#t("", "pods"), p.metadata.namespace, p.metadata.name)!,
          "Succeeded",
          0,
          "Completed",
        );
    }
  }

  /** Binds the pod, or marks it Unschedulable (once per message) while it does not fit. */
  #schedule1(p: Obj): void {
    const bound = this.store
      .list(this.#t("", "pods"))
      .filter((x) => x.spec.nodeName === this.node.name && !isTerminal(x));
    const why = unschedulable(p, this.node, bound);
    if (!why) {
      const next = clone(p);
      next.spec.nodeName = this.node.name;
      this.store.put(this.#t("", "pods"), next);
      return;
    }
    const cur = (p.status?.conditions ?? []).find((c: Obj) => c.type === "PodScheduled");
    if (cur?.message === why) return;
    this.#setStatus(p, {
      ...(p.status ?? {}),
      phase: "Pending",
      conditions: [
        {
          type: "PodScheduled",
          status: "False",
          reason: "Unschedulable",
          message: why,
          lastProbeTime: null,
          lastTransitionTime: stamp(this.now()),
        },
      ],
    });
  }

  #running(p: Obj, ready: boolean): Obj {
    const now = stamp(this.now());
    const n = ++this.#ips;
    const cond = (type: string, status: boolean): Obj => ({
      type,
      status: status ? "True" : "False",
      lastProbeTime: null,
      lastTransitionTime: now,
    });
    return {
      phase: "Running",
      conditions: [
        cond("PodReadyToStartContainers", true),
        cond("Initialized", true),
        cond("Ready", ready),
        cond("ContainersReady", ready),
        cond("PodScheduled", true),
      ],
      hostIP: "10.0.0.1",
      podIP: p.status?.podIP ?? `10.244.${Math.floor(n / 250)}.${(n % 250) + 1}`,
      startTime: p.status?.startTime ?? now,
      qosClass: p.status?.qosClass ?? "BestEffort",
      containerStatuses: (p.spec.containers ?? []).map((c: Obj) => ({
        name: c.name,
        image: c.image,
        imageID: "",
        ready,
        started: true,
        restartCount:
          (p.status?.containerStatuses ?? []).find((s: Obj) => s.name === c.name)?.restartCount ?? 0,
        state: { running: { startedAt: now } },
      })),
    };
  }

  #setStatus(p: Obj, status: Obj): Obj {
    const next = clone(p);
    next.status = status;
    return this.store.update(this.#t("", "pods"), p.metadata.namespace, p.metadata.name, next, {
      subresource: "status",
      manager: "kubelet",
    });
  }

  #terminate(
    p: Obj,
    phase: "Succeeded" | "Failed",
    exitCode: number,
    reason: string,
    message?: string,
  ): void {
    const now = stamp(this.now());
    const base = p.status?.phase === "Running" ? p.status : this.#running(p, false);
    if (phase === "Failed" && p.spec.restartPolicy === "OnFailure") {
      // The kubelet restarts the container in place: the pod stays Running, the restart is counted.
      this.#setStatus(p, {
        ...base,
        containerStatuses: base.containerStatuses.map((c: Obj) => ({
          ...c,
          restartCount: (c.restartCount ?? 0) + 1,
          lastState: { terminated: { exitCode, reason, finishedAt: now } },
        })),
      });
      return;
    }
    this.#setStatus(p, {
      ...base,
      phase,
      conditions: base.conditions.map((c: Obj) =>
        c.type === "Ready" || c.type === "ContainersReady"
          ? { ...c, status: "False", reason: "PodCompleted", lastTransitionTime: now }
          : c,
      ),
      containerStatuses: base.containerStatuses.map((c: Obj) => ({
        ...c,
        ready: false,
        started: false,
        state: {
          terminated: {
            exitCode,
            reason,
            ...(message ? { message } : {}),
            startedAt: base.startTime,
            finishedAt: now,
          },
        },
      })),
    });
  }

  #pod(name: string, namespace: string): Obj {
    const p = this.store.peek(this.#t("", "pods"), namespace, name);
    if (!p) throw new Error(`sim: no pod ${namespace}/${name}`);
    return p;
  }

  /** Pods of a namespace (or owned by a workload), for tests to pick names from. */
  pods(namespace = "default", owner?: { kind: string; name: string }): Obj[] {
    const all = this.store.list(this.#t("", "pods"), namespace);
    if (!owner) return all.map(clone);
    return all
      .filter((p) =>
        (p.metadata.ownerReferences ?? []).some((r: Obj) => r.kind === owner.kind && r.name === owner.name),
      )
      .map(clone);
  }

  /** The container exits with `exitCode` (pods with restartPolicy OnFailure restart and count it). */
  /** The pod's containers exit with `exitCode`, leaving `message` as their termination message. */
  failPod(name: string, exitCode = 1, namespace = "default", message?: string): void {
    this.#terminate(this.#pod(name, namespace), "Failed", exitCode, "Error", message);
  }

  succeedPod(name: string, namespace = "default"): void {
    this.#terminate(this.#pod(name, namespace), "Succeeded", 0, "Completed");
  }

  /** Manual kubelet mode: start a Pending pod (Running, and Ready unless `ready` is false). */
  startPod(name: string, namespace = "default", ready = true): void {
    const p = this.#pod(name, namespace);
    this.#setStatus(p, this.#running(p, ready));
  }

  /** A readiness probe flips. */
  setPodReady(name: string, ready: boolean, namespace = "default"): void {
    const p = this.#pod(name, namespace);
    this.#setStatus(p, this.#running(p, ready));
  }

  /** Every pod the Job has and will have succeeds until the Job is Complete. */
  completeJob(name: string, namespace = "default"): void {
    this.#completing.add(`${namespace}/${name}`);
    this.#failing.delete(`${namespace}/${name}`);
    this.#schedule();
  }

  /** Every pod of the Job fails with `exitCode` until the backoff limit fails the Job. */
  failJob(name: string, exitCode = 1, namespace = "default"): void {
    this.#failing.set(`${namespace}/${name}`, exitCode);
    this.#completing.delete(`${namespace}/${name}`);
    this.#schedule();
  }

  /** Pods of a Job that are neither finished nor terminating. */
  activeJobPods(name: string, namespace = "default"): Obj[] {
    const job = this.store.peek(this.#t("batch", "jobs"), namespace, name);
    if (!job) return [];
    return ownedBy(this.store.list(this.#t("", "pods"), namespace), job)
      .filter((p) => !isTerminal(p) && !p.metadata.deletionTimestamp)
      .map(clone);
  }

  readyPods(namespace = "default"): Obj[] {
    return this.store.list(this.#t("", "pods"), namespace).filter(isReady).map(clone);
  }
}
