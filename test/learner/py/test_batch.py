"""Batch validation names the field; packing respects the token budget."""
import math
import unittest

from helpers import sample

from learner.batch import common_prefix_length, pack, validate

V, C = 262, 64


class ValidateTest(unittest.TestCase):
    def test_a_good_batch_passes(self):
        self.assertEqual(validate([sample([1, 2], [3, 4], logprobs=[-0.5, -1.0])], V, C), [])

    def test_bad_batches_name_the_field(self):
        table = [
            ("empty batch", [], "samples"),
            ("logprobs shape", [sample([1], [2, 3], logprobs=[-1.0])], "samples[0].sampler_logprobs"),
            ("mask length", [sample([1], [2, 3], mask=[1])], "samples[0].response_mask"),
            ("mask values", [sample([1], [2, 3], mask=[1, 2])], "samples[0].response_mask"),
            ("nan advantage", [sample([1], [2], advantage=math.nan)], "samples[0].advantage"),
            ("inf advantage", [sample([1], [2], advantage=math.inf)], "samples[0].advantage"),
            ("nan logprob", [sample([1], [2], logprobs=[math.nan])], "samples[0].sampler_logprobs"),
            ("positive logprob", [sample([1], [2], logprobs=[0.5])], "samples[0].sampler_logprobs"),
            ("empty prompt", [sample([], [2])], "samples[0].prompt_token_ids"),
            ("empty response", [sample([1], [])], "samples[0].response_token_ids"),
            ("token id", [sample([1], [999])], "samples[0].token_ids"),
            ("too long", [sample([1] * 60, [2] * 10)], "samples[0]"),
            ("all masked", [sample([1], [2], mask=[0])], "samples"),
            ("second sample", [sample([1], [2]), sample([1], [2], advantage=math.nan)], "samples[1].advantage"),
        ]
        for name, batch, field in table:
            with self.subTest(name):
                fields = [f for f, _ in validate(batch, V, C)]
                self.assertIn(field, fields)

    def test_supervised_batches_ignore_logprobs_and_advantage(self):
        self.assertEqual(validate([sample([1], [2], advantage=math.nan, logprobs=[])], V, C, rl=False), [])


class PackTest(unittest.TestCase):
    def test_micro_batches_fit_the_budget_and_cover_every_row_once(self):
        lengths = [5, 30, 12, 12, 7, 1, 40, 3]
        for budget in (1, 16, 40, 64, 1000):
            with self.subTest(budget=budget):
                parts = pack(lengths, budget)
                self.assertEqual(sorted(i for p in parts for i in p), list(range(len(lengths))))
                for p in parts:
                    if len(p) > 1:
                        self.assertLessEqual(max(lengths[i] for i in p) * len(p), budget)

    def test_a_large_budget_is_one_micro_batch(self):
        self.assertEqual(len(pack([3, 4, 5], 1000)), 1)

    def test_common_prefix_length(self):
        cases = [
            ([], 0),
            ([[1, 2, 3]], 3),
            ([[1, 2, 3], [1, 2, 4], [1, 2]], 2),
            ([[1, 2, 3], [1, 9, 3]], 1),  # stops at the first difference
            ([[5], [1]], 0),
            ([[1, 2], [1, 2, 3, 4]], 2),  # no longer than the shortest
        ]
        for seqs, want in cases:
            self.assertEqual(common_prefix_length(seqs), want, seqs)


if __name__ == "__main__":
    unittest.main()
