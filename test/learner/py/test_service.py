"""The gRPC service in-process over real loopback gRPC: run-token auth, INVALID_ARGUMENT naming
the field with the l0-error-bin ErrorDetail trailer, and the happy path. (The TypeScript
client against the real `python3 -m learner` process is in test/learner/learner.test.ts.)"""
import math
import tempfile
import unittest

import grpc
from helpers import TOK, trainer

from l0.v1 import common_pb2, learner_pb2, learner_pb2_grpc
from learner.log import silent
from learner.service import LearnerService, make_grpc_server

TOKEN = "run-token-123"


def turn(adv=1.0, **kw):
    prompt = TOK.render_chat([{"role": "user", "content": "q"}])
    base = dict(sample_id="t/0", prompt_token_ids=prompt, response_token_ids=[97, 98],
                sampler_logprobs=[-5.5, -5.5], advantage=adv, trajectory_id="t")
    base.update(kw)
    return learner_pb2.TrainSample(**base)


class ServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.trainer = trainer(21)
        svc = LearnerService(cls.trainer, TOKEN, silent(), export_dir=cls.tmp.name)
        cls.server, port = make_grpc_server(svc, "127.0.0.1", 0)
        cls.server.start()
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        cls.stub = learner_pb2_grpc.LearnerStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop(None)
        cls.tmp.cleanup()

    def call(self, method, req, token=TOKEN):
        md = () if token is None else (("authorization", f"Bearer {token}"),)
        return getattr(self.stub, method)(req, metadata=md, timeout=30)

    def test_calls_without_the_run_token_are_unauthenticated(self):
        for token in (None, "wrong"):
            with self.subTest(token=token):
                with self.assertRaises(grpc.RpcError) as ctx:
                    self.call("Info", learner_pb2.InfoRequest(), token)
                self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_a_bad_batch_is_invalid_argument_naming_the_field(self):
        version = self.trainer.version
        bad = learner_pb2.TrainRequest(samples=[turn(), turn(adv=math.nan), turn(response_mask=[1])])
        with self.assertRaises(grpc.RpcError) as ctx:
            self.call("Train", bad)
        e = ctx.exception
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("samples[1].advantage: must be finite", e.details())
        trailer = dict(e.trailing_metadata())["l0-error-bin"]
        detail = common_pb2.ErrorDetail.FromString(trailer)
        self.assertEqual(detail.reason, "InvalidField")
        self.assertEqual([v.field for v in detail.violations], ["samples[1].advantage", "samples[2].response_mask"])
        self.assertEqual(self.trainer.version, version)

    def test_train_info_export(self):
        out = self.call("Train", learner_pb2.TrainRequest(step=7, samples=[turn(), turn(-1.0, sample_id="t/1")]))
        self.assertEqual(out.policy_version, self.trainer.version)
        self.assertEqual(out.kl, 0.0)
        self.assertGreater(out.tokens_per_second, 0)
        info = self.call("Info", learner_pb2.InfoRequest())
        self.assertEqual((info.model, info.step, info.device), ("tiny", 7, "cpu"))
        self.assertEqual(info.parameters, self.trainer.parameters_count())
        exp = self.call("ExportWeights", learner_pb2.ExportWeightsRequest())
        self.assertEqual(exp.manifest.version, info.policy_version)
        self.assertEqual(exp.manifest.format, "safetensors")
        self.assertTrue(exp.dir.endswith(f"/{info.policy_version}"))

    def test_save_and_load_errors(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.call("Save", learner_pb2.SaveRequest())
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as ctx:
            self.call("Load", learner_pb2.LoadRequest(dir="/nonexistent/x"))
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)


if __name__ == "__main__":
    unittest.main()
