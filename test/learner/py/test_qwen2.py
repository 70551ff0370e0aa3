"""tiny-qwen2: transformers' Qwen2 names and config.json, grouped-query attention laid out as
HF's repeat_kv, rotary positions that only see relative offsets, the KV cache (decode and the
engine's left-padded batches) equal to the full forward, and the export round trip."""
import json
import math
import tempfile
import unittest

import torch
from helpers import TOK, sample, settings

from learner import export
from learner.qwen2 import Qwen2Config, TinyQwen2, rotary, rotate, tiny_qwen2_config
from learner.sampling import GenRequest, generate
from learner.train import Trainer


def qwen(seed: int = 0, **kw) -> TinyQwen2:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=TOK.vocab_size, hidden_size=32, intermediate_size=96, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    cfg.update(kw)
    m = TinyQwen2(Qwen2Config(**cfg))
    # Untrained RMSNorm weights are all ones, biases zero and attention near uniform: perturb
    # them and sharpen queries and keys, so a wrong norm, bias or position shows.
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("norm.weight") or n.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.1)
            if ".q_proj." in n or ".k_proj." in n:
                p.mul_(20)
    return m.eval()


SEQ = torch.tensor([[256, 259] + list(b"what is two plus two?") + [257, 260]])


class Qwen2LayoutTest(unittest.TestCase):
    def test_parameter_names_and_shapes_are_transformers_qwen2s(self):
        m = qwen()
        shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
        layer = {  # modeling_qwen2.py: q/k/v with bias, o_proj and the MLP without
            "self_attn.q_proj.weight": (32, 32), "self_attn.q_proj.bias": (32,),
            "self_attn.k_proj.weight": (16, 32), "self_attn.k_proj.bias": (16,),
            "self_attn.v_proj.weight": (16, 32), "self_attn.v_proj.bias": (16,),
            "self_attn.o_proj.weight": (32, 32),
            "mlp.gate_proj.weight": (96, 32), "mlp.up_proj.weight": (96, 32), "mlp.down_proj.weight": (32, 96),
            "input_layernorm.weight": (32,), "post_attention_layernorm.weight": (32,),
        }
        want = {"model.embed_tokens.weight": (262, 32), "model.norm.weight": (32,), "lm_head.weight": (262, 32)}
        want.update({f"model.layers.{i}.{k}": v for i in range(2) for k, v in layer.items()})
        self.assertEqual(shapes, want)

    def test_bad_head_counts_are_refused_naming_the_field(self):
        with self.assertRaisesRegex(ValueError, "num_key_value_heads 3: must divide num_attention_heads 4"):
            Qwen2Config(num_attention_heads=4, num_key_value_heads=3)
        with self.assertRaisesRegex(ValueError, "hidden_size 30: must be a multiple"):
            Qwen2Config(hidden_size=30, num_attention_heads=4)

    def test_the_flags_build_a_grouped_query_model(self):
        c = tiny_qwen2_config(262, 128, 2, 4, 128)
        self.assertEqual((c.num_attention_heads, c.num_key_value_heads, c.intermediate_size), (4, 2, 352))
        self.assertEqual(tiny_qwen2_config(262, 128, 2, 3, 96).num_key_value_heads, 3)


class Qwen2ForwardTest(unittest.TestCase):
    def test_forward_and_backward_shapes(self):
        m = qwen().train()
        logits, cache = m(SEQ.repeat(3, 1))
        self.assertEqual(tuple(logits.shape), (3, SEQ.shape[1], 262))
        self.assertEqual([tuple(k.shape) for k, _ in cache], [(3, 2, SEQ.shape[1], 8)] * 2)  # 2 kv heads
        logits.logsumexp(-1).mean().backward()
        self.assertTrue(all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters()))

    def test_grouped_query_attention_equals_multi_head_with_each_kv_head_repeated(self):
        gqa = qwen(1)
        mha = TinyQwen2(Qwen2Config(**{**gqa.config.to_dict(), "num_key_value_heads": 4})).eval()
        state = gqa.state_dict()
        for k, v in list(state.items()):
            if ".k_proj." in k or ".v_proj." in k:  # head h reads kv head h // 2 (HF's repeat_kv)
                state[k] = v.view(2, 8, *v.shape[1:]).repeat_interleave(2, dim=0).reshape(32, *v.shape[1:])
        mha.load_state_dict(state)
        with torch.no_grad():
            self.assertTrue(torch.allclose(gqa(SEQ)[0], mha(SEQ)[0], atol=1e-5))

    def test_rotary_positions_see_only_relative_offsets(self):
        m = qwen(2)
        T = SEQ.shape[1]
        with torch.no_grad():
            base = m(SEQ)[0]
            shifted = m(SEQ, pos=torch.arange(17, 17 + T).unsqueeze(0))[0]
            scrambled = m(SEQ, pos=torch.arange(T).flip(0).unsqueeze(0))[0]
        self.assertTrue(torch.allclose(base, shifted, atol=1e-4))
        self.assertFalse(torch.allclose(base, scrambled, atol=1e-2))

    def test_rotary_turns_each_half_pair_as_hf_rotate_half_does(self):
        # HF pairs dimension i with i + head_dim/2 and turns it by pos * theta^(-2i/head_dim),
        # counterclockwise: (x, y) -> (x cos - y sin, x sin + y cos). A mirrored turn would pass
        # every other test here and still disagree with transformers on the same weights.
        cos, sin = rotary(torch.tensor([[3]]), 4, 10000.0, torch.float32)
        got = rotate(torch.eye(4).view(4, 1, 1, 4), cos, sin).view(4, 4)
        a, b = 3.0, 3.0 * 10000.0**-0.5
        want = torch.tensor([[math.cos(a), 0, math.sin(a), 0], [0, math.cos(b), 0, math.sin(b)],
                             [-math.sin(a), 0, math.cos(a), 0], [0, -math.sin(b), 0, math.cos(b)]])
        self.assertTrue(torch.allclose(got, want, atol=1e-6), got)

    def test_kv_cache_decode_equals_the_full_forward(self):
        m = qwen(3)
        with torch.no_grad():
            full = m(SEQ)[0]
            logits, cache = m(SEQ[:, :5])
            steps = [logits]
            for t in range(5, SEQ.shape[1]):
                logits, cache = m(SEQ[:, t : t + 1], cache=cache)
                steps.append(logits)
        self.assertTrue(torch.allclose(torch.cat(steps, 1), full, atol=1e-5))

    def test_batched_left_padded_generation_equals_one_at_a_time_and_the_full_forward(self):
        m = qwen(4)
        reqs = [GenRequest(TOK.render_chat([{"role": "user", "content": "a"}]), 8, 1.0, seed=1),
                GenRequest(TOK.render_chat([{"role": "user", "content": "a much longer question"}]), 5, 1.0, seed=2)]
        together = generate(m, TOK, reqs, torch.Generator().manual_seed(0))
        alone = [generate(m, TOK, [r], torch.Generator().manual_seed(0))[0] for r in reqs]
        for req, a, b in zip(reqs, together, alone):
            self.assertEqual(a.token_ids, b.token_ids)
            seq = torch.tensor([req.prompt + a.token_ids])
            with torch.no_grad():
                lp = torch.log_softmax(m(seq)[0][0, len(req.prompt) - 1 : -1], -1)
            want = lp.gather(1, torch.tensor(a.token_ids).view(-1, 1)).view(-1)
            self.assertTrue(torch.allclose(torch.tensor(a.logprobs), want, atol=1e-4))

    def test_the_trainer_steps_it_with_the_shared_prefix_pass_and_supervised_steps_fit_a_demo(self):
        t = Trainer(qwen(5).train(), settings(learning_rate=1e-2, kl_coef=0.0), "tiny-qwen2")
        head = TOK.render_chat([{"role": "system", "content": "shared system prompt"}], False)
        rows = [sample(head + TOK.render_chat([{"role": "user", "content": f"q{i}"}])[1:], b"ok" + bytes([i]),
                       1.0 - i, sid=f"s{i}", group=f"g{i}") for i in range(2)]
        t.share_prefix = True
        shared = t.response_logprobs(rows)
        t.share_prefix = False
        self.assertTrue(torch.allclose(torch.tensor(shared), torch.tensor(t.response_logprobs(rows)), atol=1e-5))
        before = t.model.lm_head.weight.detach().clone()
        t.train(rows)
        self.assertFalse(torch.equal(before, t.model.lm_head.weight))
        demo = [sample(TOK.render_chat([{"role": "user", "content": "2+2?"}]), b"4", 0.0, logprobs=[])]
        losses = [t.sft(demo, 1e-2)["loss"] for _ in range(20)]
        self.assertLess(losses[-1], losses[0] / 2)  # it learns


class Qwen2ExportTest(unittest.TestCase):
    def test_export_is_a_qwen2_model_directory_that_loads_back_with_identical_logits(self):
        m = qwen(6)
        with tempfile.TemporaryDirectory() as d:
            path, _ = export.export(m, 1, d, "tiny-qwen2", shard_bytes=20_000)
            config, tensors = export.read_model_dir(str(path))
            self.assertTrue((path / "tokenizer.json").is_file())
            tok_cfg = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
        self.assertEqual((config["model_type"], config["architectures"], config["dtype"]),
                         ("qwen2", ["Qwen2ForCausalLM"], "float32"))
        for k, v in {"hidden_size": 32, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 64, "vocab_size": 262,
                     "hidden_act": "silu", "tie_word_embeddings": False, "rope_theta": 10000.0,
                     "rms_norm_eps": 1e-6, "use_sliding_window": False, "bos_token_id": 256,
                     "eos_token_id": 257}.items():
            self.assertEqual(config[k], v, k)
        self.assertEqual(tok_cfg["model_max_length"], 64)
        fields = {k: config[k] for k in Qwen2Config().to_dict()}
        loaded = TinyQwen2(Qwen2Config(**fields)).eval()
        loaded.load_state_dict(tensors, strict=True)
        with torch.no_grad():
            self.assertTrue(torch.equal(loaded(SEQ)[0], m(SEQ)[0]))


if __name__ == "__main__":
    unittest.main()
