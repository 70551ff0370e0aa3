"""Tokenizer and chat template; the KV cache and left-padded batches give the same numbers as
one full forward; batched generation equals one-at-a-time; stop strings; sampler logprobs equal
the learner's (so on-policy ratios are exactly 1)."""
import unittest

import torch
from helpers import TOK, sample, settings, tiny_model, trainer

from learner.train import Trainer

from learner.sampling import Decoder, GenRequest, PrefixCache, generate


class TokenizerTest(unittest.TestCase):
    def test_bytes_round_trip_and_specials(self):
        text = "héllo <|user|> wörld"
        self.assertEqual(TOK.decode(TOK.encode(text)), text)
        ids = TOK.encode("a<|user|>b<|x", parse_special=True)
        self.assertEqual(ids, [97, TOK.special["<|user|>"], 98] + list(b"<|x"))
        self.assertEqual(TOK.decode(ids), "ab<|x")  # specials are skipped in text

    def test_chat_template(self):
        ids = TOK.render_chat([{"role": "system", "content": "s"}, {"role": "user", "content": "q"}])
        sp = TOK.special
        self.assertEqual(ids, [sp["<|bos|>"], sp["<|system|>"], 115, TOK.eos_id, sp["<|user|>"], 113, TOK.eos_id,
                               sp["<|assistant|>"]])
        # Content cannot inject special tokens.
        self.assertNotIn(sp["<|assistant|>"], TOK.render_chat([{"role": "user", "content": "<|assistant|>"}],
                                                              add_generation_prompt=False))
        with self.assertRaisesRegex(ValueError, r"messages\[0\].role"):
            TOK.render_chat([{"role": "tool", "content": "x"}])


class ModelTest(unittest.TestCase):
    def test_kv_cache_matches_the_full_forward(self):
        m = tiny_model(1).eval()
        seq = torch.tensor([[256, 259, 10, 20, 30, 40, 50]])
        full, _ = m(seq)
        logits, cache = m(seq[:, :4])
        steps = [logits[:, -1]]
        for t in range(4, 7):
            logits, cache = m(seq[:, t : t + 1], cache=cache)
            steps.append(logits[:, -1])
        self.assertTrue(torch.allclose(torch.stack(steps[:-1], 1), full[:, 3:6], atol=1e-5))

    def test_batched_generation_equals_one_at_a_time(self):
        t = trainer(2)
        t.model.eval()
        reqs = [
            GenRequest(TOK.render_chat([{"role": "user", "content": "a"}]), 12, 1.0, seed=1),
            GenRequest(TOK.render_chat([{"role": "user", "content": "a much longer question"}]), 5, 0.8, 0.9, seed=2),
            GenRequest([256, 7], 9, 0.0),  # greedy
        ]
        together = generate(t.model, TOK, reqs, torch.Generator().manual_seed(0))
        alone = [generate(t.model, TOK, [r], torch.Generator().manual_seed(0))[0] for r in reqs]
        for a, b in zip(together, alone):
            self.assertEqual(a.token_ids, b.token_ids)
            self.assertTrue(torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5))
        self.assertEqual([len(r.token_ids) for r in together], [12, 5, 9])
        self.assertEqual({r.finish_reason for r in together}, {"length"})

    def test_a_cached_prompt_prefix_gives_the_same_tokens_and_logprobs(self):
        t = Trainer(tiny_model(6, block_size=128), settings(learning_rate=1e-2), "tiny")
        t.model.eval()
        system = TOK.render_chat([{"role": "system", "content": "shared instructions " * 4}], False)
        ask = lambda q: system + TOK.render_chat([{"role": "user", "content": q}])[1:]  # noqa: E731
        reqs = [GenRequest(ask("first?"), 8, 1.0, seed=1), GenRequest(ask("2nd"), 6, 0.0),
                GenRequest([256, 7, 7], 5, 1.0, seed=3)]  # no shared prefix: prefilled on its own
        late = [GenRequest(ask("a later, longer question"), 7, 0.9, seed=4)]
        plain = generate(t.model, TOK, reqs + late, torch.Generator())
        cache = PrefixCache(min_tokens=16)
        d = Decoder(t.model, TOK, torch.Generator(), cache, version=1)
        d.add(reqs, [0, 1, 2])
        self.assertEqual(cache.tokens, system + [TOK.special["<|user|>"]])
        got = dict(d.step())
        d.add(late, [3])  # joins the running batch through the cached prefix
        while d.active:
            got.update(dict(d.step()))
        for i, want in enumerate(plain):
            self.assertEqual(got[i].token_ids, want.token_ids, i)
            self.assertTrue(torch.allclose(torch.tensor(got[i].logprobs), torch.tensor(want.logprobs), atol=1e-5))
        self.assertIsNotNone(cache.lookup(1, late[0].prompt))
        self.assertIsNone(cache.lookup(2, late[0].prompt))  # new weights: the entry is stale
        self.assertIsNone(cache.lookup(1, cache.tokens))  # a prompt needs a token of its own

    def test_requests_joining_a_running_batch_get_the_same_tokens_as_alone(self):
        t = trainer(5)
        t.model.eval()
        first = [GenRequest([256, 9, 9], 10, 1.0, seed=3),
                 GenRequest(TOK.render_chat([{"role": "user", "content": "longer"}]), 3, 1.0, seed=4)]
        late = [GenRequest(TOK.render_chat([{"role": "user", "content": "a longer, later prompt"}]), 6, 0.7, seed=8)]
        d = Decoder(t.model, TOK, torch.Generator())
        d.add(first, ["a", "b"])
        got = {}
        for _ in range(4):
            got.update(dict(d.step()))
        self.assertEqual(set(got), {"b"})  # 3 tokens: done and gone from the batch
        # Row a's left padding (for b's longer prompt) is trimmed once b is gone: its prompt and
        # the 4 tokens fed back since.
        self.assertEqual(d.key_mask.shape[1], len(first[0].prompt) + 4)
        d.add(late, ["c"])  # joins mid-way, with a longer prompt than the running row's cache
        while d.active:
            got.update(dict(d.step()))
        for tag, req in zip("abc", first + late):
            alone = generate(t.model, TOK, [req], torch.Generator())[0]
            self.assertEqual(got[tag].token_ids, alone.token_ids, tag)
            self.assertTrue(torch.allclose(torch.tensor(got[tag].logprobs), torch.tensor(alone.logprobs), atol=1e-5))

    def test_sampler_logprobs_are_the_learners(self):
        t = trainer(3)
        t.model.eval()
        prompt = TOK.render_chat([{"role": "user", "content": "q"}])
        res = generate(t.model, TOK, [GenRequest(prompt, 10, 1.0, seed=5)], torch.Generator())[0]
        s = sample(prompt, res.token_ids)
        lp = t.response_logprobs([s])[0]
        self.assertTrue(torch.allclose(torch.tensor(lp), torch.tensor(res.logprobs), atol=1e-5))
        s.sampler_logprobs = res.logprobs
        s.advantage = 1.0
        self.assertEqual(t.train([s])["clip_fraction"], 0.0)

    def test_long_generations_outgrow_the_kv_buffer_and_keep_the_learners_logprobs(self):
        t = Trainer(tiny_model(7, block_size=512), settings(learning_rate=1e-2), "tiny")
        t.model.eval()
        reqs = [GenRequest(TOK.render_chat([{"role": "user", "content": "q" * n}]), 200, 1.0, seed=n)
                for n in (3, 40)]
        out = generate(t.model, TOK, reqs, torch.Generator())  # 200 tokens: the buffer grows twice
        for req, res in zip(reqs, out):
            self.assertGreater(len(res.token_ids), 2 * 64)  # (seeded; <|end|> may come before 200)
            lp = t.response_logprobs([sample(req.prompt, res.token_ids)])[0]
            self.assertTrue(torch.allclose(torch.tensor(lp), torch.tensor(res.logprobs), atol=1e-4))

    def test_stop_strings_are_cut_like_vllm_and_eos_ends_with_stop(self):
        t = trainer(4)
        t.model.eval()
        prompt = [256, 259, 97]
        for _ in range(60):
            t.sft([sample(prompt, list(b"hello world") + [TOK.eos_id], logprobs=[])], 3e-2)
        t.model.eval()
        plain = generate(t.model, TOK, [GenRequest(prompt, 20, 0.0)], torch.Generator())[0]
        self.assertEqual((plain.text, plain.finish_reason), ("hello world", "stop"))
        self.assertEqual(plain.token_ids[-1], TOK.eos_id)  # <|end|> is kept in token_ids, not in text
        cut = generate(t.model, TOK, [GenRequest(prompt, 20, 0.0, stop=["xyz", "o w"])], torch.Generator())[0]
        self.assertEqual((cut.text, cut.token_ids, cut.finish_reason), ("hell", list(b"hell"), "stop"))
        self.assertEqual(len(cut.logprobs), 4)
        # Teach the model to end at once, then check <|end|> is kept and ends with "stop".
        for _ in range(30):
            t.sft([sample(prompt, [TOK.eos_id], logprobs=[])], 3e-2)
        t.model.eval()
        end = generate(t.model, TOK, [GenRequest(prompt, 5, 0.0)], torch.Generator())[0]
        self.assertEqual((end.token_ids, end.finish_reason, end.text), ([TOK.eos_id], "stop", ""))


if __name__ == "__main__":
    unittest.main()
