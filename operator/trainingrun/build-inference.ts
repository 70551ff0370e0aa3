// Pure builders of a run's optional inference tier (spec.inference): an engine Deployment with the
// weight-sync sidecar, and its Service; and of the AgentWorkerPool a run with inline workers owns.
import { type V1Deployment, type V1Service, type V1Toleration } from "@kubernetes/client-node";
import { type AgentWorkerPool, type TrainingRun } from "../../gen/crds/index.js";
import { GROUP_VERSION, RUN_LABEL, labels, names, ownerRef } from "../labels.js";
import { TOKEN_DIR, WEIGHTS_PORT, restrictedContainer, runMounts, runVolumes, withGpus } from "./build.js";

type Inference = NonNullable<TrainingRun["spec"]["inference"]>;
const inf = (
  run: TrainingRun,
): Required<Pick<Inference, "engine" | "port" | "replicas" | "gpus" | "tensorParallel">> & Inference => ({
  engine: "vllm",
  port: 8000,
  replicas: 1,
  gpus: 1,
  tensorParallel: 1,
  ...run.spec.inference,
});

/** Engine arguments for an OpenAI-compatible server that returns token ids and logprobs. */
export function engineArgs(run: TrainingRun): string[] {
  const i = inf(run);
  const model = run.spec.model.name;
  if (i.engine === "sglang")
    return [
      "python3",
      "-m",
      "sglang.launch_server",
      "--model-path",
      model,
      "--host",
      "0.0.0.0",
      "--port",
      String(i.port),
      "--tp",
      String(i.tensorParallel),
    ];
  return [
    "--model",
    model,
    "--host",
    "0.0.0.0",
    "--port",
    String(i.port),
    "--tensor-parallel-size",
    String(i.tensorParallel),
  ];
}

export function buildInference(run: TrainingRun): { deployment: V1Deployment; service: V1Service } {
  const name = run.metadata!.name!;
  const i = inf(run);
  const lbl = labels(name, "inference", { [RUN_LABEL]: name });
  const selector = { [RUN_LABEL]: name, "app.kubernetes.io/component": "inference" };
  const meta = {
    name: names.inference(name),
    namespace: run.metadata!.namespace,
    labels: lbl,
    ownerReferences: [ownerRef(run)],
  };
  const weights = `${names.hubService(name)}:${WEIGHTS_PORT}`;
  const deployment: V1Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta,
    spec: {
      replicas: i.replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: lbl },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            fsGroup: 1000,
            seccompProfile: { type: "RuntimeDefault" },
          },
          ...(i.nodeSelector ? { nodeSelector: i.nodeSelector as Record<string, string> } : {}),
          ...(i.tolerations ? { tolerations: i.tolerations as V1Toleration[] } : {}),
          containers: [
            {
              name: "engine",
              image: i.image ?? "vllm/vllm-openai:v0.6.3",
              ...(i.engine === "sglang" ? { command: engineArgs(run) } : { args: engineArgs(run) }),
              ports: [{ name: "http", containerPort: i.port, protocol: "TCP" }],
              resources: withGpus(i.resources, i.gpus),
              readinessProbe: { httpGet: { path: "/health", port: i.port }, periodSeconds: 10 },
              // Engines write caches under $HOME; the root filesystem stays read-only.
              env: [{ name: "HOME", value: "/tmp" }],
              securityContext: restrictedContainer,
              volumeMounts: [...runMounts, { name: "weights", mountPath: "/weights" }],
            },
            {
              // `l0 sidecar` (images/inference/config.ts): pulls each policy version from the
              // trainer's Weights service into the shared volume and reloads the engine.
              name: "weight-sync",
              image: i.sidecarImage ?? "ghcr.io/l0-operator/inference-sidecar:0.1.0",
              args: ["sidecar"],
              env: [
                { name: "L0_SIDECAR_WEIGHTS_ADDRESS", value: weights },
                { name: "L0_SIDECAR_TOKEN_FILE", value: `${TOKEN_DIR}/token` },
                { name: "L0_SIDECAR_ENGINE", value: i.engine },
                { name: "L0_SIDECAR_ENGINE_URL", value: `http://127.0.0.1:${i.port}` },
                { name: "L0_SIDECAR_ROOT", value: "/weights" },
              ],
              securityContext: restrictedContainer,
              volumeMounts: [...runMounts, { name: "weights", mountPath: "/weights" }],
            },
          ],
          volumes: [...runVolumes(name), { name: "weights", emptyDir: {} }],
        },
      },
    },
  };
  const service: V1Service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta,
    spec: { selector, ports: [{ name: "http", port: i.port, targetPort: i.port, protocol: "TCP" }] },
  };
  return { deployment, service };
}

/**
 * The AgentWorkerPool a run with inline `workers` owns. `replicas`: the run's choice when it is not
 * autoscaled (0 while suspended or finished); undefined leaves the pool's replicas to the autoscaler.
 */
export function buildOwnedPool(run: TrainingRun, replicas: number | undefined): AgentWorkerPool {
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
export function inlineReplicas(run: TrainingRun, stopped: boolean): number | undefined {
  if (stopped) return 0;
  if (run.spec.workers?.autoscaling?.enabled) return undefined;
  return run.spec.workers?.replicas ?? 1;
}
