"""The learner's Prometheus metrics (text exposition written by hand: no client library in
Debian's Python set) and the probe server: /metrics, /healthz, /readyz. Labels are bounded."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Tuple

GAUGES = {
    "l0_learner_policy_version": "Version of the policy the learner holds (+1 per optimizer step).",
    "l0_learner_step": "Last training step number the hub sent.",
    "l0_learner_loss": "Loss of the last Train step.",
    "l0_learner_kl": "KL to the reference of the last Train step.",
    "l0_learner_clip_fraction": "Fraction of trained tokens clipped in the last Train step.",
    "l0_learner_entropy": "Mean policy entropy over trained tokens in the last Train step.",
    "l0_learner_grad_norm": "Gradient norm (before clipping) of the last step.",
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
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.gauges: Dict[str, float] = {k: 0.0 for k in GAUGES}
        self.counters: Dict[Tuple[str, Tuple[str, ...]], float] = {}

    def set(self, name: str, value: float) -> None:
        assert name in GAUGES, name
        with self._lock:
            self.gauges[name] = float(value)

    def inc(self, name: str, value: float = 1.0, *labels: str) -> None:
        assert name in COUNTERS and len(labels) == len(COUNTERS[name][1]), name
        with self._lock:
            self.counters[(name, labels)] = self.counters.get((name, labels), 0.0) + value

    def observe_step(self, kind: str, out: dict) -> None:
        self.inc("l0_learner_steps_total", 1, kind)
        self.inc("l0_learner_trained_tokens_total", out.get("tokens", 0))
        self.inc("l0_learner_step_seconds_total", out.get("seconds", 0.0))
        self.set("l0_learner_policy_version", out["policy_version"])
        self.set("l0_learner_grad_norm", out["grad_norm"])
        if kind == "train":
            for k in ("loss", "kl", "clip_fraction", "entropy"):
                self.set(f"l0_learner_{k}", out[k])

    def render(self) -> str:
        lines = []
        with self._lock:
            for name, help_ in GAUGES.items():
                lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge", f"{name} {self.gauges[name]!r}"]
            for name, (help_, label_names) in COUNTERS.items():
                lines += [f"# HELP {name} {help_}", f"# TYPE {name} counter"]
                series = [(lab, v) for (n, lab), v in sorted(self.counters.items()) if n == name]
                if not series and not label_names:
                    series = [((), 0.0)]
                for labels, v in series:
                    sel = ",".join(f'{k}="{val}"' for k, val in zip(label_names, labels))
                    lines.append(f"{name}{{{sel}}} {v!r}" if sel else f"{name} {v!r}")
        return "\n".join(lines) + "\n"


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
                self._send(200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
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
