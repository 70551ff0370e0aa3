// Managed fields (FieldsV1) as server-side apply keeps them: the set of field paths each
// manager owns, computed from an object with its list types (associative lists by merge key,
// sets, atomic lists), serialized to metadata.managedFields, and updated on every write.
import { listStrategy } from "./patch.js";
import { clone, deepEqual, isObj, type Obj, type ResourceType } from "./types.js";

/** A path as FieldsV1 element strings ("f:spec", "k:{\"name\":\"c\"}", "v:\"x\""), JSON-encoded. */
export type FieldSet = Set<string>;
type Schema = Record<string, any> | undefined;

type ListType = { kind: "map"; keys: string[] } | { kind: "set" } | { kind: "atomic" };

const META_TRACKED = new Set(["labels", "annotations", "finalizers", "ownerReferences"]);

function listType(t: ResourceType, names: string[], schema: Schema): ListType {
  const last = names[names.length - 1];
  if (names.length === 2 && names[0] === "metadata") {
    if (last === "ownerReferences") return { kind: "map", keys: ["uid"] };
    if (last === "finalizers") return { kind: "set" };
  }
  if (t.custom) {
    const lt = schema?.["x-kubernetes-list-type"];
    if (lt === "map") return { kind: "map", keys: schema?.["x-kubernetes-list-map-keys"] ?? [] };
    if (lt === "set") return { kind: "set" };
    return { kind: "atomic" };
  }
  const s = listStrategy(names);
  if (s.key) return { kind: "map", keys: [s.key] };
  return s.primitiveMerge ? { kind: "set" } : { kind: "atomic" };
}

const child = (s: Schema, k: string): Schema =>
  s?.properties?.[k] ?? (isObj(s?.additionalProperties) ? s?.additionalProperties : undefined);

function itemKey(item: unknown, keys: string[]): string {
  const o = isObj(item) ? item : {};
  return `k:${JSON.stringify(Object.fromEntries(keys.map((k) => [k, o[k]])))}`;
}

/** Every owned path of `obj`: leaves, associative list items, set values, atomic lists. */
export function fieldSet(t: ResourceType, obj: Obj, schema?: Schema): FieldSet {
  const out: FieldSet = new Set();
  const walk = (v: unknown, path: string[], names: string[], s: Schema): void => {
    if (isObj(v) && Object.keys(v).length > 0) {
      for (const [k, x] of Object.entries(v)) walk(x, [...path, `f:${k}`], [...names, k], child(s, k));
      return;
    }
    if (Array.isArray(v)) {
      const lt = listType(t, names, s);
      if (lt.kind === "map") {
        for (const item of v) {
          const p = [...path, itemKey(item, lt.keys)];
          out.add(JSON.stringify(p));
          if (isObj(item))
            for (const [k, x] of Object.entries(item))
              walk(x, [...p, `f:${k}`], [...names, k], child(s?.items, k));
        }
        return;
      }
      if (lt.kind === "set") {
        for (const item of v) out.add(JSON.stringify([...path, `v:${JSON.stringify(item)}`]));
        return;
      }
    }
    if (path.length > 0) out.add(JSON.stringify(path));
  };
  for (const [k, v] of Object.entries(obj)) {
    if (k === "apiVersion" || k === "kind") continue;
    if (k === "metadata") {
      for (const [mk, mv] of Object.entries(isObj(v) ? v : {}))
        if (META_TRACKED.has(mk)) walk(mv, ["f:metadata", `f:${mk}`], ["metadata", mk], undefined);
      continue;
    }
    walk(v, [`f:${k}`], [k], child(schema, k));
  }
  return out;
}

/** The value a path points at in `obj` (undefined when absent). */
export function valueAt(obj: unknown, path: string[]): unknown {
  let cur: unknown = obj;
  for (const e of path) {
    if (e.startsWith("f:")) cur = isObj(cur) ? cur[e.slice(2)] : undefined;
    else if (e.startsWith("k:")) {
      const want = JSON.parse(e.slice(2)) as Obj;
      cur = Array.isArray(cur)
        ? cur.find((x) => isObj(x) && Object.entries(want).every(([k, v]) => deepEqual(x[k], v)))
        : undefined;
    } else if (e.startsWith("v:")) {
      const want = JSON.parse(e.slice(2));
      cur = Array.isArray(cur) ? cur.find((x) => deepEqual(x, want)) : undefined;
    }
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Removes the field or list item a path points at (SSA dropping a field its owner stopped applying). */
export function removeAt(obj: Obj, path: string[]): void {
  const parent = valueAt(obj, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (last.startsWith("f:") && isObj(parent)) delete parent[last.slice(2)];
  else if (Array.isArray(parent)) {
    const target = valueAt(obj, path);
    const i = parent.indexOf(target);
    if (i >= 0) parent.splice(i, 1);
  }
}

export function toFieldsV1(set: FieldSet): Obj {
  const root: Obj = {};
  for (const p of set) {
    const path = JSON.parse(p) as string[];
    let node = root;
    for (const e of path) node = node[e] ??= {};
    if (path[path.length - 1]!.startsWith("k:")) node["."] = {};
  }
  return root;
}

export function fromFieldsV1(f: unknown): FieldSet {
  const out: FieldSet = new Set();
  const walk = (node: Obj, path: string[]): void => {
    const keys = Object.keys(node).filter((k) => k !== ".");
    if (path.length > 0 && ("." in node || keys.length === 0)) out.add(JSON.stringify(path));
    for (const k of keys) walk(isObj(node[k]) ? node[k] : {}, [...path, k]);
  };
  if (isObj(f)) walk(f, []);
  return out;
}

export interface ManagerEntry {
  manager: string;
  operation: "Apply" | "Update";
  subresource?: string;
  apiVersion: string;
  time: string;
  fields: FieldSet;
}

export function readEntries(o: Obj | undefined): ManagerEntry[] {
  return ((o?.metadata?.managedFields ?? []) as Obj[]).map((m) => ({
    manager: String(m.manager ?? ""),
    operation: m.operation === "Apply" ? "Apply" : "Update",
    ...(m.subresource ? { subresource: String(m.subresource) } : {}),
    apiVersion: String(m.apiVersion ?? ""),
    time: String(m.time ?? ""),
    fields: fromFieldsV1(m.fieldsV1),
  }));
}

export function writeEntries(entries: ManagerEntry[]): Obj[] | undefined {
  const kept = entries.filter((e) => e.fields.size > 0);
  if (kept.length === 0) return undefined;
  return kept.map((e) => ({
    manager: e.manager,
    operation: e.operation,
    apiVersion: e.apiVersion,
    time: e.time,
    fieldsType: "FieldsV1",
    fieldsV1: toFieldsV1(e.fields),
    ...(e.subresource ? { subresource: e.subresource } : {}),
  }));
}

export const sameEntry = (
  a: Pick<ManagerEntry, "manager" | "operation" | "subresource">,
  b: Pick<ManagerEntry, "manager" | "operation" | "subresource">,
): boolean =>
  a.manager === b.manager && a.operation === b.operation && (a.subresource ?? "") === (b.subresource ?? "");

/**
 * Ownership after a non-apply write (create, update, patch): the writer takes every field it
 * changed (from any other manager), and fields that no longer exist leave every set.
 */
export function trackUpdate(
  t: ResourceType,
  schema: Schema,
  old: Obj | undefined,
  next: Obj,
  manager: string,
  subresource: string | undefined,
  now: string,
  apiVersion: string,
): Obj[] | undefined {
  const entries = readEntries(next.metadata.managedFields === undefined ? old : next);
  const after = fieldSet(t, next, schema);
  const changed = new Set(
    [...after].filter((p) => !old || !deepEqual(valueAt(old, JSON.parse(p)), valueAt(next, JSON.parse(p)))),
  );
  const me = { manager, operation: "Update" as const, ...(subresource ? { subresource } : {}) };
  let mine = entries.find((e) => sameEntry(e, me));
  for (const e of entries) {
    for (const p of [...e.fields]) if (!after.has(p) || (e !== mine && changed.has(p))) e.fields.delete(p);
  }
  if (changed.size > 0) {
    if (!mine) entries.push((mine = { ...me, apiVersion, time: now, fields: new Set() }));
    for (const p of changed) mine.fields.add(p);
    mine.time = now;
  }
  return writeEntries(entries);
}

/** Copies an object without its managed fields (for comparisons that must ignore them). */
export function withoutManaged(o: Obj): Obj {
  const c = clone(o);
  if (c.metadata) delete c.metadata.managedFields;
  return c;
}
