"""Batched generation with the KV cache: prompts are left-padded into one batch, sampled token by
token with per-request temperature / top-p / seed / stop strings; finished rows leave the batch
as they end and new requests can join it between steps (continuous batching). Logprobs are of the
raw (temperature 1) policy, the same quantity the learner computes for the importance ratio
(vLLM's "raw_logprobs")."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
from torch.nn import functional as F

from .batch import common_prefix_length
from .model import KVBuffer, has_kv_cache
from .tokenizer import ByteTokenizer


@dataclass
class GenRequest:
    prompt: List[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: List[str] = field(default_factory=list)
    seed: Optional[int] = None
    top_logprobs: int = 0  # also report the k most likely tokens at each step


@dataclass
class GenResult:
    token_ids: List[int]
    logprobs: List[float]
    finish_reason: str  # "stop" | "length"
    text: str
    # Per token, the top_logprobs most likely (token id, logprob), most likely first.
    top_logprobs: List[List[Tuple[int, float]]] = field(default_factory=list)


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
        self.tops: List[List[Tuple[int, float]]] = []
        self.buf = b""
        self.ends: List[int] = []  # byte offset in buf where each token ends
        self.finish: Optional[str] = None

    def add(self, tid: int, logprob: float, top: Optional[List[Tuple[int, float]]] = None) -> None:
        self.ids.append(tid)
        self.logprobs.append(logprob)
        self.tops.append(top or [])
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
                del self.ids[keep:], self.logprobs[keep:], self.tops[keep:]
                self.finish = "stop"
                return
        if len(self.ids) >= self.req.max_tokens:
            self.finish = "length"

    def settled(self) -> int:
        """How many leading tokens no later stop-string match can take back (what a stream may
        send now). A match still to come starts where the text's tail is a proper prefix of a
        stop string, and `add` drops every token ending after that start."""
        if self.finish is not None:
            return len(self.ids)
        start = len(self.buf)
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buf)), 0, -1):
                if self.buf.endswith(s[:k]):
                    start = min(start, len(self.buf) - k)
                    break
        return bisect_right(self.ends, start)

    def result(self) -> GenResult:
        return GenResult(self.ids, self.logprobs, self.finish or "length", self.tok.decode(self.ids), self.tops)


class Decoder:
    """A running batch (continuous batching): `add` prefills new requests and merges them into
    the batch, `step` samples one token for every row, returns the rows that finished and drops
    them. Rows are left-padded to a common cache length; each keeps its own positions, so a row's
    numbers do not depend on what it is batched with. Callers ensure len(prompt) + max_tokens
    fits the model's context and max_tokens >= 1."""

    def __init__(self, model, tok: ByteTokenizer, gen: torch.Generator,
                 prefixes: Optional["PrefixCache"] = None, version: int = 0) -> None:
        self.model, self.tok, self.gen = model, tok, gen
        self.device = next(model.parameters()).device
        # Prefill reuses the keys/values of a prompt prefix the requests share (models with a KV
        # cache only); `version` is the weights' policy version, which the entry must match.
        self.prefixes = prefixes if prefixes is not None and has_kv_cache(model) else None
        self.version = version
        self.rows: List[_Row] = []
        self.tags: list = []  # the caller's handle of each row, in batch order
        self.cache = None
        self.key_mask = self.next_pos = self.last = None

    @property
    def active(self) -> int:
        return len(self.rows)

    @torch.no_grad()
    def add(self, reqs: List[GenRequest], tags: Optional[list] = None) -> None:
        tags = tags if tags is not None else [None] * len(reqs)
        if self.prefixes is not None:
            hit = [self.prefixes.lookup(self.version, r.prompt) is not None for r in reqs]
            if len(reqs) > 1 and not any(hit):
                self.prefixes.learn(self.model, self.version, [r.prompt for r in reqs])
                hit = [self.prefixes.lookup(self.version, r.prompt) is not None for r in reqs]
            if any(hit) and not all(hit):  # two prefills: the rows with the prefix, the others
                self.add([r for r, h in zip(reqs, hit) if h], [t for t, h in zip(tags, hit) if h])
                self.add([r for r, h in zip(reqs, hit) if not h], [t for t, h in zip(tags, hit) if not h])
                return
        entry = self.prefixes.lookup(self.version, reqs[0].prompt) if self.prefixes is not None else None
        shared = len(entry[0]) if entry else 0
        tok, dev = self.tok, self.device
        B, L = len(reqs), max(len(r.prompt) for r in reqs) - shared
        # Left padding: [shared prefix | padding | the row's own prompt tokens].
        idx = torch.full((B, L), tok.pad_id, dtype=torch.long)
        key_mask = torch.zeros((B, L), dtype=torch.bool)
        for i, r in enumerate(reqs):
            own = r.prompt[shared:]
            idx[i, L - len(own) :] = torch.tensor(own, dtype=torch.long)
            key_mask[i, L - len(own) :] = True
        idx, key_mask = idx.to(dev), key_mask.to(dev)
        pos = shared + (key_mask.long().cumsum(1) - 1).clamp(min=0)
        past = None
        if entry:
            past = [(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)) for k, v in entry[1]]
            key_mask = torch.cat([torch.ones((B, shared), dtype=torch.bool, device=dev), key_mask], dim=1)
        logits, cache = self.model(idx, pos, key_mask, past)
        L = key_mask.shape[1]
        self.rows += [_Row(r, tok, self.gen) for r in reqs]
        self.tags += tags
        if self.cache is None:
            self.cache, self.key_mask, self.last = [KVBuffer(k, v) for k, v in cache], key_mask, logits[:, -1]
            self.next_pos = key_mask.long().sum(1)
            return
        # Merge: left-pad the shorter side along the sequence so both share one cache length.
        S = max(self.key_mask.shape[1], L)

        def pad(t: torch.Tensor, n: int) -> torch.Tensor:
            return F.pad(t, (0, 0, S - n, 0)) if S > n else t

        old = self.key_mask.shape[1]
        self.cache = [KVBuffer(torch.cat([pad(b.keys(), old), pad(k1, L)]),
                               torch.cat([pad(b.values(), old), pad(v1, L)]))
                      for b, (k1, v1) in zip(self.cache, cache)]
        self.key_mask = torch.cat([F.pad(self.key_mask, (S - old, 0)), F.pad(key_mask, (S - L, 0))])
        self.next_pos = torch.cat([self.next_pos, key_mask.long().sum(1)])
        self.last = torch.cat([self.last, logits[:, -1]])

    @torch.no_grad()
    def step(self) -> List[tuple]:
        """Samples one token per row; returns [(tag, GenResult)] of the rows that finished."""
        last = self.last.float().cpu()
        logp = F.log_softmax(last, dim=-1)
        k = min(max(r.req.top_logprobs for r in self.rows), logp.shape[-1])
        top_v, top_i = torch.topk(logp, k, dim=-1) if k > 0 else (None, None)
        chosen = []
        for b, r in enumerate(self.rows):
            tid = sample_token(last[b], r.req.temperature, r.req.top_p, r.gen)
            n = r.req.top_logprobs
            top = list(zip(top_i[b, :n].tolist(), top_v[b, :n].tolist())) if n > 0 else None
            r.add(tid, float(logp[b, tid]), top)
            chosen.append(tid)
        keep = [b for b, r in enumerate(self.rows) if r.finish is None]
        done = [(self.tags[b], r.result()) for b, r in enumerate(self.rows) if r.finish is not None]
        if not keep:
            self.rows, self.tags, self.cache = [], [], None
            return done
        if len(keep) < len(self.rows):
            sel = torch.tensor(keep, device=self.device)
            self.key_mask, self.next_pos = self.key_mask.index_select(0, sel), self.next_pos.index_select(0, sel)
            chosen = [chosen[b] for b in keep]
            self.rows, self.tags = [self.rows[b] for b in keep], [self.tags[b] for b in keep]
            # Columns that are padding for every remaining row go, or a long-running batch with
            # rows coming and going would drag an ever longer cache.
            first = int(self.key_mask.any(0).long().argmax())
            self.key_mask = self.key_mask[:, first:]
            self.cache = [KVBuffer(b.keys().index_select(0, sel)[:, :, first:],
                                   b.values().index_select(0, sel)[:, :, first:])
                          for b in self.cache]
        step = torch.tensor(chosen, dtype=torch.long, device=self.device).view(-1, 1)
        self.key_mask = torch.cat([self.key_mask, torch.ones_like(self.key_mask[:, :1])], dim=1)
        logits, self.cache = self.model(step, self.next_pos.view(-1, 1), self.key_mask, self.cache)
        self.next_pos = self.next_pos + 1
        self.last = logits[:, -1]
        return done


class PrefixCache:
    """The keys/values of one prompt prefix (NB-Agent's system prompt and tool list, which every
    request starts with) for one policy version, so prefill computes each request's own tokens
    only. Learned from the first batch of two or more requests sharing at least `min_tokens`;
    dropped when the version changes (the weights did)."""

    def __init__(self, min_tokens: int = 64) -> None:
        self.min_tokens = min_tokens
        self.version: Optional[int] = None
        self.tokens: List[int] = []
        self.kv: Optional[list] = None

    def clear(self) -> None:
        """Forgets the cached prefix (the weights were replaced)."""
        self.version, self.tokens, self.kv = None, [], None

    def lookup(self, version: int, prompt: List[int]) -> Optional[tuple]:
        """(prefix tokens, keys/values) when `prompt` starts with the cached prefix and has at
        least one token of its own (whose output is the first sampled token's logits)."""
        n = len(self.tokens)
        if self.kv is None or version != self.version or len(prompt) <= n or prompt[:n] != self.tokens:
            return None
        return self.tokens, self.kv

    @torch.no_grad()
    def learn(self, model, version: int, prompts: List[List[int]]) -> None:
        """Caches the longest prefix shared by the largest set of prompts that agree on their
        first min_tokens tokens, when two or more do."""
        groups: dict = {}
        for p in prompts:
            if len(p) > self.min_tokens:
                groups.setdefault(tuple(p[: self.min_tokens]), []).append(p)
        best = max(groups.values(), key=len, default=[])
        if len(best) < 2:
            return
        first = best[0]
        # Short of the shortest prompt: every prompt keeps a token of its own (see lookup).
        n = min(common_prefix_length(best), min(len(p) for p in best) - 1)
        if n < self.min_tokens:
            return
        dev = next(model.parameters()).device
        _, kv = model(torch.tensor([first[:n]], dtype=torch.long, device=dev))
        self.version, self.tokens, self.kv = version, list(first[:n]), kv


def generate(model, tok: ByteTokenizer, reqs: List[GenRequest], gen: torch.Generator,
             prefixes: Optional[PrefixCache] = None) -> List[GenResult]:
    """Generates every request in one batch; results in request order."""
    d = Decoder(model, tok, gen, prefixes)
    d.add(reqs, list(range(len(reqs))))
    out: List[Optional[GenResult]] = [None] * len(reqs)
    while d.active:
        for i, res in d.step():
            out[i] = res
    return out  # type: ignore[return-value]
