"""The Trainer: advantage direction, bad batches leave the model alone, micro-batching equals
the full batch, save -> load gives the identical next step, and export hashes match the bytes."""
import hashlib
import json
import math
import struct
import tempfile
import unittest
from pathlib import Path

import torch
from helpers import TOK, on_policy, sample, trainer

from learner import checkpoint, export
from learner.batch import BatchError
from learner import train as train_mod
from learner.loss import SEQUENCE_MEAN
from learner.sft import chat_sample
from learner.train import NonFiniteError

PROMPT = TOK.render_chat([{"role": "user", "content": "hi"}])


def params(t):
    return {k: v.clone() for k, v in t.model.state_dict().items()}


def batch(t, advantages=(1.0, -0.5, 0.25)):
    rows = [sample(PROMPT, list(b"abc"), a, sid=f"s{i}", group=f"t{i % 2}") for i, a in enumerate(advantages)]
    rows.append(sample(PROMPT + [33, 34], list(b"xyzw"), 0.75, mask=[1, 0, 1, 1], sid="s9", group="t0"))
    return on_policy(t, rows)


class TrainTest(unittest.TestCase):
    def test_positive_advantage_raises_the_turns_logprob_negative_lowers_it(self):
        for adv, sign in ((1.0, 1), (-1.0, -1)):
            with self.subTest(advantage=adv):
                t = trainer(1, learning_rate=1e-3)
                s = on_policy(t, [sample(PROMPT, list(b"ok!"), adv)])
                before = sum(t.response_logprobs(s)[0])
                out = t.train(s)
                after = sum(t.response_logprobs(s)[0])
                self.assertEqual(sign, 1 if after > before else -1)
                self.assertEqual(out["policy_version"], 1)
                self.assertEqual(out["clip_fraction"], 0.0)  # on-policy: ratio 1
                self.assertGreater(out["entropy"], 0.0)
                self.assertEqual(out["tokens"], len(PROMPT) + 3)

    def test_the_engine_vs_trainer_logprob_gap_is_the_mean_over_trained_tokens(self):
        t = trainer(1)
        on = batch(t)
        self.assertLess(t.train(on)["logprob_gap"], 1e-5)  # on-policy: the same numbers
        t = trainer(1)
        off = batch(t)
        for s in off:
            s.sampler_logprobs = [lp - 0.5 for lp in s.sampler_logprobs]
        off[-1].sampler_logprobs[1] -= 3.0  # a masked token does not count
        self.assertAlmostEqual(t.train(off)["logprob_gap"], 0.5, places=4)

    def test_recomputed_old_logprobs_take_the_engine_out_of_the_ratio_and_still_report_the_gap(self):
        # The engine's log-probs are off by 0.5 per token: its ratio exp(0.5) = 1.65 is clipped
        # (clipHigh 0.28) for positive advantages, and the step differs from the on-policy one.
        def step(old_logprobs: str, shift: float):
            t = trainer(3, learning_rate=1e-3, old_logprobs=old_logprobs)
            rows = batch(t)
            for r in rows:
                r.sampler_logprobs = [lp - shift for lp in r.sampler_logprobs]
            before = params(t)
            out = t.train(rows)
            return out, {k: v - before[k] for k, v in t.model.state_dict().items()}

        exact, exact_delta = step("sampler", 0.0)
        off, off_delta = step("sampler", 0.5)
        recomputed, re_delta = step("recompute", 0.5)
        self.assertGreater(off["clip_fraction"], 0.0)
        self.assertEqual(recomputed["clip_fraction"], 0.0)
        self.assertAlmostEqual(recomputed["logprob_gap"], off["logprob_gap"], places=5)
        self.assertGreater(recomputed["logprob_gap"], 0.4)

        # recompute with a wrong engine steps as sampler with a right one (up to float round-off,
        # which Adam's first step can turn into a sign for near-zero gradients), unlike sampler.
        def distance(a, b):
            flat = lambda d: torch.cat([v.flatten().float() for v in d.values()])  # noqa: E731
            return float((flat(a) - flat(b)).norm() / flat(b).norm())

        self.assertLess(distance(re_delta, exact_delta), 0.05)
        self.assertGreater(distance(off_delta, exact_delta), 0.2)

    def test_a_bad_batch_leaves_model_optimizer_and_version_untouched(self):
        t = trainer(2)
        t.train(batch(t))
        before, opt_before = params(t), t.optimizer.state_dict()["state"][0]["exp_avg"].clone()
        bad = batch(t)
        bad[1].advantage = math.nan
        bad[2].sampler_logprobs = bad[2].sampler_logprobs[:-1]
        with self.assertRaises(BatchError) as ctx:
            t.train(bad)
        self.assertEqual([f for f, _ in ctx.exception.violations],
                         ["samples[1].advantage", "samples[2].sampler_logprobs"])
        self.assertEqual(t.version, 1)
        for k, v in params(t).items():
            self.assertTrue(torch.equal(v, before[k]), k)
        self.assertTrue(torch.equal(t.optimizer.state_dict()["state"][0]["exp_avg"], opt_before))

    def test_a_non_finite_gradient_skips_the_step_and_keeps_the_model(self):
        t = trainer(9)
        before = params(t)
        # A finite but absurd sampler logprob makes the ratio overflow; with A < 0 the loss is inf.
        with self.assertRaises(NonFiniteError):
            t.train([sample(PROMPT, [97], -1.0, logprobs=[-1e30])])
        self.assertEqual(t.version, 0)
        for k, v in params(t).items():
            self.assertTrue(torch.equal(v, before[k]), k)
        self.assertEqual(t.train(batch(t))["policy_version"], 1)  # and the next good batch trains

    def test_micro_batching_gives_the_same_step_as_one_batch(self):
        for agg in ("token_mean", SEQUENCE_MEAN):
            with self.subTest(aggregation=agg):
                whole, split = trainer(3, aggregation=agg, kl_coef=0.1), trainer(3, aggregation=agg, kl_coef=0.1)
                split.settings.micro_batch_tokens = 1  # one row per micro-batch
                # SGD makes the update proportional to the gradient; Adam would magnify float noise
                # on gradients that are zero in exact arithmetic (e.g. attention key biases).
                for t in (whole, split):
                    t.optimizer = torch.optim.SGD(t.model.parameters(), lr=0.1)
                a, b = whole.train(batch(whole)), split.train(batch(split))
                self.assertAlmostEqual(a["loss"], b["loss"], places=5)
                self.assertAlmostEqual(a["grad_norm"], b["grad_norm"], places=4)
                for k, v in params(whole).items():
                    self.assertTrue(torch.allclose(v, params(split)[k], atol=1e-6), k)

    def test_kl_grows_once_the_policy_leaves_the_reference(self):
        t = trainer(4, kl_coef=0.5)
        first = t.train(batch(t))
        self.assertEqual(first["kl"], 0.0)  # reference = policy at the first step
        second = t.train(batch(t))
        self.assertGreater(second["kl"], 0.0)

    def test_supervised_steps_lower_the_loss_and_reset_the_reference(self):
        t = trainer(5, kl_coef=0.1)
        t.train(batch(t))
        self.assertIsNotNone(t.reference)
        demo = [sample(PROMPT, list(b"hello"), 0.0, logprobs=[])]
        losses = [t.sft(demo, 1e-2)["loss"] for _ in range(20)]
        self.assertLess(losses[-1], losses[0] / 2)
        self.assertIsNone(t.reference)
        self.assertEqual(t.version, 21)

    def test_a_shared_prompt_prefix_gives_the_full_pass_logprobs_and_step(self):
        head = TOK.render_chat([{"role": "system", "content": "a system prompt every row shares"}], False)
        rows = [sample(head + TOK.render_chat([{"role": "user", "content": f"{i}?" * (i + 1)}])[1:],
                       list(f"answer {i * 7}".encode()) + [TOK.eos_id], (-1.0) ** i, sid=f"s{i}", group=f"g{i}")
                for i in range(4)]
        self.assertEqual(train_mod._shared_prefix(rows), len(head) + 1)  # + <|user|>
        # A row whose whole prompt is the shared part keeps its last prompt token for its own pass.
        self.assertEqual(train_mod._shared_prefix(rows + [sample(head, b"x")]), len(head) - 1)
        results = []
        for share in (True, False):  # shared prefix, then the full pass (--share-prefix false)
            t = trainer(5, kl_coef=0.1)
            t.share_prefix = share
            widths = []  # sequence length of each forward pass over the batch
            forward = t.model.forward
            t.model.forward = lambda idx, *a, **k: widths.append(idx.shape[1]) or forward(idx, *a, **k)
            lps = t.response_logprobs(rows)
            # Shared: one pass over the prefix, then the rows' own tokens; else the whole rows.
            self.assertEqual(widths[0] == len(head) + 1, share, widths)
            for r, lp in zip(rows, lps):
                r.sampler_logprobs = [x - 0.05 for x in lp]
            stats = t.train(rows)
            results.append((lps, stats["loss"], params(t)))
        (lp_a, loss_a, p_a), (lp_b, loss_b, p_b) = results
        for a, b in zip(lp_a, lp_b):
            self.assertTrue(torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5))
        self.assertAlmostEqual(loss_a, loss_b, places=5)
        # After one AdamW step at lr 1e-2 every parameter with a gradient moved by ~1e-2; an entry
        # whose gradient is near Adam's eps (1e-8) moves by a round-off-sensitive amount (seen:
        # 1.2e-5 apart, one entry in 2048, on one CPU). A wrong shared pass differs by ~lr.
        for k in p_a:
            self.assertTrue(torch.allclose(p_a[k], p_b[k], atol=1e-4), k)


class SupervisedDataTest(unittest.TestCase):
    def test_a_chat_demo_is_split_at_the_first_trained_token(self):
        msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a1"}, {"role": "user", "content": "obs"},
                {"role": "assistant", "content": "a2"}]
        s = chat_sample(TOK, msgs, "d")
        full = TOK.render_chat(msgs, add_generation_prompt=False)
        self.assertEqual(s.prompt + s.response, full)
        self.assertEqual(s.prompt, TOK.render_chat(msgs[:2]))  # ends with the <|assistant|> role token
        trained = [t for t, m in zip(s.response, s.mask) if m]
        self.assertEqual(bytes(t for t in trained if t < 256), b"a1a2")
        self.assertEqual(trained.count(TOK.eos_id), 2)  # each turn learns to end
        with self.assertRaisesRegex(ValueError, "no assistant message"):
            chat_sample(TOK, msgs[:2], "d")


class CheckpointTest(unittest.TestCase):
    def test_save_load_gives_identical_outputs_and_the_identical_next_step(self):
        with tempfile.TemporaryDirectory() as d:
            a = trainer(6, kl_coef=0.1)
            a.train(batch(a))
            checkpoint.save(a, f"{d}/ckpt")
            checkpoint.save(a, f"{d}/ckpt")  # replacing an existing checkpoint
            out_a = a.train(batch(a))
            b = trainer(99, kl_coef=0.1)  # different initial weights
            self.assertEqual(checkpoint.load(b, f"{d}/ckpt"), (1, 1))
            probe = batch(b)
            out_b = b.train(probe)
            self.assertEqual(out_a["loss"], out_b["loss"])
            self.assertEqual(out_a["kl"], out_b["kl"])
            for k, v in params(a).items():
                self.assertTrue(torch.equal(v, params(b)[k]), k)
            self.assertEqual((a.version, a.step), (b.version, b.step))
            self.assertEqual(sorted(p.name for p in Path(d).iterdir()), ["ckpt"])  # no temp dirs left

    def test_loading_a_missing_or_foreign_checkpoint_changes_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            t = trainer(7)
            before = params(t)
            with self.assertRaisesRegex(checkpoint.CheckpointError, "dir: no checkpoint.pt"):
                checkpoint.load(t, f"{d}/none")
            other = trainer(7)
            other.model.config.n_embd = 999  # pretend another architecture wrote it
            checkpoint.save(other, f"{d}/other")
            with self.assertRaisesRegex(checkpoint.CheckpointError, "does not match"):
                checkpoint.load(t, f"{d}/other")
            for k, v in params(t).items():
                self.assertTrue(torch.equal(v, before[k]))


def read_safetensors(path: Path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    return raw, n, header


class ExportTest(unittest.TestCase):
    def test_manifest_hashes_match_the_bytes_and_tensors_round_trip(self):
        t = trainer(8)
        t.train(batch(t))
        with tempfile.TemporaryDirectory() as d:
            path, m = export.export(t.model, t.version, d, "tiny", shard_bytes=40_000, chunk_bytes=8192)
            self.assertEqual(path.name, "1")
            self.assertEqual(json.loads((path / "manifest.json").read_text()), m)
            self.assertGreater(len(m["shards"]), 1)
            for s in m["shards"]:
                raw = (path / s["file"]).read_bytes()
                self.assertEqual(hashlib.sha256(raw).hexdigest(), s["sha256"])
                self.assertEqual(len(raw), s["sizeBytes"])
                self.assertEqual(sum(c["sizeBytes"] for c in s["chunks"]), len(raw))
                for c in s["chunks"]:
                    piece = raw[c["offset"] : c["offset"] + c["sizeBytes"]]
                    self.assertEqual(hashlib.sha256(piece).hexdigest(), c["sha256"])
            state = dict(t.model.named_parameters())
            self.assertEqual({x["name"] for x in m["tensors"]}, set(state))
            for info in m["tensors"]:
                raw, n, header = read_safetensors(path / info["shard"])
                self.assertEqual(n % 8, 0)
                h = header[info["name"]]
                self.assertEqual(8 + n + h["data_offsets"][0], info["offset"])
                data = raw[info["offset"] : info["offset"] + info["sizeBytes"]]
                got = torch.frombuffer(bytearray(data), dtype=torch.float32).view(info["shape"])
                self.assertTrue(torch.equal(got, state[info["name"]].detach()))
            again_path, again = export.export(t.model, t.version, d, "tiny")
            self.assertEqual(again, m)  # a version is written once

    def test_the_export_is_a_hugging_face_model_directory_that_loads_back_with_identical_logits(self):
        from learner.model import ModelConfig, TinyGPT

        t = trainer(8)
        t.train(batch(t))
        with tempfile.TemporaryDirectory() as d:
            path, m = export.export(t.model, t.version, d, "tiny", shard_bytes=40_000)
            index = json.loads((path / "model.safetensors.index.json").read_text())
            self.assertEqual(index["weight_map"], {x["name"]: x["shard"] for x in m["tensors"]})
            self.assertEqual(index["metadata"]["total_size"], sum(x["sizeBytes"] for x in m["tensors"]))
            config, tensors = export.read_model_dir(str(path))
        self.assertEqual((config["model_type"], config["architectures"], config["dtype"]),
                         ("l0-tiny", ["L0TinyGPT"], "float32"))
        fields = {k: config[k] for k in ModelConfig().to_dict()}
        loaded = TinyGPT(ModelConfig(**fields))
        loaded.load_state_dict(tensors, strict=True)
        ids = torch.tensor([[256] + list(b"what is two plus two?")])
        t.model.eval()
        with torch.no_grad():
            self.assertTrue(torch.equal(loaded.eval()(ids)[0], t.model(ids)[0]))

    def test_a_model_directory_that_is_not_one_is_refused_naming_the_file(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(export.WeightsLoadError, "not a Hugging Face model directory"):
                export.read_model_dir(d)
            (Path(d) / "config.json").write_text("{}")
            (Path(d) / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
            with self.assertRaisesRegex(export.WeightsLoadError, r"model.safetensors: not a safetensors file"):
                export.read_model_dir(d)

    def test_hashes_taken_while_writing_equal_hashes_of_the_whole_bytes(self):
        from concurrent.futures import ThreadPoolExecutor

        data = bytes(range(256)) * 97  # 24832 bytes
        table = [(4096, [len(data)]), (4096, [1, 4095, 4096, 3, 16636]), (1000, [999, 2, 999, 22832]),
                 (100_000, [10, 20]), (7, [0, 5, 0, 9, 24818])]
        with ThreadPoolExecutor(3) as pool:
            for chunk, cuts in table:
                with self.subTest(chunk=chunk, cuts=cuts):
                    h, pos = export.ShardHasher(chunk, pool), 0
                    for n in cuts:
                        h.update(memoryview(data)[pos:pos + n])
                        pos += n
                    digest, chunks = h.finish()
                    h.close()
                    seen = data[:pos]
                    self.assertEqual(digest, hashlib.sha256(seen).hexdigest())
                    want = [{"offset": o, "sizeBytes": len(seen[o:o + chunk]),
                             "sha256": hashlib.sha256(seen[o:o + chunk]).hexdigest()} for o in range(0, pos, chunk)]
                    self.assertEqual(chunks, want)

    def test_bf16_tensors_export_their_raw_bits(self):
        x = torch.tensor([1.0, -2.5, 3.140625], dtype=torch.bfloat16)
        self.assertEqual(bytes(export.tensor_bytes(x)), x.view(torch.int16).numpy().tobytes())
        self.assertEqual(len(export.tensor_bytes(x)), 6)


if __name__ == "__main__":
    unittest.main()
