// Server-side apply (application/apply-patch+yaml): the applied configuration is merged into
// the live object by list type, fields its manager stopped applying are removed unless someone
// else owns them, and a field another manager owns with a different value is a 409 conflict
// (unless force, which takes it over). Create-on-apply when the object does not exist.
import { badRequest, invalid, KubeError, notFound, required } from "./errors.js";
import {
  fieldSet,
  type ManagerEntry,
  readEntries,
  removeAt,
  sameEntry,
  valueAt,
  writeEntries,
} from "./managed.js";
import { listStrategy } from "./patch.js";
import { stamp, type Store } from "./store.js";
import { apiVersionOf, clone, deepEqual, isObj, type Obj, type ResourceType } from "./types.js";

export interface ApplyOptions {
  fieldManager: string;
  force: boolean;
  dryRun: boolean;
  subresource?: string;
}

type Schema = Record<string, any> | undefined;

/** Describes a FieldsV1 path the way conflict messages do: .spec.containers[name="c"].image */
export function describePath(path: string[]): string {
  return path
    .map((e) => {
      if (e.startsWith("f:")) return `.${e.slice(2)}`;
      if (e.startsWith("k:"))
        return `[${Object.entries(JSON.parse(e.slice(2)) as Obj)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(",")}]`;
      return `[${e.slice(2)}]`;
    })
    .join("");
}

/** Merges an applied configuration into the live object by list type (the structured merge). */
export function mergeApplied(
  t: ResourceType,
  live: unknown,
  applied: unknown,
  names: string[],
  schema: Schema,
): unknown {
  if (isObj(applied)) {
    const out: Obj = isObj(live) ? clone(live) : {};
    for (const [k, v] of Object.entries(applied)) {
      const s =
        schema?.properties?.[k] ??
        (isObj(schema?.additionalProperties) ? schema?.additionalProperties : undefined);
      out[k] = mergeApplied(t, out[k], v, [...names, k], s);
    }
    return out;
  }
  if (Array.isArray(applied)) {
    const custom = t.custom && !(names.length === 2 && names[0] === "metadata");
    const lt = custom ? schema?.["x-kubernetes-list-type"] : undefined;
    const keys: string[] | undefined = custom
      ? lt === "map"
        ? schema?.["x-kubernetes-list-map-keys"]
        : undefined
      : names.join(".") === "metadata.ownerReferences"
        ? ["uid"]
        : listStrategy(names).key
          ? [listStrategy(names).key!]
          : undefined;
    const isSet = custom
      ? lt === "set"
      : names.join(".") === "metadata.finalizers" || listStrategy(names).primitiveMerge;
    const cur = Array.isArray(live) ? clone(live) : [];
    if (keys) {
      for (const item of applied) {
        const i = cur.findIndex(
          (x) => isObj(x) && isObj(item) && keys.every((k) => deepEqual(x[k], item[k])),
        );
        if (i >= 0) cur[i] = mergeApplied(t, cur[i], item, names, schema?.items);
        else cur.push(clone(item));
      }
      return cur;
    }
    if (isSet) return [...cur, ...applied.filter((x) => !cur.some((c) => deepEqual(c, x)))];
  }
  return clone(applied);
}

export class ApplyManager {
  constructor(readonly store: Store) {}

  #schema(t: ResourceType): Schema {
    return t.custom
      ? this.store.types.crds.find((c) => c.kind === t.kind && c.group === t.group)?.schema
      : undefined;
  }

  apply(
    t: ResourceType,
    ns: string,
    name: string,
    patch: unknown,
    opts: ApplyOptions,
  ): { object: Obj; created: boolean } {
    if (!opts.fieldManager)
      throw invalid({ ...t, group: "meta.k8s.io", kind: "PatchOptions" }, "", [
        { ...required("fieldManager"), message: "Required value: is required for apply patch" },
      ]);
    if (!isObj(patch)) throw badRequest("the applied configuration must be an object");
    if (!patch.apiVersion || !patch.kind)
      throw badRequest("apiVersion and kind must be set in an applied configuration");
    if (patch.apiVersion !== apiVersionOf(t) || patch.kind !== t.kind)
      throw badRequest(
        `the applied configuration's ${patch.apiVersion}/${patch.kind} does not match the URL (${apiVersionOf(t)} ${t.kind})`,
      );
    const applied = clone(patch);
    applied.metadata = { ...(isObj(applied.metadata) ? applied.metadata : {}), name };
    delete applied.metadata.managedFields;
    const schema = this.#schema(t);
    const now = stamp(this.store.now());
    const sub = opts.subresource;
    const me = {
      manager: opts.fieldManager,
      operation: "Apply" as const,
      ...(sub ? { subresource: sub } : {}),
    };
    const mine = fieldSet(t, sub === "status" ? { status: applied.status } : applied, schema);
    const live = this.store.peek(t, ns, name);
    if (!live) {
      if (sub) throw notFound(t, name);
      const obj = clone(applied);
      obj.metadata.managedFields = writeEntries([
        { ...me, apiVersion: apiVersionOf(t), time: now, fields: mine },
      ]);
      return { object: this.store.create(t, ns, obj, { dryRun: opts.dryRun, applied: true }), created: true };
    }
    const entries = readEntries(live);
    const conflicts: { entry: ManagerEntry; path: string[] }[] = [];
    for (const e of entries) {
      if (sameEntry(e, me)) continue;
      for (const p of mine) {
        if (!e.fields.has(p)) continue;
        const path = JSON.parse(p) as string[];
        if (path[path.length - 1]!.startsWith("k:")) continue; // list item presence is shared
        if (!deepEqual(valueAt(live, path), valueAt(applied, path))) conflicts.push({ entry: e, path });
      }
    }
    if (conflicts.length > 0 && !opts.force) {
      const causes = conflicts.map((c) => ({
        reason: "FieldManagerConflict",
        message: `conflict with "${c.entry.manager}"${c.entry.operation === "Update" ? ` using ${c.entry.apiVersion}` : ""}`,
        field: describePath(c.path),
      }));
      const list = causes.map((c) => `${c.message}: ${c.field}`).join("\n- ");
      throw new KubeError(
        409,
        "Conflict",
        `Apply failed with ${causes.length} conflict${causes.length > 1 ? "s" : ""}: ${causes.length > 1 ? `\n- ${list}` : list}`,
        { causes },
      );
    }
    for (const c of conflicts) c.entry.fields.delete(JSON.stringify(c.path));
    const prev = entries.find((e) => sameEntry(e, me));
    const others = new Set(entries.filter((e) => !sameEntry(e, me)).flatMap((e) => [...e.fields]));
    let merged = clone(live);
    for (const p of prev?.fields ?? []) if (!mine.has(p) && !others.has(p)) removeAt(merged, JSON.parse(p));
    const source = sub === "status" ? { status: applied.status } : applied;
    merged = mergeApplied(t, merged, { ...source, metadata: sub ? {} : applied.metadata }, [], schema) as Obj;
    if (applied.metadata.resourceVersion) merged.metadata.resourceVersion = applied.metadata.resourceVersion;
    else merged.metadata.resourceVersion = live.metadata.resourceVersion;
    const next = entries.filter((e) => !sameEntry(e, me));
    next.push({ ...me, apiVersion: apiVersionOf(t), time: now, fields: mine });
    merged.metadata.managedFields = writeEntries(next);
    const updated = this.store.update(t, ns, name, merged, {
      dryRun: opts.dryRun,
      applied: true,
      ...(sub === "status" ? { subresource: "status" as const } : {}),
    });
    return { object: updated, created: false };
  }
}
