"""The built-in `tiny-qwen2` policy: a small decoder of the Qwen2 architecture in plain PyTorch
(RMSNorm, rotary positions, grouped-query attention, SwiGLU MLP) under TinyGPT's calling
convention (logits, KV cache), so the engine, trainer and checkpoints use it unchanged.

Its parameter names, shapes and config.json follow transformers' Qwen2ForCausalLM
(models/qwen2/modeling_qwen2.py and configuration_qwen2.py: `model.embed_tokens`,
`model.layers.N.self_attn.{q,k,v,o}_proj` with biases on q/k/v only, `mlp.{gate,up,down}_proj`,
`input_layernorm`, `post_attention_layernorm`, `model.norm`, an untied `lm_head`;
`model_type: qwen2`), so its exports are Qwen2 checkpoints by name and shape. Loading them with
`transformers` or vLLM has not been tried here (neither is installed on the CPU machines)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch.nn import functional as F

from .model import Cache, init_weights, run_layers, visible_keys, with_past


@dataclass
class Qwen2Config:
    """Qwen2Config's fields that shape the model, under transformers' names."""

    vocab_size: int = 262
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 1024
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size}: must be a multiple of num_attention_heads "
                             f"{self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_key_value_heads {self.num_key_value_heads}: must divide num_attention_heads "
                             f"{self.num_attention_heads}")
        if (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError(f"hidden_size / num_attention_heads = {self.head_dim}: must be even (rotary pairs)")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_dict(self) -> dict:
        return asdict(self)

    def hf_config(self, dtype: str, bos_token_id: int, eos_token_id: int) -> dict:
        """config.json as transformers' Qwen2Config writes it (sliding window off, untied head)."""
        return {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", **self.to_dict(),
                "hidden_act": "silu", "attention_dropout": 0.0, "initializer_range": 0.02,
                "tie_word_embeddings": False, "use_sliding_window": False, "sliding_window": None,
                "max_window_layers": self.num_hidden_layers, "rope_scaling": None, "use_cache": True,
                "bos_token_id": bos_token_id, "eos_token_id": eos_token_id, "dtype": dtype}


class RMSNorm(nn.Module):
    """Qwen2RMSNorm: normalised in float32, scaled by a learned weight (no bias)."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotary(pos: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (B, 1, T, head_dim) for positions (B, T): the halves layout of HF's rotate_half."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=pos.device, dtype=torch.float32) / head_dim))
    freqs = pos.float().unsqueeze(-1) * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1).unsqueeze(1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class Qwen2Attention(nn.Module):
    def __init__(self, c: Qwen2Config) -> None:
        super().__init__()
        self.c = c
        d = c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, c.num_attention_heads * d, bias=True)
        self.k_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * d, bias=True)
        self.v_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * d, bias=True)
        self.o_proj = nn.Linear(c.num_attention_heads * d, c.hidden_size, bias=False)

    def forward(self, x, rope, allowed, past):
        B, T, _ = x.shape
        c, d = self.c, self.c.head_dim
        q = self.q_proj(x).view(B, T, c.num_attention_heads, d).transpose(1, 2)
        k = self.k_proj(x).view(B, T, c.num_key_value_heads, d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, c.num_key_value_heads, d).transpose(1, 2)
        q, k = rotate(q, *rope), rotate(k, *rope)  # keys are cached rotated, as HF does
        k, v, kv = with_past(past, k, v)
        groups = c.num_attention_heads // c.num_key_value_heads
        kk, vv = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        att = (q @ kk.transpose(-2, -1)) * d**-0.5
        # masked_fill, not -inf: a fully masked row (left padding) becomes uniform, never NaN.
        att = att.masked_fill(~allowed, torch.finfo(att.dtype).min).softmax(dim=-1, dtype=torch.float32)
        y = (att.to(q.dtype) @ vv).transpose(1, 2).reshape(B, T, -1)
        return self.o_proj(y), kv


class Qwen2MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, c: Qwen2Config) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Qwen2DecoderLayer(nn.Module):
    def __init__(self, c: Qwen2Config) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Qwen2Attention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = Qwen2MLP(c)

    def forward(self, x, rope, allowed, past):
        a, kv = self.self_attn(self.input_layernorm(x), rope, allowed, past)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), kv


class Qwen2Model(nn.Module):
    def __init__(self, c: Qwen2Config) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Qwen2DecoderLayer(c) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class TinyQwen2(nn.Module):
    """Qwen2ForCausalLM's layout: `model` (embeddings, layers, final norm) and `lm_head`."""

    kv_cache = True  # returns its keys/values: the engine and trainer reuse them

    def __init__(self, c: Qwen2Config) -> None:
        super().__init__()
        self.config = c
        self.model = Qwen2Model(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.apply(init_weights)

    def forward(
        self,
        idx: torch.Tensor,
        pos: Optional[torch.Tensor] = None,
        key_mask: Optional[torch.Tensor] = None,
        cache: Optional[Cache] = None,
    ) -> Tuple[torch.Tensor, Cache]:
        """As TinyGPT.forward: idx (B,T), pos (B,T) rotary positions (default 0..T-1 after the
        cache), key_mask (B,S) real keys over cache + new tokens. Returns logits (B,T,V), cache."""
        B, T = idx.shape
        past, allowed = visible_keys(idx, key_mask, cache)
        if pos is None:
            pos = torch.arange(past, past + T, device=idx.device).unsqueeze(0).expand(B, T)
        x = self.model.embed_tokens(idx)
        rope = rotary(pos, self.config.head_dim, self.config.rope_theta, x.dtype)
        x, new_cache = run_layers(self.model.layers, x, cache, rope, allowed)
        return self.lm_head(self.model.norm(x)), new_cache


def tiny_qwen2_config(vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int) -> Qwen2Config:
    """tiny-qwen2 from the tiny model's flags: two query heads per key/value head where n_head is
    even, and an MLP width of 8/3 n_embd (rounded up to 16) as Llama-style SwiGLU models use, so
    its parameter count is close to TinyGPT's 4x GELU MLP."""
    return Qwen2Config(vocab_size=vocab_size, hidden_size=n_embd, intermediate_size=math.ceil(8 * n_embd / 3 / 16) * 16,
                       num_hidden_layers=n_layer, num_attention_heads=n_head,
                       num_key_value_heads=n_head // 2 if n_head % 2 == 0 else n_head,
                       max_position_embeddings=block_size)
