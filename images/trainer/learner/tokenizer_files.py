"""The tiny model's ByteTokenizer as Hugging Face tokenizer files (`tokenizer.json`,
`tokenizer_config.json`), so an exported tiny model directory carries the tokenizer `transformers`,
vLLM and tokenizers.js load. Pure builders plus one writer; the ids are ours, unchanged.

How the bytes keep their ids: a byte-level BPE with no merges. The ByteLevel pre-tokenizer maps
each UTF-8 byte to one printable character (GPT-2's `bytes_to_unicode`, the table in tokenizers'
`pre_tokenizers/byte_level.rs`); the vocabulary gives the character of byte b the id b, so every
byte is one token whose id is the byte. The chat special tokens are added tokens 256.. in our
order. Known difference, shared by every HF chat template: the template's output is tokenized
with special tokens parsed, so message content that spells "<|user|>" becomes that token there,
while `ByteTokenizer.render_chat` keeps content as bytes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

from .tokenizer import ROLES, SPECIALS, ByteTokenizer


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's byte → character table: printable Latin-1 bytes map to themselves, the other 68
    bytes to 256, 257, ... in byte order."""
    kept = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table = {b: chr(b) for b in kept}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


def chat_template() -> str:
    """The Jinja form of `ByteTokenizer.render_chat`: <|bos|>, then <|role|>content<|end|> per
    message, then <|assistant|> when add_generation_prompt; an unknown role raises as
    transformers' `raise_exception` does."""
    bos, end = SPECIALS[0], SPECIALS[1]
    roles = ", ".join(f"'{r}'" for r in ROLES)
    return "\n".join([
        f"{{{{- '{bos}' -}}}}",
        "{%- for message in messages -%}",
        f"  {{%- if message['role'] not in [{roles}] -%}}",
        f"    {{{{- raise_exception('messages[' ~ loop.index0 ~ '].role: must be one of {', '.join(ROLES)}') -}}}}",
        "  {%- endif -%}",
        f"  {{{{- '<|' ~ message['role'] ~ '|>' ~ message['content'] ~ '{end}' -}}}}",
        "{%- endfor -%}",
        "{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}",
    ])


def _added_token(tid: int, content: str) -> dict:
    return {"id": tid, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def tokenizer_json(tok: ByteTokenizer) -> dict:
    """tokenizer.json (the `tokenizers` serialization, version 1.0)."""
    vocab = {ch: b for b, ch in sorted(bytes_to_unicode().items())}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added_token(tid, s) for s, tid in tok.special.items()],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,  # no BOS is added on encode: the chat template writes it
        "decoder": dict(byte_level),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": []},
    }


def tokenizer_config(tok: ByteTokenizer, model_max_length: int) -> dict:
    """tokenizer_config.json: the special tokens' roles, the added-token table transformers
    reads, and the chat template."""
    roles: List[str] = [f"<|{r}|>" for r in ROLES]
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": tok.special_of[tok.bos_id],
        "eos_token": tok.special_of[tok.eos_id],
        "pad_token": tok.special_of[tok.pad_id],
        "unk_token": None,
        "additional_special_tokens": roles,
        "added_tokens_decoder": {str(tid): {k: v for k, v in _added_token(tid, s).items() if k != "id"}
                                 for s, tid in tok.special.items()},
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
        "chat_template": chat_template(),
    }


def write_tokenizer_files(tok: ByteTokenizer, directory: Path, model_max_length: int) -> None:
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer_json(tok), ensure_ascii=False, indent=1) + "\n",
                                              encoding="utf-8")
    config = tokenizer_config(tok, model_max_length)
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
