"""Lazy safetensors reading over np.memmap (bf16 included), and sharded writing with an index.

The `safetensors` numpy binding cannot return bfloat16, and the flax one materialises whole
tensors; a memmap lets each process read only the slices its devices hold. The format: an 8-byte
little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then raw bytes.
Reading trusts nothing in a header until it adds up against the file (see `read_header`), and an
index's weight map must agree with its shards tensor by tensor: otherwise one reader could load
bytes another would not, or bytes of the wrong tensor.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import ml_dtypes
import numpy as np

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
SINGLE, INDEX = "model.safetensors", "model.safetensors.index.json"
# The weight files of an export, as transformers names them (what a new export replaces).
_WEIGHT_FILE = re.compile(r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?")


class CheckpointFormatError(ValueError):
    pass


def _damaged(path: Path, what: str) -> CheckpointFormatError:
    return CheckpointFormatError(f"{path}: {what} (a damaged or inconsistent file: re-download or re-export it)")


def read_header(path: Path) -> tuple[dict[str, dict], int]:
    """The tensor entries of one safetensors file and the byte where its data starts. Refused,
    naming the file: a header that does not fit the file, is not JSON, or whose tensors do not tile
    the data exactly (the format forbids gaps and overlaps; a trailing or missing byte means a
    damaged file)."""
    size = path.stat().st_size
    if size < 8:
        raise _damaged(path, f"truncated ({size} bytes; a safetensors file starts with an 8-byte header length)")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > size - 8:
            raise _damaged(path, f"header length {n} runs past the end of the file ({size} bytes): truncated, "
                                 "or not a safetensors file")
        raw = f.read(n)
    try:
        header = json.loads(raw, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as e:  # JSON and UTF-8 errors, and absurd nesting
        raise _damaged(path, f"header is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(header, dict):
        raise _damaged(path, "header is not a JSON object")
    header.pop("__metadata__", None)
    spans = sorted((*_span(path, key, info), key) for key, info in header.items())
    end, previous = 0, None
    for start, stop, key in spans:
        if start != end:
            where = f"overlaps tensor {previous!r}" if start < end else f"leaves a gap of {start - end} bytes"
            before = f"tensor {previous!r} ends at {end}" if previous else "the data starts at 0"
            raise _damaged(path, f"tensor {key!r} starts at data byte {start} and {where} ({before})")
        end, previous = stop, key
    if end != size - 8 - n:
        raise _damaged(path, f"tensors cover {end} data bytes but the file holds {size - 8 - n}: "
                       + ("truncated" if end > size - 8 - n else "trailing bytes no tensor owns"))
    return header, 8 + n


def _unique_keys(pairs):
    names = [k for k, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate name {next(k for k in names if names.count(k) > 1)!r}")
    return dict(pairs)


def _span(path: Path, key: str, info) -> tuple[int, int]:
    """(start, stop) of one entry's data, after checking that its dtype, shape and offsets agree."""
    def bad(what: str) -> CheckpointFormatError:
        return _damaged(path, f"tensor {key!r} {what}")

    def is_int(x) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise bad("lacks dtype, shape or data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in _DTYPES:
        raise bad(f"has unsupported dtype {dtype!r} (supported: {', '.join(_DTYPES)})")
    if not isinstance(shape, list) or not all(is_int(d) and d >= 0 for d in shape):
        raise bad(f"has shape {shape!r}; expected a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(is_int(o) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise bad(f"has data_offsets {offsets!r}; expected [start, stop] with 0 <= start <= stop")
    need = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
    if offsets[1] - offsets[0] != need:
        raise bad(f"is {dtype} of shape {shape} ({need} bytes) but its data_offsets span {offsets[1] - offsets[0]} bytes")
    return offsets[0], offsets[1]


def read_index(path: Path) -> dict[str, str]:
    """The weight map (tensor name -> shard file name in the same folder) of an index file."""
    try:
        index = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as e:
        raise _damaged(path, f"not valid JSON ({type(e).__name__}: {e})") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or not all(isinstance(v, str) for v in weight_map.values()):
        raise _damaged(path, "no weight_map object naming a shard file for each tensor")
    outside = sorted({v for v in weight_map.values() if Path(v).name != v or v in (".", "..")})
    if outside:
        raise _damaged(path, f"shard names {outside} point outside the index's folder")
    return weight_map


class SafetensorsFolder:
    """All tensors of a HF folder (one `model.safetensors` or the shards its index maps)."""

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        index, single = folder / INDEX, folder / SINGLE
        if index.exists() and single.exists():
            raise CheckpointFormatError(f"{folder} holds both {SINGLE} and {INDEX}, so which weights it holds is "
                                        f"ambiguous (transformers reads {SINGLE}, an index reader the shards); "
                                        "remove the stale one")
        if index.exists():
            weight_map = read_index(index)
        elif single.exists():
            weight_map = None
        else:
            raise CheckpointFormatError(f"{folder} has neither {SINGLE} nor {INDEX}")
        self._where: dict[str, tuple[np.memmap, dict]] = {}
        problems = []
        for name in sorted(set(weight_map.values())) if weight_map else [SINGLE]:
            path = folder / name
            if not path.is_file():
                problems.append(f"{path} is listed in the index but missing")
                continue
            header, base = read_header(path)
            raw = np.memmap(path, dtype=np.uint8, mode="r")
            for key, info in header.items():
                if weight_map is not None and weight_map.get(key) != name:
                    where = f"maps it to {weight_map[key]}" if key in weight_map else "does not list it"
                    problems.append(f"{path} holds tensor {key!r} but the index {where}")
                self._where[key] = (raw, info | {"base": base})
            if weight_map is not None:
                problems += [f"the index maps tensor {k!r} to {path}, which does not hold it"
                             for k, v in weight_map.items() if v == name and k not in header]
        if problems:
            more = f"; ... and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise _damaged(index, "weight map and shards disagree: " + "; ".join(problems[:5]) + more)

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

    The weight files of an earlier export in `folder` are replaced, never mixed with the new ones:
    every new file is first written whole under a temporary name, then the old weight files are
    removed, the new ones renamed in and the index renamed in last. A crash leaves the old weights,
    or none, or the new ones; never stale shards that one reader loads and another does not."""
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
    names = ([SINGLE] if len(groups) == 1 else
             [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))])
    staged = [_write_file(folder / name, {k: tensors[k] for k in keys}) for name, keys in zip(names, groups)]
    if len(groups) > 1:
        weight_map = {k: name for name, keys in zip(names, groups) for k in keys}
        index = {"metadata": {"total_size": sum(t.nbytes for t in tensors.values())}, "weight_map": weight_map}
        staged.append(_tmp(folder / INDEX))
        staged[-1].write_bytes(json.dumps(index, indent=2).encode())
    for old in folder.iterdir():
        if _WEIGHT_FILE.fullmatch(old.name):
            old.unlink()
    for tmp in staged:
        os.replace(tmp, tmp.with_suffix(""))
    return names


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _write_file(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    """Writes one safetensors file under a temporary name (returned), for the caller to rename."""
    header, offset = {}, 0
    for key, arr in tensors.items():
        if arr.dtype not in _NAMES:
            raise CheckpointFormatError(f"tensor {key!r}: dtype {arr.dtype} cannot be written to safetensors")
        header[key] = {"dtype": _NAMES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
        f.write(np.uint64(len(blob)).astype("<u8").tobytes())
        f.write(blob)
        for arr in tensors.values():
            f.write(np.ascontiguousarray(arr).tobytes())
    return tmp
