"""The answers of the CPU engine's OpenAI-compatible routes: the non-streamed JSON and the
Server-Sent-Events chunks, in the shapes of OpenAI's API and vLLM (cited per function), with our
extensions (token ids, policy_version). Pure: no sockets, threads or model here."""
from __future__ import annotations

import codecs
import json
from typing import Any, Dict, List, Optional

from .openai_api import Request, RequestError
from .sampling import GenResult
from .tokenizer import ByteTokenizer


def _name(t: int) -> str:
    # vLLM's return_tokens_as_token_ids form: a byte token is often not a whole UTF-8 character.
    return f"token_id:{t}"


def completion_logprobs(ids: List[int], lps: List[float], tops: list, k: int) -> dict:
    """OpenAI's legacy completions logprobs object, as vLLM fills it (serving_completion.py
    `_create_completion_logprobs`): per token, its logprob and a map of the sampled token and the
    k most likely ones. No text_offset: offsets into text are not whole characters here."""
    top = []
    for t, lp, best in zip(ids, lps, tops or [[]] * len(ids)):
        entry = {_name(t): lp}
        for i, v in best[:k]:
            entry.setdefault(_name(i), v)
        top.append(entry)
    return {"tokens": [_name(t) for t in ids], "token_logprobs": list(lps), "top_logprobs": top}


def chat_logprobs(tok: ByteTokenizer, ids: List[int], lps: List[float], tops: list, k: int) -> dict:
    """OpenAI's chat logprobs object: per token its logprob, its bytes (null for a special token,
    which has none) and the k most likely tokens, most likely first."""
    def one(t: int, lp: float) -> dict:
        b = tok.token_bytes(t)
        return {"token": _name(t), "logprob": lp, "bytes": list(b) if b else None}

    content = []
    for t, lp, best in zip(ids, lps, tops or [[]] * len(ids)):
        content.append({**one(t, lp), "top_logprobs": [one(i, v) for i, v in best[:k]]})
    return {"content": content}


def _logprobs_of(req: Request, tok: ByteTokenizer, ids, lps, tops) -> Optional[dict]:
    if req.logprobs is None:
        return None
    if req.chat:
        return chat_logprobs(tok, ids, lps, tops, req.logprobs)
    return completion_logprobs(ids, lps, tops, req.logprobs)


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def response(req: Request, res: GenResult, version: int, model: str, tok: ByteTokenizer,
             rid: str, created: int) -> dict:
    """The non-streamed answer. Beyond OpenAI's shape: `token_ids` (vLLM's return_token_ids),
    `prompt_token_ids` (top level, where docs/engine-api.md has always had it; completions also
    in the choice, where vLLM >= 0.10.2 puts it) and `policy_version` (ours)."""
    lp = _logprobs_of(req, tok, res.token_ids, res.logprobs, res.top_logprobs)
    choice: Dict[str, Any] = {"index": 0}
    if req.chat:
        choice["message"] = {"role": "assistant", "content": res.text}
    else:
        choice["text"] = res.text
        choice["prompt_token_ids"] = req.prompt
    choice.update(finish_reason=res.finish_reason, token_ids=res.token_ids, logprobs=lp)
    return {"id": rid, "object": "chat.completion" if req.chat else "text_completion", "created": created,
            "model": model, "choices": [choice], "prompt_token_ids": req.prompt,
            "usage": _usage(len(req.prompt), len(res.token_ids)), "policy_version": version}


def sse(obj) -> str:
    """One Server-Sent Event as OpenAI and vLLM frame it: a `data:` line and a blank line."""
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


DONE = sse("[DONE]")


class StreamChunks:
    """The events of one streamed answer, in the chunk shapes of vLLM's stream generators
    (completion/serving.py `completion_stream_generator`, chat_completion/serving.py
    `chat_completion_stream_generator`), which follow OpenAI's streaming API:

    - chat opens with `delta: {role: "assistant", content: ""}` and `prompt_token_ids` at the top
      level; completions put `prompt_token_ids` in the first chunk's choice;
    - each later chunk carries the text, `token_ids` and (when asked) logprobs of the tokens
      added since the last one; the last one has `finish_reason`;
    - `stream_options.include_usage` adds a chunk with `choices: []` and `usage` after it,
      `continuous_usage_stats` (vLLM) puts the running usage in every chunk;
    - `data: [DONE]` ends the stream; an error after the start is an event `{"error": ...}`.

    Text is decoded incrementally, holding back an incomplete UTF-8 character until its bytes
    arrive, so the streamed text joins to exactly the non-streamed text."""

    def __init__(self, req: Request, model: str, tok: ByteTokenizer, rid: str, created: int) -> None:
        self.req, self.model, self.tok, self.rid, self.created = req, model, tok, rid, created
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.tokens = 0
        self.opened = self.started = False  # the first event sent; the first token chunk sent
        self.version: Optional[int] = None

    def _chunk(self, choices: list) -> dict:
        c = {"id": self.rid, "object": "chat.completion.chunk" if self.req.chat else "text_completion",
             "created": self.created, "model": self.model, "choices": choices, "policy_version": self.version}
        if self.req.continuous_usage:
            c["usage"] = _usage(len(self.req.prompt), self.tokens)
        return c

    def piece(self, ids: List[int], lps: List[float], tops: list, version: int,
              finish: Optional[str] = None) -> List[str]:
        """The events for tokens that can no longer change; `finish` on the last piece."""
        self.version = version
        out = []
        if not self.opened and self.req.chat:
            first = self._chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                                  "logprobs": None, "finish_reason": None}])
            out.append(sse({**first, "prompt_token_ids": self.req.prompt}))
        self.opened = True
        text = self.decoder.decode(b"".join(self.tok.token_bytes(t) for t in ids), final=finish is not None)
        if not ids and finish is None:
            return out
        self.tokens += len(ids)
        choice: Dict[str, Any] = {"index": 0}
        if self.req.chat:
            choice["delta"] = {"content": text}
        else:
            choice["text"] = text
            if not self.started:
                choice["prompt_token_ids"] = self.req.prompt
        choice.update(logprobs=_logprobs_of(self.req, self.tok, ids, lps, tops), finish_reason=finish,
                      token_ids=list(ids))
        self.started = True
        out.append(sse(self._chunk([choice])))
        return out

    def end(self) -> List[str]:
        """After the last piece: the usage chunk when asked for, then [DONE]."""
        if not self.req.include_usage:
            return [DONE]
        last = {**self._chunk([]), "usage": _usage(len(self.req.prompt), self.tokens)}
        return [sse(last), DONE]

    @staticmethod
    def error(err: RequestError) -> List[str]:
        """A failure after the stream began (the status line is already sent): vLLM's shape."""
        return [sse(err.body()), DONE]
