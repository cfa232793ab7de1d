"""Readers for the evaluation sets, from their published files on local disk (SPEC.md section 4).

    vsi          test-00000-of-00001.parquet + {root}/{dataset}/{scene_name}.mp4
    spbench-si   one parquet; `images` are frame names under {image_dir}/{scene_name}/
    spbench-mv   the same layout, several frames per question
    cvbench      parquet with prompt, image {"bytes"}, answer "(A)", type, task, source
    toyworld     a toy-world split in the release layout (ladder_jax.data.spld)

Each reader returns (items, report): items in file order, and a `Report` counting every row it
skipped and why (rows are numbered from 1): a multiple-choice truth that is not among the options,
a question type no benchmark has, a numeric truth that is negative or not finite, a media path
that leaves the data folder or names no file. Media are decoded later (`ladder_jax.eval.media`).

Prompts (`prompt_style`): "reference" (default) is the paper's evaluator, `eval_spld`: its
templates (`vsi_utils.py` PROMPT_TEMPLATES / THINKING_TEMPLATE, CV-Bench's in `cvbench.py`) and no
system message. "training" asks each item as the stages were trained (the stage-2 direct-answer
prompt with its system message; with `think`, the stage-3 prompt).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Callable

import pyarrow.parquet as pq

from ladder_jax.data import prompts, spld
from ladder_jax.data.report import Report
from ladder_jax.eval.media import Media
from ladder_jax.eval import metrics
from ladder_jax.eval.metrics import NUMERIC_QUESTION_TYPES

VSI_FILE = "test-00000-of-00001.parquet"
CVBENCH_FILES = ("test_2d.parquet", "test_3d.parquet")
PROMPT_STYLES = ("reference", "training")

# eval_spld's evaluation templates (data_utils/vsi_utils.py and data_utils/cvbench.py).
EVAL_THINKING = (
    "Question: {question}\n"
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. \n"
)
EVAL_DIRECT = "Question: {question}\n"
EVAL_SUFFIX = {
    (False, True): "Please answer with the option's letter from the given choices (e.g., A, B, etc.) directly.",
    (False, False): "Please answer the question using a numerical value (e.g., 42 or 3.1) directly.",
    (True, True): ("Please provide your detailed reasoning between the <think> </think> tags, and then answer the "
                   "question with the option's letter from the given choices (e.g., A, B, etc.) within the "
                   "<answer> </answer> tags."),
    (True, False): ("Please provide your detailed reasoning between the <think> </think> tags, and then answer the "
                    "question with a numerical value (e.g., 42 or 3.1) within the <answer> </answer> tags."),
}
CVBENCH_DIRECT_SUFFIX = "Please answer with the option's letter from the given choices directly."
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
    system_prompt: bool = False

    @property
    def multiple_choice(self) -> bool:
        return self.question_type not in NUMERIC_QUESTION_TYPES

    def messages(self) -> list[dict[str, Any]]:
        """Chat messages: vision first, then the prompt; the stage-2 system message only when the
        item asks for it (prompt_style "training" without thinking). Without one, the chat template
        inserts Qwen's default, as it does for the reference evaluator."""
        if self.media.kind == "images":
            vision = [{"type": "image"} for _ in (self.media.paths or self.media.blobs)]
        else:
            vision = [{"type": "video"}]
        user = {"role": "user", "content": [*vision, {"type": "text", "text": self.prompt}]}
        if not self.system_prompt:
            return [user]
        return [{"role": "system", "content": [{"type": "text", "text": prompts.SFT_SYSTEM_PROMPT}]}, user]


class BadRow(ValueError):
    def __init__(self, column: str, reason: str, detail: str = ""):
        super().__init__(f"{column}: {reason}" + (f" ({detail})" if detail else ""))
        self.key, self.detail = f"{column}: {reason}", detail


def user_prompt(question: str, options: list[str] | None, multiple_choice: bool, think: bool,
                style: str = "reference") -> str:
    """The text of one question: eval_spld's template (options as "\nOptions:\n" lines after the
    question) or, for style "training", the stage prompt the checkpoint was trained on."""
    if style == "training":
        build = prompts.reasoning_prompt if think else prompts.direct_answer_prompt
        return build(question, options, multiple_choice)
    if options:
        question += "\nOptions:\n" + "\n".join(options)
    pre = (EVAL_THINKING if think else EVAL_DIRECT).format(question=question)
    return pre + "\n" + EVAL_SUFFIX[think, multiple_choice]


def cvbench_prompt(prompt: str, think: bool, style: str = "reference") -> str:
    """CV-Bench's `prompt` column (question and choices) in eval_spld's CV-Bench template."""
    if style == "training":
        return user_prompt(prompt, None, True, think, style)
    pre = (EVAL_THINKING if think else EVAL_DIRECT).format(question=prompt)
    return pre + "\n" + (EVAL_SUFFIX[True, True] if think else CVBENCH_DIRECT_SUFFIX)


def _check_style(style: str) -> None:
    if style not in PROMPT_STYLES:
        raise ValueError(f"prompt_style must be one of {PROMPT_STYLES}; got {style!r}")


def read_parquet(path: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a parquet file as dicts; a missing column is an error for the whole file."""
    table = pq.read_table(path)
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {table.column_names}")
    return table.to_pylist()


def _rows(path: Path, columns: tuple[str, ...], report: Report, make: Callable[[dict, int], Item],
          seen: set | None = None) -> list[Item]:
    """Items from every row `make` accepts; each `BadRow` is counted in `report` under its column.
    `seen` holds the ids read before (several files of one set)."""
    items, seen = [], set() if seen is None else seen
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
            value = float(truth)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise BadRow("ground_truth", "not a finite number for a numeric question", repr(truth))
        if value < 0:
            raise BadRow("ground_truth", "negative numeric truth (a size, distance or count is >= 0)", repr(truth))
        return question, None, truth
    if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
        raise BadRow("options", "missing or not a list of strings for a multiple-choice question", repr(options)[:80])
    letters = [o.strip()[:1].upper() for o in options]
    if truth.strip().upper() not in letters:
        raise BadRow("ground_truth", "multiple-choice truth not among the option letters",
                     f"{truth!r} not in {letters}")
    return question, options, truth


def _question_type(row: dict) -> str:
    question_type = _text(row, "question_type")
    if question_type not in metrics.KNOWN_QUESTION_TYPES:
        raise BadRow("question_type", "unknown question type", repr(question_type)[:80])
    return question_type


def _vsi_style_item(row: dict, number: int, source: str, media: Callable[[], Media], think: bool,
                    style: str) -> Item:
    question_type = _question_type(row)
    mc = question_type not in NUMERIC_QUESTION_TYPES
    question, options, truth = _question(row, mc)
    return Item(id=_text(row, "id"), question_type=question_type,
                prompt=user_prompt(question, options, mc, think, style), media=media(), ground_truth=truth,
                think=think, group=_text(row, "dataset"), source=source, row=number,
                system_prompt=style == "training" and not think)


def _existing(root: Path | str, column: str, *parts: str) -> str:
    """root/parts... as a path, refused when it leaves `root` (after links) or names no file."""
    path = os.path.join(root, *parts)
    base = os.path.realpath(root)
    if os.path.commonpath([base, os.path.realpath(path)]) != base:
        raise BadRow(column, "media path outside the data folder", path)
    if not os.path.isfile(path):
        raise BadRow(column, "media file not found", path)
    return path


def read_vsi(root: Path, *, think: bool = False, num_frames: int = VSI_FRAMES, parquet: Path | None = None,
             prompt_style: str = "reference", target_pixels: int = VSI_VIDEO_MAX_PIXELS):
    """VSI-Bench: `root/test-00000-of-00001.parquet`, videos `root/{dataset}/{scene_name}.mp4`."""
    _check_style(prompt_style)
    root = Path(root)
    path = Path(parquet) if parquet else root / VSI_FILE

    def make(row: dict, number: int) -> Item:
        def media():
            video = _existing(root, "scene_name", _text(row, "dataset"), _text(row, "scene_name") + ".mp4")
            return Media("video_file", (video,), num_frames=num_frames, target_pixels=target_pixels)
        return _vsi_style_item(row, number, path.name, media, think, prompt_style)

    report = Report()
    return _rows(path, _VSI_COLUMNS, report, make), report


def read_spbench(parquet: Path, image_dir: Path | None = None, *, think: bool = False,
                 prompt_style: str = "reference"):
    """SPBench-SI or -MV: `images` name frames under `image_dir/{scene_name}/` (default: the
    parquet's folder, or its `images/` subfolder when there is one)."""
    _check_style(prompt_style)
    parquet = Path(parquet)
    image_dir = spld.default_image_root(parquet.parent) if image_dir is None else Path(image_dir)

    def make(row: dict, number: int) -> Item:
        names = row.get("images")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise BadRow("images", "missing or not a list of file names", repr(names)[:80])
        scene = _text(row, "scene_name")
        return _vsi_style_item(row, number, parquet.name,
                               lambda: Media("images", tuple(_existing(image_dir, "images", scene, n) for n in names)),
                               think, prompt_style)

    report = Report()
    return _rows(parquet, _VSI_COLUMNS + ("images",), report, make), report


def read_cvbench(parquets: Path | Sequence[Path], *, think: bool = False, prompt_style: str = "reference"):
    """CV-Bench, one parquet or several read as one set (the published test_2d and test_3d): the
    question with its "(A) …" choices is in `prompt`; `answer` is like "(A)" and must name one of
    the choices (the `choices` column when present, else a letter A-F). Ids are `idx` (else the row
    number), prefixed with the file's stem when several files are read."""
    _check_style(prompt_style)
    paths = [Path(parquets)] if isinstance(parquets, (str, os.PathLike)) else [Path(p) for p in parquets]
    report, items, seen = Report(), [], set()
    for parquet in paths:
        prefix = f"{parquet.stem}/" if len(paths) > 1 else ""

        def make(row: dict, number: int, parquet=parquet, prefix=prefix) -> Item:
            image = row.get("image")
            blob = image.get("bytes") if isinstance(image, dict) else None
            if not isinstance(blob, bytes) or not blob:
                raise BadRow("image", "missing image bytes")
            task, source, answer = _text(row, "task"), _text(row, "source"), _text(row, "answer")
            choices = row.get("choices")
            letters = "ABCDEF"[:len(choices)] if isinstance(choices, list) and choices else "ABCDEF"
            letter = answer.strip().strip("()").strip()
            if len(letter) != 1 or letter.upper() not in letters:
                raise BadRow("answer", "multiple-choice truth not among the choices", f"{answer!r} vs {letters}")
            qid = prefix + (_text(row, "idx") if row.get("idx") is not None else str(number))
            return Item(id=qid, question_type=task, prompt=cvbench_prompt(_text(row, "prompt"), think, prompt_style),
                        media=Media("images", blobs=(blob,)), ground_truth=answer, think=think, group=source,
                        source=parquet.name, row=number, system_prompt=prompt_style == "training" and not think)

        items += _rows(parquet, _CVBENCH_COLUMNS, report, make, seen)
    return items, report


def read_toyworld(root: Path, *, think: bool = False, prompt_style: str = "reference"):
    """A toy-world split (e.g. `out/eval`): the spatial questions of its release-layout JSONL
    (validated by `spld.read_release`, which refuses paths that leave the data root). With
    prompt_style "training" the images also go to the processor as training feeds them."""
    _check_style(prompt_style)
    root = Path(root)
    records, report = spld.read_release(root, [spld.SPATIAL_FILE])
    image_root = spld.default_image_root(root)
    items = []
    for line, record in enumerate(records, 1):
        paths = tuple(os.path.join(image_root, p) for p in record.images)
        media = Media("frames" if record.data_type == "video" else "images", paths,
                      resize="processor" if prompt_style == "training" else "reference")
        mc = record.question_type not in NUMERIC_QUESTION_TYPES
        items.append(Item(id=record.id, question_type=record.question_type,
                          prompt=user_prompt(record.question, record.options, mc, think, prompt_style), media=media,
                          ground_truth=record.answer, think=think, group=record.data_type,
                          source=spld.SPATIAL_FILE, row=record.meta.get("line", line),
                          system_prompt=prompt_style == "training" and not think))
    return items, report


def find_parquet(path: Path, preferred: str | None = None) -> Path:
    """`path` itself, `path/preferred`, or the only *.parquet in the folder `path` (or its data/)."""
    path = Path(path)
    if path.is_file():
        return path
    found = _parquets(path)
    if preferred:
        named = [p for p in found if p.name == preferred]
        if named:
            return named[0]
    if len(found) != 1:
        names = [p.name for p in found] or "none"
        raise FileNotFoundError(f"{path}: expected one parquet file (or a file path); found {names}")
    return found[0]


def _parquets(folder: Path) -> list[Path]:
    return [p for d in (folder, folder / "data") if d.is_dir() for p in sorted(d.glob("*.parquet"))]


def find_vsi_parquet(path: Path) -> Path:
    """VSI-Bench's main test file: `path` itself, else test-00000-of-00001.parquet in the folder
    (or data/), else the one file whose name starts with "test" and names no variant (the
    repository also ships debiased and pruned sets beside it)."""
    path = Path(path)
    if path.is_file():
        return path
    found = _parquets(path)
    for candidate in found:
        if candidate.name == VSI_FILE:
            return candidate
    main = [p for p in found if p.name.startswith("test") and not any(v in p.name for v in ("debias", "prune"))]
    if len(main) != 1:
        raise FileNotFoundError(f"{path}: no single main VSI-Bench test file ({VSI_FILE}) among "
                                f"{[p.name for p in found] or 'no parquet files'}; pass the file itself")
    return main[0]


def find_cvbench_parquets(path: Path) -> list[Path]:
    """A CV-Bench file, or from a folder (or its data/) test_2d.parquet and test_3d.parquet
    together (both needed: the score averages 2D and 3D), else its only parquet file."""
    path = Path(path)
    if path.is_file():
        return [path]
    found = {p.name: p for p in _parquets(path)}
    pair = [found[name] for name in CVBENCH_FILES if name in found]
    if len(pair) == 1:
        raise FileNotFoundError(f"{path}: has {pair[0].name} but not its partner ({' and '.join(CVBENCH_FILES)} "
                                "are read together); pass a single file to score only that one")
    return pair or [find_parquet(path)]


BENCHMARKS = ("vsi", "spbench-si", "spbench-mv", "cvbench", "toyworld")


def read_benchmark(name: str, data: Path, *, think: bool = False, media_dir: Path | None = None,
                   num_frames: int = VSI_FRAMES, prompt_style: str = "reference",
                   target_pixels: int = VSI_VIDEO_MAX_PIXELS) -> tuple[list[Item], Report]:
    """Dispatch on the `--benchmark` name. `data` is the benchmark's file or folder; an mp4's
    frames are first resized to about `target_pixels` (the reference: its max_pixels)."""
    data = Path(data)
    style = {"think": think, "prompt_style": prompt_style}
    if name == "vsi":
        parquet = find_vsi_parquet(data)
        root = media_dir or (data if data.is_dir() else parquet.parent)  # videos beside data/, if used
        return read_vsi(root, num_frames=num_frames, parquet=parquet, target_pixels=target_pixels, **style)
    if name in ("spbench-si", "spbench-mv"):
        return read_spbench(find_parquet(data), media_dir, **style)
    if name == "cvbench":
        return read_cvbench(find_cvbench_parquets(data), **style)
    if name == "toyworld":
        return read_toyworld(data, **style)
    raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
