// The operator's flags and environment (L0_OPERATOR_*), shared by the command and the program.
import { LOG_CONFIG, defineConfig } from "../lib/config.js";
import { BUILTIN_IMAGES } from "./images.js";

export const OPERATOR_CONFIG = defineConfig({
  kubeconfig: {
    type: "string",
    description: "kubeconfig file; unset = in-cluster config, else $KUBECONFIG or ~/.kube/config",
  },
  namespace: { type: "string", description: "Watch only this namespace (default: all namespaces)" },
  metricsPort: {
    type: "int",
    default: 8080,
    min: 0,
    max: 65535,
    description: "Port of /metrics, /healthz and /readyz",
  },
  leaderElect: {
    type: "bool",
    default: true,
    description: "Campaign for the leader Lease (one active replica)",
  },
  leaseNamespace: {
    type: "string",
    default: "l0-system",
    description: "Namespace of the leader Lease (the operator's own)",
  },
  leaseName: { type: "string", default: "l0-operator", description: "Name of the leader Lease" },
  leaseDuration: { type: "duration", default: "15s", description: "How long a lease holds without renewal" },
  renewDeadline: {
    type: "duration",
    default: "10s",
    description: "Leader gives up after failing to renew this long",
  },
  retryPeriod: {
    type: "duration",
    default: "2s",
    description: "Interval of lease renewals and takeover attempts",
  },
  resync: {
    type: "duration",
    default: "10m",
    description: "Re-reconcile every object this often (no writes when nothing changed)",
  },
  concurrency: {
    type: "int",
    default: 4,
    min: 1,
    max: 64,
    description: "Concurrent reconciles per controller",
  },
  statsInterval: {
    type: "duration",
    default: "15s",
    description: "How often a running run's hub Stats are read",
  },
  defaultTrainerImage: {
    type: "string",
    default: BUILTIN_IMAGES.trainer,
    description: "Trainer image for runs that set no spec.trainer.image",
  },
  defaultWorkerImage: {
    type: "string",
    default: BUILTIN_IMAGES.worker,
    description: "Worker image for pools (and inline workers) that set no image",
  },
  defaultSidecarImage: {
    type: "string",
    default: BUILTIN_IMAGES.sidecar,
    description: "Weight-sync sidecar image for runs that set no spec.inference.sidecarImage",
  },
  defaultImagePullSecrets: {
    type: "string",
    default: "",
    description: "Comma-separated Secrets every run pod pulls its images with (the chart's imagePullSecrets)",
  },
  ...LOG_CONFIG,
});
