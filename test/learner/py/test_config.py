"""Configuration precedence (flag, environment, run config, default) and warm-start data."""
import json
import tempfile
import unittest
from pathlib import Path

from helpers import TOK

from learner.config import load_config
from learner.sft import batches, read_jsonl


class ConfigTest(unittest.TestCase):
    def test_flag_beats_environment_beats_run_config_beats_default(self):
        with tempfile.TemporaryDirectory() as d:
            run = Path(d) / "run.json"
            run.write_text(json.dumps({"spec": {"model": {"name": "tiny"}, "algorithm": {
                "learningRate": 0.01, "klCoef": 0.5, "clipLow": 0.1, "lossAggregation": "sequence_mean"}}}))
            env = {"L0_LEARNER_KL_COEF": "0.25", "L0_LEARNER_CLIP_LOW": "0.15", "L0_LEARNER_TOKEN_FILE": "/t"}
            cfg = load_config(["--run-config", str(run), "--clip-low", "0.05"], env)
            self.assertEqual((cfg.learning_rate, cfg.kl_coef, cfg.clip_low), (0.01, 0.25, 0.05))
            self.assertEqual((cfg.aggregation, cfg.clip_high, cfg.token_file), ("sequence_mean", 0.28, "/t"))

    def test_errors_name_the_setting(self):
        with self.assertRaisesRegex(ValueError, "--token-file"):
            load_config([], {})
        self.assertTrue(load_config(["--token-file", "/t", "--engine-require-token", "true"], {}).engine_require_token)
        self.assertFalse(load_config(["--token-file", "/t"], {"L0_LEARNER_ENGINE_REQUIRE_TOKEN": "0"}).engine_require_token)
        with self.assertRaisesRegex(ValueError, "L0_LEARNER_PORT"):
            load_config(["--token-file", "/t"], {"L0_LEARNER_PORT": "eighty"})
        # An inference-only engine serves the tiny model on a port; anything else is refused.
        self.assertEqual(load_config(["--token-file", "/t"], {"L0_LEARNER_ROLE": "inference"}).role, "inference")
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
