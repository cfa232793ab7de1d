"""One record type for every stage: grounding (stage 1), spatial QA (stages 2 and 3), cold start.

The field names follow the SpatialLadder-26k release (SPEC.md section 2); validation on read lives
beside this type so that every reader (release JSONL, ArrayRecord shards, toy world, synthesis)
rejects the same things with the same messages.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal, Sequence

from PIL import Image

Kind = Literal["grounding", "spatial", "cold_start"]
DataType = Literal["single_image", "multi_view", "video"]

MULTIPLE_CHOICE_TYPES = ("relative distance", "relative direction", "appearance order")
NUMERIC_TYPES = ("object size", "room size", "object count", "absolute distance")
QUESTION_TYPES = MULTIPLE_CHOICE_TYPES + NUMERIC_TYPES
DATA_TYPES = ("single_image", "multi_view", "video")
KINDS = ("grounding", "spatial", "cold_start")


@dataclasses.dataclass(frozen=True)
class Box:
    """An absolute-pixel xyxy box on the record's original image, with its label."""

    bbox_2d: tuple[float, float, float, float]
    label: str


@dataclasses.dataclass(frozen=True)
class Record:
    """One training or evaluation example.

    `images` are paths relative to the data root; prepared shards keep the paths and carry the
    encoded files beside them (`shards.ShardExample.images`, same order). A video is a list of
    frame paths; a multi-view set is a list of images. `validate` states every rule.
    """

    id: str
    kind: Kind
    question: str
    images: tuple[str, ...]
    data_type: DataType
    question_type: str | None = None  # one of QUESTION_TYPES for spatial / cold-start records
    options: tuple[str, ...] | None = None  # "A. ..." strings for multiple choice, else None
    answer: str | None = None  # option letter or number (spatial); the <answer> text (cold start)
    boxes: tuple[Box, ...] = ()  # grounding targets
    solution: str | None = None  # cold start: "<think>...</think><answer>...</answer>"
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. synthesis provenance
    prompt: str | None = None  # cold start: the user text, used verbatim (the release's `prompt` field)

    @property
    def is_multiple_choice(self) -> bool:
        return self.question_type in MULTIPLE_CHOICE_TYPES


class RecordError(ValueError):
    """A record that breaks the schema. `reason` is a fixed phrase; `detail` carries the values."""

    def __init__(self, record_id: Any, field: str, reason: str, detail: str = ""):
        self.record_id, self.field, self.reason, self.detail = record_id, field, reason, detail
        message = f"record {record_id!r}: {field}: {reason}"
        super().__init__(f"{message} ({detail})" if detail else message)

    @property
    def key(self) -> str:
        """What reports group by: the field and the reason, without the varying detail."""
        return f"{self.field}: {self.reason}"

    def __reduce__(self):  # the default would call __init__ with the message only
        return RecordError, (self.record_id, self.field, self.reason, self.detail)


_OPTION = re.compile(r"^([A-Z])\.")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")  # no nan/inf, unlike float()
_SOLUTION = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$", re.DOTALL)
_IMAGE_COUNT = {"single_image": (1, 1), "multi_view": (2, None), "video": (1, None)}


def validate(
    record: Record,
    data_root: Path | None = None,
    *,
    image_sizes: Sequence[tuple[int, int]] | None = None,
    path_cache: dict | None = None,
) -> Record:
    """Return `record` unchanged if it is well formed, else raise `RecordError`.

    With `data_root`, image paths are resolved (`..` and symlinks included) and must stay inside
    it and exist. Boxes are checked against `image_sizes[0]` ((width, height) of the record's
    image) when given, else against the image's header read from `data_root`, else only for shape.
    A reader passes one `path_cache` dict for a whole pass, so shared frames are resolved once.
    """
    _check_common(record)
    _KIND_CHECKS[record.kind](record)
    _check_encodable(record)
    _check_image_paths(record, data_root, path_cache)
    if record.boxes:
        if image_sizes is not None:
            size = tuple(image_sizes[0])
        elif data_root is not None:
            size = _read_image_size(record, Path(data_root) / record.images[0])
        else:
            size = None
        if size is not None:
            _check_boxes_inside(record, size)
    return record


def solution_answer(solution: str) -> str | None:
    """The text inside the single <answer> tag of a well-formed cold-start solution, else None."""
    match = _SOLUTION.match(solution)
    tags = ("<think>", "</think>", "<answer>", "</answer>")
    if match is None or any(solution.count(t) != 1 for t in tags):
        return None
    return match.group(2).strip()


def _fail(record: Record, field: str, reason: str, detail: str = "") -> None:
    raise RecordError(record.id, field, reason, detail)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_common(r: Record) -> None:
    if not _is_text(r.id):
        raise RecordError(r.id, "id", "missing, empty or not a string")
    if r.kind not in KINDS:
        _fail(r, "kind", "unknown kind", repr(r.kind))
    if not _is_text(r.question):
        _fail(r, "question", "missing or empty")
    if r.data_type not in DATA_TYPES:
        _fail(r, "data_type", "unknown data_type", repr(r.data_type))
    if not isinstance(r.images, tuple) or not all(_is_text(p) for p in r.images):
        _fail(r, "images", "must be a tuple of non-empty paths", repr(r.images))
    low, high = _IMAGE_COUNT[r.data_type]
    if len(r.images) < low or (high is not None and len(r.images) > high):
        _fail(r, "images", f"wrong number of images for {r.data_type}", str(len(r.images)))
    for field in ("question_type", "answer", "solution", "prompt"):
        if not isinstance(getattr(r, field), (str, type(None))):
            _fail(r, field, "must be a string or null", repr(getattr(r, field)))
    if not isinstance(r.options, (tuple, type(None))):
        _fail(r, "options", "must be a tuple or null", repr(r.options))
    if not isinstance(r.meta, dict):
        _fail(r, "meta", "must be a dict")


def _check_grounding(r: Record) -> None:
    for field in ("question_type", "options", "answer", "solution", "prompt"):
        if getattr(r, field) is not None:
            _fail(r, field, "not allowed in a grounding record")
    if len(r.images) != 1:
        _fail(r, "images", "a grounding record has exactly one image", str(len(r.images)))
    if not isinstance(r.boxes, tuple) or not r.boxes:
        _fail(r, "boxes", "missing or empty")
    for i, box in enumerate(r.boxes):
        _check_box_shape(r, i, box)


def _check_box_shape(r: Record, i: int, box: Any) -> None:
    if not isinstance(box, Box) or not _is_text(box.label):
        _fail(r, "boxes", "box needs bbox_2d and a non-empty label", f"box {i}: {box!r}")
    coords = box.bbox_2d
    finite = isinstance(coords, (tuple, list)) and all(_is_number(c) and math.isfinite(c) for c in coords)
    if not finite or len(coords) != 4:
        _fail(r, "boxes", "bbox_2d must be 4 finite numbers", f"box {i}: {coords!r}")
    x1, y1, x2, y2 = coords
    if x2 <= x1 or y2 <= y1:
        _fail(r, "boxes", "box has x2 <= x1 or y2 <= y1", f"box {i}: {list(coords)}")
    if x1 < 0 or y1 < 0:
        _fail(r, "boxes", "box outside its image", f"box {i}: {list(coords)} has a negative corner")


def _check_boxes_inside(r: Record, size: tuple[int, int]) -> None:
    width, height = size
    for i, box in enumerate(r.boxes):
        _, _, x2, y2 = box.bbox_2d
        if x2 > width or y2 > height:
            _fail(r, "boxes", "box outside its image", f"box {i}: {list(box.bbox_2d)} on a {width}x{height} image")


def _check_spatial(r: Record) -> None:
    if r.boxes:
        _fail(r, "boxes", "not allowed in a spatial record")
    if r.solution is not None:
        _fail(r, "solution", "not allowed in a spatial record (use kind cold_start)")
    if r.prompt is not None:
        _fail(r, "prompt", "not allowed in a spatial record (its prompt is built from the question)")
    if r.question_type is None:
        _fail(r, "question_type", "missing")
    _check_question(r, r.answer)


def _check_cold_start(r: Record) -> None:
    if r.boxes:
        _fail(r, "boxes", "not allowed in a cold-start record")
    if not isinstance(r.solution, str):
        _fail(r, "solution", "missing")
    if r.prompt is not None and not _is_text(r.prompt):
        _fail(r, "prompt", "empty")
    answer = solution_answer(r.solution)
    if not answer:
        _fail(r, "solution", "needs exactly one <think>...</think> then one non-empty <answer>...</answer>")
    if r.answer is not None and r.answer.strip() != answer:
        _fail(r, "answer", "differs from the solution's <answer>", f"{r.answer!r} vs {answer!r}")
    if r.question_type is not None:
        _check_question(r, answer)


def _check_question(r: Record, answer: str | None) -> None:
    if r.question_type not in QUESTION_TYPES:
        _fail(r, "question_type", "unknown question_type", repr(r.question_type))
    if not _is_text(answer):
        _fail(r, "answer", "missing or empty")
    if r.question_type in NUMERIC_TYPES:
        if r.options is not None:
            _fail(r, "options", "not allowed for a numeric question", r.question_type)
        problem = numeric_answer_problem(r.question_type, answer)
        if problem is not None:
            _fail(r, "answer", problem, repr(answer))
        return
    if not isinstance(r.options, tuple) or not r.options:
        _fail(r, "options", "missing for a multiple-choice question", r.question_type)
    letters = [_option_letter(r, i, o) for i, o in enumerate(r.options)]
    if len(set(letters)) != len(letters):
        _fail(r, "options", "repeated option letter", "".join(letters))
    if answer.strip() not in letters:
        _fail(r, "answer", "not one of the option letters", f"{answer!r} not in {letters}")


def numeric_answer_problem(question_type: str, answer: str) -> str | None:
    """Why `answer` cannot be the truth of a numeric `question_type` question, or None if it can.

    A truth that is not finite can never be scored; a negative size, distance or area, or a count
    that is negative or not whole, is outside what the question means.
    """
    if not _NUMBER.match(answer.strip()):
        return "not a finite number for a numeric question"
    value = float(answer)
    if not math.isfinite(value):
        return "not a finite number for a numeric question"
    if question_type == "object count" and (value < 0 or value != math.floor(value)):
        return "an object count must be a whole number >= 0"
    if value < 0:
        return f"{question_type} cannot be negative"
    return None


def _option_letter(r: Record, i: int, option: Any) -> str:
    match = _OPTION.match(option) if isinstance(option, str) else None
    if match is None:
        _fail(r, "options", "option is not of the form 'A. text'", f"option {i}: {option!r}")
    return match.group(1)


_KIND_CHECKS = {"grounding": _check_grounding, "spatial": _check_spatial, "cold_start": _check_cold_start}


MAX_NESTING = 32  # levels of lists and dicts in `meta`; provenance needs a few


def _check_encodable(r: Record) -> None:
    """Every field must survive the UTF-8 JSON that shards, reports and exports are written in.

    `json.loads` accepts a lone surrogate ("\\ud800"), and nesting as deep as the stack allows,
    which a reader deeper in its own stack (a Grain worker decoding a shard) may not manage.
    """
    if _nesting(r.meta) > MAX_NESTING:
        _fail(r, "meta", f"nested more than {MAX_NESTING} levels")
    for field, value in record_to_json(r).items():
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError as e:
            _fail(r, field, "text is not valid Unicode (a lone surrogate)", repr(e.object[e.start : e.end]))
        except (TypeError, ValueError) as e:  # a value JSON cannot hold, or a reference cycle
            _fail(r, field, "not JSON data", str(e))


def _nesting(value: Any) -> int:
    """Levels of lists, tuples and dicts in `value`, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _check_image_paths(r: Record, data_root: Path | None, seen: dict | None) -> None:
    root = os.path.realpath(data_root) if data_root is not None else None
    for path in r.images:
        key = (root, path)
        problem = seen.get(key, False) if seen is not None else False
        if problem is False:
            problem = _image_path_problem(root, path)
            if seen is not None:
                seen[key] = problem
        if problem is not None:
            _fail(r, "images", *problem)


def _image_path_problem(root: str | None, path: str) -> tuple[str, str] | None:
    """(reason, detail) if `path` is absolute, escapes `root` or names no file under it."""
    if "\0" in path:  # the OS refuses such a path with ValueError, not as a missing file
        return "image path holds a NUL byte", repr(path)
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute():
        return "absolute image path", path
    if root is None:
        escapes = os.path.normpath(path).split(os.sep)[0] == ".."
        return ("image path escapes the data root", path) if escapes else None
    resolved = os.path.realpath(os.path.join(root, path))  # follows `..` and symlinks
    if os.path.commonpath([root, resolved]) != root:
        return "image path escapes the data root", f"{path} -> {resolved}"
    if not os.path.isfile(resolved):
        return "image file not found", path
    return None


def _read_image_size(r: Record, path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:  # lazy: reads the header only
            return image.size
    except Exception as e:  # PIL signals bad headers with many exception types
        _fail(r, "images", "unreadable image header", f"{r.images[0]}: {type(e).__name__}: {e}")


def record_to_json(record: Record) -> dict[str, Any]:
    """Our own JSONL form: every field, lists for tuples; `record_from_json` inverts it exactly."""
    return {
        "id": record.id,
        "kind": record.kind,
        "question": record.question,
        "images": list(record.images),
        "data_type": record.data_type,
        "question_type": record.question_type,
        "options": None if record.options is None else list(record.options),
        "answer": record.answer,
        "boxes": [{"bbox_2d": list(b.bbox_2d), "label": b.label} for b in record.boxes],
        "solution": record.solution,
        "meta": record.meta,
        "prompt": record.prompt,
    }


_FIELDS = tuple(f.name for f in dataclasses.fields(Record))
_REQUIRED = ("id", "kind", "question", "images", "data_type")


def record_from_json(d: Any) -> Record:
    """Build a `Record` from our JSONL form; shape errors raise `RecordError` (semantics: `validate`)."""
    if not isinstance(d, dict):
        raise RecordError(None, "record", "not a JSON object", type(d).__name__)
    rid = d.get("id")
    for field in d:
        if field not in _FIELDS:
            raise RecordError(rid, field, "unknown field")
    for field in _REQUIRED:
        if d.get(field) in (None, "", []):
            raise RecordError(rid, field, "missing or empty")
    return Record(
        id=rid,
        kind=d["kind"],
        question=d["question"],
        images=_str_tuple(rid, "images", d["images"]),
        data_type=d["data_type"],
        question_type=d.get("question_type"),
        options=None if d.get("options") is None else _str_tuple(rid, "options", d["options"]),
        answer=d.get("answer"),
        boxes=boxes_from_json(rid, d.get("boxes") or []),
        solution=d.get("solution"),
        meta=d.get("meta") if d.get("meta") is not None else {},
        prompt=d.get("prompt"),
    )


def boxes_from_json(record_id: Any, items: Any) -> tuple[Box, ...]:
    """`[{"bbox_2d": [x1, y1, x2, y2], "label": str}, ...]` (the release's grounding answer) as Boxes."""
    if not isinstance(items, list):
        raise RecordError(record_id, "boxes", "must be a list of {bbox_2d, label}", repr(items))
    boxes = []
    for i, item in enumerate(items):
        coords = item.get("bbox_2d") if isinstance(item, dict) else None
        if not isinstance(coords, list) or not all(_is_number(c) for c in coords) or "label" not in item:
            raise RecordError(record_id, "boxes", "box needs bbox_2d (numbers) and label", f"box {i}: {item!r}")
        try:
            bbox = tuple(float(c) for c in coords)
        except OverflowError:  # a JSON integer beyond float range
            raise RecordError(record_id, "boxes", "bbox_2d must be 4 finite numbers", f"box {i}: {coords!r}") from None
        boxes.append(Box(bbox, item["label"]))
    return tuple(boxes)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str_tuple(record_id: Any, field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(record_id, field, "must be a list of strings", repr(value))
    return tuple(value)
