"""Streaming without a server: a stream only sends tokens no stop string can take back, its text
pieces join to exactly the non-streamed text (incomplete UTF-8 held back), and its chunks have
OpenAI's and vLLM's shapes."""
import json
import random
import unittest

import torch
from helpers import TOK

from learner.openai_answers import StreamChunks
from learner.openai_api import Request
from learner.sampling import GenRequest, _Row


def row(stops, max_tokens=40):
    return _Row(GenRequest([1], max_tokens, stop=stops), TOK, torch.Generator())


def events(lines):
    """SSE strings -> parsed JSON objects, "[DONE]" kept as is."""
    out = []
    for ev in lines:
        assert ev.startswith("data: ") and ev.endswith("\n\n"), ev
        data = ev[len("data: "):-2]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


class RowTest(unittest.TestCase):
    def test_settled_tokens_are_never_taken_back(self):
        rng = random.Random(0)
        stops = ["ab", "aab", "bba", "abab"]
        broken = []
        for trial in range(300):
            r = row(rng.sample(stops, rng.randint(1, 2)))
            settled = []
            while r.finish is None:
                r.add(rng.choice([97, 98, 98, 99]), -1.0)
                settled.append(list(r.ids[: r.settled()]))
            broken += [(trial, p, r.ids) for p in settled if r.ids[: len(p)] != p][:1]
        self.assertEqual(broken[:3], [])

    def test_only_a_possible_stop_start_is_held_back(self):
        r = row(["xyz"])
        for ch, want in [("a", 1), ("b", 2), ("x", 2), ("y", 2), ("q", 5)]:
            r.add(ord(ch), -1.0)
            self.assertEqual(r.settled(), want, ch)
        free = row([])
        for n, ch in enumerate("xyz", 1):
            free.add(ord(ch), -1.0)
            self.assertEqual(free.settled(), n)

    def test_top_logprobs_are_the_most_likely_tokens_in_order(self):
        from helpers import tiny_model
        from learner.sampling import generate

        reqs = [GenRequest([256, 97], 5, seed=1, top_logprobs=3), GenRequest([256, 98], 5, seed=1)]
        with_top, without = generate(tiny_model(2), TOK, reqs, torch.Generator().manual_seed(0))
        self.assertEqual(len(with_top.top_logprobs), len(with_top.token_ids))
        for lp, top in zip(with_top.logprobs, with_top.top_logprobs):
            values = [v for _, v in top]
            self.assertEqual((len(top), values), (3, sorted(values, reverse=True)))
            self.assertLessEqual(lp, values[0] + 1e-6)  # nothing beats the most likely
        self.assertTrue(all(t == [] for t in without.top_logprobs))


class ChunksTest(unittest.TestCase):
    def request(self, chat, **kw):
        return Request(chat, [256, 1, 2], GenRequest([256, 1, 2], 8), None, True, **kw)

    def stream(self, chat, ids, cuts, **kw):
        s = StreamChunks(self.request(chat, **kw), "tiny", TOK, "id-1", 0)
        out, a = [], 0
        for b in cuts + [len(ids)]:
            last = b == len(ids)
            out += s.piece(ids[a:b], [-1.0] * (b - a), [], 3, "length" if last else None)
            a = b
        return events(out + s.end())

    def test_streamed_text_joins_to_the_non_streamed_text(self):
        # Random bytes (often invalid or split UTF-8) and special tokens, cut anywhere.
        rng = random.Random(1)
        words = ["é", "日本", "🙂", "a"]
        for trial in range(200):
            ids = []
            for _ in range(rng.randint(0, 12)):
                kind = rng.random()
                if kind < 0.5:
                    ids += list(rng.choice(words).encode())
                elif kind < 0.8:
                    ids.append(rng.randrange(128, 256))  # a stray continuation or lead byte
                else:
                    ids.append(TOK.eos_id)
            cuts = sorted(rng.sample(range(len(ids) + 1), rng.randint(0, len(ids))))
            for chat in (False, True):
                got = self.stream(chat, ids, cuts)
                chunks = [c for c in got if c != "[DONE]"]
                text = "".join(c["choices"][0]["delta"]["content"] if chat else c["choices"][0]["text"]
                               for c in chunks)
                with self.subTest(trial=trial, chat=chat):
                    self.assertEqual(text, TOK.decode(ids))
                    self.assertEqual([t for c in chunks for t in c["choices"][0].get("token_ids", [])], ids)

    def test_chat_opens_with_the_role_and_usage_closes(self):
        got = self.stream(True, [104, 105], [1], include_usage=True)
        first, usage = got[0], got[-2]
        self.assertEqual(first["choices"][0]["delta"], {"role": "assistant", "content": ""})
        self.assertEqual(first["prompt_token_ids"], [256, 1, 2])
        self.assertEqual(first["object"], "chat.completion.chunk")
        self.assertEqual([c["choices"][0]["finish_reason"] for c in got[1:-2]], [None, "length"])
        self.assertEqual(usage["choices"], [])
        self.assertEqual(usage["usage"], {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
        self.assertEqual(got[-1], "[DONE]")
        self.assertTrue(all(c["policy_version"] == 3 for c in got[:-1]))

    def test_completions_put_the_prompt_ids_in_the_first_choice(self):
        got = self.stream(False, [104, 105], [1], continuous_usage=True)
        self.assertEqual(got[0]["choices"][0]["prompt_token_ids"], [256, 1, 2])
        self.assertNotIn("prompt_token_ids", got[1]["choices"][0])
        self.assertEqual([c["usage"]["completion_tokens"] for c in got[:-1]], [1, 2])
        self.assertEqual(got[-1], "[DONE]")


if __name__ == "__main__":
    unittest.main()
