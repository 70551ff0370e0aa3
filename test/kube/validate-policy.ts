// Validation of NetworkPolicy (ipBlock CIDRs and their exceptions, ports, protocols) and
// PodDisruptionBudget (minAvailable xor maxUnavailable, int-or-percent values) with the API
// server's messages. CIDRs follow v1.36 with StrictIPCIDRValidation on: leading zeros and
// bits set beyond the prefix length are refused too.
import { isIP } from "node:net";
import { type Cause, invalidValue, required } from "./errors.js";
import { isObj, type Obj } from "./types.js";

export interface Cidr {
  bits: bigint;
  prefix: number;
  width: number;
}

function ipBits(ip: string): { bits: bigint; width: number } | undefined {
  const family = isIP(ip);
  if (family === 4)
    return { bits: ip.split(".").reduce((a, p) => (a << 8n) | BigInt(Number(p)), 0n), width: 32 };
  if (family !== 6 || ip.includes(".")) return undefined;
  const [head = "", tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return { bits: groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n), width: 128 };
}

/** Parses a CIDR the way the API server does; the string is the error message when invalid. */
export function parseCidr(value: string): Cidr | string {
  const bad = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
  const m = /^([^/]+)\/([0-9]+)$/.exec(value);
  if (!m) return bad;
  const [, ip = "", len = ""] = m;
  const sloppy = /^[0-9.]+$/.test(ip)
    ? ip
        .split(".")
        .map((p) => String(Number(p)))
        .join(".")
    : ip;
  const addr = ipBits(sloppy);
  const prefix = Number(len);
  if (!addr || prefix > addr.width) return bad;
  if (sloppy !== ip || len !== String(prefix)) return "must not have leading 0s in IP or prefix length";
  const host = (1n << BigInt(addr.width - prefix)) - 1n;
  if ((addr.bits & host) !== 0n) return "must not have bits set beyond the prefix length";
  return { bits: addr.bits, prefix, width: addr.width };
}

function ipBlockCauses(b: Obj, path: string): Cause[] {
  if (!b.cidr) return [required(`${path}.cidr`)];
  const cidr = parseCidr(String(b.cidr));
  if (typeof cidr === "string") return [invalidValue(`${path}.cidr`, b.cidr, cidr)];
  const causes: Cause[] = [];
  ((b.except ?? []) as unknown[]).forEach((e, i) => {
    const p = `${path}.except[${i}]`;
    const ex = parseCidr(String(e));
    if (typeof ex === "string") return causes.push(invalidValue(p, e, ex));
    const shift = BigInt(cidr.width - cidr.prefix);
    const inside = ex.width === cidr.width && ex.bits >> shift === cidr.bits >> shift;
    if (!inside || cidr.prefix >= ex.prefix)
      causes.push(invalidValue(p, e, "must be a strict subset of `cidr`"));
  });
  return causes;
}

function portCauses(p: Obj, path: string): Cause[] {
  const causes: Cause[] = [];
  if (p.protocol !== undefined && !["TCP", "UDP", "SCTP"].includes(p.protocol))
    causes.push({
      reason: "FieldValueNotSupported",
      message: `Unsupported value: ${JSON.stringify(p.protocol)}: supported values: "SCTP", "TCP", "UDP"`,
      field: `${path}.protocol`,
    });
  if (typeof p.port === "number" && (p.port < 1 || p.port > 65535 || !Number.isInteger(p.port)))
    causes.push(invalidValue(`${path}.port`, p.port, "must be between 1 and 65535, inclusive"));
  if (typeof p.port === "string" && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.port))
    causes.push(
      invalidValue(
        `${path}.port`,
        p.port,
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
      ),
    );
  if (p.endPort !== undefined && (typeof p.port !== "number" || p.endPort < p.port))
    causes.push(invalidValue(`${path}.endPort`, p.endPort, "must be greater than or equal to `port`"));
  return causes;
}

export function networkPolicyCauses(spec: Obj): Cause[] {
  const causes: Cause[] = [];
  for (const [dir, peers] of [
    ["ingress", "from"],
    ["egress", "to"],
  ] as const)
    ((spec[dir] ?? []) as Obj[]).forEach((rule, i) => {
      const path = `spec.${dir}[${i}]`;
      ((rule?.ports ?? []) as Obj[]).forEach((p, j) => causes.push(...portCauses(p, `${path}.ports[${j}]`)));
      ((rule?.[peers] ?? []) as Obj[]).forEach((peer, j) => {
        const pp = `${path}.${peers}[${j}]`;
        const set = ["podSelector", "namespaceSelector", "ipBlock"].filter((k) => peer?.[k] !== undefined);
        if (set.length === 0) causes.push(required(pp));
        if (peer?.ipBlock !== undefined && set.length > 1)
          causes.push({
            reason: "FieldValueForbidden",
            message: "Forbidden: may not specify both ipBlock and another peer",
            field: pp,
          });
        if (isObj(peer?.ipBlock)) causes.push(...ipBlockCauses(peer.ipBlock, `${pp}.ipBlock`));
      });
    });
  for (const t of (spec.policyTypes ?? []) as unknown[])
    if (t !== "Ingress" && t !== "Egress")
      causes.push({
        reason: "FieldValueNotSupported",
        message: `Unsupported value: ${JSON.stringify(t)}: supported values: "Ingress", "Egress"`,
        field: "spec.policyTypes",
      });
  return causes;
}

function intOrPercentCauses(v: unknown, path: string): Cause[] {
  if (typeof v === "number")
    return v < 0 ? [invalidValue(path, v, "must be greater than or equal to 0")] : [];
  const s = String(v);
  const m = /^([0-9]+)%$/.exec(s);
  if (!m)
    return [
      invalidValue(
        path,
        s,
        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
      ),
    ];
  return Number(m[1]) > 100 ? [invalidValue(path, s, "must not be greater than 100%")] : [];
}

export function pdbCauses(spec: Obj): Cause[] {
  const causes: Cause[] = [];
  if (spec.minAvailable !== undefined && spec.maxUnavailable !== undefined)
    causes.push(invalidValue("spec", spec, "minAvailable and maxUnavailable cannot be both set"));
  for (const f of ["minAvailable", "maxUnavailable"])
    if (spec[f] !== undefined) causes.push(...intOrPercentCauses(spec[f], `spec.${f}`));
  const policy = spec.unhealthyPodEvictionPolicy;
  if (policy !== undefined && policy !== "IfHealthyBudget" && policy !== "AlwaysAllow")
    causes.push({
      reason: "FieldValueNotSupported",
      message: `Unsupported value: ${JSON.stringify(policy)}: supported values: "AlwaysAllow", "IfHealthyBudget"`,
      field: "spec.unhealthyPodEvictionPolicy",
    });
  return causes;
}
