"""The prepared-shard record format and a Grain random-access source over the shards.

One ArrayRecord entry holds one record with its images embedded, so a pod reads shards from any
path without the image tree. Layout (no pickle, readable from any language):

    b"LJR1" | uint32 little-endian header length | header (UTF-8 JSON) | image bytes, concatenated

with header = {"record": record_to_json(record), "image_lengths": [len(image), ...]}; image `i`
holds the encoded file (JPEG/PNG bytes as on disk) of `record.images[i]`.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Sequence

from ladder_jax.data.schema import Record, record_from_json, record_to_json

MAGIC = b"LJR1"
_LENGTH = struct.Struct("<I")
SHARD_NAME = "records-{index:05d}-of-{count:05d}.array_record"
INFO_FILE = "dataset_info.json"


@dataclasses.dataclass(frozen=True)
class ShardExample:
    record: Record
    images: tuple[bytes, ...]  # encoded image files, aligned with record.images


def encode_example(record: Record, images: Sequence[bytes]) -> bytes:
    if len(images) != len(record.images):
        raise ValueError(f"record {record.id!r}: {len(images)} image payloads for {len(record.images)} paths")
    header = {"record": record_to_json(record), "image_lengths": [len(b) for b in images]}
    header_bytes = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    return b"".join([MAGIC, _LENGTH.pack(len(header_bytes)), header_bytes, *images])


def decode_example(data: bytes) -> ShardExample:
    if data[:4] != MAGIC:
        raise ValueError(f"not a ladder_jax shard record (starts with {data[:4]!r})")
    (header_length,) = _LENGTH.unpack_from(data, 4)
    start = 4 + _LENGTH.size
    header = json.loads(data[start : start + header_length])
    if not isinstance(header, dict) or not {"record", "image_lengths"} <= header.keys():
        raise ValueError("shard record header lacks 'record' or 'image_lengths'")
    offset = start + header_length
    images = []
    for length in header["image_lengths"]:
        images.append(bytes(data[offset : offset + length]))
        offset += length
    if offset != len(data):
        raise ValueError(f"shard record has {len(data) - offset} bytes after its last image (truncated or corrupt)")
    return ShardExample(record_from_json(header["record"]), tuple(images))


class ShardSource:
    """Random access to prepared shards for `grain.MapDataset.source(...)`: item i is a ShardExample.

    Indices run over the shards in the order given (for `from_dir`, the order prepare wrote them),
    so index i of a prepared set is the i-th accepted record of the release.
    """

    def __init__(self, paths: Sequence[str | Path]):
        import grain  # imported here so that reading records does not pay for grain

        if not paths:
            raise ValueError("ShardSource needs at least one shard path")
        self._paths = [str(p) for p in paths]
        self._source = grain.sources.ArrayRecordDataSource(self._paths)

    @classmethod
    def from_dir(cls, directory: str | Path) -> ShardSource:
        """The shards listed in `directory/dataset_info.json`, as written by `prepare`."""
        directory = Path(directory)
        info = json.loads((directory / INFO_FILE).read_text())
        return cls([directory / shard["file"] for shard in info["shards"]])

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> ShardExample:
        return self._decode(index, self._source[index])

    def __getitems__(self, indices: Sequence[int]) -> list[ShardExample]:
        return [self._decode(i, data) for i, data in zip(indices, self._source.__getitems__(indices))]

    def _decode(self, index: int, data: bytes) -> ShardExample:
        try:
            return decode_example(data)
        except ValueError as e:
            raise ValueError(f"{self!r} item {index}: {e}") from e

    def __repr__(self) -> str:
        return f"ShardSource({len(self._paths)} shards, first {self._paths[0]})"
