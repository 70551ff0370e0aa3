"""The OpenAI-compatible request layer of the CPU engine (docs/engine-api.md): which parameters
each route honours, refuses or accepts without effect, and their validation into a GenRequest.
Pure: no sockets, threads or model here (openai_answers.py shapes the answers, engine.py runs
requests and serves HTTP).

Nothing is silently ignored: a parameter is honoured, or refused with a 400 naming it, or listed
in NO_EFFECT with the reason it changes nothing here; a name in none of these is refused too.
vLLM instead accepts unknown fields with a debug log (`OpenAIBaseModel`, extra="allow"), which is
how a caller ends up believing a misspelt or unsupported option took effect."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from .sampling import GenRequest
from .tokenizer import ByteTokenizer

# vLLM's default --max-logprobs, and the most OpenAI's chat API takes as top_logprobs.
MAX_LOGPROBS = 20


class RequestError(ValueError):
    """A refused request, answered in OpenAI's error shape (`{"error": {message, type, param,
    code}}`). The message starts with the parameter it is about ("n: ...")."""

    def __init__(self, status: int, message: str, param: Optional[str] = None,
                 code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code

    def body(self) -> dict:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}


def _bad(param: str, why: str, code: str = "invalid_value") -> RequestError:
    return RequestError(400, f"{param}: {why}", param, code)


# --- The parameter tables (docs/engine-api.md lists the same, and a test keeps them in step) ---

@dataclass(frozen=True)
class Refused:
    """A parameter this engine cannot honour. Values that ask for nothing (`neutral`, and null)
    are accepted, since clients often send defaults explicitly; any other value is a 400."""
    why: str
    neutral: Callable[[Any], bool] = lambda v: False


@dataclass(frozen=True)
class NoEffect:
    """Accepted (type-checked) but changes nothing here, for the reason given."""
    why: str
    types: Tuple[type, ...]


def _kind(x) -> str:
    return "bool" if isinstance(x, bool) else "number" if isinstance(x, (int, float)) else type(x).__name__


def _is(*values) -> Callable[[Any], bool]:
    """Neutral when equal to one of `values` and of the same kind (true is not 1)."""
    return lambda v: any(_kind(v) == _kind(x) and v == x for x in values)


def _empty(v) -> bool:
    return v in ("", [], {})


REFUSED: Dict[str, Refused] = {
    "echo": Refused("the prompt is not echoed back; read prompt_token_ids instead", _is(False)),
    "best_of": Refused("one sample per request", _is(1)),
    "suffix": Refused("no fill-in-the-middle", _empty),
    "logit_bias": Refused("no logit processors", _empty),
    "presence_penalty": Refused("no sampling penalties", _is(0, 0.0)),
    "frequency_penalty": Refused("no sampling penalties", _is(0, 0.0)),
    "repetition_penalty": Refused("no sampling penalties", _is(1, 1.0)),
    "top_k": Refused("sampling is temperature and top_p only", _is(-1, 0)),
    "min_p": Refused("sampling is temperature and top_p only", _is(0, 0.0)),
    "min_tokens": Refused("no minimum length", _is(0)),
    "ignore_eos": Refused("<|end|> always ends a sample (the model learns to stop)", _is(False)),
    "stop_token_ids": Refused("stop is by strings only", _empty),
    "include_stop_str_in_output": Refused("a stop string is never part of the output", _is(False)),
    "skip_special_tokens": Refused("special tokens are never in text (their ids are in token_ids)", _is(True)),
    "prompt_logprobs": Refused("no prompt logprobs"),
    "return_tokens_as_token_ids": Refused(
        "tokens are bytes and always named token_id:N (a byte is often not a whole character)", _is(True)),
    "tools": Refused("no tool calling", _empty),
    "tool_choice": Refused("no tool calling", _is("none")),
    "functions": Refused("no function calling", _empty),
    "function_call": Refused("no function calling", _is("none")),
    "response_format": Refused("no structured output; only {\"type\": \"text\"}",
                               lambda v: v == {"type": "text"}),
    "add_generation_prompt": Refused("a chat answer always starts a new assistant message", _is(True)),
    "continue_final_message": Refused("a chat answer always starts a new assistant message", _is(False)),
    "store": Refused("nothing is stored", _is(False)),
    "modalities": Refused("text only", lambda v: v == ["text"]),
    "audio": Refused("text only"),
    "prediction": Refused("no predicted outputs"),
    "reasoning_effort": Refused("not a reasoning model"),
    "web_search_options": Refused("no web search"),
}

NO_EFFECT: Dict[str, NoEffect] = {
    "user": NoEffect("an end-user id for abuse monitoring; this engine keeps no per-user record", (str,)),
    "safety_identifier": NoEffect("an end-user id for abuse monitoring; this engine keeps no per-user record",
                                  (str,)),
    "metadata": NoEffect("tags for stored completions; nothing is stored", (dict,)),
    "service_tier": NoEffect("one tier: every request is served the same way", (str,)),
    "prompt_cache_key": NoEffect("the engine caches the shared system prompt by itself", (str,)),
    "parallel_tool_calls": NoEffect("applies to tool calls, which are refused", (bool,)),
    "return_token_ids": NoEffect("token ids are always returned: a training engine's samples are ids",
                                 (bool,)),
}

_SAMPLING = {"model", "max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream", "stream_options"}
HONOURED = {
    "completions": _SAMPLING | {"prompt", "logprobs"},
    "chat": _SAMPLING | {"messages", "max_completion_tokens", "logprobs", "top_logprobs"},
    "tokenize": {"model", "prompt", "messages", "add_generation_prompt"},
}
# The /tokenize route is vLLM's own, not OpenAI's: only its fields are known there.
_TABLES_APPLY = {"completions", "chat"}


def check_params(body: dict, route: str) -> None:
    """Refuses, naming it, the first parameter this route does not honour: a refused feature
    asked for, a no-effect one of the wrong type, or a name this engine does not know."""
    for key, value in body.items():
        if key in HONOURED[route]:
            continue
        if route in _TABLES_APPLY and key in NO_EFFECT:
            ne = NO_EFFECT[key]
            if value is not None and _kind(value) not in {_kind(t()) for t in ne.types}:
                raise _bad(key, f"must be {' or '.join(t.__name__ for t in ne.types)}", "invalid_type")
            continue
        if route in _TABLES_APPLY and key in REFUSED:
            r = REFUSED[key]
            if value is None or r.neutral(value):
                continue
            raise _bad(key, f"not supported by this engine ({r.why}), got {json.dumps(value)[:80]}",
                       "unsupported_parameter")
        raise _bad(key, "unknown parameter (docs/engine-api.md lists what this engine takes)", "unknown_parameter")


# --- Field validation -------------------------------------------------------------------------

def _num(body: dict, key: str, default, lo: float, hi: float, integer: bool = False):
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise _bad(key, f"must be {'an integer' if integer else 'a number'}", "invalid_type")
    if not lo <= v <= hi:
        raise _bad(key, f"must be in [{lo}, {hi}], got {v}")
    return v


def bool_param(body: dict, key: str, default: bool) -> bool:
    v = body.get(key)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise _bad(key, "must be a boolean", "invalid_type")
    return v


def parse_prompt(body: dict, tok: ByteTokenizer) -> List[int]:
    p = body.get("prompt")
    if isinstance(p, str):
        return tok.encode(p, parse_special=True)
    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], list):
        p = p[0]  # a batch of one token list
    if isinstance(p, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in p):
        bad = next((t for t in p if not 0 <= t < tok.vocab_size), None)
        if bad is not None:
            raise _bad("prompt", f"token id {bad} is outside the vocabulary ({tok.vocab_size})")
        return p
    raise _bad("prompt", "must be a string or a list of token ids (one prompt per request)", "invalid_type")


def parse_messages(body: dict, tok: ByteTokenizer, add_generation_prompt: bool = True) -> List[int]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("messages", "must be a non-empty list")
    try:
        return tok.render_chat(msgs, add_generation_prompt)
    except ValueError as e:  # the tokenizer names the message field
        raise RequestError(400, str(e), "messages", "invalid_value") from e


@dataclass
class Request:
    """A validated completion or chat request."""
    chat: bool
    prompt: List[int]
    gen: GenRequest
    # None: no logprobs. Completions: logprobs=k (the sampled and the k most likely tokens); chat:
    # logprobs=true with top_logprobs=k.
    logprobs: Optional[int]
    stream: bool = False
    include_usage: bool = False
    continuous_usage: bool = False


def _stream_options(body: dict, stream: bool) -> Tuple[bool, bool]:
    opts = body.get("stream_options")
    if opts is None:
        return False, False
    if not stream:  # as OpenAI and vLLM: options for a stream that is not asked for are a mistake
        raise _bad("stream_options", "only allowed with stream: true")
    if not isinstance(opts, dict):
        raise _bad("stream_options", "must be an object", "invalid_type")
    for key in opts:
        if key not in ("include_usage", "continuous_usage_stats", "include_obfuscation"):
            raise _bad(f"stream_options.{key}", "unknown stream option", "unknown_parameter")
    # include_obfuscation (OpenAI) pads chunks against length side channels; nothing to pad here.
    bool_param(opts, "include_obfuscation", True)
    return bool_param(opts, "include_usage", False), bool_param(opts, "continuous_usage_stats", False)


def _logprobs(body: dict, chat: bool) -> Optional[int]:
    if not chat:  # completions: logprobs is the number of most likely tokens to list
        return _num(body, "logprobs", None, 0, MAX_LOGPROBS, integer=True)
    want = bool_param(body, "logprobs", False)
    k = _num(body, "top_logprobs", 0, 0, MAX_LOGPROBS, integer=True)
    if k > 0 and not want:  # vLLM refuses this too: top tokens of logprobs nobody asked for
        raise _bad("top_logprobs", "needs logprobs: true")
    return k if want else None


def _max_tokens(body: dict, chat: bool, room: int) -> int:
    mt = _num(body, "max_tokens", None, 1, 1 << 31, integer=True)
    if chat:
        mct = _num(body, "max_completion_tokens", None, 1, 1 << 31, integer=True)
        if mct is not None and mt is not None and mct != mt:
            raise _bad("max_tokens", f"{mt} differs from max_completion_tokens {mct}; send one of them")
        mt = mct if mct is not None else mt
    if mt is None:  # vLLM's defaults: 16 for completions (OpenAI's too), the context for chat
        mt = room if chat else 16
    # Capped to the context rather than refused: the answer then ends with "length".
    return min(mt, room)


def parse_request(body: dict, tok: ByteTokenizer, block_size: int, chat: bool) -> Request:
    """Validates a /v1/completions (chat=False) or /v1/chat/completions body (pure)."""
    check_params(body, "chat" if chat else "completions")
    prompt = parse_messages(body, tok) if chat else parse_prompt(body, tok)
    if len(prompt) == 0:
        raise _bad("prompt", "must not be empty")
    if len(prompt) >= block_size:
        raise _bad("prompt" if not chat else "messages",
                   f"{len(prompt)} tokens leave no room in the model's context ({block_size})")
    if _num(body, "n", 1, 1, 1 << 31, integer=True) != 1:
        raise _bad("n", "only 1 is supported", "unsupported_value")
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _bad("stop", "must be a string or a list of strings", "invalid_type")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _bad("seed", "must be an integer", "invalid_type")
    stream = bool_param(body, "stream", False)
    include_usage, continuous = _stream_options(body, stream)
    k = _logprobs(body, chat)
    gen = GenRequest(
        prompt=prompt,
        max_tokens=_max_tokens(body, chat, block_size - len(prompt)),
        temperature=float(_num(body, "temperature", 1.0, 0.0, 100.0)),
        top_p=float(_num(body, "top_p", 1.0, 1e-9, 1.0)),
        stop=stop,
        seed=seed,
        top_logprobs=k or 0,
    )
    return Request(chat, prompt, gen, k, stream, include_usage, continuous)
