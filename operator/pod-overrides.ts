// A role's podOverrides (spec.trainer / spec.inference / spec.workers / a pool's spec) merged into
// the pod template the operator built. The operator wins: an entry naming something it already
// sets (an env var of the main container, a volume, a mount path, a label) is left out of the pod,
// and podOverrideConflicts reports it naming the field, which the preflights turn into InvalidSpec.
// securityContext, probes, ports and commands are not overridable at all. Pure.
import {
  type V1Affinity,
  type V1Container,
  type V1EnvFromSource,
  type V1EnvVar,
  type V1LocalObjectReference,
  type V1PodTemplateSpec,
  type V1Volume,
  type V1VolumeMount,
} from "@kubernetes/client-node";

/** The CRD's podOverrides, the same shape on every role. */
export interface PodOverrides {
  env?: Record<string, unknown>[];
  envFrom?: Record<string, unknown>[];
  volumes?: Record<string, unknown>[];
  volumeMounts?: Record<string, unknown>[];
  affinity?: Record<string, unknown>;
  imagePullSecrets?: { name: string }[];
  priorityClassName?: string;
  serviceAccountName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface Conflict {
  field: string;
  description: string;
}

/** What of `o` collides with the built template (`mounted`: the containers mounts go to). */
export function podOverrideConflicts(
  t: V1PodTemplateSpec,
  main: string,
  mounted: readonly string[],
  o: PodOverrides | undefined,
  at: string,
): Conflict[] {
  if (!o) return [];
  const out: Conflict[] = [];
  const spec = t.spec!;
  const c = spec.containers.find((x) => x.name === main)!;
  const envNames = new Set((c.env ?? []).map((e) => e.name));
  (o.env ?? []).forEach((e, i) => {
    if (typeof e.name !== "string" || !e.name)
      out.push({ field: `${at}.env[${i}].name`, description: "is required" });
    else if (envNames.has(e.name) || e.name.startsWith("L0_"))
      out.push({
        field: `${at}.env[${i}].name`,
        description: `${e.name} is set by the operator (as is every L0_* variable)`,
      });
  });
  const volNames = new Set((spec.volumes ?? []).map((v) => v.name));
  (o.volumes ?? []).forEach((v, i) => {
    if (typeof v.name !== "string" || !v.name)
      out.push({ field: `${at}.volumes[${i}].name`, description: "is required" });
    else if (volNames.has(v.name))
      out.push({ field: `${at}.volumes[${i}].name`, description: `volume ${v.name} is the operator's` });
  });
  const paths = new Set(
    spec.containers
      .filter((x) => mounted.includes(x.name))
      .flatMap((x) => (x.volumeMounts ?? []).map((m) => m.mountPath)),
  );
  (o.volumeMounts ?? []).forEach((m, i) => {
    if (typeof m.mountPath !== "string" || typeof m.name !== "string")
      out.push({ field: `${at}.volumeMounts[${i}]`, description: "needs name and mountPath" });
    else if (paths.has(m.mountPath))
      out.push({
        field: `${at}.volumeMounts[${i}].mountPath`,
        description: `${m.mountPath} is mounted by the operator`,
      });
  });
  const labels = t.metadata?.labels ?? {};
  for (const k of Object.keys(o.labels ?? {}))
    if (k in labels) out.push({ field: `${at}.labels`, description: `label ${k} is set by the operator` });
  return out;
}

/** `t` with `o` merged in; colliding entries (podOverrideConflicts) are left out. */
export function applyPodOverrides(
  t: V1PodTemplateSpec,
  main: string,
  mounted: readonly string[],
  o: PodOverrides | undefined,
): V1PodTemplateSpec {
  if (!o) return t;
  const spec = t.spec!;
  const envNames = new Set((spec.containers.find((x) => x.name === main)!.env ?? []).map((e) => e.name));
  const volNames = new Set((spec.volumes ?? []).map((v) => v.name));
  const env = (o.env ?? []).filter(
    (e) => typeof e.name === "string" && !envNames.has(e.name) && !e.name.startsWith("L0_"),
  );
  const volumes = (o.volumes ?? []).filter((v) => typeof v.name === "string" && !volNames.has(v.name));
  const withMounts = (c: V1Container): V1Container => {
    const taken = new Set((c.volumeMounts ?? []).map((m) => m.mountPath));
    const mounts = (o.volumeMounts ?? []).filter(
      (m) => typeof m.mountPath === "string" && !taken.has(m.mountPath),
    );
    const isMain = c.name === main;
    return {
      ...c,
      ...(isMain && env.length ? { env: [...(c.env ?? []), ...(env as unknown as V1EnvVar[])] } : {}),
      ...(isMain && o.envFrom?.length
        ? { envFrom: [...(c.envFrom ?? []), ...(o.envFrom as unknown as V1EnvFromSource[])] }
        : {}),
      ...(mounted.includes(c.name) && mounts.length
        ? { volumeMounts: [...(c.volumeMounts ?? []), ...(mounts as unknown as V1VolumeMount[])] }
        : {}),
    };
  };
  const ownLabels = t.metadata?.labels ?? {};
  const labels = Object.fromEntries(Object.entries(o.labels ?? {}).filter(([k]) => !(k in ownLabels)));
  return {
    ...t,
    metadata: {
      ...t.metadata,
      labels: { ...labels, ...ownLabels },
      ...(o.annotations || t.metadata?.annotations
        ? { annotations: { ...(o.annotations ?? {}), ...(t.metadata?.annotations ?? {}) } }
        : {}),
    },
    spec: {
      ...spec,
      containers: spec.containers.map(withMounts),
      ...(volumes.length
        ? { volumes: [...(spec.volumes ?? []), ...(volumes as unknown as V1Volume[])] }
        : {}),
      ...(o.affinity ? { affinity: o.affinity as V1Affinity } : {}),
      ...(o.imagePullSecrets?.length
        ? {
            imagePullSecrets: [
              ...(spec.imagePullSecrets ?? []).filter(
                (s) => !o.imagePullSecrets!.some((x) => x.name === s.name),
              ),
              ...(o.imagePullSecrets as V1LocalObjectReference[]),
            ],
          }
        : {}),
      ...(o.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
      ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
    },
  };
}
