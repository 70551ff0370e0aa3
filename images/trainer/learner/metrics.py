"""The learner's Prometheus metrics (prometheus_client, on a registry of its own) and the probe
server: /metrics, /healthz, /readyz. Labels are bounded."""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

GAUGES = {
    "l0_learner_policy_version": "Version of the policy the learner holds (+1 per optimizer step).",
    "l0_learner_step": "Last training step number the hub sent.",
    "l0_learner_loss": "Loss of the last Train step.",
    "l0_learner_kl": "KL to the reference of the last Train step.",
    "l0_learner_clip_fraction": "Fraction of trained tokens clipped in the last Train step.",
    "l0_learner_entropy": "Mean policy entropy over trained tokens in the last Train step.",
    "l0_learner_grad_norm": "Gradient norm (before clipping) of the last step.",
    "l0_learner_logprob_gap": "Mean |trainer - engine| log-prob over the last Train step's tokens.",
    "l0_learner_engine_running_rows": "Rows in the engine's running batch.",
}
COUNTERS = {
    "l0_learner_steps_total": ("Optimizer steps by kind (train, sft).", ("kind",)),
    "l0_learner_trained_tokens_total": ("Tokens (prompt + response) fed to optimizer steps.", ()),
    "l0_learner_step_seconds_total": ("Seconds spent in optimizer steps.", ()),
    "l0_learner_rejected_total": ("Requests refused by reason (InvalidField, NonFiniteGradient, ...).", ("reason",)),
    "l0_learner_engine_requests_total": ("Engine generation requests by outcome (ok, error).", ("outcome",)),
    "l0_learner_engine_generated_tokens_total": ("Tokens the engine generated.", ()),
}


class Metrics:
    """The learner's series on its own prometheus_client registry (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._gauges = {k: Gauge(k, h, registry=self.registry) for k, h in GAUGES.items()}
        self._counters = {k: Counter(k, h, labels, registry=self.registry) for k, (h, labels) in COUNTERS.items()}

    def set(self, name: str, value: float) -> None:
        assert name in GAUGES, name
        self._gauges[name].set(float(value))

    def inc(self, name: str, value: float = 1.0, *labels: str) -> None:
        assert name in COUNTERS and len(labels) == len(COUNTERS[name][1]), name
        c = self._counters[name]
        (c.labels(*labels) if labels else c).inc(value)

    def observe_step(self, kind: str, out: dict) -> None:
        self.inc("l0_learner_steps_total", 1, kind)
        self.inc("l0_learner_trained_tokens_total", out.get("tokens", 0))
        self.inc("l0_learner_step_seconds_total", out.get("seconds", 0.0))
        self.set("l0_learner_policy_version", out["policy_version"])
        self.set("l0_learner_grad_norm", out["grad_norm"])
        if kind == "train":
            for k in ("loss", "kl", "clip_fraction", "entropy", "logprob_gap"):
                self.set(f"l0_learner_{k}", out[k])

    def render(self) -> str:
        return generate_latest(self.registry).decode("utf-8")


def make_probe_server(metrics: Metrics, host: str, port: int, ready=lambda: None) -> ThreadingHTTPServer:
    """/metrics, /healthz (alive), /readyz (`ready()` returns None when ready, else the reason)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # probes every few seconds: not worth a log line
            return

        def _send(self, status: int, body: str, ctype: str = "text/plain") -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/metrics":
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, "ok\n")
            elif path == "/readyz":
                reason = ready()
                self._send(200 if reason is None else 503, (reason or "ok") + "\n")
            else:
                self._send(404, "not found\n")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
