// Label selectors (equality- and set-based, in the query-string syntax and as LabelSelector
// objects) and the field selectors the server supports (metadata.name, metadata.namespace,
// plus status.phase and spec.nodeName for pods). Pure functions.
import { badRequest } from "./errors.js";
import { type Obj } from "./types.js";

export type Requirement =
  | { key: string; op: "=" | "!="; values: [string] }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!" };

export type Selector = Requirement[];

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur.trim() !== "") out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== "");
}

export function parseLabelSelector(s: string | null | undefined): Selector {
  if (!s) return [];
  return splitTop(s).map((part): Requirement => {
    let m = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (m) {
      const values = m[3]!
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "");
      return { key: m[1]!, op: m[2] as "in" | "notin", values };
    }
    m = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(part);
    if (m) return { key: m[1]!, op: m[2] === "!=" ? "!=" : "=", values: [m[3]!] };
    m = /^!\s*([^\s!=(),]+)$/.exec(part);
    if (m) return { key: m[1]!, op: "!" };
    m = /^([^\s!=(),]+)$/.exec(part);
    if (m) return { key: m[1]!, op: "exists" };
    throw badRequest(`unable to parse requirement: ${JSON.stringify(part)}`);
  });
}

/** A metav1.LabelSelector object (matchLabels + matchExpressions) as requirements. */
export function fromLabelSelector(sel: Obj | undefined): Selector {
  if (!sel) return [];
  const out: Selector = Object.entries((sel.matchLabels ?? {}) as Record<string, string>).map(([key, v]) => ({
    key,
    op: "=",
    values: [v],
  }));
  for (const e of (sel.matchExpressions ?? []) as Obj[]) {
    const op = String(e.operator);
    if (op === "In") out.push({ key: e.key, op: "in", values: e.values ?? [] });
    else if (op === "NotIn") out.push({ key: e.key, op: "notin", values: e.values ?? [] });
    else if (op === "Exists") out.push({ key: e.key, op: "exists" });
    else if (op === "DoesNotExist") out.push({ key: e.key, op: "!" });
  }
  return out;
}

/** The query-string form of a LabelSelector object (what scale's status.selector holds). */
export function selectorString(sel: Obj | undefined): string {
  return fromLabelSelector(sel)
    .map((r) => {
      if (r.op === "=") return `${r.key}=${r.values[0]}`;
      if (r.op === "!=") return `${r.key}!=${r.values[0]}`;
      if (r.op === "in" || r.op === "notin") return `${r.key} ${r.op} (${r.values.join(",")})`;
      return r.op === "!" ? `!${r.key}` : r.key;
    })
    .join(",");
}

export function matchesLabels(sel: Selector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return sel.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case "=":
        return has && v === r.values[0];
      case "!=":
        return !has || v !== r.values[0];
      case "in":
        return has && r.values.includes(v!);
      case "notin":
        return !has || !r.values.includes(v!);
      case "exists":
        return has;
      case "!":
        return !has;
    }
  });
}

export interface FieldReq {
  field: string;
  op: "=" | "!=";
  value: string;
}

const FIELDS: Record<string, (o: Obj) => string> = {
  "metadata.name": (o) => o.metadata?.name ?? "",
  "metadata.namespace": (o) => o.metadata?.namespace ?? "",
};
const POD_FIELDS: Record<string, (o: Obj) => string> = {
  "status.phase": (o) => o.status?.phase ?? "",
  "spec.nodeName": (o) => o.spec?.nodeName ?? "",
};

export function parseFieldSelector(s: string | null | undefined, kind: string): FieldReq[] {
  if (!s) return [];
  return splitTop(s).map((part) => {
    const m = /^([^\s!=]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
    const field = m[1]!;
    if (
      !FIELDS[field] &&
      !(kind === "Pod" && POD_FIELDS[field]) &&
      !(kind === "Event" && field.startsWith("involvedObject."))
    ) {
      throw badRequest(
        `"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`,
      );
    }
    return { field, op: m[2] === "!=" ? "!=" : "=", value: m[3]!.trim() };
  });
}

export function matchesFields(reqs: FieldReq[], obj: Obj): boolean {
  return reqs.every((r) => {
    const get =
      FIELDS[r.field] ??
      POD_FIELDS[r.field] ??
      ((o: Obj) => String(r.field.split(".").reduce<any>((a, k) => (a == null ? a : a[k]), o) ?? ""));
    const v = get(obj);
    return r.op === "=" ? v === r.value : v !== r.value;
  });
}
