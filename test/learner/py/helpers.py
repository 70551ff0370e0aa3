"""Shared setup for the learner's Python tests: import paths (the learner package and the
generated stubs), one BLAS/torch thread, and small builders."""
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[3]
for p in (ROOT / "images" / "trainer", ROOT / "gen" / "python"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import torch  # noqa: E402

torch.set_num_threads(1)

from learner import runschema  # noqa: E402
from learner.batch import Sample  # noqa: E402
from learner.config import ALGORITHM_FIELDS  # noqa: E402
from learner.model import ModelConfig, TinyGPT  # noqa: E402
from learner.tokenizer import ByteTokenizer  # noqa: E402
from learner.train import Trainer, TrainSettings  # noqa: E402

TOK = ByteTokenizer()


def tiny_model(seed: int = 0, **kw) -> TinyGPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=TOK.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=32)
    cfg.update(kw)
    return TinyGPT(ModelConfig(**cfg))


def settings(**kw) -> TrainSettings:
    """The CRD's loss defaults (from its schema) and the learner's own, overridden by `kw`."""
    algorithm = runschema.defaults(runschema.load_schema(), "algorithm")
    base = {field: algorithm[k] for k, field in ALGORITHM_FIELDS.items()}
    base.update(weight_decay=0.0, max_grad_norm=1.0, micro_batch_tokens=8192)
    base.update(kw)
    return TrainSettings(**base)


def trainer(seed: int = 0, **kw) -> Trainer:
    return Trainer(tiny_model(seed), settings(**{"learning_rate": 1e-2, "kl_coef": 0.0, **kw}), "tiny")


def sample(prompt, response, advantage=1.0, logprobs=None, mask=None, group="", sid="s") -> Sample:
    return Sample(sid, list(prompt), list(response),
                  list(logprobs) if logprobs is not None else [-1.0] * len(response),
                  list(mask) if mask is not None else [1] * len(response), advantage, group or sid)


def on_policy(t: Trainer, samples):
    """The same samples with sampler logprobs set to the current policy's (strictly on-policy)."""
    lps = t.response_logprobs(samples)
    for s, lp in zip(samples, lps):
        s.sampler_logprobs = lp
    return samples


def http_json(url: str, body=None):
    """GET (body None) or POST a JSON body; returns (status, parsed answer), errors included."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
