"""Checkpoints: model, optimizer, frozen reference, version, step and RNG states: tensors in
`checkpoint.pt` (loaded with weights_only, so a checkpoint cannot run code; torch 1.13's safe
unpickler takes no floats, so the rest lives in `meta.json`), written into a temporary sibling
directory and renamed into place, so a reader never sees a half-written checkpoint and resuming
gives the same next step as not stopping (atomic_dir.py). The sharded (FSDP2) layout writes torch.distributed.checkpoint
directories instead (checkpoint_dcp.py, `meta.json` format "dcp"); `load` reads either."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Optional, Tuple

import torch

from . import atomic_dir

FORMAT = 1
FILE = "checkpoint.pt"


def model_config(trainer) -> dict:
    """The model's architecture as saved with a checkpoint and checked on load ({} for TinyGPT)."""
    c = getattr(trainer.model, "config", None)
    return c.to_dict() if hasattr(c, "to_dict") else {}


def rng_state(engine_gen: Optional[torch.Generator]) -> dict:
    """The RNG states a checkpoint keeps, so a resumed run samples as one that never stopped."""
    return {"torch_rng": torch.get_rng_state(),
            "engine_rng": torch.empty(0, dtype=torch.uint8) if engine_gen is None else engine_gen.get_state()}


def restore_rng(state: dict, engine_gen: Optional[torch.Generator]) -> None:
    torch.set_rng_state(state["torch_rng"].cpu())
    if engine_gen is not None and state["engine_rng"].numel() > 0:
        engine_gen.set_state(state["engine_rng"].cpu())


def save(trainer, directory: str, engine_gen: Optional[torch.Generator] = None) -> Path:
    """Writes the trainer's state to `directory` (replacing an older checkpoint there). Sharded,
    every rank calls this and writes its shards; replicated, rank 0 alone does."""
    if getattr(trainer, "sharding", None) is not None:
        from . import checkpoint_dcp

        return checkpoint_dcp.save(trainer, directory, engine_gen)
    target = Path(directory).resolve()
    with trainer.writing():
        opt = trainer.optimizer.state_dict()
        tensors = {
            "model": trainer.model.state_dict(),
            "optimizer_state": opt["state"],
            "reference": {} if trainer.reference is None else trainer.reference.state_dict(),
            **rng_state(engine_gen),
        }
        meta = {
            "format": FORMAT,
            "model": trainer.model_name,
            "model_config": model_config(trainer),
            "version": trainer.version,
            "step": trainer.step,
            "has_reference": trainer.reference is not None,
            "optimizer_param_groups": opt["param_groups"],
        }
        with atomic_dir.replacing(target) as tmp:
            torch.save(tensors, tmp / FILE)
            (tmp / "meta.json").write_text(json.dumps(meta) + "\n")
    return target


def _format(meta_path: Path):
    try:
        return json.loads(meta_path.read_text()).get("format")
    except (OSError, ValueError, AttributeError) as e:
        raise CheckpointError(f"dir: cannot read {meta_path}: {e}") from e


class CheckpointError(ValueError):
    """The directory holds no usable checkpoint for this model; the trainer is unchanged."""


def load(trainer, directory: str, engine_gen: Optional[torch.Generator] = None) -> Tuple[int, int]:
    """Restores the trainer from `directory`; returns (version, step). Everything is read and
    checked before anything is changed. A "dcp" checkpoint needs a torch with
    torch.distributed.checkpoint, and every rank of a sharded learner calls this."""
    atomic_dir.recover(Path(directory))
    path = Path(directory) / FILE
    meta_path = Path(directory) / "meta.json"
    if meta_path.is_file() and _format(meta_path) == "dcp":
        from . import checkpoint_dcp, fsdp

        if not fsdp.available():
            raise CheckpointError(f"dir: {directory} is a torch.distributed.checkpoint checkpoint; torch "
                                  f"{torch.__version__} cannot read it (needs torch >= 2.8)")
        return checkpoint_dcp.load(trainer, directory, json.loads(meta_path.read_text()), engine_gen)
    if getattr(trainer, "sharding", None) is not None:
        raise CheckpointError(f"dir: {directory} holds no sharded (dcp) checkpoint; a sharded learner loads only those")
    if not path.is_file() or not meta_path.is_file():
        raise CheckpointError(f"dir: no {FILE} + meta.json in {directory}")
    try:
        meta = json.loads((Path(directory) / "meta.json").read_text())
        state = torch.load(path, map_location=trainer.device, weights_only=True)
    except Exception as e:  # a corrupt or foreign file
        raise CheckpointError(f"dir: cannot read {directory}: {e}") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"dir: checkpoint format {meta.get('format')} is not {FORMAT}")
    mine = model_config(trainer)
    if meta.get("model_config") != mine:
        raise CheckpointError(f"dir: checkpoint model {meta.get('model_config')} does not match this learner's {mine}")
    with trainer.writing():
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(
            {"state": state["optimizer_state"], "param_groups": meta["optimizer_param_groups"]}
        )
        if not meta["has_reference"]:
            trainer.reference = None
        else:
            ref = copy.deepcopy(trainer.model)
            ref.load_state_dict(state["reference"])
            trainer.reference = ref.eval().requires_grad_(False)
        trainer.version = int(meta["version"])
        trainer.step = int(meta["step"])
        restore_rng(state, engine_gen)
    return trainer.version, trainer.step
