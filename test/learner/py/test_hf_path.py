"""The GPU path's glue (load_hf -> Trainer -> export) on CPU. transformers is not installed
here, so a stand-in module with the calls we use (AutoConfig.from_pretrained,
AutoModelForCausalLM.from_pretrained, gradient_checkpointing_enable)
replaces it; this checks our code, not transformers."""
import sys
import tempfile
import types
import unittest

import torch
from helpers import TOK, on_policy, sample, settings

from learner import export
from learner.model import checkpoint_dtype, dtype_kwarg, load_hf
from learner.train import Trainer


class _Lm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.config = types.SimpleNamespace(vocab_size=TOK.vocab_size, max_position_embeddings=64, use_cache=True)
        self.model = torch.nn.Embedding(TOK.vocab_size, 16)
        self.lm_head = torch.nn.Linear(16, TOK.vocab_size, bias=False)
        self.checkpointing = False

    def gradient_checkpointing_enable(self):
        self.checkpointing = True

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        return types.SimpleNamespace(logits=self.lm_head(self.model(input_ids)))


class _Tokenizer:
    def save_pretrained(self, directory):
        with open(f"{directory}/tokenizer.json", "w") as f:
            f.write("{}")


class DtypeTest(unittest.TestCase):
    def test_the_dtype_argument_follows_the_transformers_version(self):
        for version, key in (("4.46.3", "torch_dtype"), ("4.55.0", "torch_dtype"), ("4.56.0", "dtype"),
                             ("5.17.0", "dtype"), ("5.0.0.dev0", "dtype"), (None, "torch_dtype")):
            with self.subTest(version=version):
                module = types.SimpleNamespace(**({} if version is None else {"__version__": version}))
                self.assertEqual(dtype_kwarg(module, torch.float32), {key: torch.float32})

    def test_the_checkpoint_dtype_is_read_under_either_name(self):
        table = [({"dtype": "bfloat16"}, torch.bfloat16), ({"torch_dtype": "float16"}, torch.float16),
                 ({"dtype": torch.bfloat16}, torch.bfloat16), ({"torch_dtype": "float32"}, None), ({}, None),
                 ({"dtype": None, "torch_dtype": "bfloat16"}, torch.bfloat16), ({"dtype": "float8"}, None)]
        for fields, want in table:
            with self.subTest(fields=fields):
                self.assertEqual(checkpoint_dtype(types.SimpleNamespace(**fields)), want)


class HfPathTest(unittest.TestCase):
    def setUp(self):
        fake = types.ModuleType("transformers")
        fake.AutoModelForCausalLM = types.SimpleNamespace(
            from_pretrained=lambda name, torch_dtype: _Lm().to(torch_dtype))
        fake.AutoConfig = types.SimpleNamespace(
            from_pretrained=lambda name: types.SimpleNamespace(torch_dtype="bfloat16"))
        fake.AutoTokenizer = types.SimpleNamespace(from_pretrained=lambda name: _Tokenizer())
        sys.modules["transformers"] = fake

    def tearDown(self):
        sys.modules.pop("transformers", None)

    def test_train_and_export_under_the_models_own_names(self):
        torch.manual_seed(0)
        policy = load_hf("org/model", "cpu")
        self.assertTrue(policy.lm.checkpointing)
        self.assertFalse(policy.lm.config.use_cache)
        t = Trainer(policy, settings(learning_rate=1e-2, kl_coef=0.1), "org/model")
        self.assertEqual((t.vocab_size, t.block_size), (TOK.vocab_size, 64))
        out = t.train(on_policy(t, [sample([256, 1, 2], [3, 4], 1.0)]))
        self.assertEqual(out["policy_version"], 1)
        with tempfile.TemporaryDirectory() as d:
            path, m = export.export(t.model, t.version, d, "org/model")
            config, tensors = export.read_model_dir(str(path))
            tokenizer_files = sorted(f.name for f in path.glob("tokenizer*"))
        self.assertEqual(sorted(x["name"] for x in m["tensors"]), ["lm_head.weight", "model.weight"])
        # A whole model directory: its config in the served dtype with the cache back on, the
        # weights by the index, and the tokenizer the model was loaded with.
        self.assertEqual((config["dtype"], config["use_cache"], config["vocab_size"]),
                         ("bfloat16", True, TOK.vocab_size))
        self.assertNotIn("torch_dtype", config)
        self.assertEqual(sorted(tensors), ["lm_head.weight", "model.weight"])
        self.assertEqual(tokenizer_files, ["tokenizer.json"])

    def test_master_weights_are_fp32_and_the_forward_runs_in_bf16(self):
        torch.manual_seed(0)
        policy = load_hf("org/model", "cpu")
        self.assertEqual({p.dtype for p in policy.parameters()}, {torch.float32})
        t = Trainer(policy, settings(learning_rate=1e-2, kl_coef=0.1), "org/model", autocast_bf16=True)
        seen = []
        policy.lm.lm_head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
        t.train(on_policy(t, [sample([256, 1, 2], [3, 4], 1.0)]))
        self.assertIn(torch.bfloat16, seen)
        self.assertEqual({p.dtype for p in policy.parameters()}, {torch.float32})
        self.assertEqual({s["exp_avg"].dtype for s in t.optimizer.state.values()}, {torch.float32})
        # The engines get the checkpoint's own dtype (bf16), rounded from the fp32 master weights.
        with tempfile.TemporaryDirectory() as d:
            _, m = export.export(policy, t.version, d, "org/model")
        self.assertEqual({x["dtype"] for x in m["tensors"]}, {"BF16"})


if __name__ == "__main__":
    unittest.main()
