"""Configuration precedence (flag, environment, run config, default) and warm-start data."""
import json
import re
import tempfile
import unittest
from pathlib import Path

from helpers import TOK

from learner import runschema
from learner.config import load_config
from learner.sft import batches, read_jsonl


SCHEMA = runschema.load_schema()


def resolved(schema: dict, v=None) -> dict:
    """A resolved value of `schema`: every defaulted field present (what lib/run-config.ts writes)."""
    if v is None:
        v = schema.get("default")
    if schema.get("type") == "object" and isinstance(v, dict):
        for k, s in schema.get("properties", {}).items():
            if k in v or "default" in s:
                v[k] = resolved(s, v.get(k))
    return v


def resolved_run(**spec) -> dict:
    return {"spec": resolved(SCHEMA, {"model": {"name": "tiny"}, "dataset": {"path": "/d"}, **spec})}


class ConfigTest(unittest.TestCase):
    def write(self, d: str, run: dict) -> str:
        path = Path(d) / "run.json"
        path.write_text(json.dumps(run))
        return str(path)

    def test_flag_beats_environment_beats_run_config(self):
        with tempfile.TemporaryDirectory() as d:
            run = self.write(d, resolved_run(trainer={"gpusPerNode": 0}, algorithm={
                "learningRate": 0.01, "klCoef": 0.5, "clipLow": 0.1, "lossAggregation": "sequence_mean"}))
            env = {"L0_LEARNER_KL_COEF": "0.25", "L0_LEARNER_CLIP_LOW": "0.15", "L0_LEARNER_TOKEN_FILE": "/t"}
            cfg = load_config(["--run-config", run, "--clip-low", "0.05"], env)
            self.assertEqual((cfg.learning_rate, cfg.kl_coef, cfg.clip_low), (0.01, 0.25, 0.05))
            self.assertEqual((cfg.aggregation, cfg.clip_high, cfg.token_file), ("sequence_mean", 0.28, "/t"))
            self.assertEqual(cfg.device, "cpu")

    def test_the_run_asks_for_cuda_when_the_trainer_has_gpus(self):
        with tempfile.TemporaryDirectory() as d:
            run = self.write(d, resolved_run(trainer={"gpusPerNode": 2}))
            self.assertEqual(load_config(["--run-config", run, "--token-file", "/t"], {}).device, "cuda")
            self.assertEqual(load_config(["--run-config", run, "--token-file", "/t"],
                                         {"L0_LEARNER_DEVICE": "cpu"}).device, "cpu")

    def test_without_a_run_the_loss_settings_are_the_crds_defaults(self):
        cfg = load_config(["--token-file", "/t"], {})
        algorithm = SCHEMA["properties"]["algorithm"]["properties"]
        self.assertEqual((cfg.learning_rate, cfg.clip_high, cfg.aggregation, cfg.device),
                         (algorithm["learningRate"]["default"], algorithm["clipHigh"]["default"],
                          algorithm["lossAggregation"]["default"], "cpu"))

    def test_a_run_that_is_not_resolved_fails_naming_the_fields(self):
        table = [
            ({"spec": {"model": {"name": "tiny"}}}, "spec.dataset: missing"),
            (resolved_run(algorithm={"learningRate": "fast"}), "spec.algorithm.learningRate: must be a number"),
            (resolved_run(algorithm={"learningRate": 0}), "spec.algorithm.learningRate: must be > 0"),
            (resolved_run(algorithm={"lossAggregation": "sum"}), "spec.algorithm.lossAggregation: must be one of"),
            (resolved_run(trainer={"nodes": 1.5}), "spec.trainer.nodes: must be an integer"),
            (resolved_run(trainer={"gpusPerNod": 1}), "spec.trainer.gpusPerNod: unknown field"),
            (resolved_run(checkpoint={"mountPath": "rel"}), "spec.checkpoint.mountPath: must match"),
        ]
        with tempfile.TemporaryDirectory() as d:
            for run, error in table:
                with self.subTest(error=error), self.assertRaisesRegex(ValueError, re.escape(error)):
                    load_config(["--run-config", self.write(d, run), "--token-file", "/t"], {})
            run = resolved_run()
            del run["spec"]["algorithm"]["clipLow"]
            with self.assertRaisesRegex(ValueError, r"spec\.algorithm\.clipLow: missing"):
                load_config(["--run-config", self.write(d, run), "--token-file", "/t"], {})

    def test_errors_name_the_setting(self):
        with self.assertRaisesRegex(ValueError, "--token-file"):
            load_config([], {})
        self.assertTrue(load_config(["--token-file", "/t", "--engine-require-token", "true"], {}).engine_require_token)
        off = load_config(["--token-file", "/t"], {"L0_LEARNER_ENGINE_REQUIRE_TOKEN": "0"})
        self.assertFalse(off.engine_require_token)
        with self.assertRaisesRegex(ValueError, "L0_LEARNER_PORT"):
            load_config(["--token-file", "/t"], {"L0_LEARNER_PORT": "eighty"})
        # An inference-only engine serves the tiny model on a port; anything else is refused.
        self.assertEqual(load_config(["--token-file", "/t"], {"L0_LEARNER_ROLE": "inference"}).role, "inference")
        qwen2 = load_config(["--token-file", "/t", "--role", "inference", "--model", "tiny-qwen2"], {})
        self.assertEqual((qwen2.role, qwen2.model), ("inference", "tiny-qwen2"))
        with self.assertRaisesRegex(ValueError, "role: must be one of learner, inference, got 'engine'"):
            load_config(["--token-file", "/t"], {"L0_LEARNER_ROLE": "engine"})
        with self.assertRaisesRegex(ValueError, "--role inference"):
            load_config(["--token-file", "/t", "--role", "inference", "--engine-port", "-1"], {})
        with self.assertRaisesRegex(ValueError, "--role inference"):
            load_config(["--token-file", "/t", "--role", "inference", "--model", "Qwen/Qwen2.5-0.5B"], {})


class SftDataTest(unittest.TestCase):
    def test_chat_and_token_lines(self):
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "demos.jsonl"
            f.write_text(json.dumps({"messages": [{"role": "user", "content": "q"},
                                                  {"role": "assistant", "content": "ok"}]}) + "\n\n" +
                         json.dumps({"prompt_token_ids": [256, 1], "response_token_ids": [2, 3]}) + "\n")
            chat, toks = read_jsonl(str(f), TOK)
            full = chat.prompt + chat.response
            self.assertEqual(full, TOK.render_chat([{"role": "user", "content": "q"},
                                                    {"role": "assistant", "content": "ok"}],
                                                   add_generation_prompt=False))
            trained = [t for t, m in zip(chat.response, chat.mask) if m]
            self.assertEqual(trained, [ord("o"), ord("k"), TOK.eos_id])  # the reply and its <|end|>
            self.assertEqual((toks.prompt, toks.response, toks.mask), ([256, 1], [2, 3], [1, 1]))
            self.assertEqual(sum(len(b) for b in batches([chat, toks] * 5, 4, 2, 0)), 20)

    def test_a_bad_line_names_file_and_line(self):
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "demos.jsonl"
            f.write_text(json.dumps({"prompt_token_ids": [1], "response_token_ids": [2]}) + "\n{nope\n")
            with self.assertRaisesRegex(ValueError, r"demos.jsonl:2: "):
                read_jsonl(str(f), TOK)
            f.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}]}) + "\n")
            with self.assertRaisesRegex(ValueError, r"demos.jsonl:1: messages: no assistant"):
                read_jsonl(str(f), TOK)


if __name__ == "__main__":
    unittest.main()
