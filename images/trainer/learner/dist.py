"""One learner across several processes (torch.distributed): the rank layout from torchrun's
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), the process group, and the
lockstep that makes every rank run each Trainer call rank 0 receives.

Rank 0 serves the gRPC Learner (and the CPU engine); it sends each call (`train`, `sft`, `save`,
`load`, `export`) to the other ranks with a broadcast before running it, and they run the same
call on the same arguments: each takes its share of the micro-batches and the gradients are summed
across ranks (trainer.py). Every collective has the group's timeout, and a rank that dies breaks
the others' next collective (gloo: connection reset), so the attempt fails instead of hanging.
On CPU every rank holds the whole model (the DDP layout: gradients all-reduced, weights replicated);
checkpoints and exports are written by rank 0 and a loaded checkpoint is broadcast from it."""
from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Optional

import torch
import torch.distributed as tdist


@dataclass(frozen=True)
class Layout:
    rank: int
    world_size: int
    local_rank: int

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def layout_from_env(env=None) -> Layout:
    """torchrun's variables; none set = one process. A bad value fails naming the variable."""
    env = os.environ if env is None else env
    out = {}
    for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", None)):
        raw = env.get(name, "")
        try:
            out[name] = int(raw) if raw != "" else default
        except ValueError as e:
            raise ValueError(f"{name}: must be an integer, got {raw!r}") from e
    rank, world = out["RANK"], out["WORLD_SIZE"]
    if not (world >= 1 and 0 <= rank < world):
        raise ValueError(f"RANK {rank} / WORLD_SIZE {world}: need 0 <= RANK < WORLD_SIZE")
    if world > 1 and not (env.get("MASTER_ADDR") and env.get("MASTER_PORT")):
        raise ValueError("MASTER_ADDR and MASTER_PORT: required when WORLD_SIZE > 1")
    local = out["LOCAL_RANK"] if out["LOCAL_RANK"] is not None else rank
    return Layout(rank, world, local)


def init(layout: Layout, device: str, timeout_s: float) -> None:
    """Joins the process group (gloo on CPU, NCCL on CUDA); nothing for one process. `timeout_s`
    bounds every collective, the followers' wait for rank 0's next call included."""
    if not layout.distributed:
        return
    backend = "nccl" if device.startswith("cuda") else "gloo"
    tdist.init_process_group(backend, rank=layout.rank, world_size=layout.world_size,
                             timeout=timedelta(seconds=timeout_s))


def world() -> int:
    return tdist.get_world_size() if tdist.is_available() and tdist.is_initialized() else 1


def rank() -> int:
    return tdist.get_rank() if world() > 1 else 0


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if world() > 1:
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


def all_reduce_grads(params) -> None:
    """Sums every parameter's gradient over the ranks in one flat bucket (what DDP's reducer
    does per bucket); a parameter without a gradient on this rank contributes zeros."""
    if world() == 1:
        return
    params = [p for p in params if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    tdist.all_reduce(flat, op=tdist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset: offset + n].view_as(p).clone()
        offset += n


def broadcast_object(obj=None):
    """Rank 0's `obj` on every rank."""
    if world() == 1:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_state(trainer) -> None:
    """Rank 0's weights, optimizer state, version and step on every rank (after a load, at start)."""
    if world() == 1:
        return
    state = broadcast_object((trainer.model.state_dict(), trainer.optimizer.state_dict(),
                              trainer.version, trainer.step) if rank() == 0 else None)
    if rank() != 0:
        trainer.model.load_state_dict(state[0])
        trainer.optimizer.load_state_dict(state[1])
        trainer.version, trainer.step = state[2], state[3]
        trainer.reference = None


def refusals() -> tuple:
    """Errors every rank raises alike for the same call (checked before or after a collective
    they all reach): the call is refused and the group goes on."""
    from .batch import BatchError
    from .checkpoint import CheckpointError
    from .memory import StepTooLarge
    from .train import NonFiniteError

    return (BatchError, CheckpointError, NonFiniteError, StepTooLarge)


def _exit_broken(op: str, e: BaseException) -> None:
    sys.stderr.write(json.dumps({"level": "error", "message": "process group broken; exiting",
                                 "op": op, "error": repr(e), "rank": rank()}) + "\n")
    sys.stderr.flush()
    os._exit(1)


class Lockstep:
    """Rank 0's side: `run(op, *args)` sends the call to every rank, then runs it here. One call
    at a time (gRPC handlers run on several threads; the ranks must see the calls in one order).
    With several ranks, any error but a refusal means the ranks may have diverged or one is gone:
    `on_broken` ends the process (default: exit 1 at once), which fails the attempt; the
    operator's gang restart resumes from the last checkpoint."""

    def __init__(self, ops: dict, on_broken: Callable[[str, BaseException], None] = _exit_broken) -> None:
        self.ops = ops
        self.on_broken = on_broken
        self._lock = threading.Lock()

    def run(self, op: str, *args):
        with self._lock:
            if world() == 1:
                return self.ops[op](*args)
            try:
                broadcast_object((op, args))
                return self.ops[op](*args)
            except refusals():
                raise
            except Exception as e:  # noqa: BLE001 - see the class docstring
                self.on_broken(op, e)
                raise

    def stop(self) -> None:
        if world() > 1:
            broadcast_object(("stop", ()))


def follow(ops: dict, on_refused: Callable[[str, Exception], None]) -> None:
    """A follower's loop: run each call rank 0 sends until it sends `stop`. A refused call
    (bad batch, non-finite gradient) is refused on every rank alike, so the loop goes on; any
    other error, or a broken collective (rank 0 gone), raises."""
    while True:
        op, args = broadcast_object(None)
        if op == "stop":
            return
        try:
            ops[op](*args)
        except refusals() as e:
            on_refused(op, e)


def shutdown(layout: Optional[Layout]) -> None:
    if layout is not None and layout.distributed and tdist.is_initialized():
        tdist.destroy_process_group()
