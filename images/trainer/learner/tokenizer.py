"""Byte-level tokenizer with chat special tokens, and the chat template (the engine's: workers
never render it). Ids 0..255 are bytes; the special tokens follow."""
from __future__ import annotations

from typing import Iterable, List, Sequence

SPECIALS = ["<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|pad|>"]
ROLES = ("system", "user", "assistant")


class ByteTokenizer:
    """UTF-8 bytes as tokens. `<|end|>` ends a message and is the end-of-sequence token."""

    def __init__(self) -> None:
        self.special = {s: 256 + i for i, s in enumerate(SPECIALS)}
        self.special_of = {v: k for k, v in self.special.items()}
        self.vocab_size = 256 + len(SPECIALS)
        self.bos_id = self.special["<|bos|>"]
        self.eos_id = self.special["<|end|>"]
        self.pad_id = self.special["<|pad|>"]

    def encode(self, text: str, parse_special: bool = False) -> List[int]:
        """Bytes of `text`; with parse_special, literal "<|user|>" etc. become their ids (as HF
        tokenizers do for a raw prompt). Message contents are encoded without it."""
        if not parse_special:
            return list(text.encode("utf-8"))
        out: List[int] = []
        i = 0
        while i < len(text):
            j = text.find("<|", i)
            if j < 0:
                out.extend(text[i:].encode("utf-8"))
                break
            hit = next((s for s in SPECIALS if text.startswith(s, j)), None)
            if hit is None:
                out.extend(text[i : j + 2].encode("utf-8"))
                i = j + 2
                continue
            out.extend(text[i:j].encode("utf-8"))
            out.append(self.special[hit])
            i = j + len(hit)
        return out

    def token_bytes(self, tid: int) -> bytes:
        """The bytes a token contributes to decoded text (special tokens are skipped, like vLLM's
        skip_special_tokens)."""
        return bytes([tid]) if 0 <= tid < 256 else b""

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self.token_bytes(t) for t in ids).decode("utf-8", errors="replace")

    def render_chat(self, messages: Sequence[dict], add_generation_prompt: bool = True) -> List[int]:
        """The chat template: <|bos|> then <|role|>content<|end|> per message, then <|assistant|>
        when a reply is wanted. Raises ValueError naming the bad message field."""
        ids = [self.bos_id]
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise ValueError(f"messages[{i}]: must be an object")
            role, content = m.get("role"), m.get("content")
            if role not in ROLES:
                raise ValueError(f"messages[{i}].role: must be one of {', '.join(ROLES)}, got {role!r}")
            if not isinstance(content, str):
                raise ValueError(f"messages[{i}].content: must be a string")
            ids.append(self.special[f"<|{role}|>"])
            ids.extend(self.encode(content))
            ids.append(self.eos_id)
        if add_generation_prompt:
            ids.append(self.special["<|assistant|>"])
        return ids
