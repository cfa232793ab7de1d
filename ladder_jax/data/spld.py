"""Read SpatialLadder-26k exactly as published (SPEC.md section 2), and any JSONL in our schema.

Release layout: `spld_grounding_data.jsonl` and `spld_spatial_data.jsonl` beside an `images/`
folder that the records' paths are relative to. A cold-start file (`prompt`, `solution`, `image`,
`data_type`) and files in our own `record_to_json` form are read from the same folder.
Every line becomes a validated `Record` or a counted rejection in a `Report`; reading never stops
on a bad line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from ladder_jax.data.report import Report
from ladder_jax.data.schema import (
    Record,
    RecordError,
    boxes_from_json,
    record_from_json,
    solution_answer,
    validate,
)

GROUNDING_FILE = "spld_grounding_data.jsonl"
SPATIAL_FILE = "spld_spatial_data.jsonl"
# Ids are "<prefix>/<question_id>": the two release files number their rows independently.
_PREFIX = {GROUNDING_FILE: "grounding", SPATIAL_FILE: "spatial"}


def default_image_root(root: Path) -> Path:
    """`root/images` as in the release, or `root` itself when there is no such folder."""
    return root / "images" if (root / "images").is_dir() else root


def release_files(root: Path, files: list[str] | None = None) -> list[Path]:
    """The JSONL files to read: `files` (names relative to `root`), else every `*.jsonl` in `root`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; give the release folder (JSONL files and images/)")
    paths = [root / f for f in files] if files else sorted(p for p in root.glob("*.jsonl") if p.is_file())
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no such JSONL file(s): {', '.join(missing)}")
    if not paths:
        raise FileNotFoundError(f"no *.jsonl files in {root}")
    return paths


def read_release(
    root: Path, files: list[str] | None = None, *, image_root: Path | None = None
) -> tuple[list[Record], Report]:
    """All valid records of the release at `root` (ids unique across files) and the report."""
    root = Path(root)
    image_root = default_image_root(root) if image_root is None else Path(image_root)
    report, seen, records = Report(), set(), []
    for path in release_files(root, files):
        records.extend(iter_jsonl(path, image_root, report, seen_ids=seen))
    return records, report


def iter_jsonl(
    path: Path, data_root: Path | None, report: Report, *, seen_ids: set[str] | None = None
) -> Iterator[Record]:
    """Yield the valid records of one JSONL file; every other non-blank line goes into `report`.

    Image paths are checked against `data_root` (see `validate`). With `seen_ids`, a record whose
    id was already read is rejected as a duplicate, and its id is added otherwise.
    """
    return (record for _, record in iter_numbered(path, data_root, report, seen_ids=seen_ids))


def iter_numbered(
    path: Path, data_root: Path | None, report: Report, *, seen_ids: set[str] | None = None
) -> Iterator[tuple[int, Record]]:
    """`iter_jsonl` with each record's 1-based line number, for rejections found later."""
    path = Path(path)
    source = path.name
    path_cache: dict = {}
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError alike
                report.reject(source, line_no, None, "malformed JSON line", str(e))
                continue
            except RecursionError:  # e.g. 100,000 "[": the parser recurses once per level
                report.reject(source, line_no, None, "malformed JSON line", "nested too deeply")
                continue
            try:
                record = validate(row_to_record(row, source, line_no), data_root, path_cache=path_cache)
                if seen_ids is not None and record.id in seen_ids:
                    raise RecordError(record.id, "id", "duplicate id")
            except RecordError as e:
                report.reject(source, line_no, _id_text(e.record_id), e.key, e.detail)
                continue
            if seen_ids is not None:
                seen_ids.add(record.id)
            report.accept(source)
            yield line_no, record


def row_to_record(row: Any, source: str, line_no: int) -> Record:
    """One JSON row as a `Record` (not yet validated); the row's shape decides its kind."""
    if not isinstance(row, dict):
        raise RecordError(None, "record", "not a JSON object", type(row).__name__)
    if "kind" in row:
        return record_from_json(row)
    kind = _PREFIX.get(source)
    if kind is None and "solution" in row:
        kind = "cold_start"
    elif kind is None:
        kind = "grounding" if isinstance(row.get("answer"), list) else "spatial"
    return _CONVERTERS[kind](row, source, line_no)


def _grounding(row: dict, source: str, line_no: int) -> Record:
    rid = _release_id(row, source, line_no)
    return Record(
        id=rid,
        kind="grounding",
        question=row.get("question"),
        images=_images(rid, row),
        data_type=row.get("data_type"),
        boxes=boxes_from_json(rid, row.get("answer")),
        meta=_provenance(row, source, line_no),
    )


def _spatial(row: dict, source: str, line_no: int) -> Record:
    rid = _release_id(row, source, line_no)
    return Record(
        id=rid,
        kind="spatial",
        question=row.get("question"),
        images=_images(rid, row),
        data_type=row.get("data_type"),
        question_type=row.get("question_type"),
        options=_options(rid, row.get("options")),
        answer=_answer_text(row.get("answer")),
        meta=_provenance(row, source, line_no),
    )


def _cold_start(row: dict, source: str, line_no: int) -> Record:
    """The unpublished cold-start form (`prompt`, `solution`): the reference trains on `prompt`
    verbatim, and so do we. `question`, `question_type` and `options` are read too (toy-world and
    synthesized rows carry them; stage 3 scores with the question type); a row with no `prompt`
    gets the stage-3 prompt built from its `question`."""
    rid = row["id"] if isinstance(row.get("id"), str) else _release_id(row, source, line_no, required=False)
    solution = row.get("solution")
    if "answer" in row:
        answer = _answer_text(row["answer"])
    else:
        answer = solution_answer(solution) if isinstance(solution, str) else None
    return Record(
        id=rid,
        kind="cold_start",
        question=row["question"] if isinstance(row.get("question"), str) else row.get("prompt"),
        images=_images(rid, row),
        data_type=row.get("data_type"),
        question_type=row.get("question_type"),
        options=_options(rid, row.get("options")),
        answer=answer,
        solution=solution,
        meta=_provenance(row, source, line_no),
        prompt=row.get("prompt"),
    )


_CONVERTERS = {"grounding": _grounding, "spatial": _spatial, "cold_start": _cold_start}


def _release_id(row: dict, source: str, line_no: int, required: bool = True) -> str:
    prefix = _PREFIX.get(source, Path(source).stem)
    qid = row.get("question_id")
    if isinstance(qid, bool) or not isinstance(qid, (int, str)) or qid == "":
        if required:
            raise RecordError(f"{prefix}/line-{line_no}", "question_id", "missing or not an int/str", repr(qid))
        return f"{prefix}/line-{line_no}"
    return f"{prefix}/{qid}"


def _provenance(row: dict, source: str, line_no: int) -> dict[str, Any]:
    meta = {"source": source, "line": line_no}
    if "question_id" in row:
        meta["question_id"] = row["question_id"]
    return meta


def _images(rid: str, row: dict) -> tuple[str, ...]:
    images = row.get("image", row.get("images"))
    if isinstance(images, str):  # tolerated: a single path without its list
        images = [images]
    if not isinstance(images, list) or not images or not all(isinstance(p, str) for p in images):
        raise RecordError(rid, "images", "`image` must be a non-empty list of paths", repr(images))
    return tuple(images)


def _options(rid: str, options: Any) -> tuple[str, ...] | None:
    if options is None:
        return None
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise RecordError(rid, "options", "must be a list of strings or null", repr(options))
    return tuple(options)


def _answer_text(answer: Any) -> Any:
    """Numbers are kept as the text they were written as; anything else is left for `validate`."""
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return repr(answer)
    return answer


def _id_text(record_id: Any) -> str | None:
    return None if record_id is None else str(record_id)
