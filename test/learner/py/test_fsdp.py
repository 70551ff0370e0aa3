"""The sharded layout (FSDP2 `fully_shard`, gloo CPU ranks): the same batch trained by 1 unsharded
rank and by 2 sharded ranks ends at the same parameters and exports the same model directory; a
torch.distributed.checkpoint checkpoint saved on 2 ranks loads on 1 and on 2, optimizer state and
KL reference included, and training goes on as it would have. Skipped on a torch without
fully_shard (Debian's 1.13, CI's image): run with a newer one, e.g. PYTHONPATH=/tmp/torchchk."""
import os
import tempfile
import unittest

import torch

import helpers  # noqa: F401 - import paths

from learner import fsdp

TOL = 1e-6  # float32 round-off over a few steps; a step moves parameters by ~1e-4


@unittest.skipUnless(fsdp.available(), f"torch {torch.__version__} has no fully_shard (needs torch >= 2.8)")
class ShardedTrainingTest(unittest.TestCase):
    def test_two_sharded_ranks_train_and_export_as_one_unsharded_rank(self):
        import fsdp_run

        # 12 rows are 3 micro-batches: rank 1 runs a stand-in pass beside its one real pass.
        out = fsdp_run.compare(ranks=2, steps=1, rows=12)
        self.assertLess(out["max_abs_param_diff"], TOL, out)
        self.assertLess(out["max_abs_metric_diff"], 1e-5 * max(1.0, out["grad_norm"]), out)
        self.assertLess(out["max_abs_export_diff"], TOL, out)
        self.assertTrue(out["export_config_equal"] and out["export_files_equal"], out)


@unittest.skipUnless(fsdp.available(), f"torch {torch.__version__} has no fully_shard (needs torch >= 2.8)")
class ShardedCheckpointTest(unittest.TestCase):
    SAVED_ON = 2  # ranks

    @classmethod
    def setUpClass(cls):
        import fsdp_run

        cls.run_ = fsdp_run
        cls.dir = tempfile.TemporaryDirectory()
        cls.ckpt = os.path.join(cls.dir.name, "ckpt")
        fsdp_run.spawn(fsdp_run.save_job, cls.SAVED_ON, 8, cls.ckpt, os.path.join(cls.dir.name, "saved.pt"))
        cls.saved = torch.load(os.path.join(cls.dir.name, "saved.pt"))

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def test_the_directory_is_complete_and_says_its_format(self):
        import json

        names = set(os.listdir(self.ckpt))
        self.assertTrue({"meta.json", "COMPLETE", ".metadata", "rng.pt"} <= names, names)
        self.assertEqual(len([n for n in names if n.endswith(".distcp")]), self.SAVED_ON, names)  # one per rank
        meta = json.loads(open(os.path.join(self.ckpt, "meta.json")).read())
        self.assertEqual((meta["format"], meta["world_size"], meta["has_reference"]), ("dcp", self.SAVED_ON, True))
        self.assertEqual([n for n in os.listdir(self.dir.name) if n.startswith(".")], [])  # no temporaries left

    def _load_on(self, world: int, sharded: bool = True) -> dict:
        out = os.path.join(self.dir.name, f"loaded-{world}-{sharded}.pt")
        self.run_.spawn(self.run_.load_job, world, 8, self.ckpt, out, sharded)
        return torch.load(out)

    def _check(self, got: dict) -> None:
        at_save = self.saved["at_save"]
        self.assertEqual(got["version"], self.saved["version"] - 1)
        self.assertTrue(got["has_reference"])
        self.assertEqual(self.run_.max_diff(got["loaded"]["model"], at_save["model"]), 0.0)
        # The KL reference is the policy before the first step, not the loaded policy.
        self.assertGreater(self.run_.max_diff(at_save["reference"], at_save["model"]), 1e-5)
        self.assertEqual(self.run_.max_diff(got["loaded"]["reference"], at_save["reference"]), 0.0)
        want, have = at_save["optimizer"], got["loaded"]["optimizer"]
        self.assertEqual(sorted(want), sorted(have))
        for name in want:
            for k in ("step", "exp_avg", "exp_avg_sq"):
                self.assertTrue(torch.equal(torch.as_tensor(want[name][k]), torch.as_tensor(have[name][k])), (name, k))
        # The next step (its KL term uses the loaded reference) lands where the saver's did.
        self.assertLess(self.run_.max_diff(got["after"], self.saved["after"]), TOL)

    def test_loads_on_one_rank(self):
        self._check(self._load_on(1))

    def test_loads_on_two_ranks(self):
        self._check(self._load_on(2))

    def test_loads_into_an_unsharded_learner(self):
        self._check(self._load_on(1, sharded=False))


class SavedOnOneRankTest(ShardedCheckpointTest):
    """The same checks for a checkpoint saved by one sharded rank (1 -> 2 reshards the other way)."""

    SAVED_ON = 1

    def test_loads_on_one_rank(self):
        self.skipTest("covered by 2 -> 2 in ShardedCheckpointTest (same world size)")

    def test_loads_into_an_unsharded_learner(self):
        self.skipTest("covered by ShardedCheckpointTest")


@unittest.skipUnless(fsdp.available(), f"torch {torch.__version__} has no fully_shard (needs torch >= 2.8)")
class LearnerRanksTest(unittest.TestCase):
    """Two `python -m learner --sharding fsdp2` ranks driven over gRPC, as the trainer runs them."""

    def test_train_save_export_load_over_grpc(self):
        import grpc
        from l0.v1 import learner_pb2 as pb
        from learner_ranks import LearnerRanks

        with tempfile.TemporaryDirectory() as d, LearnerRanks(d, 2, ["--sharding", "fsdp2"]) as ranks:
            call = ranks.call
            rows = [pb.TrainSample(sample_id=f"s{i}", prompt_token_ids=[256] + list(range(10 + i, 40 + i)),
                                   response_token_ids=list(range(50, 58 + i % 3)),
                                   sampler_logprobs=[-3.0] * (8 + i % 3), advantage=1.0 if i % 2 else -1.0,
                                   trajectory_id=f"t{i // 2}") for i in range(6)]
            call("Train", pb.TrainRequest(step=1, samples=rows))
            call("Save", pb.SaveRequest(dir=os.path.join(d, "ckpt")))
            self.assertIn("COMPLETE", os.listdir(os.path.join(d, "ckpt")))
            out = call("ExportWeights", pb.ExportWeightsRequest(dir=os.path.join(d, "export")))
            self.assertEqual([t.name for t in out.manifest.tensors][:2], ["wte.weight", "wpe.weight"])
            want = call("Train", pb.TrainRequest(step=2, samples=rows))
            self.assertEqual(call("Load", pb.LoadRequest(dir=os.path.join(d, "ckpt"))).policy_version, 1)
            got = call("Train", pb.TrainRequest(step=2, samples=rows))
            self.assertEqual((got.loss, got.grad_norm), (want.loss, want.grad_norm))
            with self.assertRaises(grpc.RpcError) as e:  # refused on every rank alike; the group goes on
                call("Load", pb.LoadRequest(dir=os.path.join(d, "nope")))
            self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            # A supervised step drops the KL reference; the next step rebuilds it, sharded, from the policy.
            self.assertEqual(call("Sft", pb.SftRequest(samples=rows)).policy_version, 3)
            self.assertEqual(call("Train", pb.TrainRequest(step=3, samples=rows)).kl, 0.0)
            self.assertEqual(call("Info", pb.InfoRequest()).policy_version, 4)
            self.assertEqual(ranks.stop(), [0, 0])
            # Two replicated ranks: rank 0 reads the whole model from the shards and broadcasts it.
            with LearnerRanks(os.path.join(d, "replicated"), 2, ["--sharding", "replicate"]) as replicated:
                self.assertEqual(replicated.call("Load", pb.LoadRequest(dir=os.path.join(d, "ckpt"))).step, 1)
                again = replicated.call("Train", pb.TrainRequest(step=2, samples=rows))
                self.assertAlmostEqual(again.loss, want.loss, places=5)
                self.assertAlmostEqual(again.grad_norm, want.grad_norm, places=5)
                self.assertEqual(replicated.stop(), [0, 0])


class DecisionTest(unittest.TestCase):
    def test_when_the_learner_shards(self):
        table = [
            # mode, device, world, torch has FSDP2, built-in engine on rank 0 -> shards
            ("auto", "cuda", 2, True, False, True),
            ("auto", "cuda:1", 8, True, False, True),
            ("auto", "cuda", 1, True, False, False),
            ("auto", "cpu", 2, True, False, False),
            ("auto", "cuda", 2, False, False, False),  # torch 1.13: the replicated layout
            ("auto", "cuda", 2, True, True, False),  # the engine needs the whole model
            ("fsdp2", "cpu", 2, True, False, True),
            ("fsdp2", "cpu", 1, True, False, True),
            ("replicate", "cuda", 8, True, False, False),
        ]
        for mode, device, world, has, engine, want in table:
            with self.subTest(mode=mode, device=device, world=world, has=has, engine=engine):
                self.assertEqual(fsdp.use_fsdp2(mode, device, world, has, engine), want)
        errors = [
            (("fsdp2", "cuda", 2, False, False), "sharding fsdp2: torch .* has no"),
            (("fsdp2", "cpu", 2, True, True), "sharding fsdp2: the built-in engine .* --engine-port -1"),
            (("zero3", "cuda", 2, True, False), "sharding: unknown 'zero3'"),
        ]
        for args, error in errors:
            with self.subTest(error=error), self.assertRaisesRegex(ValueError, error):
                fsdp.use_fsdp2(*args)


if __name__ == "__main__":
    unittest.main()
