// Pure builders of an AgentWorkerPool's children: the worker Deployment (pod security per sandbox
// mode), a ServiceAccount without token automount, a NetworkPolicy (egress only to the run's hub
// and engine, DNS and declared tool CIDRs; ingress only to metrics) and a PodDisruptionBudget.
import {
  type V1Container,
  type V1Deployment,
  type V1EnvVar,
  type V1NetworkPolicy,
  type V1PodDisruptionBudget,
  type V1PodSecurityContext,
  type V1ResourceRequirements,
  type V1SecurityContext,
  type V1ServiceAccount,
  type V1Toleration,
} from "@kubernetes/client-node";
import { type ResolvedAgentWorkerPool, type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { BUILTIN_IMAGES, type DefaultImages, defaultPullSecrets } from "../images.js";
import { KUEUE_QUEUE_LABEL, POOL_LABEL, RUN_LABEL, labels, names, ownerRef } from "../labels.js";
import { hubAddress } from "../hub-stats.js";
import { CONFIG_DIR, TOKEN_DIR, runMounts, runVolumes } from "../run-files.js";
import { type PodOverrides, applyPodOverrides } from "../pod-overrides.js";

export const WORKER_METRICS_PORT = 9090;
export const WORKER_UID = 65532;
export const SEARCH_KEY_DIR = "/var/run/l0-search";

const meta = (pool: ResolvedAgentWorkerPool) => {
  const name = pool.metadata!.name!;
  return {
    name: names.workers(name),
    namespace: pool.metadata!.namespace,
    labels: labels(name, "workers", { [POOL_LABEL]: name, [RUN_LABEL]: pool.spec.hubRef.name }),
    ownerReferences: [ownerRef(pool)],
  };
};
export const workerSelector = (pool: ResolvedAgentWorkerPool) => ({
  [POOL_LABEL]: pool.metadata!.name!,
  "app.kubernetes.io/component": "workers",
});
export const selectorString = (pool: ResolvedAgentWorkerPool): string =>
  Object.entries(workerSelector(pool))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

export function buildServiceAccount(pool: ResolvedAgentWorkerPool): V1ServiceAccount {
  // Workers never talk to the Kubernetes API: no token in the pod at all.
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: meta(pool),
    automountServiceAccountToken: false,
  };
}

/**
 * Pod and container security for a sandbox mode. bwrap creates user, pid, mount and network
 * namespaces inside the container and mounts a fresh /proc there. The runtime's default seccomp and
 * AppArmor profiles forbid the first, and the runtime's masked /proc (paths over-mounted read-only)
 * forbids the second: the kernel refuses a new proc mount where the visible one is partly covered.
 * So bwrap mode (only) runs with both profiles Unconfined and `procMount: Unmasked`, which the API
 * server allows only in a user-namespaced pod (`hostUsers: false`: the pod's uids, root included,
 * map to unprivileged uids on the node). The container still runs non-root with no capabilities and
 * no privilege escalation. runtimeClass mode keeps RuntimeDefault everywhere, the host's users and
 * the masked /proc, and relies on the RuntimeClass (e.g. gVisor) for isolation. What the cluster
 * must allow: docs/install.md ("Agent sandboxes").
 */
export function sandboxSecurity(pool: ResolvedAgentWorkerPool): {
  hostUsers: boolean;
  pod: V1PodSecurityContext;
  container: V1SecurityContext;
} {
  const bwrap = pool.spec.sandbox.mode === "bwrap";
  const profile = bwrap ? "Unconfined" : "RuntimeDefault";
  return {
    hostUsers: !bwrap,
    pod: {
      runAsNonRoot: true,
      runAsUser: WORKER_UID,
      runAsGroup: WORKER_UID,
      fsGroup: WORKER_UID,
      seccompProfile: { type: profile },
    },
    container: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: profile },
      appArmorProfile: { type: profile },
      ...(bwrap ? { procMount: "Unmasked" } : {}),
    },
  };
}

/**
 * The worker's --sandbox-mode (images/worker/config.ts). Always `weak`: `strict` needs a writable
 * pids cgroup, which a non-root pod without capabilities does not have (the worker would exit at
 * start). Weak mode still runs every kernel under bwrap with all namespaces unshared and the same
 * rlimits; what it loses (a per-kernel process and memory bound) the pod bounds instead: the
 * container memory limit (workerResources) and the node's pod pid limit. See docs/operator.md.
 */
export function workerSandboxMode(_pool: ResolvedAgentWorkerPool): "strict" | "weak" {
  return "weak";
}

/**
 * Requests/limits of the worker container. A memory limit is always set, because in weak mode it
 * is the only bound on the memory of all kernels together (RLIMIT_AS is per process): the user's
 * limit, else the user's memory request (a limit below the request would be invalid), else
 * episodes x (per-kernel memory + 64 MiB) + 512 MiB for the worker itself. A CPU limit likewise
 * (weak mode has no per-kernel CPU quota, only RLIMIT_CPU per process): the user's limit, else
 * the user's CPU request, else one CPU per concurrent episode.
 */
export function workerResources(pool: ResolvedAgentWorkerPool): V1ResourceRequirements {
  const s = pool.spec;
  const str = (o: Record<string, unknown> | undefined) =>
    Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, String(v)]));
  const perKernel = s.sandbox.memoryMiB + 64;
  const limitMiB = s.episodesPerWorker * perKernel + 512;
  const memory = `${limitMiB}Mi`;
  const cpu = String(s.episodesPerWorker ?? 8);
  // The request is what a worker typically uses (kernels rarely sit at their cap), never above the limit.
  if (!s.resources)
    return { requests: { cpu: "1", memory: `${Math.min(2048, limitMiB)}Mi` }, limits: { memory, cpu } };
  const requests = str(s.resources.requests);
  const limits = str(s.resources.limits);
  return {
    requests,
    limits: {
      ...limits,
      memory: limits.memory ?? requests.memory ?? memory,
      cpu: limits.cpu ?? requests.cpu ?? cpu,
    },
  };
}

/**
 * Where the pool's workers find the run's hub and engine (Services the run reconciler creates);
 * none while the run does not exist (the pool is then at zero replicas).
 */
export function endpoints(pool: ResolvedAgentWorkerPool, run: ResolvedTrainingRun | undefined): V1EnvVar[] {
  if (!run) return [];
  const r = pool.spec.hubRef.name;
  const ns = pool.metadata!.namespace;
  const engine = run.spec.inference
    ? `http://${names.inference(r)}.${ns}.svc:${run.spec.inference.port}`
    : `http://${names.hubService(r)}.${ns}.svc:${run.spec.trainer.enginePort}`;
  return [
    { name: "L0_WORKER_HUB", value: hubAddress(run) },
    { name: "L0_WORKER_ENGINE_URL", value: engine },
  ];
}

export function buildWorkerDeployment(
  pool: ResolvedAgentWorkerPool,
  run: ResolvedTrainingRun | undefined,
  replicas: number,
  images: DefaultImages = BUILTIN_IMAGES,
): V1Deployment {
  const s = pool.spec;
  const sb = s.sandbox;
  const sec = sandboxSecurity(pool);
  const search = s.tools?.search;
  const env: V1EnvVar[] = [
    ...endpoints(pool, run),
    { name: "L0_WORKER_TOKEN_FILE", value: `${TOKEN_DIR}/token` },
    { name: "L0_WORKER_TLS_DIR", value: TOKEN_DIR },
    { name: "L0_WORKER_RUN_CONFIG", value: `${CONFIG_DIR}/run.json` },
    { name: "L0_WORKER_EPISODES", value: String(s.episodesPerWorker) },
    { name: "L0_WORKER_SANDBOX_MODE", value: workerSandboxMode(pool) },
    { name: "L0_WORKER_CPU_SECONDS", value: String(sb.cpuSecondsPerEpisode) },
    { name: "L0_WORKER_MEMORY_MIB", value: String(sb.memoryMiB) },
    { name: "L0_WORKER_MAX_PROCESSES", value: String(sb.maxProcesses) },
    { name: "L0_WORKER_DISK_MIB", value: String(sb.diskMiB) },
    { name: "L0_WORKER_WALL_SECONDS", value: String(sb.wallSecondsPerEpisode) },
    { name: "L0_WORKER_METRICS_PORT", value: String(WORKER_METRICS_PORT) },
    // No L0_WORKER_WORKER_ID: the worker's id defaults to the host name, which is the pod name.
  ];
  if (search) {
    env.push({ name: "L0_WORKER_SEARCH_BACKEND", value: search.backend });
    if (search.url) env.push({ name: "L0_WORKER_SEARCH_URL", value: search.url });
    if (search.corpusPath) env.push({ name: "L0_WORKER_SEARCH_CORPUS", value: search.corpusPath });
    // The key is a file only the worker process reads; kernels never see it (bwrap binds no such path).
    if (search.secretRef)
      env.push({
        name: "L0_WORKER_SEARCH_KEY_FILE",
        value: `${SEARCH_KEY_DIR}/${search.secretRef.key}`,
      });
  }
  const container: V1Container = {
    name: "worker",
    image: s.image ?? images.worker,
    imagePullPolicy: s.imagePullPolicy,
    args: ["worker"],
    env,
    ports: [{ name: "metrics", containerPort: WORKER_METRICS_PORT, protocol: "TCP" }],
    resources: workerResources(pool),
    readinessProbe: { httpGet: { path: "/readyz", port: WORKER_METRICS_PORT }, periodSeconds: 10 },
    livenessProbe: {
      httpGet: { path: "/healthz", port: WORKER_METRICS_PORT },
      periodSeconds: 20,
      failureThreshold: 3,
    },
    securityContext: sec.container,
    volumeMounts: search?.secretRef
      ? [...runMounts, { name: "search-key", mountPath: SEARCH_KEY_DIR, readOnly: true }]
      : runMounts,
  };
  const runtimeClassName = s.sandbox.runtimeClassName;
  const queue = run?.spec.queueName;
  const built: V1Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    // Kueue's Deployment integration reads the run's queue from the Deployment's labels.
    metadata: queue
      ? { ...meta(pool), labels: { ...meta(pool).labels, [KUEUE_QUEUE_LABEL]: queue } }
      : meta(pool),
    spec: {
      replicas,
      selector: { matchLabels: workerSelector(pool) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
      template: {
        metadata: { labels: meta(pool).labels },
        spec: {
          serviceAccountName: names.workers(pool.metadata!.name!),
          automountServiceAccountToken: false,
          ...defaultPullSecrets(images),
          enableServiceLinks: false,
          // Workers drain: they release their leases to the hub, so a stopped pod loses no task.
          terminationGracePeriodSeconds: 60,
          ...(runtimeClassName ? { runtimeClassName } : {}),
          ...(sec.hostUsers ? {} : { hostUsers: false }),
          securityContext: sec.pod,
          ...(s.nodeSelector ? { nodeSelector: s.nodeSelector as Record<string, string> } : {}),
          ...(s.tolerations ? { tolerations: s.tolerations as V1Toleration[] } : {}),
          containers: [container],
          volumes: search?.secretRef
            ? [
                ...runVolumes(s.hubRef.name),
                { name: "search-key", secret: { secretName: search.secretRef.name, defaultMode: 0o440 } },
              ]
            : runVolumes(s.hubRef.name),
        },
      },
    },
  };
  built.spec!.template = applyPodOverrides(
    built.spec!.template,
    "worker",
    ["worker"],
    s.podOverrides as PodOverrides | undefined,
  );
  return built;
}

export function buildNetworkPolicy(
  pool: ResolvedAgentWorkerPool,
  run: ResolvedTrainingRun | undefined,
): V1NetworkPolicy {
  const r = pool.spec.hubRef.name;
  const egress: NonNullable<V1NetworkPolicy["spec"]>["egress"] = [];
  if (run) {
    const trainerPorts = [{ protocol: "TCP", port: run.spec.trainer.hubPort }];
    if (!run.spec.inference) trainerPorts.push({ protocol: "TCP", port: run.spec.trainer.enginePort });
    egress.push({
      to: [{ podSelector: { matchLabels: { [RUN_LABEL]: r, "app.kubernetes.io/component": "trainer" } } }],
      ports: trainerPorts,
    });
  }
  egress.push({
    to: [{ namespaceSelector: {}, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
    ports: [
      { protocol: "UDP", port: 53 },
      { protocol: "TCP", port: 53 },
    ],
  });
  if (run?.spec.inference)
    egress.push({
      to: [{ podSelector: { matchLabels: { [RUN_LABEL]: r, "app.kubernetes.io/component": "inference" } } }],
      ports: [{ protocol: "TCP", port: run.spec.inference.port }],
    });
  for (const e of pool.spec.tools.egress ?? [])
    egress.push({
      to: [{ ipBlock: { cidr: e.cidr } }],
      ...(e.ports?.length ? { ports: e.ports.map((port) => ({ protocol: "TCP", port: port ?? 0 })) } : {}),
    });
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta(pool),
    spec: {
      podSelector: { matchLabels: workerSelector(pool) },
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ ports: [{ protocol: "TCP", port: WORKER_METRICS_PORT }] }],
      egress,
    },
  };
}

export function buildPdb(pool: ResolvedAgentWorkerPool): V1PodDisruptionBudget {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta(pool),
    // Workers hand their leases back on drain, so evictions cost only restart time: keep 75 % up.
    spec: { maxUnavailable: "25%", selector: { matchLabels: workerSelector(pool) } },
  };
}
