"""The CPU path's inference engine: the current policy behind the OpenAI-compatible subset of
docs/engine-api.md (`/tokenize`, `/v1/completions`, `/v1/chat/completions`, streamed or not,
`/v1/models`), on the standard library's threaded HTTP server; openai_api.py validates the
requests, openai_answers.py shapes the answers. One generator thread runs a continuous batch:
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
from typing import Iterator, Optional, Tuple

import torch

from .log import Logger
from .metrics import Metrics
from .openai_answers import StreamChunks, response
from .openai_api import Request, RequestError, bool_param, check_params, parse_messages, parse_prompt, parse_request
from .sampling import Decoder, GenRequest, GenResult, PrefixCache
from .tokenizer import ByteTokenizer

MAX_BODY_BYTES = 16 * 1024 * 1024

__all__ = ["Api", "Engine", "RequestError", "StreamFuture", "make_server"]


class StreamFuture(Future):
    """A streamed request's handle. The generator thread pushes the tokens that can no longer
    change (`push`), then sets the result; the HTTP thread reads them in that order (`pieces`)."""

    def __init__(self) -> None:
        super().__init__()
        self._q: "queue.Queue" = queue.Queue()
        self._pushed = 0  # generator thread only
        self.add_done_callback(self._q.put)  # runs after the last push: the queue keeps the order

    def push(self, row, version: int) -> None:
        n = row.settled()
        if n > self._pushed:
            a, self._pushed = self._pushed, n
            self._q.put((row.ids[a:n], row.logprobs[a:n], row.tops[a:n], version))

    def pieces(self) -> Iterator[tuple]:
        """(token ids, logprobs, top logprobs, version, finish reason or None) pieces; the last is
        the rest of the result, with its finish reason. Raises what generation raised."""
        got = 0
        while True:
            item = self._q.get()
            if isinstance(item, Future):
                res, version = item.result()
                yield res.token_ids[got:], res.logprobs[got:], res.top_logprobs[got:], version, res.finish_reason
                return
            got += len(item[0])
            yield (*item, None)


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

    def submit(self, req: GenRequest, stream: bool = False) -> "Future[Tuple[GenResult, int]]":
        """The answer's future; with `stream`, a StreamFuture that also hands out tokens early."""
        f: Future = StreamFuture() if stream else Future()
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
                    for row, f in zip(d.rows, d.tags):
                        if isinstance(f, StreamFuture):
                            f.push(row, version)
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
            raise RequestError(400, "model_path: must be the exported version's directory", "model_path")
        if self.weights_root and not os.path.realpath(path).startswith(os.path.realpath(self.weights_root) + os.sep):
            raise RequestError(400, f"model_path: {path} is not under this engine's weights root", "model_path")
        want = body.get("policy_version", -1)
        if isinstance(want, bool) or not isinstance(want, int):
            raise RequestError(400, "policy_version: must be an integer", "policy_version", "invalid_type")
        t0 = time.perf_counter()
        with self._load_lock:  # one load at a time; generation pauses only for the copy
            try:
                version = load_exported(self.engine.trainer, path, want, on_swap=self._forget_prefix)
            except WeightsLoadError as e:
                self.engine.logger.warn("weights not loaded; serving the previous ones", path=path, error=str(e))
                raise RequestError(400, str(e), "model_path") from e
        self.engine.metrics.set("l0_learner_policy_version", version)
        self.engine.logger.info("weights loaded", version=version, path=path,
                                seconds=round(time.perf_counter() - t0, 3))
        return {"success": True, "message": f"loaded v{version} from {path}", "policy_version": version}

    def _check_model(self, body: dict) -> None:
        m = body.get("model")
        if m is not None and m != self.model:
            raise RequestError(404, f"model: the model `{m}` does not exist (this engine serves `{self.model}`)",
                               "model", "model_not_found")

    def models(self) -> dict:
        model = {"id": self.model, "object": "model", "owned_by": "l0",
                 "max_model_len": self.engine.trainer.block_size, "policy_version": self.engine.trainer.version}
        return {"object": "list", "data": [model]}

    def tokenize(self, body: dict) -> dict:
        check_params(body, "tokenize")
        self._check_model(body)
        if "messages" in body:
            ids = parse_messages(body, self.tok, bool_param(body, "add_generation_prompt", True))
        else:
            ids = parse_prompt(body, self.tok)
        return {"tokens": ids, "count": len(ids), "max_model_len": self.engine.trainer.block_size}

    def completions(self, body: dict):
        return self._answer(body, chat=False)

    def chat_completions(self, body: dict):
        return self._answer(body, chat=True)

    def _answer(self, body: dict, chat: bool):
        """A JSON answer, or with `stream` an iterator of Server-Sent Events. Everything is
        validated before anything is generated, so a refusal is always a plain 400."""
        req = parse_request(body, self.tok, self.engine.trainer.block_size, chat)
        self._check_model(body)
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        if req.stream:
            return self._stream(req, self.engine.submit(req.gen, stream=True), rid, created)
        res, version = self.engine.submit(req.gen).result()
        return response(req, res, version, self.model, self.tok, rid, created)

    def _stream(self, req: Request, f: StreamFuture, rid: str, created: int) -> Iterator[str]:
        chunks = StreamChunks(req, self.model, self.tok, rid, created)
        try:
            for ids, lps, tops, version, finish in f.pieces():
                yield from chunks.piece(ids, lps, tops, version, finish)
        except Exception as e:  # generation failed after the 200 went out: say so in the stream
            self.engine.logger.error("engine stream failed", error=str(e))
            yield from chunks.error(RequestError(500, "internal engine error", None, "internal_error"))
            return
        yield from chunks.end()


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
            self._send(e.status, e.body())

        def _send_stream(self, events: Iterator[str]) -> None:
            """Server-Sent Events over chunked transfer encoding, so the connection stays usable
            for the next request (HTTP/1.1 keep-alive) once the stream ends."""
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            try:
                for ev in events:
                    data = ev.encode("utf-8")
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:  # the client left: its row still runs to the end (no cancelling yet)
                self.close_connection = True

        def _authorized(self) -> bool:
            got = (self.headers.get("authorization") or "").encode("utf-8")
            if not token or hmac.compare_digest(got, want):
                return True
            self.close_connection = True
            self._error(RequestError(401, "authorization: missing or wrong token (Bearer <token>)",
                                     None, "invalid_api_key"))
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
                self._error(RequestError(404, f"no route GET {path}", None, "not_found"))

        def do_POST(self):
            path = self.path.split("?")[0]
            if not self._authorized():
                return
            try:
                n = int(self.headers.get("content-length") or 0)
                if n > MAX_BODY_BYTES:
                    self.close_connection = True
                    raise RequestError(413, f"body: {n} bytes is over {MAX_BODY_BYTES}", None, "request_too_large")
                raw = self.rfile.read(n)
                route = posts.get(path)
                if route is None:
                    raise RequestError(404, f"no route POST {path}", None, "not_found")
                try:
                    body = json.loads(raw or b"{}")
                except ValueError as e:
                    raise RequestError(400, f"body: not valid JSON: {e}", None, "invalid_json") from e
                if not isinstance(body, dict):
                    raise RequestError(400, "body: must be a JSON object", None, "invalid_type")
                answer = route(body)
                if isinstance(answer, dict):
                    self._send(200, answer)
                else:
                    self._send_stream(answer)
            except RequestError as e:
                self._error(e)
            except Exception as e:  # engine failure: a 5xx the worker retries
                logger.error("engine request failed", path=path, error=str(e))
                self._error(RequestError(500, "internal engine error", None, "internal_error"))

    server = _Server((host, port), Handler)
    server.daemon_threads = True
    return server


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a worker opening its episodes' connections at once
    # (16-64) overflowed it and some were reset.
    request_queue_size = 256
