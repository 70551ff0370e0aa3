// The inference engine's containers (spec.inference): vLLM or SGLang started on the weights
// directory the weight-sync sidecar maintains, and the init step that fetches the model's
// non-weight files (config.json, tokenizer) the sidecar copies into every version. Pure.
//
// Contracts checked in the engines' sources (not run here: no GPU; docs/engine-api.md says which):
// - vLLM: `return_token_ids` on /v1/completions and /v1/chat/completions (vllm-project/vllm PR
//   #22587, merged 2025-08) and the dev-mode `POST /collective_rpc {"method": "reload_weights"}`
//   route (PR #23075, merged 2025-08-18), registered only when `VLLM_SERVER_DEV_MODE=1`
//   (vllm/entrypoints/openai/api_server.py). `reload_weights` re-reads the path the server was
//   started with, so the engine serves `<weights>/current`, the sidecar's link to the newest version.
// - SGLang: `POST /update_weights_from_disk {"model_path"}` reloads from any directory; its
//   OpenAI routes return token ids only since sgl-project/sglang PR #30917 (2026-07:
//   `return_token_ids` on /v1/completions, streaming too; chat non-streaming only).
import { type V1Container, type V1EnvVar } from "@kubernetes/client-node";
import { type ResolvedTrainingRun } from "../../gen/crds/index.js";

type Inference = NonNullable<ResolvedTrainingRun["spec"]["inference"]>;

/** vLLM's OpenAI server image: ≥ 0.10.2 has return_token_ids and /collective_rpc; pinned, not latest. */
export const VLLM_IMAGE = "vllm/vllm-openai:v0.11.0";
/** Shared by the engine and the sidecar: the sidecar's --root (staging/, versions/, current). */
export const WEIGHTS_ROOT = "/weights";
/** The link the sidecar moves to each verified version; the engine is started on it. */
export const WEIGHTS_CURRENT = `${WEIGHTS_ROOT}/current`;
/** The model's non-weight files (config, tokenizer), fetched once per pod by the init step. */
export const MODEL_FILES_DIR = "/model";

/** A model given as a path on a volume (the run mounts it), not a Hugging Face id. */
export const isModelPath = (name: string): boolean => name.startsWith("/");
/** The built-in CPU models (learner/config.py BUILTIN_MODELS): no files to fetch, the learner writes complete versions. */
const isBuiltin = (name: string): boolean => name === "tiny" || name === "tiny-qwen2";

/** Where the sidecar finds the base model's non-weight files; none for the built-in model. */
export function baseModelDir(run: ResolvedTrainingRun): string | undefined {
  const name = run.spec.model.name;
  if (isBuiltin(name)) return undefined;
  return isModelPath(name) ? name : MODEL_FILES_DIR;
}

/** The engine's command line, after the wait for the first version (see engineContainer). */
export function engineArgs(run: ResolvedTrainingRun, i: Inference): string[] {
  const served = ["--served-model-name", run.spec.model.name];
  const extra = i.args ?? [];
  if (i.engine === "sglang")
    return [
      "python3",
      "-m",
      "sglang.launch_server",
      "--model-path",
      WEIGHTS_CURRENT,
      ...served,
      "--host",
      "0.0.0.0",
      "--port",
      String(i.port),
      "--tp",
      String(i.tensorParallel),
      // /metrics on the API port, which the sidecar relays to the chart's engine PodMonitor
      // (vLLM serves it without a flag).
      "--enable-metrics",
      ...extra,
    ];
  return [
    "vllm",
    "serve",
    WEIGHTS_CURRENT,
    ...served,
    "--host",
    "0.0.0.0",
    "--port",
    String(i.port),
    "--tensor-parallel-size",
    String(i.tensorParallel),
    ...extra,
  ];
}

/**
 * The engine waits for the sidecar's first version (`current/config.json`), then execs. Starting
 * on the link, not on the Hugging Face id, is what makes a reload load the new version.
 */
export function engineCommand(run: ResolvedTrainingRun, i: Inference): string[] {
  const wait = 'until [ -f "$0/config.json" ]; do sleep 2; done; exec "$@"';
  return ["/bin/sh", "-c", wait, WEIGHTS_CURRENT, ...engineArgs(run, i)];
}

export function engineEnv(i: Inference): V1EnvVar[] {
  const env: V1EnvVar[] = [{ name: "HOME", value: "/tmp" }];
  // vLLM registers /collective_rpc (the reload the sidecar calls) only in dev mode.
  if (i.engine === "vllm") env.push({ name: "VLLM_SERVER_DEV_MODE", value: "1" });
  return env;
}

/** Env giving the Hugging Face client the run's token, when the run names a Secret. */
export function hfTokenEnv(run: ResolvedTrainingRun): V1EnvVar[] {
  const ref = run.spec.model.tokenSecretRef;
  return ref ? [{ name: "HF_TOKEN", valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } }] : [];
}

/**
 * Init step of each inference pod for a Hugging Face model: the model's non-weight files at the
 * run's revision, with the engine image's own huggingface_hub client (the weights come from the
 * trainer). None for a model on a volume.
 */
export function modelFilesInit(
  run: ResolvedTrainingRun,
  image: string,
  securityContext: V1Container["securityContext"],
): V1Container | undefined {
  const m = run.spec.model;
  if (isModelPath(m.name) || isBuiltin(m.name)) return undefined;
  const script = [
    "import os",
    "from huggingface_hub import snapshot_download",
    "snapshot_download(repo_id=os.environ['L0_MODEL'], revision=os.environ['L0_MODEL_REVISION'],",
    "    local_dir=os.environ['L0_MODEL_DIR'],",
    "    allow_patterns=['*.json', '*.txt', '*.model', '*.tiktoken', '*.jinja'])",
  ].join("\n");
  return {
    name: "model-files",
    image,
    command: ["python3", "-c", script],
    env: [
      { name: "HOME", value: "/tmp" },
      { name: "L0_MODEL", value: m.name },
      { name: "L0_MODEL_REVISION", value: m.revision },
      { name: "L0_MODEL_DIR", value: MODEL_FILES_DIR },
      ...hfTokenEnv(run),
    ],
    securityContext,
    volumeMounts: [
      { name: "tmp", mountPath: "/tmp" },
      { name: "model-files", mountPath: MODEL_FILES_DIR },
    ],
  };
}
