"""Readers for the evaluation sets, from their published files on local disk (SPEC.md section 4).

    vsi          test-00000-of-00001.parquet + {root}/{dataset}/{scene_name}.mp4
    spbench-si   one parquet; `images` are frame names under {image_dir}/{scene_name}/
    spbench-mv   the same layout, several frames per question
    cvbench      parquet with prompt, image {"bytes"}, answer "(A)", type, task, source
    toyworld     a toy-world split in the release layout (ladder_jax.data.spld)

Each reader returns (items, report): items in file order, and a `Report` counting every row it
skipped and why (rows are numbered from 1). Media are checked for existence here and decoded later
(`ladder_jax.eval.media`). The prompt is the SpatialLadder stage-2 direct-answer prompt, or with
`think` the stage-3 reasoning prompt, so a checkpoint is asked what it was trained on.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable

import pyarrow.parquet as pq

from ladder_jax.data import prompts, spld
from ladder_jax.data.report import Report
from ladder_jax.eval.media import Media
from ladder_jax.eval.metrics import NUMERIC_QUESTION_TYPES

VSI_FILE = "test-00000-of-00001.parquet"
VSI_FRAMES = 32  # the reference evaluator's frames per video
VSI_VIDEO_MAX_PIXELS = 512 * 28 * 28
_VSI_COLUMNS = ("id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth")
_CVBENCH_COLUMNS = ("prompt", "image", "answer", "type", "task", "source")


@dataclasses.dataclass(frozen=True)
class Item:
    """One question. `group` is what the paper's tables average over besides question_type
    (CV-Bench's source; the dataset elsewhere). `source`/`row` say where it was read from."""

    id: str
    question_type: str
    prompt: str
    media: Media
    ground_truth: str
    think: bool
    group: str = ""
    source: str = ""
    row: int = 0

    @property
    def multiple_choice(self) -> bool:
        return self.question_type not in NUMERIC_QUESTION_TYPES

    def messages(self) -> list[dict[str, Any]]:
        """Chat messages as each stage was trained: stage 2 with its explicit system prompt,
        stage 3 (thinking) with none, so the template inserts Qwen's default."""
        if self.media.kind == "images":
            vision = [{"type": "image"} for _ in (self.media.paths or self.media.blobs)]
        else:
            vision = [{"type": "video"}]
        user = {"role": "user", "content": [*vision, {"type": "text", "text": self.prompt}]}
        if self.think:
            return [user]
        return [{"role": "system", "content": [{"type": "text", "text": prompts.SFT_SYSTEM_PROMPT}]}, user]


class BadRow(ValueError):
    def __init__(self, column: str, reason: str, detail: str = ""):
        super().__init__(f"{column}: {reason}" + (f" ({detail})" if detail else ""))
        self.key, self.detail = f"{column}: {reason}", detail


def user_prompt(question: str, options: list[str] | None, multiple_choice: bool, think: bool) -> str:
    build = prompts.reasoning_prompt if think else prompts.direct_answer_prompt
    return build(question, options, multiple_choice)


def read_parquet(path: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a parquet file as dicts; a missing column is an error for the whole file."""
    table = pq.read_table(path)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {table.column_names}")
    return table.to_pylist()


def _rows(path: Path, columns: tuple[str, ...], report: Report, make: Callable[[dict, int], Item]) -> list[Item]:
    """Items from every row `make` accepts; each `BadRow` is counted in `report` under its column."""
    items, seen = [], set()
    for number, row in enumerate(read_parquet(path, columns), 1):
        try:
            item = make(row, number)
            if item.id in seen:
                raise BadRow("id", "duplicate id", item.id)
        except BadRow as e:
            report.reject(path.name, number, _text_or_none(row.get("id", row.get("idx"))), e.key, e.detail)
            continue
        seen.add(item.id)
        report.accept(path.name)
        items.append(item)
    return items


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _text(row: dict, column: str) -> str:
    value = row.get(column)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return repr(value)  # ground truths and ids are sometimes stored as numbers
    if not isinstance(value, str) or not value.strip():
        raise BadRow(column, "missing, empty or not text", repr(value)[:80])
    return value


def _question(row: dict, multiple_choice: bool) -> tuple[str, list[str] | None, str]:
    """(question, options, ground truth) of a VSI-style row, checked against its question type."""
    question, truth, options = _text(row, "question"), _text(row, "ground_truth"), row.get("options")
    if not multiple_choice:
        try:
            ok = math.isfinite(float(truth))
        except ValueError:
            ok = False
        if not ok:
            raise BadRow("ground_truth", "not a finite number for a numeric question", repr(truth))
        return question, None, truth
    if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
        raise BadRow("options", "missing or not a list of strings for a multiple-choice question", repr(options)[:80])
    return question, options, truth


def _vsi_style_item(row: dict, number: int, source: str, media: Media, think: bool) -> Item:
    question_type = _text(row, "question_type")
    mc = question_type not in NUMERIC_QUESTION_TYPES
    question, options, truth = _question(row, mc)
    return Item(id=_text(row, "id"), question_type=question_type, prompt=user_prompt(question, options, mc, think),
                media=media, ground_truth=truth, think=think, group=_text(row, "dataset"), source=source, row=number)


def _existing(path: str, column: str) -> str:
    if not os.path.isfile(path):
        raise BadRow(column, "media file not found", path)
    return path


def read_vsi(root: Path, *, think: bool = False, num_frames: int = VSI_FRAMES, parquet: Path | None = None):
    """VSI-Bench: `root/test-00000-of-00001.parquet`, videos `root/{dataset}/{scene_name}.mp4`."""
    root = Path(root)
    path = Path(parquet) if parquet else root / VSI_FILE

    def make(row: dict, number: int) -> Item:
        video = os.path.join(root, _text(row, "dataset"), _text(row, "scene_name") + ".mp4")
        media = Media("video_file", (_existing(video, "scene_name"),), num_frames=num_frames)
        return _vsi_style_item(row, number, path.name, media, think)

    report = Report()
    return _rows(path, _VSI_COLUMNS, report, make), report


def read_spbench(parquet: Path, image_dir: Path | None = None, *, think: bool = False):
    """SPBench-SI or -MV: `images` name frames under `image_dir/{scene_name}/` (default: the
    parquet's folder, or its `images/` subfolder when there is one)."""
    parquet = Path(parquet)
    image_dir = spld.default_image_root(parquet.parent) if image_dir is None else Path(image_dir)

    def make(row: dict, number: int) -> Item:
        names = row.get("images")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise BadRow("images", "missing or not a list of file names", repr(names)[:80])
        scene = _text(row, "scene_name")
        paths = tuple(_existing(os.path.join(image_dir, scene, name), "images") for name in names)
        return _vsi_style_item(row, number, parquet.name, Media("images", paths), think)

    report = Report()
    return _rows(parquet, _VSI_COLUMNS + ("images",), report, make), report


def read_cvbench(parquet: Path, *, think: bool = False):
    """CV-Bench: the question with its "(A) …" choices is in `prompt`; `answer` is like "(A)".
    Ids are the `idx` column when present, else the row number."""
    parquet = Path(parquet)

    def make(row: dict, number: int) -> Item:
        image = row.get("image")
        blob = image.get("bytes") if isinstance(image, dict) else None
        if not isinstance(blob, bytes) or not blob:
            raise BadRow("image", "missing image bytes")
        task, source = _text(row, "task"), _text(row, "source")
        qid = _text(row, "idx") if row.get("idx") is not None else str(number)
        return Item(id=qid, question_type=task, prompt=user_prompt(_text(row, "prompt"), None, True, think),
                    media=Media("images", blobs=(blob,)), ground_truth=_text(row, "answer"), think=think,
                    group=source, source=parquet.name, row=number)

    report = Report()
    return _rows(parquet, _CVBENCH_COLUMNS, report, make), report


def read_toyworld(root: Path, *, think: bool = False):
    """A toy-world split (e.g. `out/eval`): the spatial questions of its release-layout JSONL."""
    root = Path(root)
    records, report = spld.read_release(root, [spld.SPATIAL_FILE])
    image_root = spld.default_image_root(root)
    items = []
    for line, record in enumerate(records, 1):
        paths = tuple(os.path.join(image_root, p) for p in record.images)
        media = Media("frames" if record.data_type == "video" else "images", paths)
        mc = record.question_type not in NUMERIC_QUESTION_TYPES
        items.append(Item(id=record.id, question_type=record.question_type,
                          prompt=user_prompt(record.question, record.options, mc, think), media=media,
                          ground_truth=record.answer, think=think, group=record.data_type,
                          source=spld.SPATIAL_FILE, row=record.meta.get("line", line)))
    return items, report


def find_parquet(path: Path, preferred: str | None = None) -> Path:
    """`path` itself, `path/preferred`, or the only *.parquet in the folder `path`."""
    path = Path(path)
    if path.is_file():
        return path
    if preferred and (path / preferred).is_file():
        return path / preferred
    found = sorted(path.glob("*.parquet")) if path.is_dir() else []
    if len(found) != 1:
        names = [p.name for p in found] or "none"
        raise FileNotFoundError(f"{path}: expected one parquet file (or a file path); found {names}")
    return found[0]


BENCHMARKS = ("vsi", "spbench-si", "spbench-mv", "cvbench", "toyworld")


def read_benchmark(name: str, data: Path, *, think: bool = False, media_dir: Path | None = None,
                   num_frames: int = VSI_FRAMES) -> tuple[list[Item], Report]:
    """Dispatch on the `--benchmark` name. `data` is the benchmark's file or folder."""
    data = Path(data)
    if name == "vsi":
        parquet = find_parquet(data, VSI_FILE)
        return read_vsi(media_dir or parquet.parent, think=think, num_frames=num_frames, parquet=parquet)
    if name in ("spbench-si", "spbench-mv"):
        return read_spbench(find_parquet(data), media_dir, think=think)
    if name == "cvbench":
        return read_cvbench(find_parquet(data), think=think)
    if name == "toyworld":
        return read_toyworld(data, think=think)
    raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
