// Shared shapes of the in-process API server: the resource table entry, stored objects and
// small pure helpers (deep copy, deep equality, JSON paths). No I/O here.

/** A JSON object as the API server stores it (unstructured). */
export type Obj = Record<string, any>;

export interface ScaleSpec {
  specReplicasPath: string;
  statusReplicasPath: string;
  labelSelectorPath?: string;
}

/** One served resource: what discovery reports and what the store needs to know about it. */
export interface ResourceType {
  group: string; // "" for the core group
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  namespaced: boolean;
  /** Has a /status subresource: the main endpoint ignores status, /status ignores the rest. */
  status: boolean;
  scale?: ScaleSpec;
  /** metadata.generation is kept (objects with a spec). */
  generation: boolean;
  /** Served from a CRD in crds/ (validated by its schema, no strategic merge patch). */
  custom: boolean;
  /** Default propagation policy when a DELETE names none (batch/v1 Jobs orphan their pods). */
  defaultPropagation: "Background" | "Orphan";
  verbs: string[];
  categories?: string[];
}

export function apiVersionOf(t: Pick<ResourceType, "group" | "version">): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

/** "deployments.apps" / "pods": how the API server names a resource in messages. */
export function qualifiedResource(t: Pick<ResourceType, "group" | "plural">): string {
  return t.group ? `${t.plural}.${t.group}` : t.plural;
}

/** "TrainingRun.l0.dev" / "Pod": how the API server names a kind in 422 messages. */
export function qualifiedKind(t: Pick<ResourceType, "group" | "kind">): string {
  return t.group ? `${t.kind}.${t.group}` : t.kind;
}

export function typeKey(t: Pick<ResourceType, "group" | "plural">): string {
  return `${t.group}/${t.plural}`;
}

export const clone = <T>(v: T): T => (v === undefined ? v : structuredClone(v));

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ak = Object.keys(a as Obj).filter((k) => (a as Obj)[k] !== undefined);
  const bk = Object.keys(b as Obj).filter((k) => (b as Obj)[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => deepEqual((a as Obj)[k], (b as Obj)[k]));
}

/** Reads ".spec.replicas" style paths (the CRD scale subresource's dialect). */
export function getPath(obj: Obj, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.replace(/^\./, "").split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Obj)[part];
  }
  return cur;
}

export function setPath(obj: Obj, path: string, value: unknown): void {
  const parts = path.replace(/^\./, "").split(".");
  let cur = obj;
  for (const part of parts.slice(0, -1)) {
    if (cur[part] === null || typeof cur[part] !== "object") cur[part] = {};
    cur = cur[part];
  }
  cur[parts[parts.length - 1]!] = value;
}

export function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
