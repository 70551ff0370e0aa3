"""`npm run bench -- gpu`: the learner's GPU path on one CUDA device, with random-initialised
models built from configs (no downloads): Qwen2.5-0.5B- and 7B-shaped Qwen2 decoders.
(a) the learner's per-token log-probs against a plain transformers forward of the same weights;
(b) training steps through the learner's Trainer (fp32 master weights, bf16 autocast): tokens/s,
peak memory, MFU, or the memory check's refusal when the step cannot fit;
(c) 2 gloo ranks on CPU through the same Trainer (test/learner/py/dist_run.py).
Prints one JSON line last. Without CUDA (or transformers) it prints why and exits 0."""
import json
import os
import sys
import time
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


def skip(why: str) -> None:
    print(json.dumps({"bench": "gpu", "skipped": why}))
    sys.exit(0)


def build(name: str):
    import transformers

    from learner.model import HFPolicy

    cfg = transformers.Qwen2Config(max_position_embeddings=4096, torch_dtype="float32", **SHAPES[name])
    torch.manual_seed(0)
    lm = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32)
    lm.gradient_checkpointing_enable()
    lm.config.use_cache = False
    return HFPolicy(lm.to("cuda"), name)


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


def train_steps(policy, rows, steps: int) -> dict:
    from learner.memory import StepTooLarge

    t = trainer_for(policy, check=True)
    params = sum(p.numel() for p in policy.parameters())
    try:
        t.train(rows)  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0, tokens = time.perf_counter(), 0
        for _ in range(steps):
            tokens += t.train(rows)["tokens"]
        torch.cuda.synchronize()
    except StepTooLarge as e:
        return {"refused": str(e)}
    seconds = time.perf_counter() - t0
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    # 6 N FLOPs per token (forward + backward), + 2 N for the recomputed forward (checkpointing).
    flops = 8 * params * tokens / seconds
    return {"tokens_per_s": round(tokens / seconds, 1),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "mfu": round(flops / peak, 4) if peak else None, "parameters": params}


def main() -> None:
    if not torch.cuda.is_available():
        skip(f"no CUDA (torch {torch.__version__}: torch.cuda.is_available() is false)")
    try:
        import transformers  # noqa: F401
    except ImportError:
        skip("transformers is not installed (the trainer image has it)")
    out = {"bench": "gpu", "device": torch.cuda.get_device_name(), "torch": torch.__version__}
    steps = int(os.environ.get("STEPS", "3"))
    for name in SHAPES:
        policy = build(name)
        rows = batch(policy.lm.config.vocab_size, rows=8, prompt=512, response=256)
        out[name] = {"max_abs_logprob_diff": logprob_check(policy, rows), **train_steps(policy, rows, steps)}
        print(json.dumps({name: out[name]}), file=sys.stderr)
        del policy
        torch.cuda.empty_cache()
    import dist_run

    out["gloo_cpu_2_ranks"] = dist_run.compare(2, steps=1, rows=8)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
