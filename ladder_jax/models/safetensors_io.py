"""Lazy safetensors reading over np.memmap (bf16 included), and sharded writing with an index.

The `safetensors` numpy binding cannot return bfloat16, and the flax one materialises whole
tensors; a memmap lets each process read only the slices its devices hold. The format: an 8-byte
little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then raw bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import ml_dtypes
import numpy as np

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


class CheckpointFormatError(ValueError):
    pass


class SafetensorsFolder:
    """All tensors of a HF folder (one `model.safetensors` or shards listed by the index)."""

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        index = folder / "model.safetensors.index.json"
        if index.exists():
            weight_map = json.loads(index.read_text())["weight_map"]
            files = sorted(set(weight_map.values()))
        elif (folder / "model.safetensors").exists():
            files = ["model.safetensors"]
        else:
            raise CheckpointFormatError(f"{folder} has neither model.safetensors nor model.safetensors.index.json")
        self._where: dict[str, tuple[np.memmap, dict]] = {}
        for name in files:
            path = folder / name
            if not path.exists():
                raise CheckpointFormatError(f"{path} is listed in the index but missing")
            raw = np.memmap(path, dtype=np.uint8, mode="r")
            n = int(np.frombuffer(raw[:8].tobytes(), "<u8")[0])
            header = json.loads(raw[8:8 + n].tobytes())
            header.pop("__metadata__", None)
            for key, info in header.items():
                if info["dtype"] not in _DTYPES:
                    raise CheckpointFormatError(f"{path}: tensor {key!r} has unsupported dtype {info['dtype']}")
                self._where[key] = (raw, info | {"base": 8 + n, "file": str(path)})

    def keys(self) -> list[str]:
        return sorted(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._where[key][1]["shape"])

    def dtype(self, key: str) -> np.dtype:
        return np.dtype(_DTYPES[self._where[key][1]["dtype"]])

    def get(self, key: str) -> np.ndarray:
        """A read-only view; slicing it reads only the slice from disk."""
        raw, info = self._where[key]
        start, end = info["data_offsets"]
        flat = raw[info["base"] + start: info["base"] + end].view(_DTYPES[info["dtype"]])
        return flat.reshape(info["shape"])


def write_sharded(tensors: dict[str, np.ndarray], folder: str | os.PathLike, max_shard_bytes: int) -> list[str]:
    """Writes `tensors` into safetensors shards of at most `max_shard_bytes` (one tensor may exceed it
    alone) plus `model.safetensors.index.json`; a single shard is named `model.safetensors`.
    Each file is written to a temporary name and renamed, so a crash leaves no half file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups: list[list[str]] = [[]]
    size = 0
    for key in sorted(tensors):
        nbytes = tensors[key].nbytes
        if groups[-1] and size + nbytes > max_shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(key)
        size += nbytes
    names = (["model.safetensors"] if len(groups) == 1 else
             [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))])
    weight_map = {}
    for name, keys in zip(names, groups):
        _write_file(folder / name, {k: tensors[k] for k in keys})
        weight_map.update({k: name for k in keys})
    if len(groups) > 1:
        total = sum(t.nbytes for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        _atomic_write_bytes(folder / "model.safetensors.index.json", json.dumps(index, indent=2).encode())
    return names


def _write_file(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, offset = {}, 0
    for key, arr in tensors.items():
        if arr.dtype not in _NAMES:
            raise CheckpointFormatError(f"tensor {key!r}: dtype {arr.dtype} cannot be written to safetensors")
        header[key] = {"dtype": _NAMES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(np.uint64(len(blob)).astype("<u8").tobytes())
        f.write(blob)
        for arr in tensors.values():
            f.write(np.ascontiguousarray(arr).tobytes())
    os.replace(tmp, path)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
