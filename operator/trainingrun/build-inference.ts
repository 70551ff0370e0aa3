// Pure builders of a run's optional inference tier (spec.inference): an engine Deployment with the
// weight-sync sidecar, and its Service; and of the AgentWorkerPool a run with inline workers owns.
import {
  type V1Deployment,
  type V1NetworkPolicy,
  type V1Service,
  type V1Toleration,
} from "@kubernetes/client-node";
import { type AgentWorkerPool, type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { BUILTIN_IMAGES, type DefaultImages, defaultPullSecrets } from "../images.js";
import {
  COMPONENT_LABEL as COMPONENT,
  GROUP_VERSION,
  RUN_LABEL,
  labels,
  names,
  ownerRef,
} from "../labels.js";
import { TOKEN_DIR, runMounts, runVolumes } from "../run-files.js";
import { type PodOverrides, applyPodOverrides } from "../pod-overrides.js";
import { WEIGHTS_PORT, queueLabel, restrictedContainer, withGpus } from "./build.js";
import {
  MODEL_FILES_DIR,
  VLLM_IMAGE,
  WEIGHTS_ROOT,
  baseModelDir,
  engineCommand,
  engineEnv,
  modelFilesInit,
} from "./engines.js";

type Inference = NonNullable<ResolvedTrainingRun["spec"]["inference"]>;
/** The sidecar's ports (images/inference/config.ts defaults, set explicitly so the policy matches). */
export const SIDECAR_PEER_PORT = 7072;
export const SIDECAR_PEER_BULK_PORT = 7074;
export const SIDECAR_METRICS_PORT = 9092;
/** Override mounts go to the engine and the sidecar (which reads a model on a volume too). */
export const INFERENCE_MOUNTED = ["engine", "weight-sync"];
const inf = (
  run: ResolvedTrainingRun,
): Required<Pick<Inference, "engine" | "port" | "replicas" | "gpus" | "tensorParallel">> & Inference => ({
  engine: "vllm",
  port: 8000,
  replicas: 1,
  gpus: 1,
  tensorParallel: 1,
  ...run.spec.inference,
});

export function buildInference(
  run: ResolvedTrainingRun,
  images: DefaultImages = BUILTIN_IMAGES,
): { deployment: V1Deployment; service: V1Service } {
  const name = run.metadata!.name!;
  const i = inf(run);
  const lbl = labels(name, "inference", { [RUN_LABEL]: name });
  const selector = { [RUN_LABEL]: name, [COMPONENT]: "inference" };
  const meta = {
    name: names.inference(name),
    namespace: run.metadata!.namespace,
    labels: lbl,
    ownerReferences: [ownerRef(run)],
  };
  // Kueue's Deployment integration reads the queue from the Deployment's labels.
  const deployMeta = { ...meta, labels: { ...lbl, ...queueLabel(run) } };
  const weights = `${names.hubService(name)}:${WEIGHTS_PORT}`;
  const image = i.image ?? VLLM_IMAGE;
  const init = modelFilesInit(run, image, restrictedContainer);
  const base = baseModelDir(run);
  const deployment: V1Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: deployMeta,
    spec: {
      replicas: i.replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: lbl },
        spec: {
          automountServiceAccountToken: false,
          ...defaultPullSecrets(images),
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            fsGroup: 1000,
            seccompProfile: { type: "RuntimeDefault" },
          },
          ...(i.nodeSelector ? { nodeSelector: i.nodeSelector as Record<string, string> } : {}),
          ...(i.tolerations ? { tolerations: i.tolerations as V1Toleration[] } : {}),
          ...(init ? { initContainers: [init] } : {}),
          containers: [
            {
              name: "engine",
              image,
              command: engineCommand(run, i),
              ports: [{ name: "http", containerPort: i.port, protocol: "TCP" }],
              resources: withGpus(i.resources, i.gpus),
              readinessProbe: { httpGet: { path: "/health", port: i.port }, periodSeconds: 10 },
              // Engines write caches under $HOME; the root filesystem stays read-only.
              env: engineEnv(i),
              securityContext: restrictedContainer,
              volumeMounts: [
                ...runMounts,
                { name: "weights", mountPath: WEIGHTS_ROOT },
                // Tensor parallelism shares memory between the GPU processes (NCCL): the 64 MiB
                // /dev/shm a container gets by default is too small.
                { name: "dshm", mountPath: "/dev/shm" },
              ],
            },
            {
              // `l0 sidecar` (images/inference/config.ts): pulls each policy version from the
              // trainer's Weights service into the shared volume and reloads the engine.
              name: "weight-sync",
              image: i.sidecarImage ?? images.sidecar,
              args: ["sidecar"],
              env: [
                { name: "L0_SIDECAR_WEIGHTS_ADDRESS", value: weights },
                { name: "L0_SIDECAR_TOKEN_FILE", value: `${TOKEN_DIR}/token` },
                { name: "L0_SIDECAR_TLS_DIR", value: TOKEN_DIR },
                { name: "L0_SIDECAR_ENGINE", value: i.engine },
                { name: "L0_SIDECAR_ENGINE_URL", value: `http://127.0.0.1:${i.port}` },
                { name: "L0_SIDECAR_ROOT", value: WEIGHTS_ROOT },
                { name: "L0_SIDECAR_PEER_PORT", value: String(SIDECAR_PEER_PORT) },
                { name: "L0_SIDECAR_PEER_BULK_PORT", value: String(SIDECAR_PEER_BULK_PORT) },
                { name: "L0_SIDECAR_METRICS_PORT", value: String(SIDECAR_METRICS_PORT) },
                // config.json and the tokenizer, copied into each version so the engine can load it.
                ...(base ? [{ name: "L0_SIDECAR_BASE_MODEL_DIR", value: base }] : []),
                // The sidecar advertises $POD_IP:<peer port> to the other sidecars (fan-out tree).
                { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
              ],
              ports: [
                { name: "peers", containerPort: SIDECAR_PEER_PORT, protocol: "TCP" },
                { name: "peers-bulk", containerPort: SIDECAR_PEER_BULK_PORT, protocol: "TCP" },
                { name: "metrics", containerPort: SIDECAR_METRICS_PORT, protocol: "TCP" },
              ],
              readinessProbe: {
                httpGet: { path: "/healthz", port: SIDECAR_METRICS_PORT },
                periodSeconds: 10,
              },
              securityContext: restrictedContainer,
              volumeMounts: [
                ...runMounts,
                { name: "weights", mountPath: WEIGHTS_ROOT },
                ...(init ? [{ name: "model-files", mountPath: MODEL_FILES_DIR, readOnly: true }] : []),
              ],
            },
          ],
          volumes: [
            ...runVolumes(name),
            { name: "weights", emptyDir: {} },
            { name: "dshm", emptyDir: { medium: "Memory" } },
            ...(init ? [{ name: "model-files", emptyDir: {} }] : []),
          ],
        },
      },
    },
  };
  deployment.spec!.template = applyPodOverrides(
    deployment.spec!.template,
    "engine",
    INFERENCE_MOUNTED,
    i.podOverrides as PodOverrides | undefined,
  );
  const service: V1Service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta,
    spec: { selector, ports: [{ name: "http", port: i.port, targetPort: i.port, protocol: "TCP" }] },
  };
  return { deployment, service };
}

/**
 * Ingress of the inference pods (images/inference/README.md): the engine port only from the run's
 * workers (vLLM's reload route is unauthenticated, so nothing else may reach it; the sidecar calls
 * it on localhost, which a NetworkPolicy does not filter), the peer ports (gRPC and bulk) only from the run's other
 * inference pods, metrics from anywhere. Egress stays open: the engine may download its model and
 * a NetworkPolicy cannot tell the sidecar's traffic from the engine's.
 */
export function buildInferenceNetworkPolicy(run: ResolvedTrainingRun): V1NetworkPolicy {
  const name = run.metadata!.name!;
  const i = inf(run);
  const component = (c: string) => ({ podSelector: { matchLabels: { [RUN_LABEL]: name, [COMPONENT]: c } } });
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: {
      name: names.inference(name),
      namespace: run.metadata!.namespace,
      labels: labels(name, "inference", { [RUN_LABEL]: name }),
      ownerReferences: [ownerRef(run)],
    },
    // Plain JSON: client-node's model names `from` `_from` (its serializer renames it); this client
    // sends objects as they are.
    spec: {
      podSelector: { matchLabels: { [RUN_LABEL]: name, [COMPONENT]: "inference" } },
      policyTypes: ["Ingress"],
      ingress: [
        { from: [component("workers")], ports: [{ protocol: "TCP", port: i.port }] },
        {
          from: [component("inference")],
          ports: [
            { protocol: "TCP", port: SIDECAR_PEER_PORT },
            { protocol: "TCP", port: SIDECAR_PEER_BULK_PORT },
          ],
        },
        { ports: [{ protocol: "TCP", port: SIDECAR_METRICS_PORT }] },
      ],
    } as unknown as V1NetworkPolicy["spec"],
  };
}

/**
 * The AgentWorkerPool a run with inline `workers` owns. `replicas`: the run's choice when it is not
 * autoscaled (0 while suspended or finished); undefined leaves the pool's replicas to the autoscaler.
 */
export function buildOwnedPool(run: ResolvedTrainingRun, replicas: number | undefined): AgentWorkerPool {
  const name = run.metadata!.name!;
  const { replicas: _inline, ...workers } = run.spec.workers ?? {};
  return {
    apiVersion: GROUP_VERSION,
    kind: "AgentWorkerPool",
    metadata: {
      name: names.inlinePool(name),
      namespace: run.metadata!.namespace,
      labels: labels(name, "workers", { [RUN_LABEL]: name }),
      ownerReferences: [ownerRef(run)],
    },
    spec: { ...workers, hubRef: { name }, ...(replicas !== undefined ? { replicas } : {}) },
  };
}

/** Replicas a run asks of its inline pool: 0 when stopped, else fixed replicas unless autoscaled. */
export function inlineReplicas(run: ResolvedTrainingRun, stopped: boolean): number | undefined {
  if (stopped) return 0;
  if (run.spec.workers?.autoscaling?.enabled) return undefined;
  return run.spec.workers?.replicas ?? 1;
}
