"""The same batch trained by 1 rank and by N gloo CPU ranks (one process each), for the
distributed test and `npm run bench -- distributed`. Prints one JSON line when run as a script:
{"bench":"distributed","ranks":N,"max_abs_param_diff":...,"tokens_per_s_1":...,"tokens_per_s_2":...}."""
import json
import os
import socket
import sys
import tempfile
import time

import torch
import torch.multiprocessing as mp

import helpers
from helpers import sample, settings, tiny_model

from learner import dist
from learner.train import Trainer


def batch(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        prompt = [256] + torch.randint(0, 250, (24,), generator=g).tolist()
        response = torch.randint(0, 250, (8 + i % 5,), generator=g).tolist()
        rows.append(sample(prompt, response, advantage=1.0 if i % 2 else -1.0,
                           logprobs=[-3.0] * len(response), group=f"g{i // 4}", sid=f"s{i}"))
    return rows


def run(world: int, rank: int, steps: int, rows: int, out: str) -> None:
    """One rank: joins the group (when world > 1), trains, rank 0 saves its parameters."""
    torch.set_num_threads(1)
    dist.init(dist.Layout(rank, world, rank), "cpu", 120)
    t = Trainer(tiny_model(5, n_embd=64, n_layer=2, block_size=128),
                settings(learning_rate=1e-4, kl_coef=0.01, micro_batch_tokens=160), "tiny")
    dist.broadcast_state(t)
    data = batch(rows)
    t.train(data)  # warm-up (and the KL reference)
    t0 = time.perf_counter()
    tokens = 0
    for _ in range(steps):
        tokens += t.train(data)["tokens"]
    seconds = time.perf_counter() - t0
    if rank == 0:
        torch.save({"params": [p.detach().clone() for p in t.model.parameters()],
                    "tokens_per_s": tokens / seconds}, out)
    dist.shutdown(dist.Layout(rank, world, rank))


def _spawned(rank: int, world: int, port: int, steps: int, rows: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    run(world, rank, steps, rows, out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compare(ranks: int = 2, steps: int = 3, rows: int = 16) -> dict:
    with tempfile.TemporaryDirectory() as d:
        one, many = os.path.join(d, "1.pt"), os.path.join(d, "n.pt")
        run(1, 0, steps, rows, one)
        mp.spawn(_spawned, args=(ranks, free_port(), steps, rows, many), nprocs=ranks, join=True)
        a, b = torch.load(one), torch.load(many)
    diff = max(float((x - y).abs().max()) for x, y in zip(a["params"], b["params"]))
    return {"bench": "distributed", "ranks": ranks, "max_abs_param_diff": diff,
            "tokens_per_s_1": round(a["tokens_per_s"], 1), f"tokens_per_s_{ranks}": round(b["tokens_per_s"], 1)}


if __name__ == "__main__":
    assert helpers.ROOT  # paths set up
    ranks = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    print(json.dumps(compare(ranks, steps=int(os.environ.get("STEPS", "5")), rows=int(os.environ.get("ROWS", "32")))))
