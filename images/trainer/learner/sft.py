"""Supervised warm-start data: JSONL demonstrations -> token-level Samples. A line is either
{"messages": [...]} (rendered with the chat template; assistant turns are trained on, the rest
is context) or {"prompt_token_ids": [...], "response_token_ids": [...]} (e.g. NB-Agent traces
as the engine tokenized them). Errors name the file, line and field."""
from __future__ import annotations

import json
import random
from typing import Iterator, List

from .batch import Sample
from .tokenizer import ByteTokenizer


def chat_sample(tok: ByteTokenizer, messages: list, sid: str) -> Sample:
    """The whole conversation as one sequence; the mask selects the assistant turns' tokens
    (content and their closing <|end|>), which is what the model must learn to write."""
    if not isinstance(messages, list):
        raise ValueError("messages: must be a list")
    tok.render_chat(messages, add_generation_prompt=False)  # validates, naming messages[i]
    ids = [tok.bos_id]
    mask = [0]
    for m in messages:
        body = tok.render_chat([m], add_generation_prompt=False)[1:]  # drop the per-call <|bos|>
        train = 1 if m.get("role") == "assistant" else 0
        ids += body
        mask += [0] + [train] * (len(body) - 1)  # the role token is context
    if 1 not in mask:
        raise ValueError("messages: no assistant message to learn from")
    # Everything before the first trained token is the prompt: demonstrations that share their
    # opening (the system prompt) then share its computation in the Trainer.
    cut = mask.index(1)
    return Sample(sid, ids[:cut], ids[cut:], [], mask[cut:], 0.0, sid)


def read_jsonl(path: str, tok: ByteTokenizer) -> List[Sample]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("must be a JSON object")
                if "messages" in obj:
                    out.append(chat_sample(tok, obj["messages"], where))
                    continue
                p, r = obj.get("prompt_token_ids"), obj.get("response_token_ids")
                if not isinstance(p, list) or not isinstance(r, list):
                    raise ValueError('needs "messages" or "prompt_token_ids" + "response_token_ids"')
                mask = obj.get("response_mask") or [1] * len(r)
                out.append(Sample(where, [int(x) for x in p], [int(x) for x in r], [], [int(x) for x in mask], 0.0,
                                  where))
            except (ValueError, TypeError) as e:
                raise ValueError(f"{where}: {e}") from e
    if not out:
        raise ValueError(f"{path}: no demonstrations")
    return out


def batches(samples: List[Sample], batch_size: int, epochs: int, seed: int) -> Iterator[List[Sample]]:
    rng = random.Random(seed)
    for _ in range(epochs):
        order = list(samples)
        rng.shuffle(order)
        for i in range(0, len(order), batch_size):
            yield order[i : i + batch_size]
