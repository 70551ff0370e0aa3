"""Will a training step fit on the GPU? A pure estimate from the parameter count, the largest
micro-batch, the model's shape and the world size, checked before the step runs so that a batch
that cannot fit is refused with the knob to turn instead of dying in an out-of-memory error
halfway through the ranks. The estimate is coarse (within a factor of ~2): fp32 master weights,
gradients and AdamW state (16 bytes per parameter, divided over the ranks when sharded), bf16
activations (per token and layer: the layer input with activation checkpointing, or ~34 hidden
widths without it, after Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
Transformer Models"), and the fp32 logits and log-softmax over the vocabulary. It leaves out
fragmentation, the CUDA context and the engine's KV cache (the learner has none on the GPU path).
The CPU path has no check (its memory is the pod's limit, which the kernel enforces)."""
from __future__ import annotations

from dataclasses import dataclass

STATE_BYTES_PER_PARAM = 16  # fp32 weight + fp32 gradient + AdamW exp_avg + exp_avg_sq
REFERENCE_BYTES_PER_PARAM = 2  # the KL reference, kept in bf16 on the GPU path (train.py)
HEADROOM = 0.9  # of the card's memory: the CUDA context, allocator caches, fragmentation


@dataclass(frozen=True)
class Shape:
    parameters: int
    layers: int
    hidden: int
    vocab: int


class StepTooLarge(ValueError):
    """The step's estimated memory exceeds the device's: refused before it runs."""


def state_bytes(shape: Shape, shards: int, reference: bool) -> int:
    """What every step holds: weights, gradients, AdamW state, and the KL reference when used."""
    per_param = STATE_BYTES_PER_PARAM + (REFERENCE_BYTES_PER_PARAM if reference else 0)
    return shape.parameters * per_param // max(shards, 1)


def step_bytes(shape: Shape, tokens: int, shards: int, checkpointing: bool, reference: bool = False) -> int:
    state = state_bytes(shape, shards, reference)
    per_token_layer = 2 * shape.hidden * (1 if checkpointing else 34)
    activations = tokens * shape.layers * per_token_layer
    if checkpointing:  # one layer's activations are recomputed at a time
        activations += tokens * 2 * shape.hidden * 34
    logits = tokens * shape.vocab * 4 * 3  # fp32 logits, log-softmax, gradient
    return state + activations + logits


def check_fits(shape: Shape, tokens: int, shards: int, checkpointing: bool, device_bytes: int,
               reference: bool = False) -> None:
    """Raises StepTooLarge naming the knobs when the step cannot fit in `device_bytes`."""
    need = step_bytes(shape, tokens, shards, checkpointing, reference)
    have = int(device_bytes * HEADROOM)
    if need <= have:
        return
    gib = 1 << 30
    state = state_bytes(shape, shards, reference)
    if state > have:
        kl = " and the KL reference (spec.algorithm.klCoef > 0)" if reference else ""
        raise StepTooLarge(
            f"the model's weights, gradients and optimizer state{kl} alone need ~{state / gib:.1f} GiB per GPU "
            f"({shape.parameters:,} parameters over {shards} shard(s)), more than the {have / gib:.1f} GiB usable: "
            "give the trainer more GPUs (spec.trainer.nodes, spec.trainer.gpusPerNode)")
    raise StepTooLarge(
        f"a micro-batch of {tokens} tokens needs ~{need / gib:.1f} GiB per GPU, more than the {have / gib:.1f} GiB "
        "usable: lower --micro-batch-tokens (L0_LEARNER_MICRO_BATCH_TOKENS), or shorten the turns "
        "(spec.agent.contextBudget, spec.agent.maxTokensPerTurn)")
