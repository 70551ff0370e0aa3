"""The policy-gradient loss, in the order of TRL's GRPOTrainer._compute_loss:

  per-token logprobs under the current policy -> ratio against the sampler's logprobs ->
  PPO clipped surrogate with separate low/high clip (DAPO's clip-higher) -> k3 KL estimator to
  the frozen reference, times its coefficient -> response mask -> aggregation.

Aggregation is expressed as per-token weights over the WHOLE batch (token_weights), so a batch
split into micro-batches sums to exactly the full-batch loss.

Left out on purpose: a value function / GAE (advantages come from the hub), an entropy bonus,
truncated importance sampling for sampler/learner numeric mismatch, sequence-level (GSPO)
ratios, dual-clip, and Dr.GRPO's constant normalizer."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

TOKEN_MEAN = "token_mean"
SEQUENCE_MEAN = "sequence_mean"


def token_weights(mask: torch.Tensor, groups: Sequence[str], aggregation: str) -> torch.Tensor:
    """Weights w (N,T) with loss = sum(w * per_token_loss).

    token_mean: every unmasked token of the batch weighs the same, 1/#tokens.
    sequence_mean: each group (a trajectory; its turns are the rows sharing a key) weighs the
    same, split evenly over its unmasked tokens. Groups without trained tokens are not counted."""
    mask = mask.float()
    if aggregation == TOKEN_MEAN:
        return mask / mask.sum().clamp(min=1.0)
    if aggregation != SEQUENCE_MEAN:
        raise ValueError(f"aggregation: unknown {aggregation!r}")
    per_row = mask.sum(1)
    totals: Dict[str, float] = {}
    for g, n in zip(groups, per_row.tolist()):
        totals[g] = totals.get(g, 0.0) + n
    live = sum(1 for n in totals.values() if n > 0)
    denom = torch.tensor([max(totals[g], 1.0) * max(live, 1) for g in groups], dtype=mask.dtype)
    return mask / denom.unsqueeze(1).to(mask.device)


def policy_loss(
    logprobs: torch.Tensor,
    sampler_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    clip_low: float,
    clip_high: float,
    kl_coef: float = 0.0,
    ref_logprobs: Optional[torch.Tensor] = None,
) -> Dict[str, torch.Tensor]:
    """All tensors (N,T) except advantages (N,) or (N,T). weights come from token_weights (zero
    on masked and padding tokens). Returns the weighted loss (differentiable) and its parts:
    policy_loss and kl (weighted like the loss), clipped (count of clipped trained tokens)."""
    adv = advantages if advantages.dim() == 2 else advantages.unsqueeze(1)
    ratio = torch.exp(logprobs - sampler_logprobs)
    clipped_ratio = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    pg = -torch.min(ratio * adv, clipped_ratio * adv)
    per_token = pg
    kl = torch.zeros_like(pg)
    if ref_logprobs is not None:
        d = ref_logprobs - logprobs
        kl = torch.exp(d) - d - 1.0  # k3: unbiased, always >= 0
        per_token = pg + kl_coef * kl
    is_clipped = ((ratio < 1.0 - clip_low) & (adv < 0)) | ((ratio > 1.0 + clip_high) & (adv > 0))
    trained = weights > 0
    return {
        "loss": (per_token * weights).sum(),
        "policy_loss": (pg * weights).sum().detach(),
        "kl": (kl * weights).sum().detach(),
        "clipped": (is_clipped & trained).sum().detach(),
    }
