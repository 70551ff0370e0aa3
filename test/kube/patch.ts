// The three classic patch types, pure: JSON merge patch (RFC 7386), JSON patch (RFC 6902, via
// fast-json-patch) and strategic merge patch with the built-in kinds' list merge keys and the
// `$patch`, `$retainKeys`, `$deleteFromPrimitiveList` and `$setElementOrder` directives.
import jsonpatch from "fast-json-patch";
import { badRequest, KubeError } from "./errors.js";
import { clone, isObj, type Obj } from "./types.js";

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function jsonPatch(target: Obj, ops: unknown): Obj {
  if (!Array.isArray(ops))
    throw badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  try {
    return jsonpatch.applyPatch(clone(target), ops as jsonpatch.Operation[], true, false).newDocument as Obj;
  } catch (err) {
    // As the real server: a patch that cannot be applied (failed "test", missing path) is 422.
    throw new KubeError(422, "Invalid", (err as Error).message.split("\n")[0] ?? "json patch failed");
  }
}

interface ListStrategy {
  key?: string;
  primitiveMerge?: boolean;
}

const CONTAINER_LISTS = new Set(["containers", "initContainers", "ephemeralContainers"]);

/** The patchMergeKey/patchStrategy of a list, by where it sits (field names from the root). */
export function listStrategy(path: string[]): ListStrategy {
  const last = path[path.length - 1] ?? "";
  const parent = path[path.length - 2] ?? "";
  if (CONTAINER_LISTS.has(last)) return { key: "name" };
  switch (last) {
    case "env":
    case "volumes":
    case "imagePullSecrets":
    case "resourceClaims":
    case "secrets":
      return { key: "name" };
    case "volumeMounts":
      return { key: "mountPath" };
    case "volumeDevices":
      return { key: "devicePath" };
    case "hostAliases":
      return { key: "ip" };
    case "conditions":
      return { key: "type" };
    case "ownerReferences":
      return { key: "uid" };
    case "topologySpreadConstraints":
      return { key: "topologyKey" };
    case "finalizers":
      return parent === "metadata" ? { primitiveMerge: true } : {};
    case "ports":
      if (CONTAINER_LISTS.has(parent)) return { key: "containerPort" };
      return parent === "spec" && path.length === 2 ? { key: "port" } : {};
  }
  return {};
}

const DELETE_PRIMITIVE = "$deleteFromPrimitiveList/";
const ELEMENT_ORDER = "$setElementOrder/";

/** Strategic merge patch for the built-in kinds (custom resources get 415, as on a real server). */
export function strategicMergePatch(target: Obj, patch: unknown): Obj {
  if (!isObj(patch)) throw badRequest("strategic merge patch: the patch must be a JSON object");
  return smpMap(target, patch, []) as Obj;
}

function smpMap(target: unknown, patch: Obj, path: string[]): unknown {
  const directive = patch.$patch;
  const rest: Obj = Object.fromEntries(Object.entries(patch).filter(([k]) => k !== "$patch"));
  if (directive === "delete") return undefined;
  if (directive === "replace") return stripDirectives(rest);
  if (directive !== undefined && directive !== "merge")
    throw badRequest(`Unknown patch type: ${String(directive)} in map: ${JSON.stringify(patch)}`);
  const out: Obj = isObj(target) ? clone(target) : {};
  const retain = rest.$retainKeys as string[] | undefined;
  for (const [k, v] of Object.entries(rest)) {
    if (k === "$retainKeys" || k.startsWith(ELEMENT_ORDER)) continue;
    if (k.startsWith(DELETE_PRIMITIVE)) {
      const field = k.slice(DELETE_PRIMITIVE.length);
      if (Array.isArray(out[field]) && Array.isArray(v))
        out[field] = (out[field] as unknown[]).filter((x) => !(v as unknown[]).includes(x));
      continue;
    }
    const sub = [...path, k];
    if (v === null) delete out[k];
    else if (Array.isArray(v)) out[k] = smpList(out[k], v, sub);
    else if (isObj(v)) {
      const merged = smpMap(out[k], v, sub);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else out[k] = v;
  }
  if (retain) for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  for (const [k, order] of Object.entries(rest)) {
    if (!k.startsWith(ELEMENT_ORDER) || !Array.isArray(out[k.slice(ELEMENT_ORDER.length)])) continue;
    const field = k.slice(ELEMENT_ORDER.length);
    out[field] = reorder(out[field], order as unknown[], [...path, field]);
  }
  return out;
}

function keyOf(el: unknown, key: string): unknown {
  return isObj(el) ? el[key] : undefined;
}

function smpList(target: unknown, patch: unknown[], path: string[]): unknown[] {
  const strategy = listStrategy(path);
  if (patch.some((p) => isObj(p) && p.$patch === "replace" && Object.keys(p).length === 1))
    return stripDirectives(patch.filter((p) => !(isObj(p) && p.$patch === "replace"))) as unknown[];
  const cur = Array.isArray(target) ? clone(target) : [];
  if (strategy.primitiveMerge) {
    for (const p of patch) if (!cur.includes(p)) cur.push(p);
    return cur;
  }
  const key = strategy.key;
  if (!key) return stripDirectives(patch) as unknown[];
  for (const p of patch) {
    if (!isObj(p)) throw badRequest(`strategic merge patch: ${path.join(".")} elements must be objects`);
    if (p[key] === undefined)
      throw badRequest(`map: ${JSON.stringify(p)} does not contain declared merge key: ${key}`);
    const i = cur.findIndex((c) => keyOf(c, key) === p[key]);
    if (p.$patch === "delete") {
      if (i >= 0) cur.splice(i, 1);
      continue;
    }
    if (i >= 0) cur[i] = smpMap(cur[i], p, path);
    else cur.push(smpMap(undefined, p, path));
  }
  return cur;
}

function reorder(list: unknown[], order: unknown[], path: string[]): unknown[] {
  const key = listStrategy(path).key;
  const idOf = (x: unknown): unknown => (key && isObj(x) ? x[key] : x);
  const wanted = order.map((o) => (key && isObj(o) ? o[key] : o));
  const ranked = list.filter((x) => wanted.includes(idOf(x)));
  ranked.sort((a, b) => wanted.indexOf(idOf(a)) - wanted.indexOf(idOf(b)));
  return [...ranked, ...list.filter((x) => !wanted.includes(idOf(x)))];
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => !k.startsWith("$"))
      .map(([k, x]) => [k, stripDirectives(x)]),
  );
}
