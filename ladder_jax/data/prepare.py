"""`ladder-jax prepare`: a release folder → ArrayRecord shards with the images embedded.

Writes into OUT: `records-XXXXX-of-YYYYY.array_record` and `frames-XXXXX-of-YYYYY.array_record`
(format in shards.py: each distinct image file stored once), `report.json`
(every rejected line or record and why), `dataset_info.json` (counts and the shard list) and,
with `--tfds`, a TFDS dataset over the same records in `OUT/tfds`. Records keep their release
order: shard i holds the i-th contiguous slice of the valid records, less those whose images
turn out unreadable or corrupt. OUT is replaced as a whole, and only by a complete prepared set.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from PIL import Image
from tqdm import tqdm

from ladder_jax.atomic_output import OutputError, build_beside
from ladder_jax.data.report import Report
from ladder_jax.data.schema import Record, RecordError
from ladder_jax.data.shards import FRAME_SHARD_NAME, INFO_FILE, SHARD_NAME, encode_record
from ladder_jax.data.spld import default_image_root, iter_numbered, release_files

REPORT_FILE = "report.json"
TFDS_DIR = "tfds"
VERIFY_MODES = ("decode", "header")
_WINDOW = 64  # records whose images are in memory at once, per shard being written


class NothingAccepted(Exception):
    """Every input was rejected, so there is nothing to replace the output folder with."""

    def __init__(self, report: Report):
        super().__init__(f"all {report.total} inputs were rejected (reasons above); the output folder was left as it was")
        self.report = report


def prepare(
    data_dir: Path,
    out_dir: Path,
    *,
    num_shards: int = 16,
    files: list[str] | None = None,
    image_root: Path | None = None,
    verify: str = "decode",
    workers: int | None = None,
    overwrite: bool = False,
    tfds: bool = False,
) -> tuple[dict, Report]:
    """Read, validate and shard the release at `data_dir`; return (dataset_info, report).

    `verify="decode"` decodes every distinct image fully; "header" runs PIL's `verify()` (file
    structure and checksums, no pixel decoding), about 20% faster on JPEG frames and weaker.
    `out_dir` is replaced only by a complete prepared set (`atomic_output.build_beside`): a
    non-empty one needs `overwrite`, and a run that fails or accepts nothing leaves it as it was
    (raising `NothingAccepted` in the second case).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    image_root = default_image_root(data_dir) if image_root is None else Path(image_root)
    with build_beside(out_dir, overwrite=overwrite, marker=INFO_FILE, inputs=[data_dir, image_root]) as new:
        report, seen, sourced = Report(), set(), []
        for path in release_files(data_dir, files):
            sourced.extend((path.name, line, r) for line, r in iter_numbered(path, image_root, report, seen_ids=seen))
        info = _write_shards(new, sourced, num_shards, ImageLoader(image_root, verify, workers), report, data_dir)
        report.write(new / REPORT_FILE)
        if not info["num_records"]:
            raise NothingAccepted(report)
        if tfds:
            from ladder_jax.data.tfds_builder import build_tfds  # noqa: PLC0415 (TFDS is slow to import)

            build_tfds(new, new / TFDS_DIR)
    return info, report


def _write_shards(out: Path, sourced: list, num_shards: int, loader: ImageLoader, report: Report, data_dir: Path) -> dict:
    """Record shard i holds the i-th slice of the records; frame shard i the frames first shown by
    a record of that slice (a frame shard with none is not written)."""
    count = max(1, min(num_shards, len(sourced)))
    per_shard = math.ceil(len(sourced) / count)
    shards, frame_shards, written, frames = [], [], [], _Frames()
    bar = tqdm(total=len(sourced), desc="prepare", unit="rec")
    with loader, bar:
        for index in range(count):
            name = SHARD_NAME.format(index=index, count=count)
            frame_name = FRAME_SHARD_NAME.format(index=index, count=count)
            chunk = sourced[index * per_shard : (index + 1) * per_shard]
            n, new_frames = _write_shard(out / name, out / frame_name, chunk, loader, report, written, frames)
            shards.append({"file": name, "num_records": n, "bytes": (out / name).stat().st_size})
            if new_frames:
                frame_shards.append({"file": frame_name, "num_frames": new_frames,
                                     "bytes": (out / frame_name).stat().st_size})
            else:
                (out / frame_name).unlink()
            bar.update(len(chunk))
    info = dataset_info(written, shards, frame_shards, frames.image_uses, data_dir)
    (out / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
    return info


class _Frames:
    """Frame ids by image path: each distinct file is stored once, at its first use."""

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.image_uses = 0  # images over all written records (what embedding each would store)


def _write_shard(path: Path, frame_path: Path, chunk: list, loader: ImageLoader, report: Report,
                 written: list[Record], frames: _Frames) -> tuple[int, int]:
    """Writes one record shard and its frame shard; returns (records, new frames) written."""
    from array_record.python.array_record_module import ArrayRecordWriter

    writer = ArrayRecordWriter(str(path), "group_size:1")
    frame_writer = ArrayRecordWriter(str(frame_path), "group_size:1")
    n, first_new = 0, len(frames.ids)
    try:
        for start in range(0, len(chunk), _WINDOW):
            window = chunk[start : start + _WINDOW]
            for (source, line, record), loaded in zip(window, loader.load_many([r for _, _, r in window])):
                if isinstance(loaded, RecordError):
                    report.retract(source, record.id, loaded.key, loaded.detail, line)
                    continue
                ids = []
                for image_path, data in zip(record.images, loaded):
                    if image_path not in frames.ids:
                        frame_writer.write(data)
                        frames.ids[image_path] = len(frames.ids)
                    ids.append(frames.ids[image_path])
                writer.write(encode_record(record, ids))
                frames.image_uses += len(ids)
                written.append(record)
                n += 1
    finally:
        writer.close()
        frame_writer.close()
    return n, len(frames.ids) - first_new


class ImageLoader:
    """Reads and checks the image files of records on a thread pool (PIL decodes without the GIL).

    Each path is checked once: frames shared by many questions are not decoded again.
    """

    def __init__(self, image_root: Path, verify: str = "decode", workers: int | None = None):
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
        self.image_root, self.verify = Path(image_root), verify
        self._problems: dict[str, str | None] = {}
        self._pool = ThreadPoolExecutor(workers or os.cpu_count() or 1)

    def __enter__(self) -> ImageLoader:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown()

    def load_many(self, records: Sequence[Record]) -> list[tuple[bytes, ...] | RecordError]:
        return list(self._pool.map(self.load, records))

    def load(self, record: Record) -> tuple[bytes, ...] | RecordError:
        """The encoded bytes of every image of `record`, or the error that rejects it."""
        images = []
        for path in record.images:
            try:
                data = (self.image_root / path).read_bytes()
            except OSError as e:
                return RecordError(record.id, "images", "unreadable image file", f"{path}: {e}")
            if path not in self._problems:
                self._problems[path] = self._check(data)
            if self._problems[path] is not None:
                return RecordError(record.id, "images", "corrupt image", f"{path}: {self._problems[path]}")
            images.append(data)
        return tuple(images)

    def _check(self, data: bytes) -> str | None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                if self.verify == "decode":
                    image.load()
                else:
                    image.verify()
        except Exception as e:  # PIL reports bad data with many exception types
            return f"{type(e).__name__}: {e}"
        return None


def dataset_info(records: Sequence[Record], shards: list[dict], frame_shards: list[dict], image_uses: int,
                 data_dir: Path) -> dict:
    def count(field: str) -> dict[str, int]:
        values = (getattr(r, field) for r in records)
        return dict(sorted(collections.Counter(v for v in values if v is not None).items()))

    return {
        "format": "ladder_jax shard v2: records (MAGIC 'LJR2' + header length + JSON header with frame ids) "
                  "and frames (one entry per distinct image file)",
        "source": str(data_dir),
        "num_records": len(records),
        "counts": {"kind": count("kind"), "question_type": count("question_type"), "data_type": count("data_type")},
        "num_frames": sum(s["num_frames"] for s in frame_shards),
        "image_uses": image_uses,
        "shards": shards,
        "frame_shards": frame_shards,
    }


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="release folder: JSONL files and images/")
    parser.add_argument("--out", type=Path, required=True, help="folder for the shards and reports")
    parser.add_argument("--shards", type=int, default=16, help="number of shards (default 16)")
    parser.add_argument("--files", nargs="+", help="JSONL files to read, relative to --data (default: all)")
    parser.add_argument("--image-root", type=Path, help="folder image paths are relative to (default DATA/images)")
    parser.add_argument("--verify", choices=VERIFY_MODES, default="decode", help="how to check images")
    parser.add_argument("--workers", type=int, help="image-checking threads (default: CPU count)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier prepared set in --out (built beside it, swapped in when complete)")
    parser.add_argument("--tfds", action="store_true", help="also build a TFDS dataset in OUT/tfds")


def main(verb: str, args: argparse.Namespace) -> int:
    if args.shards < 1 or (args.workers is not None and args.workers < 1):
        print(f"ladder-jax {verb}: --shards and --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        info, report = prepare(
            args.data,
            args.out,
            num_shards=args.shards,
            files=args.files,
            image_root=args.image_root,
            verify=args.verify,
            workers=args.workers,
            overwrite=args.overwrite,
            tfds=args.tfds,
        )
    except (OutputError, OSError) as e:  # a refused --out, a missing or unreadable input
        print(f"ladder-jax {verb}: {e}", file=sys.stderr)
        return 2
    except NothingAccepted as e:
        print(e.report.summary())
        print(f"ladder-jax {verb}: {e}", file=sys.stderr)
        return 1
    print(report.summary())
    print(f"wrote {info['num_records']} records in {len(info['shards'])} shards to {args.out}")
    if args.tfds:
        print(f"TFDS dataset: {args.out / TFDS_DIR}")
    return 0
