"""Prometheus text exposition of the learner's metrics and the probe server."""
import threading
import unittest
import urllib.error
import urllib.request

import helpers  # noqa: F401  (paths)

from learner.metrics import Metrics, make_probe_server


class MetricsTest(unittest.TestCase):
    def test_render_is_valid_exposition_with_bounded_labels(self):
        m = Metrics()
        m.observe_step("train", {"tokens": 10, "seconds": 0.5, "policy_version": 3, "grad_norm": 1.5, "loss": -0.25,
                                 "kl": 0.01, "clip_fraction": 0.1, "entropy": 2.0, "logprob_gap": 0.02})
        m.inc("l0_learner_rejected_total", 1, "InvalidField")
        m.inc("l0_learner_rejected_total", 2, "InvalidField")
        text = m.render()
        self.assertIn('l0_learner_steps_total{kind="train"} 1.0\n', text)
        self.assertIn('l0_learner_rejected_total{reason="InvalidField"} 3.0\n', text)
        self.assertIn("l0_learner_policy_version 3.0\n", text)
        self.assertIn("l0_learner_loss -0.25\n", text)
        self.assertIn("l0_learner_engine_generated_tokens_total 0.0\n", text)  # unlabelled counters start at 0
        for line in text.splitlines():
            if not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                float(value)
                self.assertTrue(name.startswith("l0_learner_"), name)
        with self.assertRaises(AssertionError):
            m.inc("l0_learner_rejected_total", 1)  # missing label

    def test_probe_server(self):
        ready = {"why": "starting"}
        srv = make_probe_server(Metrics(), "127.0.0.1", 0, lambda: ready["why"])
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        try:
            with self.assertRaises(urllib.error.HTTPError) as ctx:
                urllib.request.urlopen(url + "/readyz", timeout=10)
            self.assertEqual(ctx.exception.code, 503)
            ready["why"] = None
            self.assertEqual(urllib.request.urlopen(url + "/readyz", timeout=10).status, 200)
            self.assertEqual(urllib.request.urlopen(url + "/healthz", timeout=10).status, 200)
            body = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
            self.assertIn("# TYPE l0_learner_steps_total counter", body)
        finally:
            srv.shutdown()
            srv.server_close()


if __name__ == "__main__":
    unittest.main()
