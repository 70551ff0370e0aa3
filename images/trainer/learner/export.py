"""Weight export: the policy's tensors as safetensors-format shards (written here: 8-byte
little-endian header length, JSON header padded to 8 bytes, raw little-endian bytes) plus
`manifest.json`, the proto3 JSON form of l0.v1.WeightManifest with a sha256 per chunk. A version
directory is written under a temporary name and renamed into place; exporting a version that is
already there returns its manifest unchanged.

The directory is also a Hugging Face model directory: `model.safetensors.index.json` (the
weight map), `config.json` (in the served dtype), and for a transformers model its
`generation_config.json` and tokenizer files, so `transformers`, vLLM and SGLang load it as it
is. The built-in tiny model writes a `config.json` of its own (`model_type: l0-tiny`), which
`read_model_dir` reads back by the same conventions, with its byte-level tokenizer as
`tokenizer.json`/`tokenizer_config.json` (tokenizer_files.py) and a `generation_config.json`."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

import torch

from .model import ModelConfig
from .qwen2 import Qwen2Config
from .tokenizer import ByteTokenizer
from .tokenizer_files import write_tokenizer_files

DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
}
DEFAULT_SHARD_BYTES = 2 * 1024**3
CHUNK_BYTES = 4 * 1024**2
HASH_THREADS = min(8, os.cpu_count() or 1)


def tensor_bytes(t: torch.Tensor) -> memoryview:
    """Raw little-endian bytes of a tensor (bf16 included, which numpy lacks), without a copy
    beyond the one to host memory."""
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return memoryview(t.numpy()).cast("B")


def plan_shards(sizes: List[Tuple[str, int]], shard_bytes: int) -> List[List[str]]:
    """Tensor names split into shards of at most shard_bytes of data, in order; a tensor larger
    than that gets a shard of its own."""
    shards: List[List[str]] = [[]]
    used = 0
    for name, n in sizes:
        if shards[-1] and used + n > shard_bytes:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += n
    return shards


class ShardHasher:
    """The manifest's hashes of a file as it is written, from the bytes in memory (no read-back):
    the whole file's sha256 on one thread (in order), each `chunk_bytes` chunk's on a pool.
    hashlib releases the GIL, so both run beside the writes."""

    def __init__(self, chunk_bytes: int, pool: ThreadPoolExecutor) -> None:
        self.chunk_bytes, self.pool = chunk_bytes, pool
        self.whole = hashlib.sha256()
        self.ordered = ThreadPoolExecutor(1)  # the whole-file hash takes the pieces in order
        self.pending: List[Future] = []
        self.chunks: List[Tuple[int, int, Future]] = []
        self.partial = bytearray()  # the start of a chunk that a piece ended in
        self.offset = 0  # bytes seen

    def update(self, piece: memoryview) -> None:
        self.pending.append(self.ordered.submit(self.whole.update, piece))
        if self.partial:
            take = min(self.chunk_bytes - len(self.partial), len(piece))
            self.partial += piece[:take]
            piece = piece[take:]
            if len(self.partial) == self.chunk_bytes:
                self._chunk(bytes(self.partial))
                self.partial = bytearray()
        while len(piece) >= self.chunk_bytes:
            self._chunk(piece[:self.chunk_bytes])
            piece = piece[self.chunk_bytes:]
        self.partial += piece

    def _chunk(self, data) -> None:
        start = self.offset
        self.offset += len(data)
        self.chunks.append((start, len(data), self.pool.submit(lambda: hashlib.sha256(data).hexdigest())))

    def close(self) -> None:
        self.ordered.shutdown(cancel_futures=True)

    def finish(self) -> Tuple[str, List[dict]]:
        if self.partial:
            self._chunk(bytes(self.partial))
        for f in self.pending:
            f.result()
        chunks = [{"offset": o, "sizeBytes": n, "sha256": f.result()} for o, n, f in self.chunks]
        return self.whole.hexdigest(), chunks


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def write_safetensors(path: Path, tensors: Dict[str, torch.Tensor], chunk_bytes: int = CHUNK_BYTES,
                      pool: Optional[ThreadPoolExecutor] = None, dtype: Optional[torch.dtype] = None
                      ) -> Tuple[Dict[str, Tuple[int, int]], str, List[dict]]:
    """Writes one shard (each tensor cast to `dtype` when given, one at a time); returns each
    tensor's absolute (file offset, size), the file's sha256 and its chunks' (offset, size,
    sha256), hashed as the bytes go out."""
    header: Dict[str, object] = {"__metadata__": {"format": "pt"}}
    pos = 0
    for name, t in tensors.items():
        n = t.numel() * _itemsize(dtype or t.dtype)
        header[name] = {"dtype": DTYPES[dtype or t.dtype], "shape": list(t.shape), "data_offsets": [pos, pos + n]}
        pos += n
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    base = 8 + len(h)
    own = pool is None
    pool = pool or ThreadPoolExecutor(HASH_THREADS)
    hasher = ShardHasher(chunk_bytes, pool)
    try:
        with open(path, "wb") as f:
            for piece in (memoryview(struct.pack("<Q", len(h))), memoryview(h)):
                f.write(piece)
                hasher.update(piece)
            for t in tensors.values():
                b = tensor_bytes(t.to(dtype) if dtype else t)
                f.write(b)
                hasher.update(b)
            digest, chunks = hasher.finish()
            f.flush()
            os.fsync(f.fileno())
    finally:
        hasher.close()
        if own:
            pool.shutdown()
    spans = {n: (base + v["data_offsets"][0], v["data_offsets"][1] - v["data_offsets"][0])
             for n, v in header.items() if n != "__metadata__"}
    return spans, digest, chunks


def export(model, version: int, directory: str, model_name: str, shard_bytes: int = 0,
           chunk_bytes: int = CHUNK_BYTES, state: Optional[Dict[str, torch.Tensor]] = None) -> Tuple[Path, dict]:
    """Writes `<directory>/<version>/` and returns (that path, the manifest as proto3 JSON).
    `state`: the model's full state dict (a sharded model's, gathered by fsdp.full_state_dict),
    written in place of the model's own parameters."""
    target = Path(directory).resolve() / str(version)
    if (target / "manifest.json").is_file():
        return target, json.loads((target / "manifest.json").read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    # A transformers model is exported under its own names (what vLLM/SGLang load), not ours.
    inner = getattr(model, "lm", model)
    # fp32 master weights go out in the checkpoint's dtype, cast one tensor at a time.
    serve = getattr(model, "serve_dtype", None)
    named = {n: p.detach() for n, p in inner.named_parameters()} if state is None else _named(model, state)
    size = {n: t.numel() * _itemsize(serve or t.dtype) for n, t in named.items()}
    shards = plan_shards(list(size.items()), shard_bytes or DEFAULT_SHARD_BYTES)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=target.parent))
    try:
        shard_infos, tensor_infos, weight_map = [], [], {}
        with ThreadPoolExecutor(HASH_THREADS) as pool:
            for k, names in enumerate(shards):
                file = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
                weight_map.update((n, file) for n in names)
                spans, digest, chunks = write_safetensors(tmp / file, {n: named[n] for n in names}, chunk_bytes,
                                                          pool, serve)
                shard_infos.append({"file": file, "sizeBytes": (tmp / file).stat().st_size, "sha256": digest,
                                    "chunks": chunks})
                for n in names:
                    t = named[n]
                    tensor_infos.append({"name": n, "dtype": DTYPES[serve or t.dtype], "shape": list(t.shape),
                                         "shard": file, "offset": spans[n][0], "sizeBytes": spans[n][1]})
        manifest = {
            "version": version,
            "format": "safetensors",
            "chunkBytes": chunk_bytes,
            "shards": shard_infos,
            "tensors": tensor_infos,
            "createdUnixMs": int(time.time() * 1000),
            "model": model_name,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        write_model_files(model, tmp, weight_map, sum(size.values()))
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target, manifest


def _named(model, state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The exported parameters out of the model's state dict (the HF wrapper's keys start `lm.`)."""
    prefix = "lm." if hasattr(model, "lm") else ""
    return {n: state[prefix + n].detach() for n, _ in getattr(model, "lm", model).named_parameters()}


TINY_MODEL_TYPE = "l0-tiny"


def model_config(model) -> dict:
    """config.json for an export: a transformers model's own config in the dtype the export is
    written in, with the generation cache back on (training turns it off); the tiny model's
    ModelConfig under `model_type: l0-tiny`; tiny-qwen2's as transformers' Qwen2Config."""
    inner = getattr(model, "lm", model)
    dtype = str(getattr(model, "serve_dtype", None) or torch.float32).replace("torch.", "")
    if isinstance(inner.config, ModelConfig):
        return {"architectures": ["L0TinyGPT"], "model_type": TINY_MODEL_TYPE, "dtype": dtype,
                **inner.config.to_dict()}
    if isinstance(inner.config, Qwen2Config):
        tok = ByteTokenizer()
        return inner.config.hf_config(dtype, tok.bos_id, tok.eos_id)
    to_dict = getattr(inner.config, "to_dict", None)  # a transformers PretrainedConfig
    config = to_dict() if to_dict else dict(vars(inner.config))
    config.pop("torch_dtype", None)
    config.update(dtype=dtype, use_cache=True)
    return config


def write_model_files(model, directory: Path, weight_map: Dict[str, str], total_bytes: int) -> None:
    """What makes `directory` a Hugging Face model directory beside the shards."""
    index = {"metadata": {"total_size": total_bytes}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=1) + "\n")
    (directory / "config.json").write_text(json.dumps(model_config(model), indent=1, default=str) + "\n")
    inner = getattr(model, "lm", model)
    generation = getattr(inner, "generation_config", None)
    if generation is not None and hasattr(generation, "to_json_file"):
        generation.to_json_file(str(directory / "generation_config.json"))
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory))
    elif isinstance(getattr(inner, "config", None), (ModelConfig, Qwen2Config)):
        write_tiny_files(inner.config, directory)


def write_tiny_files(config, directory: Path) -> None:
    """A built-in model's tokenizer files and generation_config.json (its special token ids)."""
    tok = ByteTokenizer()
    block = config.block_size if isinstance(config, ModelConfig) else config.max_position_embeddings
    write_tokenizer_files(tok, directory, block)
    generation = {"bos_token_id": tok.bos_id, "eos_token_id": tok.eos_id, "pad_token_id": tok.pad_id}
    (directory / "generation_config.json").write_text(json.dumps(generation, indent=1) + "\n")


def read_model_dir(directory: str) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """A Hugging Face model directory as the loaders read it: config.json, and the tensors of the
    shards `model.safetensors.index.json` maps (or of `model.safetensors`). Errors name the file."""
    root = Path(directory)
    try:
        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
        index = root / "model.safetensors.index.json"
        files = (sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
                 if index.is_file() else ["model.safetensors"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsLoadError(f"{directory}: not a Hugging Face model directory: {e}") from e
    tensors: Dict[str, torch.Tensor] = {}
    for name in files:
        tensors.update(read_safetensors(root / name))
    return config, tensors


def read_safetensors(path: Path) -> Dict[str, torch.Tensor]:
    """Every tensor of one safetensors file (the format `write_safetensors` writes)."""
    try:
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
    except (OSError, ValueError, struct.error) as e:
        raise WeightsLoadError(f"{path}: not a safetensors file: {e}") from e
    base, out = 8 + n, {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        dtype = FROM_DTYPES.get(h.get("dtype"))
        start, end = (base + int(x) for x in h["data_offsets"])
        if dtype is None or end > len(raw):
            raise WeightsLoadError(f"{path}: tensor {name}: dtype {h.get('dtype')} or span [{start}, {end}) unreadable")
        t = torch.frombuffer(bytearray(raw[start:end]), dtype=torch.uint8)
        out[name] = (t.view(torch.int16).view(dtype) if dtype == torch.bfloat16 else t.view(dtype)).reshape(h["shape"])
    return out


def manifest_to_proto(m: dict, weights_pb2):
    """The manifest dict -> l0.v1.WeightManifest."""
    return weights_pb2.WeightManifest(
        version=m["version"],
        format=m["format"],
        chunk_bytes=m["chunkBytes"],
        created_unix_ms=m["createdUnixMs"],
        model=m["model"],
        shards=[weights_pb2.ShardInfo(file=s["file"], size_bytes=s["sizeBytes"], sha256=s["sha256"],
                                      chunks=[weights_pb2.ChunkInfo(offset=c["offset"], size_bytes=c["sizeBytes"],
                                                                    sha256=c["sha256"]) for c in s["chunks"]])
                for s in m["shards"]],
        tensors=[weights_pb2.TensorInfo(name=t["name"], dtype=t["dtype"], shape=t["shape"], shard=t["shard"],
                                        offset=t["offset"], size_bytes=t["sizeBytes"]) for t in m["tensors"]],
    )


FROM_DTYPES = {v: k for k, v in DTYPES.items()}


class WeightsLoadError(ValueError):
    """An exported directory that does not fit the model; the model is unchanged."""


def read_exported(model, directory: str) -> Tuple[int, Dict[str, torch.Tensor]]:
    """Reads and checks `<directory>/manifest.json` and its shards against `model` (the inverse of
    `export`): every parameter present once with its shape and dtype, nothing else, every span
    inside its shard. Returns (the manifest's version, the tensors by name); changes nothing."""
    root = Path(directory)
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        version, infos = int(manifest["version"]), manifest["tensors"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsLoadError(f"model_path: no readable manifest.json in {directory}: {e}") from e
    inner = getattr(model, "lm", model)
    want = {n: p for n, p in inner.named_parameters()}
    got: Dict[str, torch.Tensor] = {}
    files: Dict[str, bytes] = {}
    if not isinstance(infos, list):
        raise WeightsLoadError("tensors: must be a list")
    for i, t in enumerate(infos):
        if not isinstance(t, dict):
            raise WeightsLoadError(f"tensors[{i}]: must be an object")
        try:
            _read_entry(t, i, want, got, files, root)
        except (TypeError, ValueError, AttributeError, OverflowError) as e:
            if isinstance(e, WeightsLoadError):
                raise
            raise WeightsLoadError(f"tensors[{i}]: malformed entry: {e}") from e
    missing = sorted(set(want) - set(got))
    if missing:
        raise WeightsLoadError(f"tensors: the export lacks {len(missing)} parameter(s), e.g. {missing[0]!r}")
    return version, got


def _read_entry(t: dict, i: int, want: dict, got: dict, files: dict, root: Path) -> None:
    """Checks manifest entry `t` against the model's parameter of that name and reads its bytes."""
    name = t.get("name")
    where = f"tensors[{i}] ({name})"
    if name not in want:
        raise WeightsLoadError(f"{where}: the model has no parameter {name!r}")
    if name in got:
        raise WeightsLoadError(f"{where}: listed twice")
    p = want[name]
    dtype = FROM_DTYPES.get(t.get("dtype"))
    if dtype != p.dtype or list(t.get("shape", [])) != list(p.shape):
        raise WeightsLoadError(f"{where}: {t.get('dtype')} {t.get('shape')}, the model has "
                               f"{DTYPES.get(p.dtype)} {list(p.shape)}")
    shard = str(t.get("shard", ""))
    if "/" in shard or shard in ("", ".", ".."):
        raise WeightsLoadError(f"{where}: shard {shard!r} is not a file name")
    if shard not in files:
        try:
            files[shard] = (root / shard).read_bytes()
        except OSError as e:
            raise WeightsLoadError(f"{where}: cannot read shard {shard}: {e}") from e
    off, n = int(t.get("offset", -1)), int(t.get("sizeBytes", -1))
    if n != p.numel() * p.element_size() or off < 0 or off + n > len(files[shard]):
        raise WeightsLoadError(f"{where}: bytes [{off}, {off + n}) do not hold it in {shard} "
                               f"({len(files[shard])} bytes)")
    raw = torch.frombuffer(bytearray(files[shard][off:off + n]), dtype=torch.uint8)
    got[name] = raw.view(torch.int16).view(dtype) if dtype == torch.bfloat16 else raw.view(dtype)
    got[name] = got[name].reshape(p.shape)


def load_exported(trainer, directory: str, expect_version: int = -1, on_swap=None) -> int:
    """Replaces the trainer's policy weights with an exported version, all or nothing (everything is
    read and checked first, then copied in while the engine is paused; `on_swap` runs then too, e.g.
    to drop caches of the old weights). Returns the version."""
    version, tensors = read_exported(trainer.model, directory)
    if expect_version >= 0 and version != expect_version:
        raise WeightsLoadError(f"policy_version: {directory} holds v{version}, not v{expect_version}")
    inner = getattr(trainer.model, "lm", trainer.model)
    with trainer.writing():
        with torch.no_grad():
            for name, p in inner.named_parameters():
                p.copy_(tensors[name].to(p.device))
        trainer.version = version
        if on_swap is not None:
            on_swap()
    return version
