// What the API server refuses in the children the operator builds, checked before it builds them
// so the user gets a condition naming their own field rather than a 422 about a child: RFC 1123
// labels (Service names, pod hostnames), label values (63 characters), CIDRs as v1.36 parses
// them (StrictIPCIDRValidation: no leading zeros, no bits beyond the prefix). Pure.
import { isIP } from "node:net";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Why `name` is not an RFC 1123 label (Service names, pod hostnames), or undefined. */
export function dnsLabelError(name: string): string | undefined {
  if (name.length > 63) return `${name.length} characters, at most 63`;
  if (!DNS_LABEL.test(name)) return "lower case alphanumerics and '-' only (no dots)";
  return undefined;
}

/** Why `value` cannot be a label value, or undefined. */
export function labelValueError(value: string): string | undefined {
  if (value.length > 63) return `${value.length} characters, at most 63`;
  if (!LABEL_VALUE.test(value)) return "alphanumerics, '-', '_' or '.', starting and ending alphanumeric";
  return undefined;
}

function ipv4(ip: string): bigint | undefined {
  return isIP(ip) === 4 ? ip.split(".").reduce((a, p) => (a << 8n) | BigInt(Number(p)), 0n) : undefined;
}

function ipv6(ip: string): bigint | undefined {
  if (isIP(ip) !== 6 || ip.includes(".")) return undefined;
  const [head = "", tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return all.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Why `value` is not a CIDR a v1.36 NetworkPolicy ipBlock accepts, or undefined. */
export function cidrError(value: string): string | undefined {
  const m = /^([^/]+)\/([0-9]{1,3})$/.exec(value);
  if (!m) return "not a CIDR (e.g. 10.0.0.0/8 or 2001:db8::/64)";
  const [, ip = "", len = ""] = m;
  const v4 = ipv4(ip);
  const bits = v4 ?? ipv6(ip);
  const width = v4 !== undefined ? 32 : 128;
  if (bits === undefined) return `${JSON.stringify(ip)} is not an IP address (no leading zeros)`;
  const prefix = Number(len);
  if (prefix > width || String(prefix) !== len) return `prefix length /${len} is not 0-${width}`;
  if ((bits & ((1n << BigInt(width - prefix)) - 1n)) !== 0n)
    return `bits are set beyond the /${prefix} prefix (did you mean the network address?)`;
  return undefined;
}
