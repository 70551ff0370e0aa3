"""`python3 -m learner`: builds the policy and Trainer from flags / environment / the run config,
optionally warm-starts it (--sft-data) or resumes it (--load-dir), then serves the gRPC Learner
and, on the CPU path, the OpenAI-compatible engine, until SIGTERM/SIGINT. Prints one
`learner ready` log line with the bound ports, which launchers wait for. `--role inference` serves
only the engine, whose weights come from exported versions (POST /update_weights_from_disk)."""
import os

# Before torch loads OpenBLAS: one BLAS thread (several are much slower on these small shapes).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402


def _gen_path() -> str:
    return os.environ.get("L0_GEN_PYTHON") or str(Path(__file__).resolve().parents[3] / "gen" / "python")


sys.path.insert(0, _gen_path())

from .config import is_builtin, load_config  # noqa: E402
from .log import Logger  # noqa: E402

# torch and everything that needs it load after the configuration is checked, so `--help` and a
# bad flag answer at once.


def torch_device(cfg, layout) -> str:
    """cpu, or this process's GPU; CUDA asked for (the run's spec.trainer.gpusPerNode > 0, or
    --device cuda) and absent stops the learner here, before anything is built."""
    import torch

    if cfg.device == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise ValueError(f"device cuda (spec.trainer.gpusPerNode > 0 or --device cuda): this torch "
                         f"{torch.__version__} sees no usable GPU (torch.cuda.is_available() is false); "
                         "give the trainer GPUs, or set spec.trainer.gpusPerNode: 0 for the CPU path")
    if layout.local_rank >= torch.cuda.device_count():
        raise ValueError(f"LOCAL_RANK {layout.local_rank}: only {torch.cuda.device_count()} GPUs are visible")
    torch.cuda.set_device(layout.local_rank)
    return f"cuda:{layout.local_rank}"


def build_trainer(cfg, tok, device: str):
    import torch

    from . import dist, fsdp
    from .model import ModelConfig, TinyGPT, load_hf
    from .qwen2 import TinyQwen2, tiny_qwen2_config
    from .train import Trainer, TrainSettings

    torch.manual_seed(cfg.seed)
    if cfg.model == "tiny":
        model = TinyGPT(ModelConfig(vocab_size=tok.vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
                                    n_head=cfg.n_head, n_embd=cfg.n_embd)).to(device)
    elif cfg.model == "tiny-qwen2":
        model = TinyQwen2(tiny_qwen2_config(tok.vocab_size, cfg.block_size, cfg.n_layer, cfg.n_head,
                                            cfg.n_embd)).to(device)
    else:
        model = load_hf(cfg.model, device)
    settings = TrainSettings(
        learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, kl_coef=cfg.kl_coef,
        clip_low=cfg.clip_low, clip_high=cfg.clip_high, aggregation=cfg.aggregation, old_logprobs=cfg.old_logprobs,
        max_grad_norm=cfg.max_grad_norm, micro_batch_tokens=cfg.micro_batch_tokens,
    )
    # On CUDA: fp32 master weights and AdamW state, the forward in bf16 (autocast), and each
    # step checked to fit before it runs. Sharded (fsdp.py): each rank holds 1/world of it.
    cuda = device.startswith("cuda")
    serves = cfg.engine_port >= 0 and is_builtin(cfg.model)  # start() builds the engine then
    sharded = fsdp.use_fsdp2(cfg.sharding, device, dist.world(), fsdp.available(), engine=serves)
    check = memory_check(model, device, settings.kl_coef > 0, dist.world() if sharded else 1) if cuda else None
    sharding = fsdp.Sharding(model, device) if sharded else None
    return Trainer(model, settings, cfg.model, device, share_prefix=cfg.share_prefix, autocast_bf16=cuda,
                   check_memory=check, sharding=sharding)


def memory_check(model, device: str, reference: bool = False, shards: int = 1):
    import torch

    from .memory import Shape, check_fits

    c = getattr(getattr(model, "lm", model), "config")
    shape = Shape(parameters=sum(p.numel() for p in model.parameters()),
                  layers=int(getattr(c, "num_hidden_layers", None) or getattr(c, "n_layer")),
                  hidden=int(getattr(c, "hidden_size", None) or getattr(c, "n_embd")), vocab=int(c.vocab_size))
    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    return lambda tokens: check_fits(shape, tokens, shards=shards, checkpointing=not hasattr(c, "n_embd"),
                                     device_bytes=total, reference=reference)


def follow(cfg, layout, log: Logger) -> int:
    """A rank other than 0: the same model, running each call rank 0 sends until it stops."""
    from . import dist
    from .service import follower_ops
    from .tokenizer import ByteTokenizer

    device = torch_device(cfg, layout)
    dist.init(layout, device, cfg.dist_timeout_s)
    trainer = build_trainer(cfg, ByteTokenizer(), device)
    if is_builtin(cfg.model) and trainer.sharding is None:
        dist.broadcast_state(trainer)
    log.always("learner rank ready", rank=layout.rank, world_size=layout.world_size, device=device)
    try:
        dist.follow(follower_ops(trainer), lambda op, e: log.warn("call refused", op=op, error=str(e)))
    except Exception as e:  # noqa: BLE001 - rank 0 or another rank is gone: this attempt is over
        log.error("process group broken; exiting", rank=layout.rank, error=repr(e))
        return 1
    log.info("rank 0 stopped the group", rank=layout.rank)
    dist.shutdown(layout)
    return 0


def warm_start(cfg, steps, tok, log: Logger) -> None:
    from .sft import batches, read_jsonl

    data = read_jsonl(cfg.sft_data, tok)
    total = cfg.sft_epochs * -(-len(data) // cfg.sft_batch_size)
    log.info("supervised warm-start", file=cfg.sft_data, demonstrations=len(data), epochs=cfg.sft_epochs,
             steps=total)
    for i, b in enumerate(batches(data, cfg.sft_batch_size, cfg.sft_epochs, cfg.seed)):
        out = steps.run("sft", b, cfg.sft_learning_rate)
        # `l0 local` shows these as the warm start's progress, and they are the heartbeat the
        # trainer's start deadline waits on (client.ts): logged whatever the log level.
        if i % 5 == 0 or i == total - 1:
            log.always("supervised step", step=i + 1, steps=total, loss=round(out["loss"], 4),
                       version=out["policy_version"])


def start(cfg, token: str, log: Logger, layout):
    """Rank 0: builds and starts everything; returns the gRPC server, the engine's HTTP server,
    the engine, the probe server (each None when off; --role inference runs no gRPC server) and
    the lockstep the other ranks follow."""
    from . import dist
    from .engine import Api, Engine, make_server
    from .metrics import Metrics, make_probe_server
    from .service import LearnerService, make_grpc_server, trainer_ops
    from .tokenizer import ByteTokenizer

    tok = ByteTokenizer()
    metrics = Metrics()
    ready = threading.Event()
    probes = None
    if cfg.metrics_port >= 0:  # first, so probes answer (not ready) during a long warm-start
        probes = make_probe_server(metrics, cfg.metrics_host, cfg.metrics_port,
                                   lambda: None if ready.is_set() else "starting")
        threading.Thread(target=probes.serve_forever, name="probes", daemon=True).start()
    device = torch_device(cfg, layout)
    dist.init(layout, device, cfg.dist_timeout_s)
    trainer = build_trainer(cfg, tok, device)
    # Every rank starts from the same weights: the tiny model's seeded init is sent from rank 0
    # (cheap); a Hugging Face model is the same checkpoint on every rank already. Sharded, each
    # rank keeps its own slice of the same seeded init.
    if is_builtin(cfg.model) and trainer.sharding is None:
        dist.broadcast_state(trainer)
    engine = http = None
    base_url = ""
    if cfg.engine_port >= 0 and is_builtin(cfg.model):
        engine = Engine(trainer, tok, seed=cfg.seed, max_batch=cfg.engine_max_batch,
                        batch_wait_s=cfg.engine_batch_wait_ms / 1000.0, logger=log, metrics=metrics,
                        share_prefix=cfg.share_prefix)
    inference = cfg.role == "inference"
    if inference:
        # Serves nothing trained here: -1 until the sidecar loads the first exported version.
        trainer.version = -1
    steps = dist.Lockstep(trainer_ops(trainer, engine))
    if cfg.load_dir and not inference:
        version, step = steps.run("load", cfg.load_dir)
        log.info("checkpoint loaded", dir=cfg.load_dir, version=version, step=step)
    if cfg.sft_data and not inference:
        warm_start(cfg, steps, tok, log)
    if cfg.min_version > trainer.version and not inference:
        log.info("policy version raised", version=cfg.min_version, was=trainer.version)
        trainer.version = cfg.min_version
    if engine is not None:
        http = make_server(Api(engine, cfg.served_model_name or cfg.model, loads_weights=inference,
                               weights_root=cfg.weights_root),
                           cfg.engine_host, cfg.engine_port, log, token if cfg.engine_require_token else "")
        threading.Thread(target=http.serve_forever, name="engine-http", daemon=True).start()
        host = "127.0.0.1" if cfg.engine_host in ("0.0.0.0", "") else cfg.engine_host
        base_url = f"http://{host}:{http.server_address[1]}/v1"
    metrics.set("l0_learner_policy_version", trainer.version)
    server, port = None, -1
    if not inference:
        service = LearnerService(trainer, token, log, engine, base_url, cfg.export_dir, device, metrics, steps)
        server, port = make_grpc_server(service, cfg.host, cfg.port)
        server.start()
    ready.set()
    log.always("learner ready", role=cfg.role, grpc_port=port, engine_url=base_url, model=cfg.model,
               metrics_port=probes.server_address[1] if probes else -1,
               parameters=trainer.parameters_count(), version=trainer.version, device=device,
               world_size=layout.world_size)
    return server, http, engine, probes, steps


# Exit codes shared by every `l0` program (lib/run-main.ts EXIT): 1 a crash (retried), 2 the
# configuration or input (not retried: a restart would fail the same way).
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def start_failure_code(e: BaseException) -> int:
    """A failure to start, classified: bad input (warm-start data, checkpoint, a flag), a file that
    is not there, a missing package (transformers for a Hugging Face model) or a model this machine
    cannot load are configuration; anything else (a port in use, out of memory) is a crash."""
    if isinstance(e, (ValueError, ImportError, FileNotFoundError, PermissionError, IsADirectoryError)):
        return EXIT_CONFIG
    text = str(e)
    if isinstance(e, (RuntimeError, AssertionError)) and ("CUDA" in text or "NVIDIA" in text):
        return EXIT_CONFIG  # e.g. --device cuda on a machine without a GPU
    if isinstance(e, OSError) and ("is not a valid model identifier" in text or "does not appear to have" in text):
        return EXIT_CONFIG  # a Hugging Face id or path with no model there
    return EXIT_FAILURE


def wait_for(stop: threading.Event, poll_s: float = 0.5) -> None:
    """Waits for `stop`, waking every `poll_s`. Python runs signal handlers in the main thread
    only, and a process-directed SIGTERM may be delivered to any other thread (CUDA's, gRPC's):
    an untimed wait is then never interrupted and the handler never runs. Seen on an H200
    machine: `python3 -m learner --device cuda` ignored SIGTERM while the CPU path stopped."""
    while not stop.wait(poll_s):
        pass


def main(argv=None) -> int:
    try:
        cfg = load_config(argv)
        token = Path(cfg.token_file).read_text(encoding="utf-8").strip()
        if not token:
            raise ValueError(f"--token-file: {cfg.token_file} is empty")
    except (ValueError, OSError) as e:
        sys.stderr.write(f"learner: invalid configuration: {e}\n")
        return EXIT_CONFIG
    try:
        import torch
    except ImportError as e:
        sys.stderr.write(f"learner: missing dependency: {e} (install PyTorch, or set L0_PYTHON)\n")
        return EXIT_CONFIG

    log = Logger(level=cfg.log_level)
    log.info("learner starting", config={k: v for k, v in vars(cfg).items()})  # the token itself is in a file
    torch.set_num_threads(cfg.threads)

    from . import dist

    try:
        layout = dist.layout_from_env()
        if layout.rank > 0:
            return follow(cfg, layout, log)
        server, http, engine, probes, steps = start(cfg, token, log, layout)
    except Exception as e:  # noqa: BLE001 - every start failure is classified and reported in one line
        code = start_failure_code(e)
        log.error("cannot start", error=f"{type(e).__name__}: {e}", exit_code=code)
        sys.stderr.write(f"learner: cannot start: {type(e).__name__}: {e}\n")
        return code
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    wait_for(stop)
    log.info("shutting down")
    if server is not None:
        server.stop(grace=5).wait(6)
    if http is not None:
        http.shutdown()
    if engine is not None:
        engine.close()
    if probes is not None:
        probes.shutdown()
    steps.stop()
    dist.shutdown(layout)
    log.info("shutdown complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
