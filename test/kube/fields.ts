// Unknown fields in built-in bodies, found with client-node's generated models (the Kubernetes
// OpenAPI types, one attribute list per type) and handled as the API server's fieldValidation
// does: dropped with a warning (Warn, the default), dropped silently (Ignore) or 400 (Strict).
import * as k8s from "@kubernetes/client-node";
import { badRequest } from "./errors.js";
import { isObj, type Obj, type ResourceType } from "./types.js";

type Model = { attributeTypeMap?: { baseName: string; type: string }[] };
const models = k8s as unknown as Record<string, Model | undefined>;

const ROOTS: Record<string, string> = {
  "/Event": "CoreV1Event",
  "events.k8s.io/Event": "EventsV1Event",
};

export function modelName(t: ResourceType): string | undefined {
  const name = ROOTS[`${t.group}/${t.kind}`] ?? `V1${t.kind}`;
  return models[name]?.attributeTypeMap ? name : undefined;
}

// Quantities are strings in the generated models but accept JSON numbers (`cpu: 1`).
const QUANTITIES = new Set([
  "limits",
  "requests",
  "sizeLimit",
  "overhead",
  "capacity",
  "allocatable",
  "hard",
  "used",
]);

const GO_TYPES: Record<string, string> = { number: "int32", string: "string", boolean: "bool", Date: "Time" };

/** Whether a JSON value fits a generated model type (quantities also take numbers). */
function fits(ty: string, v: unknown, quantity: boolean): boolean {
  if (ty === "number") return typeof v === "number";
  if (ty === "string") return typeof v === "string" || (quantity && typeof v === "number");
  if (ty === "Date") return typeof v === "string";
  if (ty === "boolean") return typeof v === "boolean";
  if (ty === "IntOrString") return typeof v === "number" || typeof v === "string";
  if (/^Array</.test(ty)) return Array.isArray(v);
  if (/^\{ \[key/.test(ty) || models[ty]?.attributeTypeMap) return isObj(v);
  return true; // "any" and unknown names
}

/** A JSON value of the wrong type is a decoding error on a real server (400), before validation. */
function checkType(ty: string, v: unknown, p: string, quantity: boolean): void {
  if (v === null || v === undefined || fits(ty, v, quantity)) return;
  const got = Array.isArray(v) ? "array" : typeof v === "object" ? "object" : typeof v;
  throw badRequest(`json: cannot unmarshal ${got} into Go struct field ${p} of type ${GO_TYPES[ty] ?? ty}`);
}

/**
 * Drops fields the type does not declare and returns their paths ("spec.foo", "spec.x[0].y");
 * throws 400 for a value of the wrong JSON type.
 */
export function pruneUnknown(type: string, value: unknown, path = ""): string[] {
  const dropped: string[] = [];
  const walk = (ty: string, v: unknown, p: string, quantity = false): void => {
    if (p) checkType(ty, v, p, quantity);
    const arr = /^Array<(.+)>$/.exec(ty);
    if (arr) {
      if (Array.isArray(v)) v.forEach((x, i) => walk(arr[1]!, x, `${p}[${i}]`));
      return;
    }
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(ty);
    if (map) {
      if (isObj(v)) for (const [k, x] of Object.entries(v)) walk(map[1]!, x, `${p}[${k}]`, quantity);
      return;
    }
    const attrs = models[ty]?.attributeTypeMap;
    if (!attrs || !isObj(v)) return;
    const known = new Map(attrs.map((a) => [a.baseName, a.type]));
    for (const k of Object.keys(v)) {
      const sub = p ? `${p}.${k}` : k;
      const kt = known.get(k);
      if (kt === undefined) {
        delete (v as Obj)[k];
        dropped.push(sub);
      } else walk(kt, (v as Obj)[k], sub, QUANTITIES.has(k));
    }
  };
  walk(type, value, path);
  return dropped;
}

export type FieldValidation = "Strict" | "Warn" | "Ignore";

/** Applies fieldValidation to dropped field paths: throws on Strict, else warning texts. */
export function unknownFieldOutcome(dropped: string[], mode: FieldValidation = "Warn"): string[] {
  if (dropped.length === 0 || mode === "Ignore") return [];
  if (mode === "Strict")
    throw badRequest(`strict decoding error: ${dropped.map((f) => `unknown field "${f}"`).join(", ")}`);
  return dropped.map((f) => `unknown field "${f}"`);
}
