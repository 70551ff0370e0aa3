// Pure builders of a TrainingRun's children (JobSet's constructJob shape): run token Secret,
// ConfigMap with run.json, the trainer's headless and hub Services, its NetworkPolicy and its
// indexed Job. Input is
// the validated run (schema defaults applied); output is the exact object the reconciler creates.
import {
  type V1ConfigMap,
  type V1Container,
  type V1EnvVar,
  type V1Job,
  type V1NetworkPolicy,
  type V1ResourceRequirements,
  type V1Secret,
  type V1Service,
  type V1Toleration,
  type V1Volume,
  type V1VolumeMount,
} from "@kubernetes/client-node";
import { type ResolvedTrainingRun } from "../../gen/crds/index.js";
import { BUILTIN_IMAGES, type DefaultImages, defaultPullSecrets } from "../images.js";
import {
  ATTEMPT_LABEL,
  COMPONENT_LABEL as COMPONENT,
  JOB_INDEX_LABEL,
  KUEUE_QUEUE_LABEL,
  RUN_LABEL,
  labels,
  names,
  ownerRef,
  stableJson,
} from "../labels.js";
import { CONFIG_DIR, TOKEN_DIR, runMounts, runVolumes } from "../run-files.js";
import { type PodOverrides, applyPodOverrides } from "../pod-overrides.js";
import { checkpointVolume } from "./checkpoint-claim.js";
import { hfTokenEnv } from "./engines.js";
import { trainerSuspend } from "./policy.js";

/** Kueue's queue label for a queued run's workloads (spec.queueName), else none. */
export const queueLabel = (run: ResolvedTrainingRun): Record<string, string> =>
  run.spec.queueName ? { [KUEUE_QUEUE_LABEL]: run.spec.queueName } : {};

export const RENDEZVOUS_PORT = 29500;
/** Port of the trainer's Weights service (`l0 weights`, L0_WEIGHTS_PORT) the inference sidecars pull from. */
export const WEIGHTS_PORT = 7071;
/** Port of its bulk channel (the same bytes as Pull on a bare or mutual-TLS socket, L0_TRAINER_WEIGHTS_BULK_PORT). */
export const WEIGHTS_BULK_PORT = 7073;
export type Trainer = NonNullable<ResolvedTrainingRun["spec"]["trainer"]>;

const meta = (
  run: ResolvedTrainingRun,
  name: string,
  component: "trainer" | "config",
  extra: Record<string, string> = {},
) => ({
  name,
  namespace: run.metadata!.namespace,
  labels: labels(run.metadata!.name!, component, { [RUN_LABEL]: run.metadata!.name!, ...extra }),
  ownerReferences: [ownerRef(run)],
});

/**
 * The run token Secret: the token and the run's TLS material (ca.crt, tls.crt, tls.key as
 * base64 Secret data, operator/run-tls.ts), each generated once by the caller and never rotated
 * by a rebuild.
 */
export function buildTokenSecret(
  run: ResolvedTrainingRun,
  token: string,
  tls: Record<string, string>,
): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: meta(run, names.token(run.metadata!.name!), "config"),
    type: "Opaque",
    data: { token: Buffer.from(token).toString("base64"), ...tls },
  };
}

/** run.json: the validated ResolvedTrainingRun with defaults, as every program reads it (`--run-config`). */
export function runConfigJson(run: ResolvedTrainingRun): string {
  return stableJson({
    apiVersion: run.apiVersion ?? "l0.dev/v1alpha1",
    kind: "TrainingRun",
    metadata: { name: run.metadata!.name, namespace: run.metadata!.namespace },
    spec: run.spec,
  });
}

export function buildConfigMap(run: ResolvedTrainingRun): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta(run, names.config(run.metadata!.name!), "config"),
    data: { "run.json": runConfigJson(run) },
  };
}

const trainerOf = (run: ResolvedTrainingRun): Trainer => run.spec.trainer;

function trainerPorts(run: ResolvedTrainingRun) {
  const t = trainerOf(run);
  const ports = [
    { name: "hub", port: t.hubPort, targetPort: t.hubPort, protocol: "TCP" },
    { name: "metrics", port: t.metricsPort, targetPort: t.metricsPort, protocol: "TCP" },
  ];
  // Without spec.inference the engine runs in the trainer pod (colocated); with it, the sidecars
  // pull weights from the trainer.
  if (!run.spec.inference)
    ports.push({ name: "engine", port: t.enginePort, targetPort: t.enginePort, protocol: "TCP" });
  else
    ports.push(
      { name: "weights", port: WEIGHTS_PORT, targetPort: WEIGHTS_PORT, protocol: "TCP" },
      { name: "weights-bulk", port: WEIGHTS_BULK_PORT, targetPort: WEIGHTS_BULK_PORT, protocol: "TCP" },
    );
  return ports;
}

const trainerSelector = (run: ResolvedTrainingRun) => ({
  [RUN_LABEL]: run.metadata!.name!,
  "app.kubernetes.io/component": "trainer",
});

/** Headless Service: `<job>-<index>.<run>-trainer` names each trainer pod for torchrun rendezvous. */
export function buildTrainerService(run: ResolvedTrainingRun): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(run, names.trainerService(run.metadata!.name!), "trainer"),
    spec: {
      clusterIP: "None",
      publishNotReadyAddresses: true,
      selector: trainerSelector(run),
      ports: [
        ...trainerPorts(run),
        { name: "rendezvous", port: RENDEZVOUS_PORT, targetPort: RENDEZVOUS_PORT, protocol: "TCP" },
      ],
    },
  };
}

/**
 * Ingress of the trainer pods: the colocated engine's port only from the run's workers (its HTTP
 * API is unauthenticated unless the engine requires the token), the weights ports (gRPC and bulk)
 * only from the run's inference pods, any port from the run's other trainer pods (rendezvous, then collectives
 * on ephemeral ports); the hub port (gRPC,
 * run-token authenticated) from anywhere, since the operator reads its Stats from its own
 * namespace, and metrics from anywhere (Prometheus). Same-run peers only: no namespaceSelector.
 */
export function buildTrainerNetworkPolicy(run: ResolvedTrainingRun): V1NetworkPolicy {
  const name = run.metadata!.name!;
  const t = trainerOf(run);
  const from = (component: string) => [
    { podSelector: { matchLabels: { [RUN_LABEL]: name, [COMPONENT]: component } } },
  ];
  const port = (p: number) => [{ protocol: "TCP", port: p }];
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta(run, names.trainerService(name), "trainer"),
    // Plain JSON (see buildInferenceNetworkPolicy): `from` is sent as is.
    spec: {
      podSelector: { matchLabels: trainerSelector(run) },
      policyTypes: ["Ingress"],
      ingress: [
        { ports: port(t.hubPort) },
        { ports: port(t.metricsPort) },
        run.spec.inference
          ? { from: from("inference"), ports: [...port(WEIGHTS_PORT), ...port(WEIGHTS_BULK_PORT)] }
          : { from: from("workers"), ports: port(t.enginePort) },
        // Rendezvous, then NCCL/Gloo on ports they pick: every port, between this run's trainers.
        { from: from("trainer") },
      ],
    } as unknown as V1NetworkPolicy["spec"],
  };
}

/** ClusterIP Service on trainer rank 0 only: the hub (and colocated engine) workers talk to. */
export function buildHubService(run: ResolvedTrainingRun): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(run, names.hubService(run.metadata!.name!), "trainer"),
    spec: {
      type: "ClusterIP",
      selector: { ...trainerSelector(run), [JOB_INDEX_LABEL]: "0" },
      ports: trainerPorts(run),
    },
  };
}

/** Requests/limits of a GPU container: the user's resources plus `gpus` nvidia.com/gpu in both. */
export function withGpus(res: Trainer["resources"] | undefined, gpus: number): V1ResourceRequirements {
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  for (const [k, v] of Object.entries(res?.requests ?? {})) requests[k] = String(v);
  for (const [k, v] of Object.entries(res?.limits ?? {})) limits[k] = String(v);
  if (gpus > 0) {
    requests["nvidia.com/gpu"] = String(gpus);
    limits["nvidia.com/gpu"] = String(gpus);
  }
  return {
    ...(Object.keys(requests).length ? { requests } : {}),
    ...(Object.keys(limits).length ? { limits } : {}),
  };
}

export const restrictedContainer = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
};

/** Where the judge's API key (spec.evaluation.judge.secretRef) is mounted in the trainer container. */
export const JUDGE_KEY_DIR = "/var/run/l0-judge";

/**
 * The judge's API key as a file only the trainer process reads (L0_TRAINER_JUDGE_KEY_FILE), as
 * the worker's search key is; nothing without a secretRef. Never an environment value: the
 * learner child processes inherit the trainer's environment.
 */
export function judgeKeyFile(run: ResolvedTrainingRun): {
  env: V1EnvVar[];
  mounts: V1VolumeMount[];
  volumes: V1Volume[];
} {
  const ref = run.spec.evaluation?.judge?.secretRef;
  if (!ref) return { env: [], mounts: [], volumes: [] };
  return {
    env: [{ name: "L0_TRAINER_JUDGE_KEY_FILE", value: `${JUDGE_KEY_DIR}/${ref.key}` }],
    mounts: [{ name: "judge-key", mountPath: JUDGE_KEY_DIR, readOnly: true }],
    volumes: [{ name: "judge-key", secret: { secretName: ref.name, defaultMode: 0o440 } }],
  };
}

/** The trainer group: an indexed Job, one pod per node, any pod failure fails the Job (gang restart). */
export function buildTrainerJob(
  run: ResolvedTrainingRun,
  attempt: number,
  images: DefaultImages = BUILTIN_IMAGES,
): V1Job {
  const name = run.metadata!.name!;
  const t = trainerOf(run);
  const nodes = t.nodes;
  const jobName = names.trainerJob(name, attempt);
  const ck = run.spec.checkpoint;
  const judgeKey = judgeKeyFile(run);
  const env: V1EnvVar[] = [
    { name: "L0_TRAINER_RUN_CONFIG", value: `${CONFIG_DIR}/run.json` },
    { name: "L0_TRAINER_TOKEN_FILE", value: `${TOKEN_DIR}/token` },
    { name: "L0_TRAINER_TLS_DIR", value: TOKEN_DIR },
    { name: "L0_TRAINER_HUB_PORT", value: String(t.hubPort) },
    { name: "L0_TRAINER_METRICS_PORT", value: String(t.metricsPort) },
    { name: "L0_TRAINER_CHECKPOINT_DIR", value: ck.mountPath },
    { name: "L0_TRAINER_ATTEMPT", value: String(attempt) },
    { name: "NNODES", value: String(nodes) },
    // torchrun's --nproc-per-node: one learner process per GPU of the node (at least one on CPU).
    { name: "NPROC_PER_NODE", value: String(Math.max(1, t.gpusPerNode)) },
    {
      name: "NODE_RANK",
      valueFrom: {
        fieldRef: { fieldPath: `metadata.annotations['batch.kubernetes.io/job-completion-index']` },
      },
    },
    { name: "MASTER_ADDR", value: `${jobName}-0.${names.trainerService(name)}` },
    { name: "MASTER_PORT", value: String(RENDEZVOUS_PORT) },
  ];
  // The learner's Hugging Face client reads HF_TOKEN (gated or private models).
  env.push(...hfTokenEnv(run), ...judgeKey.env);
  if (!run.spec.inference) env.push({ name: "L0_TRAINER_ENGINE_PORT", value: String(t.enginePort) });
  else
    env.push(
      { name: "L0_TRAINER_WEIGHTS_PORT", value: String(WEIGHTS_PORT) },
      { name: "L0_TRAINER_WEIGHTS_BULK_PORT", value: String(WEIGHTS_BULK_PORT) },
    );
  const container: V1Container = {
    name: "trainer",
    image: t.image ?? images.trainer,
    imagePullPolicy: t.imagePullPolicy,
    args: ["trainer"],
    env,
    ports: trainerPorts(run).map((p) => ({ name: p.name, containerPort: p.port, protocol: "TCP" })),
    resources: withGpus(t.resources, t.gpusPerNode),
    readinessProbe: { httpGet: { path: "/readyz", port: t.metricsPort }, periodSeconds: 10 },
    // The trainer writes `Reason: message` there when it fails (the run's condition shows it);
    // without one, the kubelet keeps the last log lines.
    terminationMessagePolicy: "FallbackToLogsOnError",
    securityContext: restrictedContainer,
    volumeMounts: [
      ...runMounts,
      { name: "checkpoints", mountPath: ck.mountPath },
      { name: "dshm", mountPath: "/dev/shm" },
      ...judgeKey.mounts,
    ],
  };
  const attemptLabels = { [ATTEMPT_LABEL]: String(attempt) };
  const built: V1Job = {
    apiVersion: "batch/v1",
    kind: "Job",
    // The queue label on the Job only: Kueue admits the Job as one Workload (its pods are the Job's).
    metadata: meta(run, jobName, "trainer", { ...attemptLabels, ...queueLabel(run) }),
    spec: {
      completionMode: "Indexed",
      completions: nodes,
      parallelism: nodes,
      // Gang semantics: one failed pod fails the Job; the operator restarts the whole group.
      backoffLimit: 0,
      suspend: trainerSuspend(run, true),
      ...(t.ttlSecondsAfterFinished !== undefined
        ? { ttlSecondsAfterFinished: t.ttlSecondsAfterFinished }
        : {}),
      template: {
        metadata: { labels: { ...labels(name, "trainer", { [RUN_LABEL]: name }), ...attemptLabels } },
        spec: {
          restartPolicy: "Never",
          subdomain: names.trainerService(name),
          automountServiceAccountToken: false,
          ...defaultPullSecrets(images),
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 1000,
            fsGroup: 1000,
            seccompProfile: { type: "RuntimeDefault" },
          },
          ...(t.nodeSelector ? { nodeSelector: t.nodeSelector as Record<string, string> } : {}),
          ...(t.tolerations ? { tolerations: t.tolerations as V1Toleration[] } : {}),
          containers: [container],
          volumes: [
            ...runVolumes(name),
            checkpointVolume(run),
            { name: "dshm", emptyDir: { medium: "Memory" } },
            ...judgeKey.volumes,
          ],
        },
      },
    },
  };
  built.spec!.template = applyPodOverrides(
    built.spec!.template,
    "trainer",
    ["trainer"],
    t.podOverrides as PodOverrides | undefined,
  );
  return built;
}
