"""The GPU memory estimate refuses a step that cannot fit before it runs, naming the knob, and
the Trainer consults it with its largest micro-batch."""
import unittest

from helpers import sample, trainer

from learner.memory import Shape, StepTooLarge, check_fits, step_bytes

GIB = 1 << 30
PROMPT_TOKENS = [256] + list(b"what is two plus two?")
# Qwen2.5-7B's shape (28 layers, hidden 3584, vocab 152064, ~7.6e9 parameters).
QWEN_7B = Shape(parameters=7_615_616_512, layers=28, hidden=3584, vocab=152064)
QWEN_05B = Shape(parameters=494_032_768, layers=24, hidden=896, vocab=151936)


class MemoryTest(unittest.TestCase):
    def test_table(self):
        table = [
            # shape, tokens, shards, device GiB, KL reference, error (None: fits)
            (QWEN_05B, 8192, 1, 80, False, None),
            (QWEN_05B, 65536, 1, 80, False, "lower --micro-batch-tokens"),
            (QWEN_7B, 4096, 1, 80, False, r"more GPUs \(spec.trainer.nodes, spec.trainer.gpusPerNode\)"),
            (QWEN_7B, 4096, 8, 80, False, None),
            # 16 bytes/parameter fit a 141 GiB card (H200) with a small micro-batch; the bf16 KL
            # reference's 2 more do not.
            (QWEN_7B, 1024, 1, 141, False, None),
            (QWEN_7B, 1024, 1, 141, True, r"and the KL reference \(spec.algorithm.klCoef > 0\) alone"),
        ]
        for shape, tokens, shards, gib, ref, error in table:
            with self.subTest(tokens=tokens, shards=shards, gib=gib, reference=ref):
                if error is None:
                    check_fits(shape, tokens, shards, True, gib * GIB, reference=ref)
                else:
                    with self.assertRaisesRegex(StepTooLarge, error):
                        check_fits(shape, tokens, shards, True, gib * GIB, reference=ref)

    def test_checkpointing_and_sharding_lower_the_estimate(self):
        full = step_bytes(QWEN_05B, 8192, 1, checkpointing=False)
        self.assertLess(step_bytes(QWEN_05B, 8192, 1, checkpointing=True), full)
        self.assertLess(step_bytes(QWEN_05B, 8192, 4, checkpointing=False), full)

    def test_the_trainer_checks_its_largest_micro_batch_before_the_step(self):
        t = trainer(2, micro_batch_tokens=16)
        seen = []
        t.check_memory = seen.append
        rows = [sample(PROMPT_TOKENS, [1, 2, 3], 1.0, sid="a"), sample(PROMPT_TOKENS + [5] * 10, [1, 2], 1.0, sid="b")]
        t.train(rows)
        self.assertEqual(seen, [len(PROMPT_TOKENS) + 12])  # each row alone: the longer one
        t.check_memory = lambda tokens: check_fits(QWEN_7B, tokens, 1, True, 16 * GIB)
        version = t.version
        with self.assertRaises(StepTooLarge):
            t.train(rows)
        self.assertEqual(t.version, version)


if __name__ == "__main__":
    unittest.main()
