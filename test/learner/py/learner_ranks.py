"""Learner ranks as the trainer starts them (`python -m learner` with torchrun's variables), for
tests: waits for rank 0's "learner ready" line and calls its gRPC Learner with the run token."""
import json
import os
import signal
import subprocess
import sys
import time

import grpc

import helpers
from dist_run import free_port
from l0.v1 import learner_pb2_grpc

TOKEN = "test-token"


class LearnerRanks:
    def __init__(self, directory: str, world: int, flags, timeout_s: float = 120.0) -> None:
        self.dir, self.world, self.flags, self.timeout_s = directory, world, list(flags), timeout_s
        self.procs = []

    def __enter__(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "token"), "w") as f:
            f.write(TOKEN)
        port = free_port()
        path = os.pathsep.join([str(helpers.ROOT / "images" / "trainer"), str(helpers.ROOT / "gen" / "python"),
                                os.environ.get("PYTHONPATH", "")])
        for r in range(self.world):
            env = dict(os.environ, RANK=str(r), WORLD_SIZE=str(self.world), LOCAL_RANK=str(r),
                       MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), PYTHONPATH=path, OPENBLAS_NUM_THREADS="1",
                       PYTHONWARNINGS="ignore")
            log = open(os.path.join(self.dir, f"rank{r}.log"), "w")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "learner", "--token-file", os.path.join(self.dir, "token"), "--engine-port",
                 "-1", "--n-layer", "2", "--n-embd", "64", "--block-size", "128", "--kl-coef", "0.01", *self.flags],
                env=env, stdout=log, stderr=subprocess.STDOUT))
        self.stub = learner_pb2_grpc.LearnerStub(grpc.insecure_channel(f"127.0.0.1:{self._ready_port()}"))
        return self

    def _ready_port(self) -> int:
        end = time.monotonic() + self.timeout_s
        while time.monotonic() < end:
            with open(os.path.join(self.dir, "rank0.log")) as f:
                for line in f:
                    if '"learner ready"' in line:
                        return json.loads(line)["grpc_port"]
            if self.procs[0].poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"rank 0 never became ready: {open(os.path.join(self.dir, 'rank0.log')).read()[-2000:]}")

    def call(self, method: str, request):
        return getattr(self.stub, method)(request, metadata=[("authorization", f"Bearer {TOKEN}")],
                                          timeout=self.timeout_s)

    def stop(self):
        """SIGTERM to rank 0, which stops the group; every rank's exit code."""
        self.procs[0].send_signal(signal.SIGTERM)
        return [p.wait(timeout=self.timeout_s) for p in self.procs]

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
