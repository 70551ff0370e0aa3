"""Mixed precision as the GPU path runs it, checked on CPU: fp32 master weights and AdamW state
with the forward under bf16 autocast move the weights at an RL learning rate (1e-6) as fp32
does, where weights stored in bf16 lose most of those updates to rounding."""
import unittest

import torch

from helpers import on_policy, sample, settings, tiny_model

from learner.train import Trainer

LR = 1e-6


def step_delta(model, autocast_bf16: bool) -> torch.Tensor:
    """All weights' change (in fp32) after one RL step on a fixed batch."""
    before = torch.cat([p.detach().float().flatten() for p in model.parameters()])
    t = Trainer(model, settings(learning_rate=LR, kl_coef=0.0), "tiny", autocast_bf16=autocast_bf16)
    batch = [sample([256, 1, 2, 3], [4, 5, 6], 1.0, sid="a"), sample([256, 1, 2, 7], [8, 9, 6], -1.0, sid="b")]
    t.train(on_policy(t, batch))
    return torch.cat([p.detach().float().flatten() for p in model.parameters()]) - before


class PrecisionTest(unittest.TestCase):
    def test_bf16_autocast_over_fp32_master_weights_moves_weights_like_fp32(self):
        ref = step_delta(tiny_model(3), autocast_bf16=False)
        amp = step_delta(tiny_model(3), autocast_bf16=True)
        bf16 = step_delta(tiny_model(3).to(torch.bfloat16), autocast_bf16=False)
        moved = {name: float((d != 0).float().mean()) for name, d in (("fp32", ref), ("amp", amp), ("bf16", bf16))}
        # Embedding rows of tokens and positions not in the batch get no gradient in any precision.
        self.assertGreater(moved["fp32"], 0.5, moved)
        self.assertGreater(moved["amp"], 0.95 * moved["fp32"], moved)
        self.assertLess(moved["bf16"], 0.1 * moved["fp32"], moved)  # only weights near zero take a 1e-6 step
        # Adam's first step is about lr * sign(gradient): bf16 compute flips few signs.
        self.assertLess(float((amp - ref).norm() / ref.norm()), 0.2)
        self.assertGreater(float((bf16 - ref).norm() / ref.norm()), 0.8)

    def test_the_kl_reference_is_kept_in_bf16_under_autocast_and_still_scores_the_batch(self):
        batch = [sample([256, 1, 2, 3], [4, 5, 6], 1.0, sid="a"), sample([256, 1, 2, 7], [8, 9, 6], -1.0, sid="b")]
        for autocast, dtype in ((False, torch.float32), (True, torch.bfloat16)):
            with self.subTest(autocast_bf16=autocast):
                t = Trainer(tiny_model(3), settings(learning_rate=LR, kl_coef=0.1), "tiny", autocast_bf16=autocast)
                out = t.train(on_policy(t, batch))
                self.assertEqual({p.dtype for p in t.reference.parameters()}, {dtype})
                self.assertEqual({p.dtype for p in t.model.parameters()}, {torch.float32})
                # The first step's reference is the policy itself: the KL term is ~0, not garbage.
                self.assertLess(abs(out["kl"]), 1e-2)


if __name__ == "__main__":
    unittest.main()
