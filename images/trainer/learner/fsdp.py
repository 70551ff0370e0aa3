"""The sharded layout (FSDP2, PyTorch's `fully_shard`, the way torchtitan applies it): each
transformer block and then the root become their own FSDP unit, so a rank holds 1/world of every
parameter, gradient and AdamW state, all-gathers one block's weights for its forward and backward
and reduce-scatters its gradients. The KL reference is a second module sharded the same way (its
shards copied from the policy's), never a full copy. Needs torch >= 2.8 (`fully_shard`, DTensor,
torch.distributed.checkpoint.state_dict); Debian's torch 1.13 has none of it and keeps the
replicated layout (dist.py). On CUDA the all-gathered weights are bf16 and the gradients are
reduced in fp32 (MixedPrecisionPolicy); on CPU (tests) everything is fp32."""
from __future__ import annotations

import copy
import warnings
from typing import List, Optional

import torch
import torch.nn as nn

from .config import CHOICES

MODES = tuple(CHOICES["sharding"])


def available() -> bool:
    """Whether this torch has FSDP2 (public since 2.6), the state-dict APIs checkpoints need, and
    summed reductions without PREMUL_SUM (`set_force_sum_reduction_for_comms`, torch 2.8,
    pytorch/pytorch#155915; xtuner pairs it with a divide factor of 1 the same way)."""
    try:
        from torch.distributed.checkpoint.state_dict import get_state_dict  # noqa: F401
        from torch.distributed.fsdp import FSDPModule, fully_shard  # noqa: F401
    except ImportError:
        return False
    return hasattr(FSDPModule, "set_force_sum_reduction_for_comms") and hasattr(torch.nn.utils, "get_total_norm")


def use_fsdp2(mode: str, device: str, world_size: int, has_fsdp2: bool, engine: bool) -> bool:
    """The layout decision, the same on every rank (the same flags, torch and world): `auto`
    shards on CUDA with several ranks when torch can and no built-in engine serves from rank 0
    (it needs the whole model there); `fsdp2` insists (any device: tests use gloo CPU ranks);
    `replicate` never shards."""
    if mode not in MODES:
        raise ValueError(f"sharding: unknown {mode!r} (one of {', '.join(MODES)})")
    if mode == "fsdp2":
        if not has_fsdp2:
            raise ValueError(f"sharding fsdp2: torch {torch.__version__} has no torch.distributed.fsdp.fully_shard "
                             "(needs torch >= 2.8)")
        if engine:
            raise ValueError("sharding fsdp2: the built-in engine runs on rank 0 alone and cannot serve a sharded "
                             "model; use --engine-port -1 (vLLM/SGLang serve) or --sharding replicate")
        return True
    return mode == "auto" and has_fsdp2 and world_size > 1 and device.startswith("cuda") and not engine


def blocks(model: nn.Module) -> List[nn.Module]:
    """The transformer blocks: TinyGPT's `blocks`, TinyQwen2's and transformers' `model.layers`."""
    inner = getattr(model, "lm", model)
    for path in ("blocks", "model.layers", "layers", "transformer.h"):
        m = inner
        for part in path.split("."):
            m = getattr(m, part, None)
        if isinstance(m, nn.ModuleList) and len(m) > 0:
            return list(m)
    raise ValueError(f"sharding fsdp2: no transformer blocks found in {type(inner).__name__}")


def skeleton(model: nn.Module) -> nn.Module:
    """A copy of the (unsharded) model on the meta device: its structure without its memory,
    from which the sharded reference is built later."""
    memo = {}
    for t in list(model.parameters()) + list(model.buffers()):
        meta = t.detach().to("meta")
        memo[id(t)] = nn.Parameter(meta, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(model, memo)


class Sharding:
    """Applies FSDP2 to the policy and builds references sharded the same way."""

    def __init__(self, model: nn.Module, device: str) -> None:
        import torch.distributed as tdist
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy

        cuda = device.startswith("cuda")
        self.device = device
        # fully_shard's default mesh is CUDA whenever CUDA is present; the learner's device decides.
        self.mesh = init_device_mesh(torch.device(device).type, (tdist.get_world_size(),))
        self.mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if cuda \
            else MixedPrecisionPolicy()
        self.reference_dtype = torch.bfloat16 if cuda else None
        self._skeleton = skeleton(model)  # before sharding: the reference's template
        # The blocks return their keys/values (views) beside the activations; nothing modifies
        # them in place, which is what FSDP2's warning is about.
        warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
        self._shard(model)
        self.model = model

    def _shard(self, model: nn.Module) -> None:
        from torch.distributed.fsdp import fully_shard

        units = blocks(model)
        for b in units:
            fully_shard(b, mesh=self.mesh, mp_policy=self.mp)
        fully_shard(model, mesh=self.mesh, mp_policy=self.mp)
        # The loss weights are the whole batch's, so the ranks' gradients must be summed (FSDP
        # averages by default), as the replicated layout's all-reduce does. A plain SUM (not
        # NCCL's PREMUL_SUM, which gloo lacks): with a factor of 1 nothing is scaled.
        for m in units + [model]:
            m.set_gradient_divide_factor(1.0)
            m.set_force_sum_reduction_for_comms(True)

    def reference(self) -> nn.Module:
        """A frozen copy of the policy's current weights, sharded like it (same units, same
        world): each rank copies its own shards, nothing is gathered."""
        ref = copy.deepcopy(self._skeleton)
        if self.reference_dtype is not None:
            ref = ref.to(self.reference_dtype)
        self._shard(ref)
        ref = ref.to_empty(device=self.device)
        with torch.no_grad():
            for (n, r), (_, p) in zip(ref.named_parameters(), self.model.named_parameters()):
                r.to_local().copy_(p.to_local())
            for r, b in zip(ref.buffers(), self.model.buffers()):
                r.copy_(b)
        return ref.eval().requires_grad_(False)


def grad_norm_and_clip(params, max_norm: float) -> float:
    """clip_grad_norm_ over sharded gradients: the total norm is a DTensor reduced over the ranks
    (torchtitan's clip_grad_norm_), then every shard is scaled by the same factor."""
    from torch.distributed.tensor import DTensor

    grads = [p.grad for p in params if p.grad is not None]
    total = torch.nn.utils.get_total_norm(grads, 2.0)
    if isinstance(total, DTensor):
        total = total.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return float(total)


def full_state_dict(model: nn.Module) -> Optional[dict]:
    """Every rank takes part; rank 0 gets the whole model's tensors on CPU, the others None."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return sd or None
