"""`npm run bench -- gpu`: the learner's GPU path on one CUDA device, with random-initialised
models built from configs (no downloads):
(a) Qwen2.5-0.5B- and 7B-shaped Qwen2 decoders: the learner's per-token log-probs against a plain
    transformers forward of the same weights, then training steps through the learner's Trainer
    (fp32 master weights, bf16 autocast, fused AdamW): tokens/s, peak memory next to the memory
    check's estimate, MFU, or the check's refusal, or a real out-of-memory error (which would mean
    the estimate is wrong);
(b) the Hugging Face round trip on a small Qwen2 saved in bf16: `load_hf` from the directory,
    two steps, `export`, and the export loaded strictly into a fresh model of the same config
    (the tensor names and shapes an engine expects), its logits against the trained policy's;
(c) the learner as a process (`python3 -m learner --model DIR --device cuda`) over gRPC: Info,
    Train, ExportWeights, then SIGTERM;
(d) 2 gloo ranks on CPU through the same Trainer (test/learner/py/dist_run.py).
Each part records its own error instead of stopping the others. Prints one JSON line last.
Without CUDA (or transformers) it prints why and exits 0."""
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "images" / "trainer"), str(ROOT / "gen" / "python"), str(ROOT / "test" / "learner" / "py")]

import torch  # noqa: E402

# Dense bf16 peak FLOP/s by card (vendor datasheets, without sparsity).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}
SHAPES = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
}
ROWS = {"qwen2.5-0.5b": 8, "qwen2.5-7b": 4}  # rows of 512 prompt + 256 response tokens
SMALL = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=1024, tie_word_embeddings=False)
GIB = 1 << 30


def say(obj) -> None:
    print(json.dumps(obj), file=sys.stderr, flush=True)


def skip(why: str) -> None:
    print(json.dumps({"bench": "gpu", "skipped": why}))
    sys.exit(0)


def guarded(part):
    """Runs one part; its error (type, message, last frame) becomes its result."""
    t0 = time.perf_counter()
    try:
        out = part()
    except Exception as e:  # noqa: BLE001 - each part reports its own failure
        tb = traceback.extract_tb(e.__traceback__)[-1]
        out = {"error": f"{type(e).__name__}: {str(e)[:600]}", "at": f"{Path(tb.filename).name}:{tb.lineno}"}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def qwen2(shape: dict, dtype):
    import transformers

    from learner.model import dtype_kwarg

    cfg = transformers.Qwen2Config(max_position_embeddings=4096, **shape)
    torch.manual_seed(0)
    with torch.device("cuda"):
        return transformers.AutoModelForCausalLM.from_config(cfg, **dtype_kwarg(transformers, dtype))


def build(name: str):
    from learner.model import HFPolicy

    lm = qwen2(SHAPES[name], torch.float32)
    lm.gradient_checkpointing_enable()
    lm.config.use_cache = False
    return HFPolicy(lm, name)


def trainer_for(policy, check: bool):
    from helpers import settings

    from learner.__main__ import memory_check
    from learner.train import Trainer

    return Trainer(policy, settings(learning_rate=1e-6, kl_coef=0.0, micro_batch_tokens=8192), policy.name, "cuda",
                   autocast_bf16=True, check_memory=memory_check(policy, "cuda") if check else None)


def batch(vocab: int, rows: int, prompt: int, response: int):
    from helpers import sample

    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(rows):
        p = torch.randint(0, vocab, (prompt,), generator=g).tolist()
        r = torch.randint(0, vocab, (response,), generator=g).tolist()
        out.append(sample(p, r, 1.0 if i % 2 else -1.0, logprobs=[-5.0] * response, group=f"g{i // 4}", sid=f"s{i}"))
    return out


def logprob_check(policy, rows) -> float:
    """Max |learner log-prob - plain transformers fp32 forward| over the response tokens."""
    t = trainer_for(policy, check=False)
    ours = t.response_logprobs(rows[:2])
    worst = 0.0
    with torch.no_grad():
        for row, lp in zip(rows[:2], ours):
            ids = torch.tensor([row.prompt + row.response], device="cuda")
            logits = policy.lm(input_ids=ids).logits.float()[0]
            ref = torch.log_softmax(logits, -1)
            n = len(row.prompt)
            want = ref[n - 1: n - 1 + len(row.response)].gather(-1, torch.tensor(row.response, device="cuda")[:, None])
            worst = max(worst, float((torch.tensor(lp, device="cuda") - want[:, 0]).abs().max()))
    return worst


def estimate_gib(policy, tokens: int) -> float:
    from learner.memory import Shape, step_bytes

    c = policy.lm.config
    shape = Shape(sum(p.numel() for p in policy.parameters()), c.num_hidden_layers, c.hidden_size, c.vocab_size)
    return round(step_bytes(shape, tokens, 1, checkpointing=True) / GIB, 2)


def train_steps(policy, rows, steps: int) -> dict:
    from learner.memory import StepTooLarge

    t = trainer_for(policy, check=True)
    params = sum(p.numel() for p in policy.parameters())
    tokens_per_step = sum(len(r.prompt) + len(r.response) for r in rows)
    out = {"parameters": params, "tokens_per_step": tokens_per_step,
           "estimate_gib": estimate_gib(policy, tokens_per_step)}
    try:
        t.train(rows)  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0, tokens = time.perf_counter(), 0
        for _ in range(steps):
            tokens += t.train(rows)["tokens"]
        torch.cuda.synchronize()
    except StepTooLarge as e:
        return {**out, "refused": str(e)}
    except torch.cuda.OutOfMemoryError as e:
        return {**out, "out_of_memory": str(e)[:400],
                "peak_memory_gib": round(torch.cuda.max_memory_allocated() / GIB, 2)}
    seconds = time.perf_counter() - t0
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    # 6 N FLOPs per token (forward + backward), + 2 N for the recomputed forward (checkpointing).
    flops = 8 * params * tokens / seconds
    return {**out, "step_seconds": round(seconds / steps, 3), "tokens_per_s": round(tokens / seconds, 1),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / GIB, 2),
            "mfu": round(flops / peak, 4) if peak else None}


def export_time(policy) -> dict:
    """One ExportWeights of the model (bf16 shards + sha256 manifest + model files) to local disk."""
    from learner import export

    policy.serve_dtype = torch.bfloat16
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        _, m = export.export(policy, 1, d, policy.name)
        seconds = time.perf_counter() - t0
    size = sum(s["sizeBytes"] for s in m["shards"])
    return {"export_seconds": round(seconds, 1), "export_gb": round(size / 1e9, 2),
            "export_gb_per_s": round(size / 1e9 / seconds, 2)}


def shape_part(name: str, steps: int):
    def run() -> dict:
        policy = build(name)
        try:
            rows = batch(policy.lm.config.vocab_size, rows=ROWS[name], prompt=512, response=256)
            out = {"max_abs_logprob_diff": logprob_check(policy, rows), **train_steps(policy, rows, steps)}
            return {**out, **export_time(policy)}
        finally:
            del policy
            torch.cuda.empty_cache()
    return run


def save_small(directory: Path) -> None:
    """A small random Qwen2 saved as a Hugging Face checkpoint in bf16 (config.json, safetensors)
    with a word-level tokenizer of its vocabulary ("t0" .. "t1023")."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    qwen2(SMALL, torch.bfloat16).save_pretrained(directory)
    vocab = {f"t{i}": i for i in range(SMALL["vocab_size"] - 1)} | {"<unk>": SMALL["vocab_size"] - 1}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(directory)


def hf_roundtrip() -> dict:
    import transformers
    from safetensors.torch import load_file

    from helpers import on_policy
    from learner import export
    from learner.model import load_hf

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "src"
        save_small(src)
        policy = load_hf(str(src), "cuda")
        t = trainer_for(policy, check=True)
        rows = batch(SMALL["vocab_size"], rows=4, prompt=48, response=16)
        losses = [t.train(on_policy(t, rows))["loss"] for _ in range(2)]
        path, manifest = export.export(t.model, t.version, str(Path(d) / "exports"), "small")
        state = {}
        for f in sorted(path.glob("*.safetensors")):
            state.update(load_file(str(f)))
        # The export directory as it is, through transformers' own loader.
        fresh, info = transformers.AutoModelForCausalLM.from_pretrained(str(path), output_loading_info=True)
        missing, unexpected = info.get("missing_keys", []), info.get("unexpected_keys", [])
        loaded_dtype = str(next(fresh.parameters()).dtype)
        fresh = fresh.to("cuda", torch.bfloat16).eval()
        text = "t5 t7 t1000"
        same_tokens = (transformers.AutoTokenizer.from_pretrained(str(path))(text)["input_ids"]
                       == transformers.AutoTokenizer.from_pretrained(str(src))(text)["input_ids"])
        ids = torch.tensor([rows[0].prompt + rows[0].response], device="cuda")
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            trained = policy.lm(input_ids=ids).logits.float()
        with torch.no_grad():
            served = fresh(input_ids=ids).logits.float()
        saved = set()
        for f in src.glob("*.safetensors"):
            saved |= set(load_file(str(f)))
        masters = sorted({str(p.dtype) for p in policy.parameters()})
        return {"serve_dtype": str(policy.serve_dtype), "master_dtypes": masters,
                "export_dtypes": sorted({x["dtype"] for x in manifest["tensors"]}), "losses": losses,
                "names_as_saved": sorted(saved) == sorted(state), "missing": list(missing),
                "unexpected": list(unexpected), "from_pretrained_dtype": loaded_dtype,
                "tokenizer_round_trip": same_tokens, "files": sorted(f.name for f in path.iterdir()),
                "max_abs_logit_diff_served_vs_trained": float((trained - served).abs().max())}


def _drain(stream, lines: list, ready: "queue.Queue") -> None:
    """Keeps the learner's output; puts its gRPC port on `ready` at 'learner ready' (None at EOF)."""
    for line in stream:
        lines.append(line.rstrip()[:300])
        m = re.search(r'"grpc_port":\s*(\d+)', line) if "learner ready" in line else None
        if m:
            ready.put(int(m.group(1)))
    ready.put(None)


def learner_process(device: str = "cuda", model: str = "", vocab: int = SMALL["vocab_size"]) -> dict:
    """`python3 -m learner` on CUDA with a Hugging Face directory (a small Qwen2 saved here unless
    `model` names one), driven over real gRPC."""
    import grpc

    from l0.v1 import learner_pb2, learner_pb2_grpc

    with tempfile.TemporaryDirectory() as d:
        if not model:
            model = str(Path(d) / "src")
            save_small(Path(model))
        (Path(d) / "token").write_text("gpu-bench-token\n")
        cmd = [sys.executable, "-m", "learner", "--model", model, "--device", device, "--port", "0",
               "--engine-port", "-1", "--token-file", str(Path(d) / "token"), "--export-dir", str(Path(d) / "exports")]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT / "images" / "trainer", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        lines, ready = [], queue.Queue()
        # Read every line to the end (a full pipe would block the learner's logging).
        threading.Thread(target=_drain, args=(proc.stdout, lines, ready), daemon=True).start()
        try:
            port = ready.get(timeout=600)
            if port is None:
                return {"error": f"exited {proc.wait()} before 'learner ready'", "log": lines[-8:]}
            ready_s = time.perf_counter() - t0
            md = (("authorization", "Bearer gpu-bench-token"),)
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = learner_pb2_grpc.LearnerStub(ch)
                info = stub.Info(learner_pb2.InfoRequest(), metadata=md, timeout=60)
                samples = [learner_pb2.TrainSample(sample_id=f"t{i}/0", prompt_token_ids=r.prompt,
                                                   response_token_ids=r.response, sampler_logprobs=r.sampler_logprobs,
                                                   advantage=r.advantage, trajectory_id=f"t{i}")
                           for i, r in enumerate(batch(vocab, rows=4, prompt=48, response=16))]
                train = stub.Train(learner_pb2.TrainRequest(step=1, samples=samples), metadata=md, timeout=300)
                exp = stub.ExportWeights(learner_pb2.ExportWeightsRequest(), metadata=md, timeout=300)
            proc.send_signal(signal.SIGTERM)
            t1 = time.perf_counter()
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                return {"error": "still running 60 s after SIGTERM", "log": lines[-12:]}
            return {"ready_seconds": round(ready_s, 1), "info": str(info).replace("\n", " ")[:300],
                    "train_loss": train.loss, "policy_version": train.policy_version,
                    "exported_tensors": len(exp.manifest.tensors), "exit_code_after_sigterm": code,
                    "exit_seconds": round(time.perf_counter() - t1, 1), "log": lines[-4:]}
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def main() -> None:
    if not torch.cuda.is_available():
        skip(f"no CUDA (torch {torch.__version__}: torch.cuda.is_available() is false)")
    try:
        import transformers
    except ImportError:
        skip("transformers is not installed (the trainer image has it)")
    out = {"bench": "gpu", "device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "transformers": transformers.__version__,
           "device_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / GIB, 1)}
    steps = int(os.environ.get("STEPS", "3"))
    parts = [(name, shape_part(name, steps)) for name in SHAPES]
    parts += [("hf_roundtrip", hf_roundtrip), ("learner_process", learner_process)]
    parts += [("export_7b", lambda: export_time(build("qwen2.5-7b")))]  # only when PARTS names it
    only = os.environ.get("PARTS", "")
    for name, part in parts:
        if (only and name not in only.split(",")) or (not only and name == "export_7b"):
            continue
        out[name] = guarded(part)
        say({name: out[name]})

    def gloo() -> dict:
        import dist_run

        return dist_run.compare(2, steps=1, rows=8)

    if not only or "gloo_cpu_2_ranks" in only.split(","):
        out["gloo_cpu_2_ranks"] = guarded(gloo)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
