"""The Trainer: one policy, its AdamW optimizer, the frozen reference, and the policy version.
`train` is one policy-gradient optimizer step on a validated batch (micro-batched to a token
budget, gradients accumulated, clipped); `sft` is one supervised cross-entropy step for the
warm-start. A bad batch or a non-finite gradient leaves the model and optimizer untouched."""
from __future__ import annotations

import copy
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from . import dist
from . import loss as L
from .batch import BatchError, Sample, common_prefix_length, pack, validate
from .model import entropy, has_kv_cache, token_logprobs


@dataclass
class TrainSettings:
    """Complete, from the learner's config (no defaults here: config.py and the CRD have them)."""
    learning_rate: float
    weight_decay: float
    kl_coef: float
    clip_low: float
    clip_high: float
    aggregation: str
    old_logprobs: str  # "sampler" or "recompute"
    max_grad_norm: float
    micro_batch_tokens: int


class NonFiniteError(RuntimeError):
    """The step produced a NaN/inf loss or gradient; it was not applied."""


def check_settings(s: TrainSettings) -> List[tuple]:
    v = []
    if not (s.learning_rate > 0 and math.isfinite(s.learning_rate)):
        v.append(("loss.learning_rate", f"must be > 0, got {s.learning_rate}"))
    if not (0 <= s.clip_low <= 1):
        v.append(("loss.clip_low", f"must be in [0, 1], got {s.clip_low}"))
    if not (0 <= s.clip_high <= 10):
        v.append(("loss.clip_high", f"must be in [0, 10], got {s.clip_high}"))
    if not (s.kl_coef >= 0 and math.isfinite(s.kl_coef)):
        v.append(("loss.kl_coef", f"must be >= 0, got {s.kl_coef}"))
    if s.aggregation not in (L.TOKEN_MEAN, L.SEQUENCE_MEAN):
        v.append(("loss.aggregation", f"unknown {s.aggregation!r}"))
    if s.old_logprobs not in ("sampler", "recompute"):
        v.append(("loss.old_logprobs", f"unknown {s.old_logprobs!r}"))
    return v


# Below this many shared tokens the extra prefix pass is not worth it.
MIN_SHARED_PREFIX = 16


def _shared_prefix(rows: Sequence[Sample]) -> int:
    """Length of the token prefix every row's prompt starts with, kept short of the shortest
    prompt's last token: that token's output predicts the first response token, so it stays in
    each row's own pass."""
    return min(common_prefix_length([r.prompt for r in rows]), min(len(r.prompt) for r in rows) - 1)


def _padded(rows: Sequence[Sequence[float]], width: int, fill: float, dtype) -> torch.Tensor:
    out = torch.full((len(rows), width), fill, dtype=dtype)
    for i, r in enumerate(rows):
        if len(r):
            out[i, : len(r)] = torch.tensor(r, dtype=dtype)
    return out


class Trainer:
    def __init__(self, model, settings: TrainSettings, model_name: str, device: str = "cpu",
                 share_prefix: bool = True, autocast_bf16: bool = False,
                 check_memory: Optional[Callable[[int], None]] = None, sharding=None) -> None:
        """`autocast_bf16`: the forward runs under bf16 autocast while the weights, gradients and
        AdamW state stay fp32 (the GPU path); off, everything is fp32 (the CPU path).
        `sharding`: an fsdp.Sharding that has wrapped `model` (FSDP2), or None (replicated)."""
        self.model = model
        self.sharding = sharding
        self.autocast_bf16 = autocast_bf16
        # GPU path: raises memory.StepTooLarge for a micro-batch (padded tokens) that cannot fit.
        self.check_memory = check_memory
        # Sharded, every rank must run the same forwards (each all-gathers): one pass per micro-batch.
        self.share_prefix = share_prefix and sharding is None
        self.settings = settings
        self.model_name = model_name
        self.device = device
        # On CUDA the fused kernel: one launch per step, and no parameter-sized temporaries (the
        # default multi-tensor AdamW allocates some, ~4 bytes per parameter for a 7B model).
        fused = {"fused": True} if torch.device(device).type == "cuda" else {}
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay, **fused
        )
        self.reference: Optional[torch.nn.Module] = None
        self.version = 0
        self.step = 0
        # One writer or reader of the weights at a time: gRPC calls and the engine's batches.
        self.lock = threading.RLock()
        # Callers queued in writing(): the engine stops admitting requests to its running batch.
        self.writers_waiting = 0
        self._waiting = threading.Lock()

    @contextmanager
    def writing(self):
        """The weights lock, announced: the engine lets its running batch drain instead of
        keeping the lock with requests that keep arriving."""
        with self._waiting:
            self.writers_waiting += 1
        try:
            self.lock.acquire()
        finally:
            with self._waiting:
                self.writers_waiting -= 1
        try:
            yield
        finally:
            self.lock.release()

    def _forward(self, model, rows: List[Sample]) -> torch.Tensor:
        """Response logits, under bf16 autocast when configured (log-probs are taken in fp32)."""
        if not self.autocast_bf16:
            return self._response_logits(model, rows)
        with torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16):
            return self._response_logits(model, rows)

    def _frozen_copy(self) -> torch.nn.Module:
        """The KL reference. Under bf16 autocast it is stored in bf16 (the forward runs in bf16
        anyway): 2 bytes per parameter instead of 4, which memory.py counts. Sharded, it is
        sharded like the policy (fsdp.py)."""
        if self.sharding is not None:
            return self.sharding.reference()
        ref = copy.deepcopy(self.model).eval().requires_grad_(False)
        return ref.to(torch.bfloat16) if self.autocast_bf16 else ref

    @property
    def _config(self):
        # TinyGPT.config (block_size) or a transformers config (max_position_embeddings).
        return getattr(getattr(self.model, "lm", self.model), "config", None)

    @property
    def block_size(self) -> int:
        c = self._config
        return int(getattr(c, "block_size", None) or getattr(c, "max_position_embeddings", None) or 1 << 30)

    @property
    def vocab_size(self) -> int:
        return int(self._config.vocab_size)

    def parameters_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _response_logits(self, model, rows: List[Sample]) -> torch.Tensor:
        """Logits (n, Rmax, V) at the positions that predict each row's response tokens.

        Rows that start with the same tokens (a GRPO group shares its prompt; NB-Agent prompts
        share the system prompt) have that prefix computed once and its keys/values broadcast to
        every row through the KV cache, so the forward and backward passes cost the rows'
        suffixes plus one prefix instead of every row's whole prompt. The numbers are those of
        the full-sequence pass (test_train checks it); models without a KV cache (the HF path)
        take the full pass."""
        seqs = [s.prompt + s.response for s in rows]
        shared = _shared_prefix(rows) if self.share_prefix and has_kv_cache(model) else 0
        cache = None
        if shared >= MIN_SHARED_PREFIX:
            _, cache = model(torch.tensor([seqs[0][:shared]], device=self.device))
            cache = [(k.expand(len(rows), -1, -1, -1), v.expand(len(rows), -1, -1, -1)) for k, v in cache]
        else:
            shared = 0
        T = max(len(q) for q in seqs) - 1 - shared
        idx = _padded([q[shared:-1] for q in seqs], T, 0, torch.long).to(self.device)
        logits, _ = model(idx, cache=cache)
        rmax = max(len(s.response) for s in rows)
        pos = torch.tensor(
            [[min(len(s.prompt) - 1 - shared + j, T - 1) for j in range(rmax)] for s in rows], device=self.device
        )
        return torch.gather(logits, 1, pos.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))

    def train(self, samples: List[Sample], settings: Optional[TrainSettings] = None, step: int = 0) -> Dict:
        s = settings or self.settings
        problems = validate(samples, self.vocab_size, self.block_size) + check_settings(s)
        if problems:
            raise BatchError(problems)
        with self.writing():
            t0 = time.perf_counter()
            use_kl = s.kl_coef > 0
            if use_kl and self.reference is None:
                self.reference = self._frozen_copy()
            rmax = max(len(x.response) for x in samples)
            mask = _padded([x.mask for x in samples], rmax, 0, torch.float32)
            weights = L.token_weights(mask, [x.group for x in samples], s.aggregation)
            self.model.train()
            self.optimizer.zero_grad(set_to_none=True)
            sums = {"loss": 0.0, "policy_loss": 0.0, "kl": 0.0, "clipped": 0.0, "entropy": 0.0, "gap": 0.0}
            tokens = int(mask.sum())
            for part, live in self._my_parts(samples, s):
                rows = [samples[i] for i in part]
                r = max(len(x.response) for x in rows)
                targets = _padded([x.response for x in rows], r, 0, torch.long).to(self.device)
                logits = self._forward(self.model, rows)
                lp = token_logprobs(logits, targets)
                ref_lp = None
                if use_kl:
                    with torch.no_grad():
                        ref_lp = token_logprobs(self._forward(self.reference, rows), targets)
                w = weights[part, :r].to(self.device)
                sampled = _padded([x.sampler_logprobs for x in rows], r, 0.0, torch.float32).to(self.device)
                # recompute: the policy's own log-probs before this step's update; with one optimizer
                # step per batch that is this forward, detached (ratio exactly 1).
                old_lp = lp.detach() if s.old_logprobs == "recompute" else sampled
                out = L.policy_loss(
                    lp,
                    old_lp,
                    torch.tensor([x.advantage for x in rows], dtype=torch.float32, device=self.device),
                    w,
                    s.clip_low,
                    s.clip_high,
                    s.kl_coef,
                    ref_lp,
                )
                if not live:  # a stand-in pass (sharded layout): the collectives, no gradient
                    (out["loss"] * 0).backward()
                    continue
                out["loss"].backward()
                with torch.no_grad():
                    m = mask[part, :r].to(self.device)
                    sums["entropy"] += float((entropy(logits) * m).sum())
                    sums["gap"] += float(((lp - sampled).abs() * m).sum())
                for k in ("loss", "policy_loss", "kl", "clipped"):
                    sums[k] += float(out[k].detach())
            sums = self._summed(sums)
            grad_norm = self._apply(s)
            self.version += 1
            self.step = step or self.step + 1
            seconds = time.perf_counter() - t0
            n_tok = sum(len(x.prompt) + len(x.response) for x in samples)
            return {
                "loss": sums["loss"],
                "policy_loss": sums["policy_loss"],
                "kl": sums["kl"],
                "clip_fraction": sums["clipped"] / max(tokens, 1),
                "entropy": sums["entropy"] / max(tokens, 1),
                "logprob_gap": sums["gap"] / max(tokens, 1),
                "grad_norm": grad_norm,
                "tokens": n_tok,
                "tokens_per_second": n_tok / seconds if seconds > 0 else 0.0,
                "policy_version": self.version,
                "seconds": seconds,
            }

    def _my_parts(self, samples: List[Sample], s: TrainSettings) -> List[Tuple[List[int], bool]]:
        """This rank's micro-batches, each with whether it counts: the batch's micro-batches dealt
        out over the ranks. The loss weights are the whole batch's, so the ranks' gradients add up
        to the batch's. Sharded, every rank runs the same number of passes (each all-gathers the
        weights), so a rank short of one runs a stand-in that contributes nothing. On the GPU path
        the largest micro-batch is checked to fit before anything runs."""
        lengths = [len(x.prompt) + len(x.response) for x in samples]
        parts = pack(lengths, s.micro_batch_tokens)
        if self.check_memory is not None:
            self.check_memory(max(len(p) * max(lengths[i] for i in p) for p in parts))
        mine = [(p, True) for p in parts[dist.rank()::dist.world()]]
        if self.sharding is not None:
            mine += [(parts[0], False)] * (-(-len(parts) // dist.world()) - len(mine))
        return mine

    @staticmethod
    def _summed(sums: Dict[str, float]) -> Dict[str, float]:
        if dist.world() == 1:
            return sums
        t = dist.all_reduce_sum(torch.tensor(list(sums.values()), dtype=torch.float64))
        return dict(zip(sums, t.tolist()))

    def _apply(self, s: TrainSettings) -> float:
        """Sum the ranks' gradients, then clip, check and apply them; on NaN/inf drop and raise."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.sharding is None:
            dist.all_reduce_grads(params)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm))
        else:  # FSDP2 reduce-scattered them in the backward
            from .fsdp import grad_norm_and_clip

            grad_norm = grad_norm_and_clip(params, s.max_grad_norm)
        if not math.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteError(f"non-finite gradient norm ({grad_norm}); step skipped, model unchanged")
        for g in self.optimizer.param_groups:
            g["lr"] = s.learning_rate
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def sft(self, samples: List[Sample], learning_rate: Optional[float] = None) -> Dict:
        """One supervised step: token-mean cross-entropy on the masked response tokens. Resets the
        KL reference, which then becomes the warm-started policy at the next RL step."""
        problems = validate(samples, self.vocab_size, self.block_size, rl=False)
        s = replace(self.settings, learning_rate=learning_rate or self.settings.learning_rate)
        problems += check_settings(s)
        if problems:
            raise BatchError(problems)
        with self.writing():
            t0 = time.perf_counter()
            rmax = max(len(x.response) for x in samples)
            mask = _padded([x.mask for x in samples], rmax, 0, torch.float32)
            total = mask.sum().clamp(min=1.0)
            self.model.train()
            self.optimizer.zero_grad(set_to_none=True)
            loss_sum = 0.0
            for part, live in self._my_parts(samples, s):
                rows = [samples[i] for i in part]
                r = max(len(x.response) for x in rows)
                targets = _padded([x.response for x in rows], r, 0, torch.long).to(self.device)
                lp = token_logprobs(self._forward(self.model, rows), targets)
                loss = -(lp * mask[part, :r].to(self.device)).sum() / total
                if not live:
                    (loss * 0).backward()
                    continue
                loss.backward()
                loss_sum += float(loss.detach())
            loss_sum = self._summed({"loss": loss_sum})["loss"]
            grad_norm = self._apply(s)
            self.version += 1
            self.reference = None
            n_tok = sum(len(x.prompt) + len(x.response) for x in samples)
            return {"loss": loss_sum, "grad_norm": grad_norm, "tokens": n_tok,
                    "policy_version": self.version, "seconds": time.perf_counter() - t0}

    @torch.no_grad()
    def response_logprobs(self, samples: List[Sample]) -> List[List[float]]:
        """Current-policy logprobs of each sample's response tokens (tests, diagnostics)."""
        with self.writing():
            self.model.eval()
            r = max(len(x.response) for x in samples)
            targets = _padded([x.response for x in samples], r, 0, torch.long).to(self.device)
            lp = token_logprobs(self._forward(self.model, samples), targets)
            return [lp[i, : len(x.response)].tolist() for i, x in enumerate(samples)]
