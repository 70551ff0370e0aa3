"""Batched generation with the KV cache: prompts are left-padded into one batch, sampled token by
token with per-request temperature / top-p / seed / stop strings, and finished rows are dropped
from the batch as they end. Logprobs are of the raw (temperature 1) policy, the same quantity the
learner computes for the importance ratio (vLLM's "raw_logprobs")."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import torch
from torch.nn import functional as F

from .tokenizer import ByteTokenizer


@dataclass
class GenRequest:
    prompt: List[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: List[str] = field(default_factory=list)
    seed: Optional[int] = None


@dataclass
class GenResult:
    token_ids: List[int]
    logprobs: List[float]
    finish_reason: str  # "stop" | "length"
    text: str


def sample_token(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> int:
    """One token id from a row of logits (V,). temperature 0 = greedy."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = F.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        drop = (torch.cumsum(sorted_p, 0) - sorted_p) > top_p  # keep the smallest set reaching top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        return int(order[torch.multinomial(sorted_p, 1, generator=gen)])
    return int(torch.multinomial(probs, 1, generator=gen))


class _Row:
    def __init__(self, req: GenRequest, tok: ByteTokenizer, default_gen: torch.Generator) -> None:
        self.req = req
        self.tok = tok
        self.gen = torch.Generator().manual_seed(req.seed) if req.seed is not None else default_gen
        self.stops = [s.encode("utf-8") for s in req.stop if s]
        self.ids: List[int] = []
        self.logprobs: List[float] = []
        self.buf = b""
        self.ends: List[int] = []  # byte offset in buf where each token ends
        self.finish: Optional[str] = None

    def add(self, tid: int, logprob: float) -> None:
        self.ids.append(tid)
        self.logprobs.append(logprob)
        before = len(self.buf)
        self.buf += self.tok.token_bytes(tid)
        self.ends.append(len(self.buf))
        if tid == self.tok.eos_id:
            self.finish = "stop"
            return
        for s in self.stops:
            p = self.buf.find(s, max(0, before - len(s) + 1))
            if p >= 0:
                # Like vLLM: the stop string is in neither the text nor the token ids.
                keep = sum(1 for e in self.ends if e <= p)
                del self.ids[keep:], self.logprobs[keep:]
                self.finish = "stop"
                return
        if len(self.ids) >= self.req.max_tokens:
            self.finish = "length"

    def result(self) -> GenResult:
        return GenResult(self.ids, self.logprobs, self.finish or "length", self.tok.decode(self.ids))


@torch.no_grad()
def generate(model, tok: ByteTokenizer, reqs: List[GenRequest], gen: torch.Generator) -> List[GenResult]:
    """Generates every request in one batch. Callers ensure len(prompt) + max_tokens fits the
    model's context and max_tokens >= 1."""
    device = next(model.parameters()).device
    rows = [_Row(r, tok, gen) for r in reqs]
    B, L = len(reqs), max(len(r.prompt) for r in reqs)
    idx = torch.full((B, L), tok.pad_id, dtype=torch.long)
    key_mask = torch.zeros((B, L), dtype=torch.bool)
    for i, r in enumerate(reqs):
        idx[i, L - len(r.prompt) :] = torch.tensor(r.prompt, dtype=torch.long)
        key_mask[i, L - len(r.prompt) :] = True
    idx, key_mask = idx.to(device), key_mask.to(device)
    pos = (key_mask.long().cumsum(1) - 1).clamp(min=0)
    logits, cache = model(idx, pos, key_mask)
    last = logits[:, -1]
    next_pos = key_mask.long().sum(1)
    alive = list(range(B))  # rows of `rows` still in the batch, in batch order
    while alive:
        last = last.float().cpu()
        logp = F.log_softmax(last, dim=-1)
        chosen = []
        for b, i in enumerate(alive):
            r = rows[i]
            tid = sample_token(last[b], r.req.temperature, r.req.top_p, r.gen)
            r.add(tid, float(logp[b, tid]))
            chosen.append(tid)
        keep = [b for b, i in enumerate(alive) if rows[i].finish is None]
        if not keep:
            break
        if len(keep) < len(alive):
            sel = torch.tensor(keep, device=device)
            cache = [(k.index_select(0, sel), v.index_select(0, sel)) for k, v in cache]
            key_mask, next_pos = key_mask.index_select(0, sel), next_pos.index_select(0, sel)
            chosen = [chosen[b] for b in keep]
            alive = [alive[b] for b in keep]
        step = torch.tensor(chosen, dtype=torch.long, device=device).view(-1, 1)
        key_mask = torch.cat([key_mask, torch.ones_like(key_mask[:, :1])], dim=1)
        logits, cache = model(step, next_pos.view(-1, 1), key_mask, cache)
        next_pos = next_pos + 1
        last = logits[:, -1]
    return [r.result() for r in rows]
