"""Hostile safetensors files, written byte by byte: every inconsistency is refused naming the file
and what is wrong; an index must agree with its shards; a new export never leaves stale shards."""

import json
import struct

import ml_dtypes
import numpy as np
import pytest

from ladder_jax.models.safetensors_io import INDEX, SINGLE, CheckpointFormatError, SafetensorsFolder, write_sharded

A = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
B = {"dtype": "BF16", "shape": [3], "data_offsets": [8, 14]}
DATA = np.array([1.5, -2.0], np.float32).tobytes() + np.array([1, 2, 3], ml_dtypes.bfloat16).tobytes()


def _file(path, header, data=DATA, length=None):
    """One safetensors file: 8-byte little-endian header length (or `length`), header, data."""
    blob = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob) if length is None else length) + blob + data)
    return path


def test_a_valid_file_reads_back(tmp_path):
    _file(tmp_path / SINGLE, {"a": A, "b": B, "empty": {"dtype": "F32", "shape": [0, 4], "data_offsets": [14, 14]},
                              "__metadata__": {"format": "pt"}})
    f = SafetensorsFolder(tmp_path)
    assert f.keys() == ["a", "b", "empty"]
    np.testing.assert_array_equal(f.get("a"), [1.5, -2.0])
    assert f.get("b").dtype == ml_dtypes.bfloat16 and f.get("empty").shape == (0, 4)


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_bytes(b""), "truncated (0 bytes"),
    (lambda p: p.write_bytes(b"\x10\x00\x00"), "truncated (3 bytes"),
    (lambda p: _file(p, {"a": A}, length=10**6), "header length 1000000 runs past the end of the file"),
    (lambda p: _file(p, {"a": A}, length=2**64 - 1), "runs past the end"),
    (lambda p: _file(p, b"not json at all", b""), "header is not valid JSON"),
    (lambda p: _file(p, b"\xff\xfe{}", b""), "header is not valid JSON"),
    (lambda p: _file(p, b"[" * 100_000, b""), "header is not valid JSON"),
    (lambda p: _file(p, b'["a", 1]', b""), "header is not a JSON object"),
    (lambda p: _file(p, b'{"a": %s, "a": %s}' % (json.dumps(A).encode(), json.dumps(A).encode()), DATA[:8]),
     "duplicate name 'a'"),
    (lambda p: _file(p, {"a": {**A, "dtype": "F8_E4M3"}}, DATA[:8]), "tensor 'a' has unsupported dtype 'F8_E4M3'"),
    (lambda p: _file(p, {"a": {**A, "dtype": "Q4"}}, DATA[:8]), "unsupported dtype 'Q4'"),
    (lambda p: _file(p, {"a": {**A, "shape": [-2]}}, DATA[:8]), "tensor 'a' has shape [-2]"),
    (lambda p: _file(p, {"a": {**A, "shape": [True, 2]}}, DATA[:8]), "tensor 'a' has shape [True, 2]"),
    (lambda p: _file(p, {"a": {**A, "shape": "2"}}, DATA[:8]), "tensor 'a' has shape '2'"),
    (lambda p: _file(p, {"a": {"dtype": "F32", "shape": [2]}}, DATA[:8]), "tensor 'a' lacks dtype, shape or data_offsets"),
    (lambda p: _file(p, {"a": "F32"}, DATA[:8]), "tensor 'a' lacks dtype, shape or data_offsets"),
    (lambda p: _file(p, {"a": {**A, "data_offsets": [8, 0]}}, DATA[:8]), "data_offsets [8, 0]"),
    (lambda p: _file(p, {"a": {**A, "data_offsets": [0, 8.0]}}, DATA[:8]), "data_offsets [0, 8.0]"),
    (lambda p: _file(p, {"a": {**A, "data_offsets": [0, 12]}}, DATA[:12]),
     "tensor 'a' is F32 of shape [2] (8 bytes) but its data_offsets span 12 bytes"),
    (lambda p: _file(p, {"a": {**A, "shape": [2, 2]}}, DATA[:8]), "(16 bytes) but its data_offsets span 8"),
    (lambda p: _file(p, {"a": A, "b": {**B, "data_offsets": [4, 10]}}, DATA[:10]), "tensor 'b' starts at data byte 4 and overlaps tensor 'a'"),
    (lambda p: _file(p, {"a": A, "b": {**B, "data_offsets": [0, 6]}}, DATA[:8]), "overlaps"),
    (lambda p: _file(p, {"a": A, "b": {**B, "data_offsets": [10, 16]}}, DATA + b"\0\0"), "leaves a gap of 2 bytes"),
    (lambda p: _file(p, {"a": {**A, "data_offsets": [4, 12]}}, DATA[:12]), "leaves a gap of 4 bytes"),
    (lambda p: _file(p, {"a": A, "b": B}, DATA[:11]), "tensors cover 14 data bytes but the file holds 11: truncated"),
    (lambda p: _file(p, {"a": A, "b": B}, DATA + b"junk"), "trailing bytes no tensor owns"),
])
def test_an_inconsistent_file_is_refused_naming_it(write, message, tmp_path):
    write(tmp_path / SINGLE)
    with pytest.raises(CheckpointFormatError) as err:
        SafetensorsFolder(tmp_path)
    assert str(tmp_path / SINGLE) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def _sharded(folder, weight_map=None, shards=None):
    """Two shards (a | b) and an index; `weight_map` / `shards` replace the consistent ones."""
    shards = shards or {"s1.safetensors": ({"a": A}, DATA[:8]),
                        "s2.safetensors": ({"b": {**B, "data_offsets": [0, 6]}}, DATA[8:])}
    for name, (header, data) in shards.items():
        _file(folder / name, header, data)
    weight_map = weight_map or {"a": "s1.safetensors", "b": "s2.safetensors"}
    (folder / INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def test_a_consistent_index_reads_its_shards(tmp_path):
    f = SafetensorsFolder(_sharded(tmp_path))
    assert f.keys() == ["a", "b"] and f.get("b").tolist() == [1, 2, 3]


@pytest.mark.parametrize("make, message", [
    (lambda d: _sharded(d, {"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors"}),
     "the index maps tensor 'c' to"),
    (lambda d: _sharded(d, {"a": "s1.safetensors", "b": "s1.safetensors"}), "maps tensor 'b' to"),
    (lambda d: _sharded(d, shards={"s1.safetensors": ({"a": A, "x": {**B, "data_offsets": [8, 14]}}, DATA),
                                   "s2.safetensors": ({"b": {**B, "data_offsets": [0, 6]}}, DATA[8:])}),
     "holds tensor 'x' but the index does not list it"),
    (lambda d: _sharded(d, {"a": "s1.safetensors", "b": "s3.safetensors"}), "s3.safetensors is listed in the index but missing"),
    (lambda d: _sharded(d, shards={"s1.safetensors": ({"a": A}, DATA[:8]),
                                   "s2.safetensors": ({"a": A, "b": {**B, "data_offsets": [8, 14]}}, DATA)}),
     "holds tensor 'a' but the index maps it to s1.safetensors"),
    (lambda d: _sharded(d, {"a": "../s1.safetensors", "b": "s2.safetensors"}), "point outside the index's folder"),
    (lambda d: _sharded(d, {"a": "/etc/hostname", "b": "s2.safetensors"}), "point outside the index's folder"),
    (lambda d: (_sharded(d), (d / INDEX).write_text("{")), "model.safetensors.index.json: not valid JSON"),
    (lambda d: (_sharded(d), (d / INDEX).write_text('{"weight_map": {}}')), "no weight_map object"),
    (lambda d: (_sharded(d), (d / INDEX).write_text('{"weight_map": {"a": 3}}')), "no weight_map object"),
    (lambda d: (_sharded(d), _file(d / SINGLE, {"a": A}, DATA[:8])), "holds both model.safetensors and"),
    (lambda d: (_sharded(d), (d / "s2.safetensors").write_bytes(b"")), "s2.safetensors: truncated (0 bytes"),
])
def test_an_index_that_disagrees_with_its_shards_is_refused(make, message, tmp_path):
    make(tmp_path)
    with pytest.raises(CheckpointFormatError) as err:
        SafetensorsFolder(tmp_path)
    assert message in str(err.value) and str(tmp_path) in str(err.value)


def _tensors(n):
    return {f"t{i}": np.full((64,), i, np.float32) for i in range(n)}


@pytest.mark.parametrize("first, second", [(256, 10**9), (10**9, 256), (256, 600)])
def test_a_new_export_replaces_every_weight_file_of_the_old_one(first, second, tmp_path):
    write_sharded(_tensors(5), tmp_path, first)
    (tmp_path / "tokenizer.json").write_text("{}")
    names = write_sharded(_tensors(3), tmp_path, second)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names + ["tokenizer.json"] + ([INDEX] if len(names) > 1 else []))
    f = SafetensorsFolder(tmp_path)
    assert f.keys() == ["t0", "t1", "t2"] and f.get("t2").tolist() == [2.0] * 64
