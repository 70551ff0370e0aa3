"""Sharded (FSDP2) learner ranks on CPU (gloo), for test_fsdp and `npm run bench -- distributed`
with a torch that has `fully_shard`: the same batch trained by 1 unsharded rank and by N sharded
ranks, exported through the learner's ops; and a DCP checkpoint saved on one world size and loaded
on another. Every rank runs the ops the learner runs (service.trainer_ops / follower_ops)."""
import json
import os
import sys
import tempfile
import time

import torch
import torch.distributed as tdist
import torch.multiprocessing as mp

import helpers
from dist_run import batch, free_port
from helpers import settings, tiny_model

from learner import dist, fsdp
from learner.export import read_model_dir
from learner.service import follower_ops, trainer_ops
from learner.train import Trainer


def make_trainer(sharded: bool) -> Trainer:
    model = tiny_model(5, n_embd=64, n_layer=2, block_size=128)
    sharding = fsdp.Sharding(model, "cpu") if sharded else None
    return Trainer(model, settings(learning_rate=1e-4, kl_coef=0.01, micro_batch_tokens=160), "tiny",
                   share_prefix=False, sharding=sharding)


def ops(t: Trainer) -> dict:
    return trainer_ops(t) if dist.rank() == 0 else follower_ops(t)


def join(rank: int, world: int, port: int) -> None:
    """A group even for one sharded rank: fully_shard needs a device mesh."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    tdist.init_process_group("gloo", rank=rank, world_size=world)


def copy(d: dict) -> dict:
    return {k: (copy(v) if isinstance(v, dict) else torch.as_tensor(v).clone()) for k, v in d.items()}


def full_state(t: Trainer) -> dict:
    """A copy of the whole model's and optimizer's tensors (rank 0; None elsewhere). On one rank
    the gathered tensors are the live ones, hence the copy."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model, optim = get_state_dict(t.model, t.optimizer, options=options)
    reference = get_model_state_dict(t.reference, options=options) if t.reference is not None else {}
    if dist.rank() != 0:
        return None
    return {"model": copy(model), "optimizer": copy(optim["state"]), "reference": copy(reference)}


def train_job(rank: int, world: int, port: int, steps: int, rows: int, out: str) -> None:
    """Trains the batch `steps` times on sharded ranks, then exports through the ops."""
    join(rank, world, port)
    t = make_trainer(sharded=True)
    metrics, seconds = steps_on(t, batch(rows), steps)
    ops(t)["export"](out + ".export", "tiny", 0)
    state = full_state(t)
    if rank == 0:
        torch.save({"params": state["model"], "metrics": metrics, "tokens_per_s": tokens_per_s(metrics, seconds)},
                   out)
    tdist.destroy_process_group()


def train_unsharded(steps: int, rows: int, out: str) -> None:
    t = make_trainer(sharded=False)
    metrics, seconds = steps_on(t, batch(rows), steps)
    trainer_ops(t)["export"](out + ".export", "tiny", 0)
    torch.save({"params": t.model.state_dict(), "metrics": metrics, "tokens_per_s": tokens_per_s(metrics, seconds)},
               out)


def steps_on(t: Trainer, data, steps: int):
    """A warm-up step (which also makes the KL reference), then `steps` timed ones: their
    metrics (what the step reports: loss, KL, gradient norm) and seconds."""
    metrics = [t.train(data)]
    t0 = time.perf_counter()
    metrics += [t.train(data) for _ in range(steps)]
    return metrics, time.perf_counter() - t0


def tokens_per_s(metrics, seconds: float) -> float:
    return sum(m["tokens"] for m in metrics[1:]) / seconds


def metric_diff(a, b) -> float:
    keys = ("loss", "policy_loss", "kl", "grad_norm", "entropy", "clip_fraction")
    return max(abs(x[k] - y[k]) for x, y in zip(a, b) for k in keys)


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def compare(ranks: int = 2, steps: int = 3, rows: int = 16) -> dict:
    """1 unsharded rank vs `ranks` FSDP2 ranks: parameters after training, and their exports."""
    with tempfile.TemporaryDirectory() as d:
        one, many = os.path.join(d, "1.pt"), os.path.join(d, "n.pt")
        train_unsharded(steps, rows, one)
        mp.spawn(train_job, args=(ranks, free_port(), steps, rows, many), nprocs=ranks, join=True)
        a, b = torch.load(one), torch.load(many)
        version = str(steps + 1)  # the warm-up and `steps` steps
        (ca, ta), (cb, tb) = (read_model_dir(os.path.join(p + ".export", version)) for p in (one, many))
        files = [sorted(os.listdir(os.path.join(p + ".export", version))) for p in (one, many)]
    return {"bench": "distributed", "mode": "fsdp2", "ranks": ranks,
            "max_abs_param_diff": max_diff(a["params"], b["params"]),
            "max_abs_metric_diff": metric_diff(a["metrics"], b["metrics"]), "grad_norm": a["metrics"][-1]["grad_norm"],
            "max_abs_export_diff": max_diff(ta, tb), "export_config_equal": ca == cb,
            "export_files_equal": files[0] == files[1], "tokens_per_s_1": round(a["tokens_per_s"], 1),
            f"tokens_per_s_{ranks}": round(b["tokens_per_s"], 1)}


def save_job(rank: int, world: int, port: int, rows: int, ckpt: str, out: str) -> None:
    """Two steps, a checkpoint, the state there, then one more step's parameters."""
    join(rank, world, port)
    t = make_trainer(sharded=True)
    data = batch(rows)
    t.train(data)
    t.train(data)
    ops(t)["save"](ckpt)
    at_save = full_state(t)
    t.train(data)
    after = full_state(t)
    if rank == 0:
        torch.save({"at_save": at_save, "after": after["model"], "version": t.version}, out)
    tdist.destroy_process_group()


def load_job(rank: int, world: int, port: int, rows: int, ckpt: str, out: str, sharded: bool = True) -> None:
    """A fresh learner (other initial weights) loads the checkpoint, then takes the next step."""
    join(rank, world, port)
    torch.manual_seed(99)
    t = make_trainer(sharded=sharded)
    for p in t.model.parameters():  # nothing of the fresh init may survive the load
        torch.nn.init.normal_(p.to_local() if sharded else p.data)
    version, _ = ops(t)["load"](ckpt)
    loaded = full_state(t)
    has_reference = t.reference is not None
    t.train(batch(rows))
    after = full_state(t)
    if rank == 0:
        torch.save({"loaded": loaded, "after": after["model"], "version": version,
                    "has_reference": has_reference}, out)
    tdist.destroy_process_group()


def spawn(fn, world: int, *args) -> None:
    mp.spawn(fn, args=(world, free_port(), *args), nprocs=world, join=True)


if __name__ == "__main__":
    assert helpers.ROOT  # paths set up
    if not fsdp.available():
        sys.exit(f"torch {torch.__version__} has no torch.distributed.fsdp.fully_shard (needs torch >= 2.8)")
    ranks = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    print(json.dumps(compare(ranks, steps=int(os.environ.get("STEPS", "5")), rows=int(os.environ.get("ROWS", "32")))))
