"""The loss against hand-computed values: ratio 1 and KL 0 at policy = sampler = reference,
clipping exactly past the bounds, masked tokens, aggregation modes, the k3 KL."""
import math
import unittest

import helpers  # noqa: F401  (paths, threads)
import torch

from learner import loss as L


def run(lp, old, adv, mask=None, clip_low=0.2, clip_high=0.28, kl_coef=0.0, ref=None, agg=L.TOKEN_MEAN, groups=None):
    lp = torch.tensor(lp, dtype=torch.float32, requires_grad=True)
    mask = torch.tensor(mask if mask is not None else [[1.0] * lp.shape[1]] * lp.shape[0])
    w = L.token_weights(mask, groups or [str(i) for i in range(lp.shape[0])], agg)
    out = L.policy_loss(lp, torch.tensor(old), torch.tensor(adv), w, clip_low, clip_high, kl_coef,
                        None if ref is None else torch.tensor(ref))
    out["loss"].backward()
    return out, lp.grad


class LossTest(unittest.TestCase):
    def test_on_policy_ratio_one_kl_zero(self):
        lp = [[-1.0, -2.0, -0.5], [-0.1, -3.0, -1.5]]
        out, grad = run(lp, lp, [1.0, -2.0], kl_coef=0.5, ref=lp)
        # per-token loss = -A (ratio 1); token mean over 6 tokens: -(3*1 + 3*-2)/6 = 0.5
        self.assertAlmostEqual(float(out["loss"]), 0.5, places=6)
        self.assertAlmostEqual(float(out["policy_loss"]), 0.5, places=6)
        self.assertEqual(float(out["kl"]), 0.0)
        self.assertEqual(int(out["clipped"]), 0)
        # d loss / d logprob = -A * ratio * weight
        self.assertTrue(torch.allclose(grad, torch.tensor([[-1 / 6] * 3, [2 / 6] * 3])))

    def test_clipping_engages_exactly_past_the_bounds(self):
        # (ratio, advantage) -> (per-token loss, gradient wrt logprob, clipped?), clip_low=0.2, clip_high=0.28
        table = [
            (1.27, 1.0, -1.27, -1.27, False),  # just inside the high bound: gradient flows
            (1.29, 1.0, -1.28, 0.0, True),  # just past it: clipped, no gradient
            (0.81, -1.0, 0.81, 0.81, False),  # just inside the low bound
            (0.79, -1.0, 0.80, 0.0, True),  # just past it
            (0.5, 1.0, -0.5, -0.5, False),  # below the low bound but A > 0: unclipped (pessimistic min)
            (2.0, -1.0, 2.0, 2.0, False),  # above the high bound but A < 0: unclipped
        ]
        for ratio, adv, want_loss, want_grad, want_clip in table:
            with self.subTest(ratio=ratio, adv=adv):
                out, grad = run([[math.log(ratio)]], [[0.0]], [adv])
                self.assertAlmostEqual(float(out["loss"]), want_loss, places=5)
                self.assertAlmostEqual(float(grad[0, 0]), want_grad, places=5)
                self.assertEqual(bool(out["clipped"]), want_clip)

    def test_k3_kl_to_reference(self):
        lp, ref = math.log(0.5), math.log(0.25)
        d = ref - lp
        want_kl = math.exp(d) - d - 1  # 0.5 - log(0.5) - 1 = 0.19315
        out, grad = run([[lp]], [[lp]], [0.0], kl_coef=0.1, ref=[[ref]])
        self.assertAlmostEqual(float(out["kl"]), want_kl, places=6)
        self.assertAlmostEqual(float(out["loss"]), 0.1 * want_kl, places=6)
        # d/dlp [exp(ref-lp) - (ref-lp) - 1] = 1 - exp(ref-lp) = 0.5, times the coefficient
        self.assertAlmostEqual(float(grad[0, 0]), 0.1 * 0.5, places=6)

    def test_masked_tokens_contribute_nothing(self):
        base, g1 = run([[-1.0, -2.0]], [[-1.0, -2.0]], [1.0], mask=[[1.0, 0.0]])
        # Whatever sits under the mask (logprob, sampler logprob) changes neither loss nor gradient.
        other, g2 = run([[-1.0, -9.0]], [[-1.0, -0.1]], [1.0], mask=[[1.0, 0.0]])
        self.assertEqual(float(base["loss"]), float(other["loss"]))
        self.assertEqual(float(g1[0, 1]), 0.0)
        self.assertEqual(float(g2[0, 1]), 0.0)
        self.assertAlmostEqual(float(base["loss"]), -1.0, places=6)  # mean over the one trained token

    def test_aggregation_modes(self):
        lp = [[-1.0, 0.0, 0.0], [-1.0, -1.0, -1.0]]
        mask = [[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
        adv = [4.0, 1.0]  # per-token loss -4 (1 token) and -1 (3 tokens)
        tok, _ = run(lp, lp, adv, mask=mask, agg=L.TOKEN_MEAN)
        seq, _ = run(lp, lp, adv, mask=mask, agg=L.SEQUENCE_MEAN)
        same, _ = run(lp, lp, adv, mask=mask, agg=L.SEQUENCE_MEAN, groups=["t", "t"])
        self.assertAlmostEqual(float(tok["loss"]), -(4 + 3) / 4, places=6)
        self.assertAlmostEqual(float(seq["loss"]), -(4 + 1) / 2, places=6)
        self.assertAlmostEqual(float(same["loss"]), -(4 + 3) / 4, places=6)  # one trajectory: its token mean

    def test_weights_split_across_micro_batches_sum_to_the_batch_loss(self):
        mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
        for agg in (L.TOKEN_MEAN, L.SEQUENCE_MEAN):
            w = L.token_weights(mask, ["a", "b", "a"], agg)
            self.assertAlmostEqual(float(w.sum()), 1.0, places=6)
            self.assertEqual(float(w[0, 2]), 0.0)

    def test_unknown_aggregation_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "aggregation"):
            L.token_weights(torch.ones(1, 1), ["a"], "max")


if __name__ == "__main__":
    unittest.main()
