"""The prepared-shard format and a Grain random-access source over it.

A prepared set holds two kinds of ArrayRecord files, so that a pod reads them from any path
without the image tree, and each distinct frame is stored once however many records show it
(the release's multi-view and video questions share their frames many times over):

    records-XXXXX-of-YYYYY.array_record   one entry per record:
        b"LJR2" | uint32 little-endian header length | header (UTF-8 JSON)
        header = {"record": record_to_json(record), "frames": [frame id of record.images[i], ...]}
    frames-XXXXX-of-YYYYY.array_record    one entry per distinct image file: its bytes as on disk
        (JPEG/PNG), frame id = its position over the frame files in order

`dataset_info.json` lists both (`shards`, `frame_shards`). No pickle: readable from any language.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Sequence

from ladder_jax.data.schema import Record, record_from_json, record_to_json

MAGIC = b"LJR2"
_LENGTH = struct.Struct("<I")
SHARD_NAME = "records-{index:05d}-of-{count:05d}.array_record"
FRAME_SHARD_NAME = "frames-{index:05d}-of-{count:05d}.array_record"
INFO_FILE = "dataset_info.json"


@dataclasses.dataclass(frozen=True)
class ShardExample:
    record: Record
    images: tuple[bytes, ...]  # encoded image files, aligned with record.images


def encode_record(record: Record, frames: Sequence[int]) -> bytes:
    """One record entry: the record and the frame id of each of its images."""
    if len(frames) != len(record.images):
        raise ValueError(f"record {record.id!r}: {len(frames)} frame ids for {len(record.images)} paths")
    header = {"record": record_to_json(record), "frames": [int(f) for f in frames]}
    header_bytes = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    return b"".join([MAGIC, _LENGTH.pack(len(header_bytes)), header_bytes])


def decode_record(data: bytes, num_frames: int | None = None) -> tuple[Record, tuple[int, ...]]:
    """(record, frame ids) of one record entry; refused when damaged or when a frame id is not
    below `num_frames`."""
    if data[:4] != MAGIC:
        raise ValueError(f"not a ladder_jax shard record (starts with {bytes(data[:4])!r}; expected {MAGIC!r})")
    if len(data) < 4 + _LENGTH.size:
        raise ValueError("shard record is truncated inside its header length")
    (header_length,) = _LENGTH.unpack_from(data, 4)
    start = 4 + _LENGTH.size
    if start + header_length != len(data):
        raise ValueError(f"shard record holds {len(data) - start} header bytes, its length field says "
                         f"{header_length} (truncated or corrupt)")
    try:
        header = json.loads(bytes(data[start:]))
    except (ValueError, RecursionError) as e:
        raise ValueError(f"shard record header is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(header, dict) or not {"record", "frames"} <= header.keys():
        raise ValueError("shard record header lacks 'record' or 'frames'")
    frames = header["frames"]
    if not isinstance(frames, list) or not all(isinstance(f, int) and not isinstance(f, bool) and f >= 0
                                               and (num_frames is None or f < num_frames) for f in frames):
        raise ValueError(f"shard record frame ids {frames!r} are not ids of this set's {num_frames} frames")
    record = record_from_json(header["record"])
    if len(frames) != len(record.images):
        raise ValueError(f"record {record.id!r}: {len(frames)} frame ids for {len(record.images)} image paths")
    return record, tuple(frames)


class ShardSource:
    """Random access to a prepared set for `grain.MapDataset.source(...)`: item i is a ShardExample.

    Indices run over the record files in the order given (for `from_dir`, the order prepare wrote
    them), so index i of a prepared set is the i-th accepted record of the release. Reading item i
    reads its record entry and its frames only. `subset(indices)` is the same source narrowed to
    some items (what a stage keeps of the set), `records()` every record without its images.
    """

    def __init__(self, paths: Sequence[str | Path], frame_paths: Sequence[str | Path], indices=None):
        import grain  # imported here so that reading records does not pay for grain

        if not paths:
            raise ValueError("ShardSource needs at least one record shard path")
        self._paths, self._frame_paths = [str(p) for p in paths], [str(p) for p in frame_paths]
        self._source = grain.sources.ArrayRecordDataSource(self._paths)
        self._frames = grain.sources.ArrayRecordDataSource(self._frame_paths) if self._frame_paths else ()
        self._indices = None if indices is None else [int(i) for i in indices]
        self._records: list[Record] | None = None

    @classmethod
    def from_dir(cls, directory: str | Path) -> ShardSource:
        """The set listed in `directory/dataset_info.json`, as written by `prepare`."""
        from ladder_jax.paths import as_path  # noqa: PLC0415

        directory = as_path(directory)  # gs://... is read by ArrayRecord's own file layer
        info_file = directory / INFO_FILE
        if not info_file.is_file():
            raise FileNotFoundError(f"{info_file} is missing: {directory} is not a `ladder-jax prepare` output")
        info = json.loads(info_file.read_text())
        if "frame_shards" not in info:
            raise ValueError(f"{info_file}: written by an older `ladder-jax prepare` (records embed their "
                             "images); prepare the release again")
        return cls([directory / s["file"] for s in info["shards"]], [directory / s["file"] for s in info["frame_shards"]])

    def subset(self, indices: Sequence[int]) -> ShardSource:
        """This source narrowed to `indices` (positions in this source), in that order."""
        base = range(len(self)) if self._indices is None else self._indices
        return ShardSource(self._paths, self._frame_paths, [base[i] for i in indices])

    def records(self) -> list[Record | None]:
        """Every record of the source, in order, without its images (read once, then kept); None
        for an entry that cannot be decoded (reading that item gives the error)."""
        if self._records is None:
            positions = self._positions(range(len(self)))
            self._records = [self._try_decode(i, d) for i, d in zip(positions, self._source.__getitems__(positions))]
        return self._records

    def _try_decode(self, position: int, data: bytes) -> Record | None:
        try:
            return self._decode(position, data)[0]
        except ValueError:
            return None

    def __len__(self) -> int:
        return len(self._source) if self._indices is None else len(self._indices)

    def __getitem__(self, index: int) -> ShardExample:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[ShardExample]:
        positions = self._positions(indices)
        entries = [self._decode(i, d) for i, d in zip(positions, self._source.__getitems__(positions))]
        wanted = sorted({f for _, frames in entries for f in frames})
        payloads = dict(zip(wanted, self._frames.__getitems__(wanted) if wanted else ()))
        return [ShardExample(record, tuple(bytes(payloads[f]) for f in frames)) for record, frames in entries]

    def _positions(self, indices: Sequence[int]) -> list[int]:
        n = len(self)
        out = []
        for i in indices:
            if not -n <= i < n:
                raise IndexError(f"{self!r}: item {i} is out of range ({n} items)")
            i = i % n
            out.append(i if self._indices is None else self._indices[i])
        return out

    def _decode(self, position: int, data: bytes) -> tuple[Record, tuple[int, ...]]:
        try:
            return decode_record(data, len(self._frames))
        except ValueError as e:
            raise ValueError(f"{self!r} record {position}: {e}") from e

    def __repr__(self) -> str:
        return f"ShardSource({len(self._paths)} record shards, first {self._paths[0]})"
