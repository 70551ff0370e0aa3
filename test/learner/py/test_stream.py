"""Streaming without a server: a stream only sends tokens no stop string can take back."""
import random
import unittest

import torch
from helpers import TOK

from learner.sampling import GenRequest, _Row


def row(stops, max_tokens=40):
    return _Row(GenRequest([1], max_tokens, stop=stops), TOK, torch.Generator())


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


if __name__ == "__main__":
    unittest.main()
