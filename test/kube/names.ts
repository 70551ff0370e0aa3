// Object names, label keys and values, as apimachinery's validation (v1.36) checks them, with
// its messages: the length and the syntax are separate errors joined by "; ". Namespaces and
// Services are RFC 1123 labels (v1.36 relaxed Services from DNS-1035), the rest subdomains.
import { type Cause, invalidValue } from "./errors.js";
import { type Obj } from "./types.js";

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const LABEL_1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

const maxLen = (n: number): string => `must be no more than ${n} characters`;
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
export const LABEL_1123_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/** Errors of IsDNS1123Label (max 63) or IsDNS1123Subdomain (max 253), as message parts. */
export function dnsErrors(value: string, label: boolean): string[] {
  const [max, re, msg] = label ? [63, LABEL_1123, LABEL_1123_MSG] : [253, SUBDOMAIN, SUBDOMAIN_MSG];
  const errs: string[] = [];
  if (value.length > max) errs.push(maxLen(max));
  if (!re.test(value)) errs.push(msg);
  return errs;
}

const cause = (field: string, value: unknown, errs: string[]): Cause[] =>
  errs.length ? [invalidValue(field, value, errs.join("; "))] : [];

/** Kinds whose names must be RFC 1123 labels (they become DNS labels or label values). */
const LABEL_NAMED = new Set(["Namespace", "Service"]);

export function validateName(kind: string, name: string): Cause[] {
  return cause("metadata.name", name, dnsErrors(name, LABEL_NAMED.has(kind)));
}

export function labelValueErrors(v: unknown): string[] {
  if (typeof v !== "string") return ["must be a string"];
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLen(63));
  if (!LABEL_VALUE.test(v)) errs.push(LABEL_VALUE_MSG);
  return errs;
}

/** IsQualifiedName: an optional DNS subdomain prefix and a name part of at most 63 characters. */
export function qualifiedNameErrors(k: string): string[] {
  const parts = k.split("/");
  if (parts.length > 2) return [`${QUALIFIED_MSG} with an optional DNS subdomain prefix and '/'`];
  const name = parts[parts.length - 1]!;
  const errs: string[] = [];
  if (parts.length === 2) errs.push(...dnsErrors(parts[0]!, false).map((e) => `prefix part ${e}`));
  if (name.length === 0) errs.push("name part must be non-empty");
  else if (name.length > 63) errs.push(`name part ${maxLen(63)}`);
  if (name.length > 0 && !QUALIFIED.test(name)) errs.push(QUALIFIED_MSG);
  return errs;
}

export function validateLabels(labels: unknown, path: string): Cause[] {
  const causes: Cause[] = [];
  for (const [k, v] of Object.entries((labels ?? {}) as Record<string, unknown>)) {
    causes.push(...cause(path, k, qualifiedNameErrors(k)));
    causes.push(...cause(path, v, labelValueErrors(v)));
  }
  return causes;
}

export function validateMeta(meta: Obj, path = "metadata"): Cause[] {
  const causes = validateLabels(meta.labels, `${path}.labels`);
  let size = 0;
  for (const [k, v] of Object.entries((meta.annotations ?? {}) as Record<string, unknown>)) {
    if (typeof v !== "string") causes.push(invalidValue(`${path}.annotations.${k}`, v, "must be a string"));
    size += k.length + String(v).length;
  }
  // kubectl apply's last-applied-configuration annotation meets this before the object's own limits.
  if (size > 256 * 1024)
    causes.push({
      reason: "FieldValueTooLong",
      message: `Too long: may not be more than ${256 * 1024} bytes`,
      field: `${path}.annotations`,
    });
  return causes;
}
