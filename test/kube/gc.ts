// The garbage collector and namespace finalizer, run as coalesced passes after commits, as
// kube-controller-manager does asynchronously: background deletion of dependents whose owners
// are all gone, removal of dangling owner references, the orphan and foregroundDeletion
// finalizers, and the deletion of a Terminating namespace's contents.
import { type Store } from "./store.js";
import { clone, type Obj, type ResourceType } from "./types.js";

interface Ref {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  blockOwnerDeletion?: boolean;
}

export class GarbageCollector {
  #scheduled = false;
  #idle: (() => void)[] = [];
  #stopped = false;

  constructor(private readonly store: Store) {
    // Only deletions and objects with owners or deletion marks can leave work for a pass.
    store.listeners.push((type, o) => {
      const m = o.metadata ?? {};
      if (type === "DELETED" || m.deletionTimestamp || (m.ownerReferences ?? []).length > 0) this.schedule();
    });
  }

  schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      for (let i = 0; i < 20 && this.pass(); i++);
      if (!this.#scheduled) for (const f of this.#idle.splice(0)) f();
    });
  }

  stop(): void {
    this.#stopped = true;
  }

  get pending(): boolean {
    return this.#scheduled;
  }

  /** Resolves once no pass is pending (tests that want GC done without polling). */
  idle(): Promise<void> {
    if (!this.#scheduled) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  #owner(
    ref: Ref,
    ns: string,
  ): { state: "present" | "absent" | "unknown"; owner?: Obj; type?: ResourceType } {
    const t = this.store.types.byKind(ref.apiVersion, ref.kind);
    if (!t) return { state: "unknown" };
    const o = this.store.peek(t, ns, ref.name);
    if (!o || o.metadata.uid !== ref.uid) return { state: "absent", type: t };
    return { state: "present", owner: o, type: t };
  }

  /** One pass over everything; true when it changed something (another pass may follow). */
  pass(): boolean {
    const s = this.store;
    let changed = false;
    const all: [ResourceType, Obj][] = s.types.all.flatMap((t) =>
      s.list(t).map((o): [ResourceType, Obj] => [t, o]),
    );
    const dependents = (owner: Obj): [ResourceType, Obj][] =>
      all.filter(([, o]) =>
        (o.metadata.ownerReferences ?? []).some((r: Ref) => r.uid === owner.metadata.uid),
      );
    for (const [t, o] of all) {
      const m = o.metadata;
      if (!s.peek(t, m.namespace ?? "", m.name)) continue;
      if (t.kind === "Namespace" && !t.group && m.deletionTimestamp) {
        const inside = all.filter(([tt, x]) => tt.namespaced && x.metadata.namespace === m.name);
        for (const [tt, x] of inside)
          if (!x.metadata.deletionTimestamp && s.peek(tt, m.name, x.metadata.name)) {
            s.delete(tt, m.name, x.metadata.name, { propagationPolicy: "Background" });
            changed = true;
          }
        if (inside.every(([tt, x]) => !s.peek(tt, m.name, x.metadata.name))) {
          s.remove(t, o);
          changed = true;
        }
        continue;
      }
      const fin: string[] = m.finalizers ?? [];
      if (m.deletionTimestamp && fin.includes("orphan")) {
        for (const [dt, d] of dependents(o)) {
          const next = clone(d);
          next.metadata.ownerReferences = d.metadata.ownerReferences.filter((r: Ref) => r.uid !== m.uid);
          if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
          s.put(dt, next);
        }
        this.#dropFinalizer(t, o, "orphan");
        changed = true;
        continue;
      }
      if (m.deletionTimestamp && fin.includes("foregroundDeletion")) {
        const deps = dependents(o);
        for (const [dt, d] of deps)
          if (!d.metadata.deletionTimestamp) {
            s.delete(dt, d.metadata.namespace ?? "", d.metadata.name, { propagationPolicy: "Foreground" });
            changed = true;
          }
        const blocking = deps.filter(
          ([dt, d]) =>
            s.peek(dt, d.metadata.namespace ?? "", d.metadata.name) &&
            (d.metadata.ownerReferences ?? []).some(
              (r: Ref) => r.uid === m.uid && r.blockOwnerDeletion === true,
            ),
        );
        if (blocking.length === 0) {
          this.#dropFinalizer(t, o, "foregroundDeletion");
          changed = true;
        }
        continue;
      }
      const refs: Ref[] = m.ownerReferences ?? [];
      if (refs.length === 0 || m.deletionTimestamp) continue;
      const states = refs.map((r) => this.#owner(r, m.namespace ?? ""));
      if (states.some((x) => x.state === "unknown")) continue;
      const absent = refs.filter((_, i) => states[i]!.state === "absent");
      if (absent.length === 0) continue;
      if (absent.length === refs.length) {
        s.delete(t, m.namespace ?? "", m.name, { propagationPolicy: "Background" });
      } else {
        const next = clone(o);
        next.metadata.ownerReferences = refs.filter((_, i) => states[i]!.state === "present");
        s.put(t, next);
      }
      changed = true;
    }
    return changed;
  }

  #dropFinalizer(t: ResourceType, o: Obj, f: string): void {
    const cur = this.store.peek(t, o.metadata.namespace ?? "", o.metadata.name);
    if (!cur) return;
    const next = clone(cur);
    next.metadata.finalizers = (cur.metadata.finalizers ?? []).filter((x: string) => x !== f);
    if (next.metadata.finalizers.length === 0) {
      delete next.metadata.finalizers;
      this.store.remove(t, next);
    } else this.store.put(t, next);
  }
}
