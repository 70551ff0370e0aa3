"""Sharded checkpoints (the FSDP2 layout): torch.distributed.checkpoint writes each rank's shards
of the policy, its AdamW state and the KL reference into one directory (`.metadata` plus one file
per rank), so nothing is gathered and a checkpoint loads on any world size (DCP reshards on load),
a plain unsharded model included. Rank 0 adds `meta.json` (`format: "dcp"`), the RNG states
(`rng.pt`) and a `COMPLETE` marker, then renames the temporary directory into place, so a reader
never sees a half-written checkpoint. Every rank takes part in `save` and `load`; with several
pods the directory must be storage they all see (the run's checkpoint volume)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Tuple

import torch

from . import atomic_dir, dist
from .checkpoint import CheckpointError, model_config, restore_rng, rng_state

FORMAT = "dcp"
COMPLETE = "COMPLETE"


def _state(trainer, reference) -> dict:
    """What DCP saves, or the shapes it loads into (this rank's shards, as DTensors when sharded)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

    model, optim = get_state_dict(trainer.model, trainer.optimizer)
    state = {"model": model, "optimizer": optim}
    if reference is not None:
        state["reference"] = get_model_state_dict(reference)
    return state


def save(trainer, directory: str, engine_gen: Optional[torch.Generator] = None) -> Path:
    import torch.distributed.checkpoint as dcp

    target = Path(directory).resolve()
    with trainer.writing():
        tmp = None
        if dist.rank() == 0:
            tmp = str(atomic_dir.temp_sibling(target))
        tmp = Path(dist.broadcast_object(tmp))
        try:
            dcp.save(_state(trainer, trainer.reference), checkpoint_id=str(tmp))
            if dist.rank() == 0:
                _finish(trainer, tmp, target, engine_gen)
        except BaseException:
            if dist.rank() == 0:
                atomic_dir.discard(tmp)
            raise
        dist.broadcast_object(None)  # every rank returns once the checkpoint is in place
    return target


def _finish(trainer, tmp: Path, target: Path, engine_gen) -> None:
    torch.save(rng_state(engine_gen), tmp / "rng.pt")
    meta = {"format": FORMAT, "model": trainer.model_name, "model_config": model_config(trainer),
            "version": trainer.version, "step": trainer.step, "has_reference": trainer.reference is not None,
            "world_size": dist.world()}
    (tmp / "meta.json").write_text(json.dumps(meta) + "\n")
    (tmp / COMPLETE).write_text("")
    atomic_dir.publish(tmp, target)


def load(trainer, directory: str, meta: dict, engine_gen: Optional[torch.Generator] = None) -> Tuple[int, int]:
    """Restores the trainer from a DCP checkpoint whose meta.json is `meta`: sharded, every rank
    reads its own shards (on any world size; the checks come first and fail alike on every rank);
    replicated, the caller's rank reads the whole model."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_state_dict

    root = Path(directory)
    if not (root / COMPLETE).is_file():
        raise CheckpointError(f"dir: {directory} has no {COMPLETE} marker (an interrupted save)")
    if meta.get("model_config") != model_config(trainer):
        raise CheckpointError(f"dir: checkpoint model {meta.get('model_config')} does not match this "
                              f"learner's {model_config(trainer)}")
    with trainer.writing():
        reference = trainer._frozen_copy() if meta["has_reference"] else None
        state = _state(trainer, reference)
        try:
            # Replicated, rank 0 alone reads (and then broadcasts): no collectives with the others.
            dcp.load(state, checkpoint_id=str(root), no_dist=trainer.sharding is None)
            rng = torch.load(root / "rng.pt", weights_only=True)
        except Exception as e:  # a corrupt or foreign directory
            raise CheckpointError(f"dir: cannot read {directory}: {e}") from e
        set_state_dict(trainer.model, trainer.optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optimizer"])
        if reference is not None:
            set_model_state_dict(reference, state["reference"])
        trainer.reference = reference
        trainer.version, trainer.step = int(meta["version"]), int(meta["step"])
        restore_rng(rng, engine_gen)
    return trainer.version, trainer.step
