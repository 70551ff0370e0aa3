// The object store: one global resourceVersion counter, create/update/delete with the API
// server's metadata rules (uid, generation, finalizers, deletionTimestamp, no-op updates keep
// their resourceVersion), every commit recorded in the watch history. GC lives in gc.ts.
import { randomUUID } from "node:crypto";
import { admit, checkEnvelope } from "./admit.js";
import { admissionName, admitPodSecurity, admitRuntimeClass, enforcedLevel } from "./pod-admission.js";
import { alreadyExists, conflict, KubeError, notFound, staleConflict, badRequest } from "./errors.js";
import { type History, type EventType } from "./history.js";
import { type ResourceTable } from "./resources.js";
import { type FieldValidation } from "./fields.js";
import { trackUpdate, withoutManaged } from "./managed.js";
import { type CrValidator } from "./schema.js";
import { clone, deepEqual, type Obj, type ResourceType, typeKey } from "./types.js";

export type Propagation = "Background" | "Foreground" | "Orphan";

export interface WriteOptions {
  dryRun?: boolean;
  /** Field manager recorded in managedFields (the request's fieldManager or user agent). */
  manager?: string;
  /** Server-side apply computed managedFields itself. */
  applied?: boolean;
  /** The request's fieldValidation and where its "unknown field" warnings go. */
  fieldValidation?: FieldValidation;
  warnings?: string[];
}

export interface DeleteOptions {
  propagationPolicy?: Propagation;
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

const RAND = "bcdfghjklmnpqrstvwxz2456789";
const randSuffix = (): string =>
  Array.from({ length: 5 }, () => RAND[Math.floor(Math.random() * RAND.length)]).join("");

/** RFC 3339 with second precision, as metav1.Time marshals. */
export const stamp = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, "Z");

function withoutMetaAndStatus(o: Obj, dropStatus: boolean): Obj {
  const rest = { ...o };
  delete rest.metadata;
  if (dropStatus) delete rest.status;
  return rest;
}

/** Same managers owning the same fields (times aside): an apply that changes only that is no-op. */
function sameOwners(a: Obj, b: Obj): boolean {
  const strip = (o: Obj): unknown =>
    (o.metadata.managedFields ?? []).map((m: Obj) => ({ ...m, time: undefined }));
  return deepEqual(strip(a), strip(b));
}

export class Store {
  #rv = 0;
  #objects = new Map<string, Map<string, Obj>>();
  #ips = 0;
  /** Called after every commit (the garbage collector and the simulation schedule passes). */
  readonly listeners: ((type: EventType, object: Obj) => void)[] = [];
  /** Pods bound to a node terminate gracefully (set while a kubelet stand-in runs). */
  gracefulPods = false;

  constructor(
    readonly types: ResourceTable,
    readonly crs: CrValidator,
    readonly history: History,
    readonly now: () => Date,
  ) {}

  get resourceVersion(): number {
    return this.#rv;
  }

  #bucket(t: ResourceType): Map<string, Obj> {
    const k = typeKey(t);
    let m = this.#objects.get(k);
    if (!m) this.#objects.set(k, (m = new Map()));
    return m;
  }

  /** The stored object (not a copy: callers must not mutate it). */
  peek(t: ResourceType, ns: string, name: string): Obj | undefined {
    return this.#bucket(t).get(`${t.namespaced ? ns : ""}/${name}`);
  }

  get(t: ResourceType, ns: string, name: string): Obj {
    const o = this.peek(t, ns, name);
    if (!o) throw notFound(t, name);
    return clone(o);
  }

  /** Objects of a type, sorted by namespace/name (the etcd key order lists have). */
  list(t: ResourceType, ns?: string): Obj[] {
    return [...this.#bucket(t).entries()]
      .filter(([, o]) => ns === undefined || !t.namespaced || o.metadata.namespace === ns)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o);
  }

  #commit(t: ResourceType, type: EventType, o: Obj, prev?: Obj): Obj {
    o.metadata.resourceVersion = String(++this.#rv);
    const key = `${t.namespaced ? o.metadata.namespace : ""}/${o.metadata.name}`;
    if (type === "DELETED") this.#bucket(t).delete(key);
    else this.#bucket(t).set(key, o);
    this.history.record({
      rv: this.#rv,
      key: typeKey(t),
      namespace: t.namespaced ? o.metadata.namespace : "",
      type,
      object: o,
      ...(prev ? { prev } : {}),
    });
    for (const l of this.listeners) l(type, o);
    return clone(o);
  }

  #checkNamespace(t: ResourceType, ns: string): void {
    if (!t.namespaced) return;
    const nsType = this.types.byPath("", "v1", "namespaces")!;
    const n = this.peek(nsType, "", ns);
    if (!n) throw notFound(nsType, ns);
    if (n.metadata.deletionTimestamp)
      throw new KubeError(
        403,
        "Forbidden",
        `${t.plural} "${""}" is forbidden: unable to create new content in namespace ${ns} because it is being terminated`,
        {
          kind: t.plural,
          causes: [
            {
              reason: "NamespaceTerminating",
              message: `namespace ${ns} is being terminated`,
              field: "metadata.namespace",
            },
          ],
        },
      );
  }

  #track(t: ResourceType, old: Obj | undefined, next: Obj, opts: WriteOptions, subresource?: string): void {
    if (opts.applied) return;
    const schema = t.custom
      ? this.types.crds.find((c) => c.kind === t.kind && c.group === t.group)?.schema
      : undefined;
    const m = trackUpdate(
      t,
      schema,
      old,
      next,
      opts.manager ?? "unknown",
      subresource,
      stamp(this.now()),
      next.apiVersion,
    );
    if (m) next.metadata.managedFields = m;
    else delete next.metadata.managedFields;
  }

  #peekKind(apiVersion: string, kind: string, ns: string, name: string): Obj | undefined {
    const t = this.types.byKind(apiVersion, kind);
    return t ? this.peek(t, ns, name) : undefined;
  }

  create(t: ResourceType, ns: string, body: unknown, opts: WriteOptions = {}): Obj {
    const o = checkEnvelope(t, clone(body), ns);
    const m = o.metadata as Obj;
    if (m.resourceVersion) throw badRequest("resourceVersion should not be set on objects to be created");
    const requested = { ...m };
    if (!m.name && m.generateName) m.name = `${m.generateName}${randSuffix()}`;
    this.#checkNamespace(t, ns);
    m.uid = randomUUID();
    m.creationTimestamp = stamp(this.now());
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    if (t.generation) m.generation = 1;
    else delete m.generation;
    if (t.status) delete o.status;
    this.#prepareCreate(t, o);
    const isPod = t.kind === "Pod" && !t.group;
    // Mutating admission (RuntimeClass) runs before validation, validating (PodSecurity) after.
    if (isPod)
      admitRuntimeClass(o, admissionName(requested), (rc) =>
        this.#peekKind("node.k8s.io/v1", "RuntimeClass", "", rc),
      );
    const admitted = admit(t, o, this.crs, undefined, opts);
    if (isPod)
      admitPodSecurity(
        admitted,
        admissionName(requested),
        enforcedLevel(this.#peekKind("v1", "Namespace", "", ns)),
      );
    if (this.peek(t, ns, admitted.metadata.name)) throw alreadyExists(t, admitted.metadata.name);
    this.#track(t, undefined, admitted, opts);
    if (opts.dryRun) return admitted;
    return this.#commit(t, "ADDED", admitted);
  }

  #prepareCreate(t: ResourceType, o: Obj): void {
    const m = o.metadata as Obj;
    if (t.kind === "Pod" && !t.group) o.status = { phase: "Pending", qosClass: "BestEffort" };
    if (t.kind === "Namespace") o.status = { phase: "Active" };
    if (t.kind === "Service" && !t.group) {
      o.spec ??= {};
      if (o.spec.clusterIP !== "None" && !o.spec.clusterIP) {
        const n = ++this.#ips;
        o.spec.clusterIP = `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
      }
      o.spec.clusterIPs ??= [o.spec.clusterIP];
      o.spec.ipFamilies ??= ["IPv4"];
      o.spec.ipFamilyPolicy ??= "SingleStack";
      o.status = { loadBalancer: {} };
    }
    if (t.kind === "Job" && t.group === "batch" && o.spec?.manualSelector !== true) {
      const uidLabels = { "batch.kubernetes.io/controller-uid": m.uid, "controller-uid": m.uid };
      o.spec ??= {};
      o.spec.selector = { matchLabels: { "batch.kubernetes.io/controller-uid": m.uid } };
      o.spec.template ??= {};
      o.spec.template.metadata ??= {};
      o.spec.template.metadata.labels = {
        ...(o.spec.template.metadata.labels ?? {}),
        ...uidLabels,
        "batch.kubernetes.io/job-name": m.name,
        "job-name": m.name,
      };
    }
  }

  /**
   * PUT semantics. `subresource` "status" takes only the status from `body`; the main endpoint
   * keeps the stored status for kinds with a status subresource.
   */
  update(
    t: ResourceType,
    ns: string,
    name: string,
    body: unknown,
    opts: WriteOptions & { subresource?: "status" } = {},
  ): Obj {
    const o = checkEnvelope(t, clone(body), ns, name);
    const old = this.peek(t, ns, name);
    if (!old) throw notFound(t, name);
    const m = o.metadata as Obj;
    if (m.resourceVersion && m.resourceVersion !== old.metadata.resourceVersion) throw staleConflict(t, name);
    if (m.uid && m.uid !== old.metadata.uid)
      throw conflict(
        t,
        name,
        `Precondition failed: UID in precondition: ${m.uid}, UID in object meta: ${old.metadata.uid}`,
      );
    let next: Obj;
    if (opts.subresource === "status") {
      next = clone(old);
      if (o.status === undefined) delete next.status;
      else next.status = o.status;
      if (opts.applied) next.metadata.managedFields = o.metadata.managedFields;
    } else {
      next = o;
      for (const f of [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
      ]) {
        if (old.metadata[f] === undefined) delete m[f];
        else m[f] = old.metadata[f];
      }
      if (t.status) {
        if (old.status === undefined) delete next.status;
        else next.status = clone(old.status);
      }
      if (t.kind === "Service" && !t.group && next.spec && !next.spec.clusterIP && old.spec?.clusterIP) {
        next.spec.clusterIP = old.spec.clusterIP;
        next.spec.clusterIPs ??= old.spec.clusterIPs;
      }
      if (t.kind === "Namespace" && !t.group) next.spec = clone(old.spec);
    }
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    next = admit(t, next, this.crs, old, opts);
    // Deployments also bump on annotation changes (they are copied to their ReplicaSets).
    const annotationsBump =
      t.kind === "Deployment" &&
      t.group === "apps" &&
      !deepEqual(next.metadata.annotations, old.metadata.annotations);
    if (
      t.generation &&
      (annotationsBump ||
        !deepEqual(withoutMetaAndStatus(next, t.status), withoutMetaAndStatus(old, t.status)))
    )
      next.metadata.generation = (old.metadata.generation ?? 0) + 1;
    if (deepEqual(withoutManaged(next), withoutManaged(old)) && (!opts.applied || sameOwners(next, old)))
      return clone(old);
    this.#track(t, old, next, opts, opts.subresource);
    if (opts.dryRun) return next;
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0)
      return this.#commit(t, "DELETED", next, old);
    return this.#commit(t, "MODIFIED", next, old);
  }

  /**
   * DELETE semantics: finalizers (including orphan/foregroundDeletion, added here for those
   * policies) only mark the object; without any, it goes at once. Returns the object and
   * whether it is gone.
   */
  delete(
    t: ResourceType,
    ns: string,
    name: string,
    opts: DeleteOptions = {},
  ): { object: Obj; gone: boolean } {
    const old = this.peek(t, ns, name);
    if (!old) throw notFound(t, name);
    const pre = opts.preconditions ?? {};
    if (pre.uid && pre.uid !== old.metadata.uid)
      throw conflict(
        t,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`,
      );
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(
        t,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`,
      );
    const policy = opts.propagationPolicy ?? t.defaultPropagation;
    const next = clone(old);
    const fin = new Set<string>(next.metadata.finalizers ?? []);
    if (policy === "Orphan") fin.add("orphan");
    if (policy === "Foreground") fin.add("foregroundDeletion");
    if (t.kind === "Namespace" && !t.group) {
      if (old.metadata.deletionTimestamp) return { object: clone(old), gone: false };
      next.metadata.deletionTimestamp = stamp(this.now());
      next.metadata.deletionGracePeriodSeconds = 0;
      next.status = { ...(next.status ?? {}), phase: "Terminating" };
      return { object: this.#commit(t, "MODIFIED", next, old), gone: false };
    }
    if (this.gracefulPods && t.kind === "Pod" && !t.group && old.spec?.nodeName) {
      // A pod bound to a node terminates: the kubelet (sim.ts) removes it once its containers stop.
      const grace = opts.gracePeriodSeconds ?? old.spec.terminationGracePeriodSeconds ?? 30;
      const terminal = old.status?.phase === "Succeeded" || old.status?.phase === "Failed";
      if (grace > 0 && !terminal) {
        if (old.metadata.deletionTimestamp) return { object: clone(old), gone: false };
        if (fin.size > 0) next.metadata.finalizers = [...fin];
        next.metadata.deletionTimestamp = stamp(new Date(this.now().getTime() + grace * 1000));
        next.metadata.deletionGracePeriodSeconds = grace;
        return { object: this.#commit(t, "MODIFIED", next, old), gone: false };
      }
    }
    if (fin.size === 0) return { object: this.#commit(t, "DELETED", next, old), gone: true };
    if (old.metadata.deletionTimestamp && fin.size === (old.metadata.finalizers ?? []).length)
      return { object: clone(old), gone: false };
    next.metadata.finalizers = [...fin];
    next.metadata.deletionTimestamp ??= stamp(this.now());
    next.metadata.deletionGracePeriodSeconds ??= 0;
    return { object: this.#commit(t, "MODIFIED", next, old), gone: false };
  }

  /** Removes an object whose finalizers are all gone (namespace finalization, GC). */
  remove(t: ResourceType, o: Obj): void {
    if (this.peek(t, o.metadata.namespace ?? "", o.metadata.name)) this.#commit(t, "DELETED", clone(o), o);
  }

  /** Writes an already-admitted object (controllers in sim.ts, GC): no validation, same events. */
  put(t: ResourceType, o: Obj): Obj {
    const prev = this.peek(t, o.metadata.namespace ?? "", o.metadata.name);
    if (prev && deepEqual(prev, o)) return clone(prev);
    return this.#commit(t, prev ? "MODIFIED" : "ADDED", clone(o), prev);
  }
}
