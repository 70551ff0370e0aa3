"""A seeded toy verifiable task trained from scratch with this learner: given a letter, write it
four times; reward = fraction of the first four tokens that match. Sampling through the engine's
batched generator, GRPO-style group-normalized advantages (the hub's job, done inline here),
one `Trainer.train` step per batch. The reward starts near 1/262 and must rise markedly within
a bounded number of steps."""
import statistics
import unittest

import torch
from helpers import TOK, Sample, settings, tiny_model

from learner.sampling import GenRequest, generate
from learner.train import Trainer

LETTERS, GROUP, N = "abcd", 16, 4


def reward(letter: str, ids) -> float:
    return sum(1 for x in ids[:N] if x == ord(letter)) / N


def run(steps: int, seed: int = 0):
    t = Trainer(tiny_model(seed, n_embd=64), settings(learning_rate=3e-3, kl_coef=0.0), "tiny")
    gen = torch.Generator().manual_seed(seed)
    # The letter repeated in the prompt makes it easy to attend to from the first step.
    prompts = {c: TOK.render_chat([{"role": "user", "content": c * 8}]) for c in LETTERS}
    means = []
    for _ in range(steps):
        reqs = [GenRequest(prompts[c], N, 1.0) for c in LETTERS for _ in range(GROUP)]
        t.model.eval()
        res = generate(t.model, TOK, reqs, gen)
        rewards = [reward(LETTERS[i // GROUP], r.token_ids) for i, r in enumerate(res)]
        means.append(sum(rewards) / len(rewards))
        samples = []
        for i, r in enumerate(res):
            g = rewards[(i // GROUP) * GROUP : (i // GROUP + 1) * GROUP]
            adv = (rewards[i] - sum(g) / GROUP) / (statistics.pstdev(g) + 1e-6)
            samples.append(Sample(f"{i}", reqs[i].prompt, r.token_ids, r.logprobs, [1] * len(r.token_ids), adv,
                                  f"{i}"))
        if any(s.advantage != 0 for s in samples):
            t.train(samples)
    return means


class ToyTaskTest(unittest.TestCase):
    def test_reward_rises_markedly_within_bounded_steps(self):
        means = run(120)
        start, end = sum(means[:5]) / 5, sum(means[-10:]) / 10
        self.assertLess(start, 0.05)
        self.assertGreater(end, 0.6, f"reward went {start:.3f} -> {end:.3f}")


if __name__ == "__main__":
    unittest.main()
