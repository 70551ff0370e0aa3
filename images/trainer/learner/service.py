"""The gRPC `l0.v1.Learner` service over a Trainer: run-token auth on every call, batch
validation errors as INVALID_ARGUMENT naming the field (with the `l0-error-bin` ErrorDetail
trailer the TypeScript side decodes), and the one mapping of learner errors to status codes."""
from __future__ import annotations

import functools
import hmac
import math
from typing import Callable

import grpc

from l0.v1 import common_pb2, learner_pb2, learner_pb2_grpc, weights_pb2

from . import checkpoint, dist, fsdp
from . import export as export_mod
from .batch import BatchError, from_proto
from .log import Logger
from .memory import StepTooLarge
from .metrics import Metrics
from .train import NonFiniteError

ERROR_TRAILER = "l0-error-bin"


def _abort(context, code, message: str, reason: str, violations=()):
    detail = common_pb2.ErrorDetail(
        reason=reason, violations=[common_pb2.FieldViolation(field=f, description=d) for f, d in violations]
    )
    context.set_trailing_metadata(((ERROR_TRAILER, detail.SerializeToString()),))
    context.abort(code, message)


def trainer_ops(trainer, engine=None) -> dict:
    """The calls every rank runs in lockstep (dist.Lockstep), as rank 0 runs them. Rank 0 holds
    the whole model when replicated, so it alone writes checkpoints and exports and a load is
    broadcast; sharded (FSDP2), every rank saves and loads its shards and rank 0 writes the export
    the ranks gather."""
    gen = engine.gen if engine else None
    sharded = trainer.sharding is not None

    def load(directory: str):
        if sharded:  # every rank reads its own shards
            return checkpoint.load(trainer, directory, gen)
        try:
            return checkpoint.load(trainer, directory, gen)
        finally:  # the other ranks wait for the state either way
            dist.broadcast_state(trainer)

    def export(directory: str, name: str, shard_bytes: int):
        with trainer.writing():
            state = fsdp.full_state_dict(trainer.model) if sharded else None
            return export_mod.export(trainer.model, trainer.version, directory, name, shard_bytes, state=state)

    return {"train": trainer.train, "sft": trainer.sft, "load": load, "export": export,
            "save": lambda directory: checkpoint.save(trainer, directory, gen)}


def follower_ops(trainer) -> dict:
    """The same calls on the other ranks: the steps, and the state a load broadcasts. Sharded,
    each rank saves and loads its own shards and takes part in gathering an export."""
    if trainer.sharding is not None:
        return {"train": trainer.train, "sft": trainer.sft, "load": lambda d: checkpoint.load(trainer, d),
                "save": lambda d: checkpoint.save(trainer, d), "export": lambda *_: _gather(trainer)}
    return {"train": trainer.train, "sft": trainer.sft, "load": lambda _dir: dist.broadcast_state(trainer),
            "save": lambda _dir: None, "export": lambda *_: None}


def _gather(trainer) -> None:
    with trainer.writing():
        fsdp.full_state_dict(trainer.model)


class LearnerService(learner_pb2_grpc.LearnerServicer):
    def __init__(self, trainer, token: str, logger: Logger, engine=None, base_url: str = "",
                 export_dir: str = "", device: str = "cpu", metrics: Metrics = None,
                 steps: dist.Lockstep = None) -> None:
        self.trainer, self.engine, self.base_url = trainer, engine, base_url
        self.steps = steps or dist.Lockstep(trainer_ops(trainer, engine))
        self.metrics = metrics or Metrics()
        self.want = f"Bearer {token}".encode("utf-8")
        self.logger, self.export_dir, self.device = logger, export_dir, device

    def add_to_server(self, server: grpc.Server) -> None:
        learner_pb2_grpc.add_LearnerServicer_to_server(self, server)

    def _guard(fn: Callable):  # noqa: N805 - decorator over the servicer's methods
        @functools.wraps(fn)
        def wrapper(self, request, context):
            got = dict(context.invocation_metadata()).get("authorization", "")
            if not hmac.compare_digest(got.encode("utf-8"), self.want):
                self.metrics.inc("l0_learner_rejected_total", 1, "Unauthenticated")
                _abort(context, grpc.StatusCode.UNAUTHENTICATED,
                       "missing or wrong run token (authorization: Bearer <token>)", "Unauthenticated")
            try:
                return fn(self, request, context)
            except BatchError as e:
                self.logger.warn("rejected request", method=fn.__name__, error=str(e))
                self.metrics.inc("l0_learner_rejected_total", 1, "InvalidField")
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(e), "InvalidField", e.violations)
            except checkpoint.CheckpointError as e:
                self.metrics.inc("l0_learner_rejected_total", 1, "BadCheckpoint")
                _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(e), "BadCheckpoint")
            except StepTooLarge as e:
                self.logger.warn("step refused", method=fn.__name__, error=str(e))
                self.metrics.inc("l0_learner_rejected_total", 1, "StepTooLarge")
                _abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(e), "StepTooLarge")
            except NonFiniteError as e:
                self.logger.warn("step skipped", method=fn.__name__, error=str(e))
                self.metrics.inc("l0_learner_rejected_total", 1, "NonFiniteGradient")
                _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(e), "NonFiniteGradient")
            except Exception as e:  # noqa: BLE001 - the peer sees INTERNAL, the log has the cause
                self.logger.error("unhandled error in gRPC handler", method=fn.__name__, error=repr(e))
                self.metrics.inc("l0_learner_rejected_total", 1, "Internal")
                _abort(context, grpc.StatusCode.INTERNAL, "internal error", "Internal")

        return wrapper

    @_guard
    def Train(self, request, context):
        out = self.steps.run("train", from_proto(request.samples), None, request.step)
        self.metrics.observe_step("train", out)
        self.metrics.set("l0_learner_step", self.trainer.step)
        self.logger.info("trained", step=self.trainer.step, version=out["policy_version"],
                         samples=len(request.samples), loss=out["loss"], kl=out["kl"],
                         grad_norm=out["grad_norm"], logprob_gap=out["logprob_gap"],
                         tokens_per_second=round(out["tokens_per_second"], 1))
        return learner_pb2.TrainResponse(**out)

    @_guard
    def Sft(self, request, context):
        lr = request.learning_rate if math.isfinite(request.learning_rate) else -1.0
        out = self.steps.run("sft", from_proto(request.samples), lr or None)
        self.metrics.observe_step("sft", out)
        self.logger.info("supervised step", version=out["policy_version"], loss=out["loss"], tokens=out["tokens"])
        return learner_pb2.SftResponse(**out)

    @_guard
    def Save(self, request, context):
        if not request.dir:
            raise BatchError([("dir", "must not be empty")])
        path = self.steps.run("save", request.dir)
        self.logger.info("checkpoint saved", dir=str(path), version=self.trainer.version, step=self.trainer.step)
        return learner_pb2.SaveResponse(dir=str(path), policy_version=self.trainer.version, step=self.trainer.step)

    @_guard
    def Load(self, request, context):
        if not request.dir:
            raise BatchError([("dir", "must not be empty")])
        version, step = self.steps.run("load", request.dir)
        self.logger.info("checkpoint loaded", dir=request.dir, version=version, step=step)
        self.metrics.set("l0_learner_policy_version", version)
        self.metrics.set("l0_learner_step", step)
        return learner_pb2.LoadResponse(policy_version=version, step=step)

    @_guard
    def ExportWeights(self, request, context):
        directory = request.dir or self.export_dir
        if not directory:
            raise BatchError([("dir", "must not be empty (and the learner has no --export-dir)")])
        path, manifest = self.steps.run("export", directory, self.trainer.model_name, request.shard_bytes)
        self.logger.info("weights exported", dir=str(path), version=manifest["version"])
        manifest = export_mod.manifest_to_proto(manifest, weights_pb2)
        return learner_pb2.ExportWeightsResponse(dir=str(path), manifest=manifest)

    @_guard
    def Info(self, request, context):
        return learner_pb2.InfoResponse(
            model=self.trainer.model_name,
            policy_version=self.trainer.version,
            step=self.trainer.step,
            openai_base_url=self.base_url,
            parameters=self.trainer.parameters_count(),
            device=self.device,
        )


def make_grpc_server(service: LearnerService, host: str, port: int, max_message_bytes: int = 64 << 20,
                     workers: int = 8) -> tuple:
    """A grpcio server with explicit message limits; returns (server, bound port)."""
    from concurrent.futures import ThreadPoolExecutor

    opts = [("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes)]
    server = grpc.server(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"), options=opts)
    service.add_to_server(server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC on {host}:{port}")
    return server, bound
