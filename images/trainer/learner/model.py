"""The policy: a tiny decoder-only transformer (nanoGPT-shaped) for the CPU path, with a KV cache
so the engine can generate batches; and the Hugging Face loader for the GPU path, which imports
`transformers` only when called so CPU tests need nothing beyond torch."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch.nn import functional as F


class KVBuffer:
    """One layer's keys and values for generation: (B, H, capacity, head) buffers filled up to
    `length`. A decode step writes its position in place (the buffers double when full) instead
    of concatenating the whole cache, which copied every cached position at every token."""

    def __init__(self, k: torch.Tensor, v: torch.Tensor, room: int = 64) -> None:
        B, H, n, D = k.shape
        self.k = k.new_empty(B, H, n + room, D)
        self.v = v.new_empty(B, H, n + room, D)
        self.k[:, :, :n] = k
        self.v[:, :, :n] = v
        self.length = n

    def keys(self) -> torch.Tensor:
        return self.k[:, :, : self.length]

    def values(self) -> torch.Tensor:
        return self.v[:, :, : self.length]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        n, t = self.length, k.shape[2]
        if n + t > self.k.shape[2]:
            grown = KVBuffer(self.keys(), self.values(), room=max(n, t))
            self.k, self.v = grown.k, grown.v
        self.k[:, :, n : n + t] = k
        self.v[:, :, n : n + t] = v
        self.length = n + t
        return self.keys(), self.values()


# Per layer: (keys, values) tensors (training, prefill) or a KVBuffer (generation).
Cache = List[Union[Tuple[torch.Tensor, torch.Tensor], KVBuffer]]


def cache_length(cache: Cache) -> int:
    c = cache[0]
    return c.length if isinstance(c, KVBuffer) else c[0].shape[2]


def init_weights(m: nn.Module) -> None:
    """The built-in models' initialisation (GPT-2's): N(0, 0.02) weights, zero biases."""
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)


# The parts of a forward pass both built-in models (TinyGPT, qwen2.py's TinyQwen2) share: which keys
# each new token sees, the layer loop over the cache, and how a layer extends its cache.


def visible_keys(
    idx: torch.Tensor, key_mask: Optional[torch.Tensor], cache: Optional[Cache]
) -> Tuple[int, torch.Tensor]:
    """For new tokens idx (B,T) after `cache`: the cache length and which of the S = cache + T keys
    each token may attend to, (1|B, 1, T, S): causal, and only real keys where key_mask (B,S)."""
    B, T = idx.shape
    past = 0 if cache is None else cache_length(cache)
    S = past + T
    q_abs = torch.arange(past, S, device=idx.device).view(T, 1)
    allowed = (torch.arange(S, device=idx.device).view(1, S) <= q_abs).view(1, 1, T, S)
    if key_mask is not None:
        allowed = allowed & key_mask.view(B, 1, 1, S)
    return past, allowed


def run_layers(layers: nn.ModuleList, x: torch.Tensor, cache: Optional[Cache], *args) -> Tuple[torch.Tensor, Cache]:
    """x through every layer as layer(x, *args, its cache entry); returns x and the new cache."""
    new_cache: Cache = []
    for i, layer in enumerate(layers):
        x, kv = layer(x, *args, None if cache is None else cache[i])
        new_cache.append(kv)
    return x, new_cache


def with_past(past, k: torch.Tensor, v: torch.Tensor):
    """A layer's keys and values over its cache entry `past` + the new tokens, and the entry it
    returns: the same KVBuffer (extended in place) or the concatenated (keys, values)."""
    if isinstance(past, KVBuffer):
        k, v = past.append(k, v)
        return k, v, past
    if past is not None:
        k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
    return k, v, (k, v)


@dataclass
class ModelConfig:
    vocab_size: int = 262
    block_size: int = 1024
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        assert c.n_embd % c.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = c.n_head
        self.qkv = nn.Linear(c.n_embd, 3 * c.n_embd)
        self.proj = nn.Linear(c.n_embd, c.n_embd)

    def forward(self, x, allowed, past):
        B, T, C = x.shape
        H = self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        k, v, kv = with_past(past, k, v)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // H))
        # masked_fill, not -inf: a fully masked row (left padding) becomes uniform, never NaN.
        att = att.masked_fill(~allowed, torch.finfo(att.dtype).min).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y), kv


class Block(nn.Module):
    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(c.n_embd)
        self.attn = Attention(c)
        self.ln2 = nn.LayerNorm(c.n_embd)
        self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd), nn.GELU(), nn.Linear(4 * c.n_embd, c.n_embd))

    def forward(self, x, allowed, past):
        a, kv = self.attn(self.ln1(x), allowed, past)
        x = x + a
        return x + self.mlp(self.ln2(x)), kv


class TinyGPT(nn.Module):
    """Learned positions, pre-LayerNorm blocks, untied output head (so exported tensors are
    distinct, as safetensors requires)."""

    kv_cache = True  # returns its keys/values: the engine and trainer reuse them

    def __init__(self, c: ModelConfig) -> None:
        super().__init__()
        self.config = c
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.apply(init_weights)

    def forward(
        self,
        idx: torch.Tensor,
        pos: Optional[torch.Tensor] = None,
        key_mask: Optional[torch.Tensor] = None,
        cache: Optional[Cache] = None,
    ) -> Tuple[torch.Tensor, Cache]:
        """idx (B,T). pos (B,T) positions (default 0..T-1 after the cache). key_mask (B,S) marks
        real (non-padding) keys over cache + new tokens. Returns logits (B,T,V) and the new cache."""
        past, allowed = visible_keys(idx, key_mask, cache)
        if pos is None:
            pos = torch.arange(past, past + idx.shape[1], device=idx.device).unsqueeze(0)
        x, new_cache = run_layers(self.blocks, self.wte(idx) + self.wpe(pos), cache, allowed)
        return self.head(self.ln_f(x)), new_cache


class HFPolicy(nn.Module):
    """A transformers causal LM behind TinyGPT's calling convention (logits, cache)."""

    def __init__(self, lm: nn.Module, name: str, serve_dtype: Optional[torch.dtype] = None, tokenizer=None) -> None:
        super().__init__()
        self.lm = lm
        self.name = name
        # Saved beside every export (export.py), so an exported version is a whole model directory.
        self.tokenizer = tokenizer
        # The checkpoint's own dtype (e.g. bf16): exports are cast to it for the engines, while
        # training keeps fp32 master weights.
        self.serve_dtype = serve_dtype

    def forward(self, idx, pos=None, key_mask=None, cache=None):
        out = self.lm(input_ids=idx, attention_mask=None if key_mask is None else key_mask.long(), use_cache=False)
        return out.logits, []


def has_kv_cache(model) -> bool:
    """Whether the model returns its keys/values (the built-in models; the HF wrapper does not)."""
    return bool(getattr(model, "kv_cache", False))


def dtype_kwarg(transformers, dtype: torch.dtype) -> dict:
    """`from_pretrained`/`from_config`'s dtype argument: `dtype` from transformers 4.56 on
    (`torch_dtype` is deprecated there and may go), `torch_dtype` before."""
    version = tuple(int(x) for x in re.findall(r"\d+", getattr(transformers, "__version__", "0"))[:2])
    return {"dtype": dtype} if version >= (4, 56) else {"torch_dtype": dtype}


def checkpoint_dtype(config) -> Optional[torch.dtype]:
    """The dtype a checkpoint was saved in (config.json's `dtype`, or `torch_dtype` before
    transformers 4.56), when it is one the engines serve (bf16/fp16); else None."""
    served = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(served, str):
        served = getattr(torch, served, None)
    return served if served in (torch.bfloat16, torch.float16) else None


def load_hf(name: str, device: str, gradient_checkpointing: bool = True) -> HFPolicy:
    """GPU path: any Hugging Face causal LM by id or local path. The weights are loaded in fp32
    (the master copy AdamW updates: in bf16, a 1e-6 step rounds to nothing for most weights);
    the Trainer runs the forward under bf16 autocast. Ran on one H200 (docs/gpu.md); the CPU
    tests replace transformers with a stand-in."""
    try:
        import transformers  # noqa: PLC0415 - only the GPU path may need it
    except ImportError as e:
        raise ImportError(f"model {name!r} needs the transformers package, which is not installed here "
                          f"(the GPU trainer image has it; \"tiny\" is the built-in CPU model)") from e

    served = checkpoint_dtype(transformers.AutoConfig.from_pretrained(name))
    lm = transformers.AutoModelForCausalLM.from_pretrained(name, **dtype_kwarg(transformers, torch.float32))
    if gradient_checkpointing:
        lm.gradient_checkpointing_enable()
    lm.config.use_cache = False
    return HFPolicy(lm.to(device), name, served, _tokenizer(transformers, name))


def _tokenizer(transformers, name: str):
    """The model's tokenizer, for exports; None where it has none or it cannot be read (the
    learner itself works on token ids and never tokenizes)."""
    auto = getattr(transformers, "AutoTokenizer", None)
    try:
        return auto.from_pretrained(name) if auto is not None else None
    except (OSError, ValueError):
        return None


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) per position, from logits (..., V) in float32."""
    return torch.gather(F.log_softmax(logits.float(), dim=-1), -1, targets.unsqueeze(-1)).squeeze(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
