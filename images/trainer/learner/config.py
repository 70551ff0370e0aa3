"""The learner's configuration: a dataclass, its argparse flags (each also read from
L0_LEARNER_<FLAG> in the environment), and the parts of the TrainingRun (`--run-config`, the
resolved run.json the operator mounts, checked against the CRD's schema at start) that set the
model, the loss and the device. Precedence: flag, environment, run config, then the learner's
own defaults below; the loss settings the CRD defines have no default here: without a run config
they come from the CRD's schema (runschema.defaults), so no CRD default is restated."""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, fields
from typing import List, Optional

from . import runschema

ENV_PREFIX = "L0_LEARNER_"
# The built-in CPU models (model.py's TinyGPT, qwen2.py's TinyQwen2); any other name is loaded
# with transformers.
BUILTIN_MODELS = ("tiny", "tiny-qwen2")


def is_builtin(model: str) -> bool:
    return model in BUILTIN_MODELS


@dataclass
class LearnerConfig:
    run_config: str = ""
    token_file: str = ""
    role: str = "learner"
    model: str = "tiny"
    host: str = "127.0.0.1"
    port: int = 0
    engine_host: str = "127.0.0.1"
    engine_port: int = 0  # -1 = no engine (GPU path: vLLM/SGLang serve)
    engine_max_batch: int = 64
    engine_batch_wait_ms: float = 10.0
    served_model_name: str = ""
    engine_require_token: bool = False  # the engine also wants the run token (Authorization: Bearer)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = -1  # /metrics, /healthz, /readyz; -1 = off, 0 = a free port
    device: str = ""  # cpu or cuda; "" = from the run (cuda when spec.trainer.gpusPerNode > 0), else cpu
    threads: int = 1
    sharding: str = "auto"  # auto: FSDP2 on CUDA with WORLD_SIZE > 1 when torch has it; fsdp2; replicate
    dist_timeout_s: float = 1800.0  # every torch.distributed collective (RANK/WORLD_SIZE from the environment)
    seed: int = 0
    # The tiny CPU model.
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 1024
    # Optimizer and loss: spec.algorithm sets these (None: not given by flag or environment).
    learning_rate: Optional[float] = None
    kl_coef: Optional[float] = None
    clip_low: Optional[float] = None
    clip_high: Optional[float] = None
    aggregation: Optional[str] = None
    old_logprobs: Optional[str] = None
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    micro_batch_tokens: int = 8192
    share_prefix: bool = True  # compute a prompt prefix the rows/requests share once (tiny model)
    # Supervised warm-start before serving.
    sft_data: str = ""
    sft_epochs: int = 1
    sft_batch_size: int = 16
    sft_learning_rate: float = 1e-3
    # Checkpoints and weights.
    load_dir: str = ""
    export_dir: str = ""
    min_version: int = 0
    weights_root: str = ""
    log_level: str = "info"


HELP = {
    "role": "learner: the gRPC Learner (+ the colocated CPU engine); inference: only the CPU engine, "
    "whose weights a weight-sync sidecar loads through POST /update_weights_from_disk (tiny model)",
    "run_config": "TrainingRun (JSON, or YAML when PyYAML is present) whose spec.model / spec.algorithm set defaults",
    "token_file": "file holding the run token every gRPC call must carry (required)",
    "model": ('"tiny" or "tiny-qwen2" (Qwen2 architecture) for a built-in CPU model, else a Hugging Face id '
              "or path (GPU path, needs transformers)"),
    "engine_port": "port of the OpenAI-compatible engine (CPU path; 0 = a free port, -1 = off)",
    "engine_batch_wait_ms": "after a request arrives, how long the engine waits for more to batch with it",
    "engine_require_token": "true: the engine also requires the run token (Authorization: Bearer), "
    "like vLLM's --api-key",
    "served_model_name": "model name the engine answers to (default: --model)",
    "aggregation": "token_mean or sequence_mean",
    "old_logprobs": "the PPO ratio's old log-probs: sampler (the engine's) or recompute (the trainer's own, "
    "before the update)",
    "device": "cpu or cuda (default: cuda when the run's spec.trainer.gpusPerNode > 0, else cpu); "
    "cuda without a usable GPU stops the learner at start",
    "micro_batch_tokens": "padded tokens per forward/backward; a batch is split to fit and gradients accumulated",
    "share_prefix": "true: Train/Sft compute the prompt prefix a micro-batch's rows share once, and the engine "
    "caches the system prompt's keys/values per policy version (tiny model; same numbers, less work)",
    "sft_data": "JSONL of demonstrations to warm-start on before serving: "
    '{"messages": [...]} or {"prompt_token_ids": [...], "response_token_ids": [...]}',
    "load_dir": "checkpoint directory to resume from at start",
    "dist_timeout_s": "with WORLD_SIZE > 1 (torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): "
    "the longest any collective may wait, the other ranks' wait for rank 0's next call included",
    "sharding": "with WORLD_SIZE > 1: fsdp2 shards weights, gradients, optimizer state and the KL reference "
    "over the ranks (torch.distributed.fsdp.fully_shard, torch >= 2.8; checkpoints in torch.distributed.checkpoint "
    "format); replicate keeps the whole model on every rank (gradients all-reduced); auto = fsdp2 on CUDA when "
    "this torch has it, else replicate",
    "export_dir": "default directory for ExportWeights",
    "weights_root": "--role inference: load only exported versions under this directory (the sidecar's root)",
    "min_version": "the policy version starts at least here, after --load-dir and the warm start (a restarted "
    "trainer passes one above every version its engines may hold, so no version number is reused)",
}
CHOICES = {
    "role": ["learner", "inference"],
    "device": ["cpu", "cuda"],
    "sharding": ["auto", "fsdp2", "replicate"],
    "aggregation": ["token_mean", "sequence_mean"],
    "old_logprobs": ["sampler", "recompute"],
    "log_level": ["error", "warn", "info", "debug"],
}

# TrainingRun spec.algorithm field -> config field.
ALGORITHM_FIELDS = {
    "learningRate": "learning_rate",
    "klCoef": "kl_coef",
    "clipLow": "clip_low",
    "clipHigh": "clip_high",
    "lossAggregation": "aggregation",
    "oldLogprobs": "old_logprobs",
}


def parse_bool(text: str) -> bool:
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {text!r}")


# Fields without a default here: their type.
TYPES = {"learning_rate": float, "kl_coef": float, "clip_low": float, "clip_high": float, "aggregation": str,
         "old_logprobs": str}


def _type(f):
    if f.name in TYPES:
        return TYPES[f.name]
    return parse_bool if isinstance(f.default, bool) else type(f.default)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="learner", description="L0 learner: policy-gradient gRPC service (+ CPU engine)")
    for f in fields(LearnerConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f"default {f.default!r}" if f.default is not None else "default: the run's spec.algorithm"
        p.add_argument(flag, type=_type(f), default=None, choices=CHOICES.get(f.name),
                       help=f"{HELP.get(f.name, f.name.replace('_', ' '))} (env {ENV_PREFIX}{f.name.upper()}, "
                            f"{default})")
    return p


def read_run_config(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        return json.loads(text)
    except ValueError:
        try:
            import yaml  # optional: the operator mounts JSON; `l0 learner` converts YAML first
        except ImportError as e:
            raise ValueError(f"{path}: not JSON (and PyYAML is not installed for YAML)") from e
        return yaml.safe_load(text)


def from_run(run: dict, source: str, schema: dict) -> dict:
    """The config values a resolved TrainingRun sets; ValueError naming every bad field."""
    spec = runschema.check_run(run, source, schema)
    out = {field: spec["algorithm"][k] for k, field in ALGORITHM_FIELDS.items()}
    out["model"] = spec["model"]["name"]
    out["device"] = "cuda" if spec["trainer"]["gpusPerNode"] > 0 else "cpu"
    return out


def standalone(schema: dict) -> dict:
    """No run config: the loss settings are the CRD's defaults, read from its schema."""
    algorithm = runschema.defaults(schema, "algorithm")
    return {field: algorithm[k] for k, field in ALGORITHM_FIELDS.items()}


def load_config(argv: Optional[List[str]] = None, env: Optional[dict] = None) -> LearnerConfig:
    env = os.environ if env is None else env
    args = vars(build_parser().parse_args(argv))
    schema = runschema.load_schema()
    run_path = args.get("run_config") or env.get(ENV_PREFIX + "RUN_CONFIG")
    values = from_run(read_run_config(run_path), run_path, schema) if run_path else standalone(schema)
    for f in fields(LearnerConfig):
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw is not None and raw != "":
            try:
                values[f.name] = _type(f)(raw)
            except ValueError as e:
                kind = "bool" if _type(f) is parse_bool else _type(f).__name__
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}: must be {kind}, got {raw!r}") from e
        if args.get(f.name) is not None:
            values[f.name] = args[f.name]
    cfg = LearnerConfig(**values)
    cfg.device = cfg.device or "cpu"
    for name, allowed in CHOICES.items():  # flags are checked by argparse; env and run config here
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"{name}: must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}")
    if cfg.role == "inference" and (not is_builtin(cfg.model) or cfg.engine_port < 0):
        raise ValueError("--role inference: serves a built-in CPU model (--model tiny or tiny-qwen2) "
                         "on --engine-port >= 0")
    if not cfg.token_file:
        raise ValueError(f"--token-file ({ENV_PREFIX}TOKEN_FILE): is required")
    return cfg
