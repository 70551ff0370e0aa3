// Simulated kube-controller-manager loops for the workloads the operator creates: Deployment ->
// ReplicaSet (by pod-template-hash, rolled out by sim-rollout.ts) -> Pods, and Job -> Pods
// (NonIndexed and Indexed, parallelism, completions, backoffLimit, Complete/Failed conditions).
// One pass reads the store and writes.
import { createHash } from "node:crypto";
import { type RsState, rolloutStep } from "./sim-rollout.js";
import { type PodCtx, createPod, replicaFailure } from "./sim-pods.js";
import { stamp } from "./store.js";
import { fromLabelSelector, matchesLabels } from "./selectors.js";
import { clone, type Obj, type ResourceType } from "./types.js";

const KCM = "kube-controller-manager";
const RS_CONTROLLER = "replicaset-controller";
const JOB_CONTROLLER = "job-controller";
const SAFE = "bcdfghjklmnpqrstvwxz2456789";

export function templateHash(template: unknown): string {
  const d = createHash("sha256")
    .update(JSON.stringify(template ?? {}))
    .digest();
  return Array.from(d.subarray(0, 10), (b) => SAFE[b % SAFE.length]).join("");
}

export interface WorkloadCtx extends PodCtx {
  /** Per-job memory of pods already counted (the real controller's tracking finalizers). */
  jobs: Map<
    string,
    { succeeded: Set<string>; failed: Set<string>; active: Set<string>; indexes: Set<number> }
  >;
}

export const isTerminal = (p: Obj): boolean =>
  p.status?.phase === "Succeeded" || p.status?.phase === "Failed";
export const isReady = (p: Obj): boolean =>
  (p.status?.conditions ?? []).some((c: Obj) => c.type === "Ready" && c.status === "True");

export function ownedBy(pods: Obj[], owner: Obj): Obj[] {
  return pods.filter((p) =>
    (p.metadata.ownerReferences ?? []).some((r: Obj) => r.uid === owner.metadata.uid && r.controller),
  );
}

function controllerRef(owner: Obj): Obj {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function setCondition(
  conds: Obj[],
  type: string,
  status: string,
  reason: string,
  message: string,
  now: string,
  /** Deployment conditions carry lastUpdateTime, Job conditions lastProbeTime. */
  touched: "lastUpdateTime" | "lastProbeTime" = "lastUpdateTime",
): Obj[] {
  const cur = conds.find((c) => c.type === type);
  const next = {
    type,
    status,
    reason,
    message,
    lastTransitionTime: cur && cur.status === status ? cur.lastTransitionTime : now,
    [touched]: now,
  };
  if (cur && cur.status === status && cur.reason === reason && cur.message === message) return conds;
  return [...conds.filter((c) => c.type !== type), next];
}

function writeStatus(ctx: WorkloadCtx, t: ResourceType, o: Obj, status: Obj): void {
  const cur = ctx.store.peek(t, o.metadata.namespace, o.metadata.name);
  if (!cur) return;
  const next = clone(cur);
  next.status = status;
  ctx.store.update(t, o.metadata.namespace, o.metadata.name, next, { subresource: "status", manager: KCM });
}

export function syncReplicaSet(ctx: WorkloadCtx, rs: Obj, pods: Obj[]): void {
  const podT = ctx.t("", "pods");
  const live = ownedBy(pods, rs).filter((p) => !p.metadata.deletionTimestamp && !isTerminal(p));
  const want = rs.metadata.deletionTimestamp ? live.length : (rs.spec.replicas ?? 1);
  let error: string | undefined;
  // A refused pod stops this pass's creations (the real controller's slow start gives up too).
  for (let i = live.length; i < want && !error; i++)
    error = createPod(ctx, rs, rs.spec.template, { generateName: `${rs.metadata.name}-` }, RS_CONTROLLER);
  if (live.length > want) {
    const victims = [...live].sort(
      (a, b) =>
        Number(isReady(a)) - Number(isReady(b)) ||
        (a.metadata.creationTimestamp < b.metadata.creationTimestamp ? 1 : -1),
    );
    for (const p of victims.slice(0, live.length - want))
      ctx.store.delete(podT, p.metadata.namespace, p.metadata.name);
  }
  const now = ownedBy(ctx.store.list(podT, rs.metadata.namespace), rs).filter(
    (p) => !p.metadata.deletionTimestamp && !isTerminal(p),
  );
  const sel = fromLabelSelector(rs.spec.selector);
  const ready = now.filter(isReady).length;
  const conditions = replicaFailure(rs.status?.conditions ?? [], error, stamp(ctx.now()));
  writeStatus(ctx, ctx.t("apps", "replicasets"), rs, {
    replicas: now.length,
    fullyLabeledReplicas: now.filter((p) => matchesLabels(sel, p.metadata.labels)).length,
    readyReplicas: ready,
    availableReplicas: ready,
    observedGeneration: rs.metadata.generation,
    ...(conditions.length ? { conditions } : {}),
  });
}

export function syncDeployment(ctx: WorkloadCtx, d: Obj): void {
  const rsT = ctx.t("apps", "replicasets");
  const ns = d.metadata.namespace;
  const hash = templateHash(d.spec.template);
  const owned = ownedBy(ctx.store.list(rsT, ns), d);
  const name = `${d.metadata.name}-${hash}`;
  let current = owned.find((r) => r.metadata.labels?.["pod-template-hash"] === hash);
  const revision = String(
    Math.max(
      0,
      ...owned.map((r) => Number(r.metadata.annotations?.["deployment.kubernetes.io/revision"] ?? 0)),
    ) + (current ? 0 : 1),
  );
  const replicas = d.spec.paused ? undefined : (d.spec.replicas ?? 1);
  if (!current && replicas !== undefined) {
    const tmpl = clone(d.spec.template);
    tmpl.metadata = {
      ...(tmpl.metadata ?? {}),
      labels: { ...(tmpl.metadata?.labels ?? {}), "pod-template-hash": hash },
    };
    current = ctx.store.create(
      rsT,
      ns,
      {
        metadata: {
          name,
          labels: tmpl.metadata.labels,
          annotations: {
            "deployment.kubernetes.io/revision": revision,
            "deployment.kubernetes.io/desired-replicas": String(replicas),
          },
          ownerReferences: [controllerRef(d)],
        },
        spec: {
          replicas: owned.some((r) => (r.spec.replicas ?? 0) > 0) ? 0 : replicas,
          selector: {
            matchLabels: { ...(d.spec.selector?.matchLabels ?? {}), "pod-template-hash": hash },
            ...(d.spec.selector?.matchExpressions
              ? { matchExpressions: d.spec.selector.matchExpressions }
              : {}),
          },
          template: tmpl,
        },
      },
      { manager: KCM },
    );
  }
  if (replicas !== undefined) {
    const state = (r: Obj): RsState => ({
      uid: r.metadata.uid,
      replicas: r.spec.replicas ?? 0,
      available: r.status?.availableReplicas ?? 0,
      pods: r.status?.replicas ?? 0,
    });
    const mine = ctx.store.list(rsT, ns).filter((x) => ownedBy([x], d).length);
    const olds = mine.filter((r) => r.metadata.uid !== current!.metadata.uid);
    const targets = rolloutStep({ replicas, strategy: d.spec.strategy }, state(current!), olds.map(state));
    for (const r of mine) {
      const want = targets.get(r.metadata.uid) ?? r.spec.replicas;
      if (r.spec.replicas !== want) {
        const next = clone(r);
        next.spec.replicas = want;
        ctx.store.update(rsT, ns, r.metadata.name, next, { manager: KCM });
      }
    }
  }
  const all = ownedBy(ctx.store.list(rsT, ns), d);
  const sum = (f: string): number => all.reduce((a, r) => a + (r.status?.[f] ?? 0), 0);
  const cur = all.find((r) => r.metadata.uid === current?.metadata.uid);
  const desired = d.spec.replicas ?? 1;
  const available = sum("availableReplicas");
  const nowS = stamp(ctx.now());
  let conds: Obj[] = d.status?.conditions ?? [];
  conds =
    available >= desired
      ? setCondition(
          conds,
          "Available",
          "True",
          "MinimumReplicasAvailable",
          "Deployment has minimum availability.",
          nowS,
        )
      : setCondition(
          conds,
          "Available",
          "False",
          "MinimumReplicasUnavailable",
          "Deployment does not have minimum availability.",
          nowS,
        );
  const done = (cur?.status?.availableReplicas ?? 0) >= desired && sum("replicas") === desired;
  // The new ReplicaSet's ReplicaFailure becomes the Deployment's (getReplicaFailures).
  const failure = (cur?.status?.conditions ?? []).find((c: Obj) => c.type === "ReplicaFailure");
  conds = failure
    ? setCondition(
        conds,
        "ReplicaFailure",
        failure.status,
        failure.reason,
        failure.message,
        failure.lastTransitionTime,
      )
    : conds.filter((c) => c.type !== "ReplicaFailure");
  conds = setCondition(
    conds,
    "Progressing",
    "True",
    done ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
    done ? `ReplicaSet "${name}" has successfully progressed.` : `ReplicaSet "${name}" is progressing.`,
    nowS,
  );
  writeStatus(ctx, ctx.t("apps", "deployments"), d, {
    observedGeneration: d.metadata.generation,
    replicas: sum("replicas"),
    updatedReplicas: cur?.status?.replicas ?? 0,
    readyReplicas: sum("readyReplicas"),
    availableReplicas: available,
    ...(desired - available > 0 ? { unavailableReplicas: desired - available } : {}),
    conditions: conds,
  });
}

function ranges(ix: number[]): string {
  const s = [...ix].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return out.join(",");
}

export function syncJob(ctx: WorkloadCtx, job: Obj, pods: Obj[]): void {
  const podT = ctx.t("", "pods");
  const ns = job.metadata.namespace;
  const conds: Obj[] = job.status?.conditions ?? [];
  const finished = conds.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
  const mem = ctx.jobs.get(job.metadata.uid) ?? {
    succeeded: new Set(),
    failed: new Set(),
    active: new Set(),
    indexes: new Set(),
  };
  ctx.jobs.set(job.metadata.uid, mem);
  const mine = ownedBy(pods, job);
  const indexed = job.spec.completionMode === "Indexed";
  const indexOf = (p: Obj): number =>
    Number(p.metadata.annotations?.["batch.kubernetes.io/job-completion-index"] ?? -1);
  const restarts = (p: Obj): number =>
    (p.status?.containerStatuses ?? []).reduce((a: number, c: Obj) => a + (c.restartCount ?? 0), 0);
  const seen = new Set(mine.map((p) => p.metadata.uid));
  for (const uid of mem.active) if (!seen.has(uid) && !mem.succeeded.has(uid)) mem.failed.add(uid);
  for (const p of mine) {
    if (p.status?.phase === "Succeeded") {
      mem.succeeded.add(p.metadata.uid);
      if (indexed) mem.indexes.add(indexOf(p));
    }
    if (p.status?.phase === "Failed") mem.failed.add(p.metadata.uid);
  }
  let active = mine.filter((p) => !isTerminal(p) && !p.metadata.deletionTimestamp);
  mem.active = new Set(active.map((p) => p.metadata.uid));
  // Container restarts (restartPolicy OnFailure) count against backoffLimit, not in status.failed.
  const failed = mem.failed.size;
  const failures = failed + active.reduce((a, p) => a + restarts(p), 0);
  const completions: number | undefined = job.spec.completions;
  const succeeded = indexed ? mem.indexes.size : mem.succeeded.size;
  const nowS = stamp(ctx.now());
  const status: Obj = { ...(job.status ?? {}) };
  // A suspended Job has no startTime; resuming starts the clock again.
  if (job.spec.suspend && !finished) delete status.startTime;
  else status.startTime ??= nowS;
  let next = conds;
  if (!finished && !job.spec.suspend) {
    const complete =
      completions !== undefined ? succeeded >= completions : succeeded > 0 && active.length === 0;
    if (failures > (job.spec.backoffLimit ?? 6)) {
      for (const p of active) ctx.store.delete(podT, ns, p.metadata.name);
      active = [];
      mem.active.clear();
      next = setCondition(
        next,
        "FailureTarget",
        "True",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
        nowS,
        "lastProbeTime",
      );
      next = setCondition(
        next,
        "Failed",
        "True",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
        nowS,
        "lastProbeTime",
      );
    } else if (complete) {
      next = setCondition(
        next,
        "SuccessCriteriaMet",
        "True",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
        nowS,
        "lastProbeTime",
      );
      next = setCondition(
        next,
        "Complete",
        "True",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
        nowS,
        "lastProbeTime",
      );
      status.completionTime = nowS;
    } else {
      const parallelism = job.spec.parallelism ?? 1;
      if (indexed) {
        const busy = new Set(active.map(indexOf));
        const todo = Array.from({ length: completions ?? 0 }, (_, i) => i).filter(
          (i) => !mem.indexes.has(i) && !busy.has(i),
        );
        for (const i of todo.slice(0, Math.max(0, parallelism - active.length)))
          createPod(
            ctx,
            job,
            job.spec.template,
            {
              generateName: `${job.metadata.name}-${i}-`,
              hostname: `${job.metadata.name}-${i}`,
              labels: { "batch.kubernetes.io/job-completion-index": String(i) },
              annotations: { "batch.kubernetes.io/job-completion-index": String(i) },
              env: [
                {
                  name: "JOB_COMPLETION_INDEX",
                  valueFrom: {
                    fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/job-completion-index']" },
                  },
                },
              ],
            },
            JOB_CONTROLLER,
          );
      } else {
        const remaining =
          completions === undefined ? (succeeded > 0 ? 0 : parallelism) : completions - succeeded;
        for (let i = active.length; i < Math.min(parallelism, remaining); i++)
          createPod(ctx, job, job.spec.template, { generateName: `${job.metadata.name}-` }, JOB_CONTROLLER);
      }
    }
  }
  if (job.spec.suspend && !finished) {
    // Pods deleted by a suspension are not failures (the real controller does not count them).
    for (const p of active) ctx.store.delete(podT, ns, p.metadata.name);
    mem.active.clear();
    next = setCondition(next, "Suspended", "True", "JobSuspended", "Job suspended", nowS, "lastProbeTime");
  } else if (next.some((c) => c.type === "Suspended" && c.status === "True")) {
    next = setCondition(next, "Suspended", "False", "JobResumed", "Job resumed", nowS, "lastProbeTime");
  }
  const live = ownedBy(ctx.store.list(podT, ns), job).filter(
    (p) => !isTerminal(p) && !p.metadata.deletionTimestamp,
  );
  Object.assign(status, {
    active: live.length,
    ready: live.filter(isReady).length,
    succeeded,
    failed,
    terminating: 0,
    uncountedTerminatedPods: {},
    conditions: next,
    ...(indexed && mem.indexes.size ? { completedIndexes: ranges([...mem.indexes]) } : {}),
  });
  for (const k of ["active", "succeeded", "failed"]) if (status[k] === 0) delete status[k];
  if (next.length === 0) delete status.conditions;
  writeStatus(ctx, ctx.t("batch", "jobs"), job, status);
}
