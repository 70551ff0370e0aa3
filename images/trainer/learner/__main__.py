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

from .config import load_config  # noqa: E402
from .log import Logger  # noqa: E402

# torch and everything that needs it load after the configuration is checked, so `--help` and a
# bad flag answer at once.


def build_trainer(cfg, tok):
    import torch

    from .model import ModelConfig, TinyGPT, load_hf
    from .train import Trainer, TrainSettings

    torch.manual_seed(cfg.seed)
    if cfg.model == "tiny":
        model = TinyGPT(ModelConfig(vocab_size=tok.vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
                                    n_head=cfg.n_head, n_embd=cfg.n_embd)).to(cfg.device)
    else:
        model = load_hf(cfg.model, cfg.device)
    settings = TrainSettings(
        learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, kl_coef=cfg.kl_coef,
        clip_low=cfg.clip_low, clip_high=cfg.clip_high, aggregation=cfg.aggregation,
        max_grad_norm=cfg.max_grad_norm, micro_batch_tokens=cfg.micro_batch_tokens,
    )
    return Trainer(model, settings, cfg.model, cfg.device, share_prefix=cfg.share_prefix)


def warm_start(cfg, trainer, tok, log: Logger) -> None:
    from .sft import batches, read_jsonl

    data = read_jsonl(cfg.sft_data, tok)
    steps = cfg.sft_epochs * -(-len(data) // cfg.sft_batch_size)
    log.info("supervised warm-start", file=cfg.sft_data, demonstrations=len(data), epochs=cfg.sft_epochs,
             steps=steps)
    for i, b in enumerate(batches(data, cfg.sft_batch_size, cfg.sft_epochs, cfg.seed)):
        out = trainer.sft(b, cfg.sft_learning_rate)
        if i % 5 == 0 or i == steps - 1:  # `l0 local` shows these as the warm start's progress
            log.info("supervised step", step=i + 1, steps=steps, loss=round(out["loss"], 4),
                     version=out["policy_version"])


def start(cfg, token: str, log: Logger):
    """Builds and starts everything; returns the gRPC server, the engine's HTTP server, the engine
    and the probe server (each None when off; --role inference runs no gRPC server)."""
    from . import checkpoint
    from .engine import Api, Engine, make_server
    from .metrics import Metrics, make_probe_server
    from .service import LearnerService, make_grpc_server
    from .tokenizer import ByteTokenizer

    tok = ByteTokenizer()
    metrics = Metrics()
    ready = threading.Event()
    probes = None
    if cfg.metrics_port >= 0:  # first, so probes answer (not ready) during a long warm-start
        probes = make_probe_server(metrics, cfg.metrics_host, cfg.metrics_port,
                                   lambda: None if ready.is_set() else "starting")
        threading.Thread(target=probes.serve_forever, name="probes", daemon=True).start()
    trainer = build_trainer(cfg, tok)
    engine = http = None
    base_url = ""
    if cfg.engine_port >= 0 and cfg.model == "tiny":
        engine = Engine(trainer, tok, seed=cfg.seed, max_batch=cfg.engine_max_batch,
                        batch_wait_s=cfg.engine_batch_wait_ms / 1000.0, logger=log, metrics=metrics,
                        share_prefix=cfg.share_prefix)
    inference = cfg.role == "inference"
    if inference:
        # Serves nothing trained here: -1 until the sidecar loads the first exported version.
        trainer.version = -1
    if cfg.load_dir and not inference:
        version, step = checkpoint.load(trainer, cfg.load_dir, engine.gen if engine else None)
        log.info("checkpoint loaded", dir=cfg.load_dir, version=version, step=step)
    if cfg.sft_data and not inference:
        warm_start(cfg, trainer, tok, log)
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
        service = LearnerService(trainer, token, log, engine, base_url, cfg.export_dir, cfg.device, metrics)
        server, port = make_grpc_server(service, cfg.host, cfg.port)
        server.start()
    ready.set()
    log.always("learner ready", role=cfg.role, grpc_port=port, engine_url=base_url, model=cfg.model,
               metrics_port=probes.server_address[1] if probes else -1,
               parameters=trainer.parameters_count(), version=trainer.version, device=cfg.device)
    return server, http, engine, probes


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

    try:
        server, http, engine, probes = start(cfg, token, log)
    except Exception as e:  # noqa: BLE001 - every start failure is classified and reported in one line
        code = start_failure_code(e)
        log.error("cannot start", error=f"{type(e).__name__}: {e}", exit_code=code)
        sys.stderr.write(f"learner: cannot start: {type(e).__name__}: {e}\n")
        return code
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down")
    if server is not None:
        server.stop(grace=5).wait(6)
    if http is not None:
        http.shutdown()
    if engine is not None:
        engine.close()
    if probes is not None:
        probes.shutdown()
    log.info("shutdown complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
