// Admission of pods as a real API server's plugins do it on create, with their messages:
// RuntimeClass (a pod naming a missing RuntimeClass is refused; the class's overhead is copied in)
// and Pod Security admission (the namespace's `pod-security.kubernetes.io/enforce` level, baseline
// or restricted, checked on the fields pods use; warn/audit labels and exemptions are not modelled).
// A refused pod is a 403 Forbidden, which the ReplicaSet/Job simulation reports as FailedCreate.
import { KubeError } from "./errors.js";
import { isObj, type Obj } from "./types.js";

const forbidden = (name: string, why: string): KubeError =>
  new KubeError(403, "Forbidden", `pods "${name}" is forbidden: ${why}`, { name, kind: "pods" });

/** The name admission reports: name generation has not happened yet, so the generateName prefix. */
export const admissionName = (meta: Obj): string => meta.name || meta.generateName || "Unknown";

/** RuntimeClass admission: the class must exist; its fixed overhead becomes the pod's. */
export function admitRuntimeClass(pod: Obj, name: string, lookup: (rc: string) => Obj | undefined): void {
  const rcName = pod.spec?.runtimeClassName;
  if (typeof rcName !== "string" || !rcName) return;
  const rc = lookup(rcName);
  if (!rc) throw forbidden(name, `pod rejected: RuntimeClass ${JSON.stringify(rcName)} not found`);
  const fixed = rc.overhead?.podFixed;
  if (!isObj(fixed)) return;
  if (pod.spec.overhead !== undefined && JSON.stringify(pod.spec.overhead) !== JSON.stringify(fixed))
    throw forbidden(name, `pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead`);
  pod.spec.overhead = { ...fixed };
}

export type PodSecurityLevel = "privileged" | "baseline" | "restricted";
interface Violation {
  reason: string;
  detail: string;
}

const q = (xs: string[]): string => xs.map((x) => JSON.stringify(x)).join(", ");
const plural = (one: string, many: string, n: number): string => (n === 1 ? one : many);
const containers = (spec: Obj): Obj[] =>
  [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])] as Obj[];
const named = (what: string, names: string[]): string =>
  `${plural(what, `${what}s`, names.length)} ${q(names)}`;

/** Checks where a pod or container sets a profile type to a value outside `allowed`. */
function profileCheck(
  spec: Obj,
  field: "seccompProfile" | "appArmorProfile",
  reason: (n: number) => string,
): Violation[] {
  const ok = (t: unknown) => t === "RuntimeDefault" || t === "Localhost";
  const setters: string[] = [];
  const values = new Set<string>();
  const podType = spec.securityContext?.[field]?.type;
  if (podType !== undefined && !ok(podType)) {
    setters.push("pod");
    values.add(String(podType));
  }
  const bad = containers(spec).filter((c) => {
    const t = c.securityContext?.[field]?.type;
    if (t === undefined || ok(t)) return false;
    values.add(String(t));
    return true;
  });
  if (bad.length)
    setters.push(
      named(
        "container",
        bad.map((c) => c.name),
      ),
    );
  if (!setters.length) return [];
  return [
    {
      reason: reason(values.size),
      detail: `${setters.join(" and ")} must not set securityContext.${field}.type to ${q([...values].sort())}`,
    },
  ];
}

const BASELINE_CAPS = new Set([
  "AUDIT_WRITE",
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "MKNOD",
  "NET_BIND_SERVICE",
  "SETFCAP",
  "SETGID",
  "SETPCAP",
  "SETUID",
  "SYS_CHROOT",
]);

function baseline(spec: Obj): Violation[] {
  const v: Violation[] = [];
  const cs = containers(spec);
  const host = ["hostNetwork", "hostPID", "hostIPC"].filter((f) => spec[f] === true);
  if (host.length) v.push({ reason: "host namespaces", detail: host.map((h) => `${h}=true`).join(", ") });
  const priv = cs.filter((c) => c.securityContext?.privileged === true).map((c) => c.name);
  if (priv.length)
    v.push({
      reason: "privileged",
      detail: `${named("container", priv)} must not set securityContext.privileged=true`,
    });
  const caps = cs.flatMap((c) =>
    ((c.securityContext?.capabilities?.add ?? []) as string[])
      .filter((x) => !BASELINE_CAPS.has(x))
      .map((x) => [c.name, x]),
  );
  if (caps.length)
    v.push({
      reason: "non-default capabilities",
      detail: `${named("container", [...new Set(caps.map((x) => x[0]!))])} must not include ${q([...new Set(caps.map((x) => x[1]!))])} in securityContext.capabilities.add`,
    });
  const hostPath = ((spec.volumes ?? []) as Obj[]).filter((x) => x.hostPath).map((x) => x.name);
  if (hostPath.length)
    v.push({
      reason: "hostPath volumes",
      detail: `${plural("volume", "volumes", hostPath.length)} ${q(hostPath)}`,
    });
  const ports = cs.flatMap((c) =>
    ((c.ports ?? []) as Obj[]).filter((p) => p.hostPort).map((p) => p.hostPort),
  );
  if (ports.length)
    v.push({
      reason: "hostPort",
      detail: `${plural("hostPort", "hostPorts", ports.length)} ${ports.join(", ")}`,
    });
  v.push(
    ...profileCheck(spec, "appArmorProfile", (n) =>
      plural("forbidden AppArmor profile", "forbidden AppArmor profiles", n),
    ),
  );
  // Since v1.35 baseline allows any procMount in a user-namespaced pod (check_procMount_baseline.go).
  const proc =
    spec.hostUsers === false
      ? []
      : cs.filter((c) => c.securityContext?.procMount && c.securityContext.procMount !== "Default");
  if (proc.length)
    v.push({
      reason: "procMount",
      detail: `${named(
        "container",
        proc.map((c) => c.name),
      )} must not set securityContext.procMount to "Unmasked"`,
    });
  v.push(...profileCheck(spec, "seccompProfile", () => "seccompProfile"));
  return v;
}

const RESTRICTED_VOLUMES = [
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "persistentVolumeClaim",
  "projected",
  "secret",
];

function restricted(spec: Obj): Violation[] {
  const v: Violation[] = [];
  const cs = containers(spec);
  const badVol = ((spec.volumes ?? []) as Obj[]).filter((x) =>
    Object.keys(x).some((k) => k !== "name" && !RESTRICTED_VOLUMES.includes(k)),
  );
  if (badVol.length)
    v.push({
      reason: "restricted volume types",
      detail: `${plural("volume", "volumes", badVol.length)} ${q(badVol.map((x) => x.name))}`,
    });
  const escal = cs.filter((c) => c.securityContext?.allowPrivilegeEscalation !== false).map((c) => c.name);
  if (escal.length)
    v.push({
      reason: "allowPrivilegeEscalation != false",
      detail: `${named("container", escal)} must set securityContext.allowPrivilegeEscalation=false`,
    });
  const caps = cs
    .filter((c) => !((c.securityContext?.capabilities?.drop ?? []) as string[]).includes("ALL"))
    .map((c) => c.name);
  if (caps.length)
    v.push({
      reason: "unrestricted capabilities",
      detail: `${named("container", caps)} must set securityContext.capabilities.drop=["ALL"]`,
    });
  const podNonRoot = spec.securityContext?.runAsNonRoot === true;
  const root = cs
    .filter(
      (c) =>
        c.securityContext?.runAsNonRoot === false ||
        (!podNonRoot && c.securityContext?.runAsNonRoot !== true),
    )
    .map((c) => c.name);
  if (root.length)
    v.push({
      reason: "runAsNonRoot != true",
      detail: `pod or ${named("container", root)} must set securityContext.runAsNonRoot=true`,
    });
  if (spec.securityContext?.runAsUser === 0 || cs.some((c) => c.securityContext?.runAsUser === 0))
    v.push({ reason: "runAsUser=0", detail: "pod or a container must not set runAsUser=0" });
  const podSeccomp = spec.securityContext?.seccompProfile?.type;
  const unset =
    podSeccomp === undefined
      ? cs.filter((c) => c.securityContext?.seccompProfile?.type === undefined).map((c) => c.name)
      : [];
  if (unset.length)
    v.push({
      reason: "seccompProfile",
      detail: `pod or ${named("container", unset)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
    });
  return v;
}

/** The namespace's enforced level: the label, or privileged when unset (the cluster default). */
export function enforcedLevel(ns: Obj | undefined): PodSecurityLevel {
  const l = ns?.metadata?.labels?.["pod-security.kubernetes.io/enforce"];
  return l === "baseline" || l === "restricted" ? l : "privileged";
}

/** Pod Security admission of a pod spec against a level; throws 403 listing every violation. */
export function admitPodSecurity(pod: Obj, name: string, level: PodSecurityLevel): void {
  if (level === "privileged" || !isObj(pod.spec)) return;
  const v = [...baseline(pod.spec), ...(level === "restricted" ? restricted(pod.spec) : [])];
  if (!v.length) return;
  throw forbidden(
    name,
    `violates PodSecurity "${level}:latest": ${v.map((x) => `${x.reason} (${x.detail})`).join(", ")}`,
  );
}
