// The event log behind watches: every committed change with its resourceVersion, a bounded
// window of them (older ones are "compacted" and answer 410 Gone), and the live watchers.
import { tooOld } from "./errors.js";
import { type FieldReq, matchesFields, matchesLabels, type Selector } from "./selectors.js";
import { clone, type Obj, type ResourceType, typeKey } from "./types.js";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoredEvent {
  rv: number;
  key: string; // type key (group/plural)
  namespace: string;
  type: EventType;
  object: Obj;
  prev?: Obj;
}

export interface WatchFilter {
  type: ResourceType;
  namespace?: string;
  labels: Selector;
  fields: FieldReq[];
}

export interface Watcher {
  filter: WatchFilter;
  send(type: EventType | "BOOKMARK" | "ERROR", object: Obj): void;
  bookmarks: boolean;
  close(): void;
}

export function matches(f: WatchFilter, o: Obj): boolean {
  return matchesLabels(f.labels, o.metadata?.labels) && matchesFields(f.fields, o);
}

/** What one watcher sees of an event: selectors turn MODIFIED into ADDED/DELETED at the edges. */
export function project(f: WatchFilter, ev: StoredEvent): { type: EventType; object: Obj } | undefined {
  if (ev.key !== typeKey(f.type)) return undefined;
  if (f.namespace !== undefined && f.namespace !== ev.namespace) return undefined;
  const now = matches(f, ev.object);
  if (ev.type !== "MODIFIED") return now ? { type: ev.type, object: ev.object } : undefined;
  const before = ev.prev ? matches(f, ev.prev) : false;
  if (now) return { type: before ? "MODIFIED" : "ADDED", object: ev.object };
  return before ? { type: "DELETED", object: ev.object } : undefined;
}

export class History {
  readonly #events: StoredEvent[] = [];
  readonly watchers = new Set<Watcher>();
  /** Events with rv <= compacted are gone; a watch from before it gets 410. */
  compacted = 0;

  constructor(private window: number) {}

  record(ev: StoredEvent): void {
    this.#events.push(ev);
    while (this.#events.length > this.window) this.compacted = this.#events.shift()!.rv;
    for (const w of [...this.watchers]) {
      const p = project(w.filter, ev);
      if (p) w.send(p.type, clone(p.object));
    }
  }

  /** Events after `rv` for one watcher, or a 410 error when part of them were compacted. */
  since(rv: number, f: WatchFilter): { type: EventType; object: Obj }[] {
    if (rv < this.compacted) throw tooOld(rv, this.compacted + 1);
    const out: { type: EventType; object: Obj }[] = [];
    for (const ev of this.#events) {
      if (ev.rv <= rv) continue;
      const p = project(f, ev);
      if (p) out.push({ type: p.type, object: clone(p.object) });
    }
    return out;
  }

  /**
   * The objects of one type as they were at `rv` (resourceVersionMatch=Exact), rebuilt from
   * the current ones by undoing later events; 410 when part of that history was compacted.
   */
  stateAt(rv: number, key: string, current: Obj[]): Obj[] {
    if (rv < this.compacted) throw tooOld(rv, this.compacted + 1);
    const byKey = new Map(current.map((o) => [`${o.metadata.namespace ?? ""}/${o.metadata.name}`, o]));
    for (let i = this.#events.length - 1; i >= 0; i--) {
      const ev = this.#events[i]!;
      if (ev.rv <= rv) break;
      if (ev.key !== key) continue;
      const k = `${ev.object.metadata.namespace ?? ""}/${ev.object.metadata.name}`;
      if (ev.type === "ADDED") byKey.delete(k);
      else if (ev.prev) byKey.set(k, ev.prev);
    }
    return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => clone(o));
  }

  /** Forgets every event up to `rv` (all of them by default), as etcd compaction does. */
  compact(rv: number): void {
    while (this.#events.length > 0 && this.#events[0]!.rv <= rv) this.#events.shift();
    this.compacted = Math.max(this.compacted, rv);
  }

  setWindow(n: number): void {
    this.window = n;
    while (this.#events.length > n) this.compacted = this.#events.shift()!.rv;
  }
}
