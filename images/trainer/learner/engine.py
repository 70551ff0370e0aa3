"""The CPU path's inference engine: the current policy behind the OpenAI-compatible subset of
docs/engine-api.md (`/tokenize`, `/v1/completions`, `/v1/chat/completions`, `/v1/models`), on
the standard library's threaded HTTP server. One generator thread runs a continuous batch:
requests that arrive together start as one batch, later ones join it between tokens, each row
is answered as soon as it ends. A session holds the weights lock, so every answer carries the
`policy_version` that produced it; a waiting Train/Load stops admissions and the batch drains."""
from __future__ import annotations

import hmac
import json
import os
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple

import torch

from .log import Logger
from .metrics import Metrics
from .sampling import Decoder, GenRequest, GenResult, PrefixCache
from .tokenizer import ByteTokenizer

MAX_BODY_BYTES = 16 * 1024 * 1024


class RequestError(ValueError):
    def __init__(self, status: int, message: str, kind: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


class Engine:
    """Collects generation requests and runs them in batches of up to max_batch."""

    def __init__(self, trainer, tok: ByteTokenizer, seed: int = 0, max_batch: int = 64,
                 batch_wait_s: float = 0.01, logger: Optional[Logger] = None,
                 metrics: Optional[Metrics] = None, share_prefix: bool = True) -> None:
        self.metrics = metrics or Metrics()
        self.trainer, self.tok = trainer, tok
        self.gen = torch.Generator().manual_seed(seed)
        self.max_batch, self.batch_wait_s = max_batch, batch_wait_s
        # The system prompt's keys/values, computed once per policy version.
        self.prefixes = PrefixCache() if share_prefix else None
        self.logger = logger or Logger(level="none")
        self.q: "queue.Queue[Optional[Tuple[GenRequest, Future]]]" = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="engine-batcher", daemon=True)
        self.batches = 0  # batches generated so far (tests, benchmarks)
        self.submitted = 0
        self._count_lock = threading.Lock()
        self.thread.start()

    def submit(self, req: GenRequest) -> "Future[Tuple[GenResult, int]]":
        f: Future = Future()
        with self._count_lock:
            self.submitted += 1
        self.q.put((req, f))
        return f

    def close(self) -> None:
        self.q.put(None)
        self.thread.join(timeout=5)

    def _take_batch(self, block: bool, limit: int) -> Optional[list]:
        """Up to `limit` queued requests: when block, waits for a first one and then batch_wait_s
        for company; otherwise takes only what is queued now. None = close() was called."""
        batch: list = []
        if block:
            first = self.q.get()
            if first is None:
                return None
            batch.append(first)
        deadline = time.monotonic() + (self.batch_wait_s if block else 0.0)
        while len(batch) < limit:
            try:
                left = deadline - time.monotonic()
                item = self.q.get(timeout=left) if left > 0 else self.q.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self.q.put(None)  # seen again by the blocking take after this session
                break
            batch.append(item)
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch(True, self.max_batch)
            if batch is None:
                return
            while self.trainer.writers_waiting:  # let a waiting Train/Load take the weights first
                time.sleep(0.001)
            with self.trainer.lock:
                self.trainer.model.eval()
                self._session(batch, self.trainer.version)

    def _session(self, batch: list, version: int) -> None:
        """Decodes until no row is left, admitting queued requests while nobody waits to write."""
        d = Decoder(self.trainer.model, self.tok, self.gen, self.prefixes, version)
        try:
            while batch:
                d.add([r for r, _ in batch], [f for _, f in batch])
                self.batches += 1
                batch = []
                while d.active:
                    for f, res in d.step():
                        f.set_result((res, version))
                        self.metrics.inc("l0_learner_engine_requests_total", 1, "ok")
                        self.metrics.inc("l0_learner_engine_generated_tokens_total", len(res.token_ids))
                    self.metrics.set("l0_learner_engine_running_rows", d.active)
                    room = self.max_batch - d.active
                    if room > 0 and not self.trainer.writers_waiting:
                        batch = self._take_batch(False, room) or []
                        if batch:
                            break
        except Exception as e:  # never kill the generator thread: fail this session's requests
            self.logger.error("generation failed", error=str(e), rows=d.active + len(batch))
            for f in d.tags + [f for _, f in batch]:
                if not f.done():
                    f.set_exception(e)
                    self.metrics.inc("l0_learner_engine_requests_total", 1, "error")


def _num(body: dict, key: str, default, lo: float, hi: float, integer: bool = False):
    v = body.get(key, default)
    if v is None:
        v = default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise RequestError(400, f"{key}: must be {'an integer' if integer else 'a number'}")
    if not lo <= v <= hi:
        raise RequestError(400, f"{key}: must be in [{lo}, {hi}], got {v}")
    return v


def parse_sampling(body: dict, prompt: List[int], block_size: int) -> GenRequest:
    """Validates a completion request's sampling fields against the model (pure)."""
    if len(prompt) == 0:
        raise RequestError(400, "prompt: must not be empty")
    if len(prompt) >= block_size:
        raise RequestError(400, f"prompt: {len(prompt)} tokens leave no room in the model's context ({block_size})")
    if body.get("n", 1) != 1:
        raise RequestError(400, "n: only 1 is supported")
    max_tokens = _num(body, "max_tokens", 16, 1, 1 << 31, integer=True)
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise RequestError(400, "stop: must be a string or a list of strings")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError(400, "seed: must be an integer")
    return GenRequest(
        prompt=prompt,
        # Capped to the context rather than refused: the answer then ends with "length".
        max_tokens=min(max_tokens, block_size - len(prompt)),
        temperature=float(_num(body, "temperature", 1.0, 0.0, 100.0)),
        top_p=float(_num(body, "top_p", 1.0, 1e-9, 1.0)),
        stop=stop,
        seed=seed,
    )


class Api:
    """The HTTP routes as plain functions of a parsed body (testable without a socket). With
    `loads_weights` (an inference-only engine) it also takes POST /update_weights_from_disk, the
    weight-sync sidecar's call (SGLang's route and answer; `policy_version` is ours)."""

    def __init__(self, engine: Engine, served_model: str, loads_weights: bool = False,
                 weights_root: str = "") -> None:
        self.engine, self.model = engine, served_model
        self.tok = engine.tok
        self.loads_weights = loads_weights
        self.weights_root = weights_root  # when set, only directories under it are loaded
        self._load_lock = threading.Lock()

    def _forget_prefix(self) -> None:
        # Keyed by version: a reused number with other weights must not hit the old keys/values.
        if self.engine.prefixes is not None:
            self.engine.prefixes.clear()

    def update_weights_from_disk(self, body: dict) -> dict:
        """Loads an exported version directory, all or nothing: on any error the engine keeps
        serving the weights it had (and says why, naming the field)."""
        from .export import WeightsLoadError, load_exported

        path = body.get("model_path")
        if not isinstance(path, str) or not path or "\0" in path:
            raise RequestError(400, "model_path: must be the exported version's directory")
        if self.weights_root and not os.path.realpath(path).startswith(os.path.realpath(self.weights_root) + os.sep):
            raise RequestError(400, f"model_path: {path} is not under this engine's weights root")
        want = body.get("policy_version", -1)
        if isinstance(want, bool) or not isinstance(want, int):
            raise RequestError(400, "policy_version: must be an integer")
        t0 = time.perf_counter()
        with self._load_lock:  # one load at a time; generation pauses only for the copy
            try:
                version = load_exported(self.engine.trainer, path, want, on_swap=self._forget_prefix)
            except WeightsLoadError as e:
                self.engine.logger.warn("weights not loaded; serving the previous ones", path=path, error=str(e))
                raise RequestError(400, str(e)) from e
        self.engine.metrics.set("l0_learner_policy_version", version)
        self.engine.logger.info("weights loaded", version=version, path=path,
                                seconds=round(time.perf_counter() - t0, 3))
        return {"success": True, "message": f"loaded v{version} from {path}", "policy_version": version}

    def _check_model(self, body: dict) -> None:
        m = body.get("model")
        if m is not None and m != self.model:
            raise RequestError(404, f"model: the model `{m}` does not exist (this engine serves `{self.model}`)",
                               "NotFoundError")

    def _prompt(self, body: dict) -> List[int]:
        p = body.get("prompt")
        if isinstance(p, str):
            return self.tok.encode(p, parse_special=True)
        if isinstance(p, list) and len(p) == 1 and isinstance(p[0], list):
            p = p[0]  # a batch of one token list
        if isinstance(p, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in p):
            bad = next((t for t in p if not 0 <= t < self.tok.vocab_size), None)
            if bad is not None:
                raise RequestError(400, f"prompt: token id {bad} is outside the vocabulary ({self.tok.vocab_size})")
            return p
        raise RequestError(400, "prompt: must be a string or a list of token ids")

    def _messages(self, body: dict) -> List[int]:
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise RequestError(400, "messages: must be a non-empty list")
        try:
            return self.tok.render_chat(msgs, bool(body.get("add_generation_prompt", True)))
        except ValueError as e:
            raise RequestError(400, str(e)) from e

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "l0",
                                             "max_model_len": self.engine.trainer.block_size,
                                             "policy_version": self.engine.trainer.version}]}

    def tokenize(self, body: dict) -> dict:
        self._check_model(body)
        ids = self._messages(body) if "messages" in body else self._prompt(body)
        return {"tokens": ids, "count": len(ids), "max_model_len": self.engine.trainer.block_size}

    def _run(self, body: dict, prompt: List[int]) -> Tuple[GenResult, int]:
        req = parse_sampling(body, prompt, self.engine.trainer.block_size)
        return self.engine.submit(req).result()

    def completions(self, body: dict) -> dict:
        self._check_model(body)
        prompt = self._prompt(body)
        res, version = self._run(body, prompt)
        choice = {
            "index": 0,
            "text": res.text,
            "finish_reason": res.finish_reason,
            "token_ids": res.token_ids,
            "logprobs": {"tokens": [f"token_id:{t}" for t in res.token_ids], "token_logprobs": res.logprobs},
        }
        return self._envelope("text_completion", choice, prompt, res, version)

    def chat_completions(self, body: dict) -> dict:
        self._check_model(body)
        prompt = self._messages({**body, "add_generation_prompt": True})
        res, version = self._run(body, prompt)
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": res.text},
            "finish_reason": res.finish_reason,
            "token_ids": res.token_ids,
            "logprobs": {"content": [{"token": f"token_id:{t}", "logprob": lp}
                                     for t, lp in zip(res.token_ids, res.logprobs)]},
        }
        return self._envelope("chat.completion", choice, prompt, res, version)

    def _envelope(self, obj: str, choice: dict, prompt: List[int], res: GenResult, version: int) -> dict:
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": obj,
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice],
            "prompt_token_ids": prompt,
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(res.token_ids),
                      "total_tokens": len(prompt) + len(res.token_ids)},
            "policy_version": version,
        }


def make_server(api: Api, host: str, port: int, logger: Logger, token: str = "") -> ThreadingHTTPServer:
    """The engine's HTTP server. With a token, every route but /health needs `Authorization:
    Bearer <token>` (as vLLM's --api-key), answered 401 otherwise."""
    want = f"Bearer {token}".encode("utf-8")
    posts = {"/tokenize": api.tokenize, "/v1/completions": api.completions,
             "/v1/chat/completions": api.chat_completions}
    if api.loads_weights:
        posts["/update_weights_from_disk"] = api.update_weights_from_disk

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # route access lines to our logger, quietly
            logger.debug("http request", line=fmt % args)

        def _send(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode("utf-8")
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, e: RequestError) -> None:
            self._send(e.status, {"error": {"message": str(e), "type": e.kind, "code": e.status}})

        def _authorized(self) -> bool:
            got = (self.headers.get("authorization") or "").encode("utf-8")
            if not token or hmac.compare_digest(got, want):
                return True
            self.close_connection = True
            self._error(RequestError(401, "authorization: missing or wrong token (Bearer <token>)",
                                     "AuthenticationError"))
            return False

        def do_GET(self):
            path = self.path.split("?")[0]
            if path not in ("/health", "/healthz") and not self._authorized():
                return
            if path == "/v1/models":
                self._send(200, api.models())
            elif path in ("/health", "/healthz"):
                self._send(200, {"status": "ok"})
            else:
                self._error(RequestError(404, f"no route GET {path}", "NotFoundError"))

        def do_POST(self):
            path = self.path.split("?")[0]
            if not self._authorized():
                return
            try:
                n = int(self.headers.get("content-length") or 0)
                if n > MAX_BODY_BYTES:
                    self.close_connection = True
                    raise RequestError(413, f"body: {n} bytes is over {MAX_BODY_BYTES}")
                raw = self.rfile.read(n)
                route = posts.get(path)
                if route is None:
                    raise RequestError(404, f"no route POST {path}", "NotFoundError")
                try:
                    body = json.loads(raw or b"{}")
                except ValueError as e:
                    raise RequestError(400, f"body: not valid JSON: {e}") from e
                if not isinstance(body, dict):
                    raise RequestError(400, "body: must be a JSON object")
                self._send(200, route(body))
            except RequestError as e:
                self._error(e)
            except Exception as e:  # engine failure: a 5xx the worker retries
                logger.error("engine request failed", path=path, error=str(e))
                self._error(RequestError(500, "internal engine error", "InternalServerError"))

    server = _Server((host, port), Handler)
    server.daemon_threads = True
    return server


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a worker opening its episodes' connections at once
    # (16-64) overflowed it and some were reset.
    request_queue_size = 256
