"""A training batch as plain data: conversion from the proto, validation that names the bad
field (run BEFORE the model is touched), and packing into micro-batches under a token budget.
Pure functions, table-tested."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

Violation = Tuple[str, str]


class BatchError(ValueError):
    """A malformed batch; `violations` are (field, description) pairs."""

    def __init__(self, violations: List[Violation]) -> None:
        super().__init__("; ".join(f"{f}: {d}" for f, d in violations))
        self.violations = violations


@dataclass
class Sample:
    sample_id: str
    prompt: List[int]
    response: List[int]
    sampler_logprobs: List[float]
    mask: List[int]
    advantage: float
    group: str


def from_proto(samples) -> List[Sample]:
    """TrainSample messages -> Samples. An empty mask means all ones; an empty trajectory_id
    makes the sample its own group."""
    out = []
    for i, s in enumerate(samples):
        resp = list(s.response_token_ids)
        out.append(
            Sample(
                sample_id=s.sample_id or str(i),
                prompt=list(s.prompt_token_ids),
                response=resp,
                sampler_logprobs=list(s.sampler_logprobs),
                mask=list(s.response_mask) if len(s.response_mask) else [1] * len(resp),
                advantage=float(s.advantage),
                group=s.trajectory_id or f"sample:{s.sample_id or i}",
            )
        )
    return out


def validate(samples: Sequence[Sample], vocab_size: int, block_size: int, rl: bool = True) -> List[Violation]:
    """Every problem of the batch at once, as (field, description). rl=False (supervised) does not
    look at sampler logprobs or advantages."""
    if not samples:
        return [("samples", "must not be empty")]
    v: List[Violation] = []
    for i, s in enumerate(samples):
        f = f"samples[{i}]"
        n = len(s.response)
        if not s.prompt:
            v.append((f"{f}.prompt_token_ids", "must not be empty (the first response token needs a context)"))
        if n == 0:
            v.append((f"{f}.response_token_ids", "must not be empty"))
        bad = next((t for t in s.prompt + s.response if t >= vocab_size), None)
        if bad is not None:
            v.append((f"{f}.token_ids", f"token id {bad} is outside the model's vocabulary ({vocab_size})"))
        if len(s.prompt) + n > block_size:
            v.append((f, f"prompt + response is {len(s.prompt) + n} tokens, over the model's context {block_size}"))
        if len(s.mask) != n:
            v.append((f"{f}.response_mask", f"has {len(s.mask)} entries, response_token_ids has {n}"))
        elif any(m not in (0, 1) for m in s.mask):
            v.append((f"{f}.response_mask", "entries must be 0 or 1"))
        if not rl:
            continue
        if len(s.sampler_logprobs) != n:
            v.append((f"{f}.sampler_logprobs", f"has {len(s.sampler_logprobs)} entries, response_token_ids has {n}"))
        elif any(not math.isfinite(x) or x > 1e-4 for x in s.sampler_logprobs):
            v.append((f"{f}.sampler_logprobs", "must be finite and <= 0"))
        if not math.isfinite(s.advantage):
            v.append((f"{f}.advantage", f"must be finite, got {s.advantage}"))
    if not v and rl and sum(sum(s.mask) for s in samples) == 0:
        v.append(("samples", "no trained token: every response_mask is all zeros"))
    return v


def common_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every sequence shares (0 for none or an empty list)."""
    if not seqs:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        i = 0
        while i < n and s[i] == first[i]:
            i += 1
        n = i
    return n


def pack(lengths: Sequence[int], budget: int) -> List[List[int]]:
    """Indices grouped into micro-batches whose padded size (rows x longest row) stays within
    `budget` tokens; a row longer than the budget gets a micro-batch of its own. Longest first,
    so rows of similar length share padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    out: List[List[int]] = []
    cur: List[int] = []
    for i in order:
        longest = lengths[cur[0]] if cur else lengths[i]
        if cur and longest * (len(cur) + 1) > budget:
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out
