// CEL validation rules (`x-kubernetes-validations`) of a structural schema, evaluated as the
// Kubernetes API server evaluates them: values typed by the schema (integer -> int, number ->
// double, objects -> fields/maps, arrays -> lists), `self` bound at the rule's node, `oldSelf`
// on updates where the old object has that node (transition rules are skipped otherwise),
// ratcheting (an update may keep a value that breaks a rule if it leaves that value unchanged:
// CRDValidationRatcheting, on by default since v1.30), and a failure reported at the rule's path
// with its message. The evaluator is @bufbuild/cel (the
// CEL standard library plus the strings extension); Kubernetes' own CEL libraries (lists,
// regex, quantity, url, ip/cidr) are not included: a rule calling them fails to compile here,
// loudly, rather than being skipped.
// Kubernetes behaviour followed: apiextensions-apiserver pkg/apiserver/schema/cel/validation.go.
import { isDeepStrictEqual } from "node:util";
import { isCelError, parse, plan, celEnv, type CelEnv } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";

/** The parts of a structural schema node that CEL evaluation reads. */
export interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  "x-kubernetes-validations"?: CelRule[];
  "x-kubernetes-int-or-string"?: boolean;
  [key: string]: unknown;
}
type Schema = SchemaNode;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: string;
  fieldPath?: string;
}

export interface CelViolation {
  /** Dotted path of the node the rule sits on (or the rule's fieldPath below it). */
  field: string;
  /** `FieldValueInvalid` unless the rule names another reason. */
  reason: string;
  /** The rule's message, or what went wrong evaluating it. */
  detail: string;
  /** The API server's wording: `Invalid value: "object": <detail>`. */
  message: string;
  rule: string;
}

let env: CelEnv | undefined;
const programs = new Map<string, ReturnType<typeof compileRule>>();

function compileRule(text: string): ((vars: Record<string, unknown>) => unknown) | Error {
  env ??= celEnv({ funcs: [...strings] });
  try {
    const run = plan(env, parse(text));
    return (vars) => run(vars as never);
  } catch (err) {
    return err as Error;
  }
}

function program(text: string): ReturnType<typeof compileRule> {
  let p = programs.get(text);
  if (!p) programs.set(text, (p = compileRule(text)));
  return p;
}

/** A compile error of a rule, or undefined when it compiles (what CRD admission checks). */
export function ruleCompileError(text: string): string | undefined {
  const p = program(text);
  return p instanceof Error ? p.message : undefined;
}

/** Whether a rule is a transition rule (refers to oldSelf). */
export const isTransitionRule = (text: string): boolean => /\boldSelf\b/.test(text);

/** The value as CEL sees it under `schema`: ints as bigint, objects as maps, lists as arrays. */
export function celValue(schema: Schema | undefined, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map((v) => celValue(schema?.items, v));
  if (isObj(value)) {
    const props = schema?.properties ?? {};
    const extra = isObj(schema?.additionalProperties) ? (schema.additionalProperties as Schema) : undefined;
    return new Map(Object.entries(value).map(([k, v]) => [k, celValue(props[k] ?? extra, v)]));
  }
  if (typeof value === "number") {
    const intLike =
      schema?.type === "integer" || (schema?.["x-kubernetes-int-or-string"] && Number.isInteger(value));
    return intLike && Number.isInteger(value) ? BigInt(value) : value;
  }
  return value;
}

function evaluate(r: CelRule, schema: Schema, self: unknown, old: unknown, hasOld: boolean): string | null {
  const p = program(r.rule);
  if (p instanceof Error) return `compilation failed: ${p.message}`;
  const vars: Record<string, unknown> = { self: celValue(schema, self) };
  if (hasOld) vars.oldSelf = celValue(schema, old);
  const out = p(vars);
  // cel-go, which the API server runs, words a missing field "no such key".
  if (isCelError(out))
    return `${out.message.replace(/^field not found: /, "no such key: ")} evaluating rule: ${r.rule}`;
  if (out === true) return null;
  if (out !== false) return `rule did not evaluate to a bool: ${r.rule}`;
  if (r.messageExpression) {
    const m = program(r.messageExpression);
    const text = m instanceof Error ? undefined : m(vars);
    if (typeof text === "string" && text.trim() !== "") return text;
  }
  return r.message ?? `failed rule: ${r.rule}`;
}

const describeValue = (v: unknown): string =>
  Array.isArray(v) ? '"array"' : isObj(v) ? '"object"' : JSON.stringify(v);

/**
 * Every rule under `schema` that `value` breaks. `old` is the stored object on an update
 * (undefined on create): transition rules run only where it has the node.
 */
export function celViolations(
  schema: Schema | undefined,
  value: unknown,
  old?: unknown,
  path = "",
  out: CelViolation[] = [],
): CelViolation[] {
  if (!schema || value === undefined || value === null) return out;
  const hasOld = old !== undefined && old !== null;
  for (const r of schema["x-kubernetes-validations"] ?? []) {
    if (isTransitionRule(r.rule) ? !hasOld : hasOld && isDeepStrictEqual(value, old)) continue;
    const problem = evaluate(r, schema, value, old, hasOld);
    if (problem === null) continue;
    const field = [path, r.fieldPath?.replace(/^\./, "")].filter(Boolean).join(".");
    out.push({
      field,
      reason: r.reason ?? "FieldValueInvalid",
      detail: problem,
      message: `Invalid value: ${describeValue(value)}: ${problem}`,
      rule: r.rule,
    });
  }
  if (Array.isArray(value)) {
    // Lists correlate old items only for map-type lists; we keep it to "no oldSelf" for items.
    value.forEach((v, i) => celViolations(schema.items, v, undefined, `${path}[${i}]`, out));
  } else if (isObj(value)) {
    const props = schema.properties ?? {};
    const extra = isObj(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined;
    const oldObj = isObj(old) ? old : {};
    for (const [k, v] of Object.entries(value)) {
      const sub = props[k] ?? extra;
      const subPath = props[k] ? (path ? `${path}.${k}` : k) : `${path}[${k}]`;
      if (sub) celViolations(sub, v, oldObj[k], subPath, out);
    }
  }
  return out;
}
