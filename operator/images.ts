// Images the operator uses for runs and pools that do not name one (the chart passes them as
// L0_OPERATOR_DEFAULT_{TRAINER,WORKER,SIDECAR}_IMAGE, pinned to its appVersion). The CRDs give
// these fields no default, so an object that leaves them out follows the operator's version.
export interface DefaultImages {
  trainer: string;
  worker: string;
  sidecar: string;
  /** Secrets every run pod pulls its images with (chart value imagePullSecrets), besides a role's podOverrides. */
  pullSecrets?: readonly string[];
}

/** The pod's imagePullSecrets from the operator's defaults (none: no field). */
export const defaultPullSecrets = (images: DefaultImages) =>
  images.pullSecrets?.length ? { imagePullSecrets: images.pullSecrets.map((name) => ({ name })) } : {};

/** Used when the operator runs without the chart's settings (tests, `l0 local`). */
export const BUILTIN_IMAGES: DefaultImages = {
  trainer: "ghcr.io/l0-operator/trainer:0.1.0",
  worker: "ghcr.io/l0-operator/worker:0.1.0",
  sidecar: "ghcr.io/l0-operator/inference-sidecar:0.1.0",
};
