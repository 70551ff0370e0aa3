"""Several learner ranks (torch.distributed, gloo on CPU): the rank layout from torchrun's
variables, and the same batch trained by 1 and by 2 ranks ending at the same parameters."""
import unittest

import dist_run

from learner.dist import Layout, layout_from_env


class LayoutTest(unittest.TestCase):
    def test_torchrun_variables(self):
        self.assertEqual(layout_from_env({}), Layout(0, 1, 0))
        env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "29500"}
        self.assertEqual(layout_from_env(env), Layout(3, 4, 1))
        table = [
            ({"RANK": "x"}, "RANK: must be an integer"),
            ({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "need 0 <= RANK < WORLD_SIZE"),
            ({"RANK": "1", "WORLD_SIZE": "2"}, "MASTER_ADDR and MASTER_PORT"),
        ]
        for env, error in table:
            with self.subTest(error=error), self.assertRaisesRegex(ValueError, error):
                layout_from_env(env)


class TwoRanksTest(unittest.TestCase):
    def test_two_gloo_ranks_train_the_batch_to_the_same_parameters(self):
        out = dist_run.compare(ranks=2, steps=1, rows=8)
        self.assertLess(out["max_abs_param_diff"], 1e-6, out)


if __name__ == "__main__":
    unittest.main()
