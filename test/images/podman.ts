// A worker pod spec as the operator builds it, translated field by field into `podman run` flags,
// so an image test runs the container with exactly the pod's security settings. A field this
// translation does not know fails loudly: a new setting in the builder must be taught here (and
// so be exercised by the image test) rather than silently dropped.
import type { V1Container, V1PodSpec, V1SecurityContext } from "@kubernetes/client-node";
import { parseQuantity } from "../../lib/quantity.js";

/** Pod fields about scheduling, identity in the API or lifecycle, not what the container may do. */
const POD_IGNORED = new Set([
  "serviceAccountName",
  "automountServiceAccountToken", // false: nothing to mount
  "enableServiceLinks",
  "terminationGracePeriodSeconds",
  "nodeSelector",
  "tolerations",
  "affinity",
  "priorityClassName",
  "containers",
  "volumes",
  "securityContext",
  "hostUsers",
]);
const CONTAINER_IGNORED = new Set([
  "name",
  "image",
  "imagePullPolicy",
  "args",
  "ports",
  "readinessProbe",
  "livenessProbe",
  "env",
  "resources",
  "securityContext",
  "volumeMounts",
]);

export interface PodmanOptions {
  name: string;
  /** Host directories for the pod's configMap/secret volumes, by mount path. */
  mounts: Record<string, string>;
  /** Environment overrides: a value replaces the pod's, null removes it. */
  env: Record<string, string | null>;
}

function unknown(where: string, obj: object, known: Set<string>): void {
  const extra = Object.keys(obj).filter((k) => !known.has(k));
  if (extra.length)
    throw new Error(`podmanArgs: ${where} has fields it cannot translate: ${extra.join(", ")}`);
}

/** The kubelet gives a user-namespaced pod 65536 ids of its own; any range off the host's will do. */
const USERNS = ["--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536"];

function profileArgs(kind: "seccomp" | "apparmor", type: string | undefined): string[] {
  if (type === undefined || type === "RuntimeDefault") return [];
  if (type === "Unconfined") return ["--security-opt", `${kind}=unconfined`];
  throw new Error(`podmanArgs: ${kind} profile ${type} not translated`);
}

function securityArgs(pod: V1PodSpec, c: V1Container): string[] {
  const p = pod.securityContext ?? {};
  unknown(
    "pod securityContext",
    p,
    new Set(["runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"]),
  );
  const s: V1SecurityContext = c.securityContext ?? {};
  unknown(
    "container securityContext",
    s,
    new Set([
      "allowPrivilegeEscalation",
      "readOnlyRootFilesystem",
      "runAsNonRoot",
      "capabilities",
      "seccompProfile",
      "appArmorProfile",
      "procMount",
    ]),
  );
  const uid = s.runAsUser ?? p.runAsUser;
  const gid = s.runAsGroup ?? p.runAsGroup;
  if ((s.runAsNonRoot ?? p.runAsNonRoot) && !uid)
    throw new Error("runAsNonRoot without a non-zero runAsUser");
  const args = [
    ...(pod.hostUsers === false ? USERNS : []),
    ...(uid !== undefined ? ["--user", `${uid}:${gid ?? uid}`] : []),
    ...(p.fsGroup !== undefined ? ["--group-add", String(p.fsGroup)] : []),
    ...profileArgs("seccomp", (s.seccompProfile ?? p.seccompProfile)?.type),
    ...profileArgs("apparmor", s.appArmorProfile?.type),
    ...(s.allowPrivilegeEscalation === false ? ["--security-opt", "no-new-privileges"] : []),
    // Only the pod's own volumes are writable: no tmpfs podman would add by itself.
    ...(s.readOnlyRootFilesystem ? ["--read-only", "--read-only-tmpfs=false"] : []),
    ...(s.capabilities?.drop ?? []).flatMap((x) => ["--cap-drop", x]),
    ...(s.capabilities?.add ?? []).flatMap((x) => ["--cap-add", x]),
  ];
  if (s.procMount === "Unmasked") args.push("--security-opt", "unmask=ALL");
  else if (s.procMount !== undefined && s.procMount !== "Default")
    throw new Error(`podmanArgs: procMount ${s.procMount}`);
  return args;
}

function volumeArgs(pod: V1PodSpec, c: V1Container, mounts: Record<string, string>): string[] {
  const byName = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  return (c.volumeMounts ?? []).flatMap((m) => {
    const v = byName.get(m.name);
    if (!v) throw new Error(`podmanArgs: volumeMount ${m.name} has no volume`);
    if (v.emptyDir) return ["--tmpfs", `${m.mountPath}:rw,nosuid,nodev`];
    const host = mounts[m.mountPath];
    if (!host) throw new Error(`podmanArgs: no host directory given for ${m.mountPath} (volume ${m.name})`);
    return ["-v", `${host}:${m.mountPath}:${m.readOnly ? "ro" : "rw"}`];
  });
}

function resourceArgs(c: V1Container): string[] {
  const limits = (c.resources?.limits ?? {}) as Record<string, string>;
  const nanos = (q: string) => parseQuantity(q).nanos;
  return [
    ...(limits.memory ? ["--memory", String(nanos(limits.memory) / 1_000_000_000n)] : []),
    ...(limits.cpu ? ["--cpus", String(Number(nanos(limits.cpu)) / 1e9)] : []),
  ];
}

function envArgs(c: V1Container, over: Record<string, string | null>): string[] {
  const env = new Map<string, string>();
  for (const e of c.env ?? []) {
    if (e.value === undefined && !(e.name in over))
      throw new Error(`podmanArgs: env ${e.name} has no plain value (valueFrom): override it`);
    env.set(e.name, e.value ?? "");
  }
  for (const [k, v] of Object.entries(over))
    if (v === null) env.delete(k);
    else env.set(k, v);
  return [...env].flatMap(([k, v]) => ["-e", `${k}=${v}`]);
}

/** `podman run` flags for the pod's only container (image and command not included). */
export function podmanArgs(pod: V1PodSpec, opts: PodmanOptions): string[] {
  unknown("pod spec", pod, POD_IGNORED);
  if (pod.containers.length !== 1) throw new Error("podmanArgs: one container expected");
  const c = pod.containers[0]!;
  unknown("container", c, CONTAINER_IGNORED);
  return [
    "--name",
    opts.name,
    ...securityArgs(pod, c),
    ...resourceArgs(c),
    ...volumeArgs(pod, c, opts.mounts),
    ...envArgs(c, opts.env),
  ];
}
