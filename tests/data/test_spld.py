"""Reading the release as published: every good line becomes the right record, every bad one is
reported with its file, line, id and reason, and nothing is dropped silently."""

import json

import numpy as np
import pytest

from ladder_jax.data.report import Report
from ladder_jax.data.schema import Box, record_to_json
from ladder_jax.data.spld import iter_jsonl, read_release
from tests.data.spld_fixture import MC, make_release


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    tiny = make_release(tmp_path_factory.mktemp("spld"))
    records, report = read_release(tiny.root)
    return tiny, {r.id: r for r in records}, records, report


def test_every_good_line_read_and_nothing_dropped(release):
    tiny, by_id, records, report = release
    assert len(by_id) == len(records)  # ids unique across files
    assert set(by_id) == set(tiny.good)
    assert report.num_accepted == len(tiny.good)
    assert report.num_accepted + report.num_rejected == tiny.lines
    assert dict(report.accepted) == {"spld_grounding_data.jsonl": 2, "spld_spatial_data.jsonl": 5,
                                     "cold_start.jsonl": 1, "ours.jsonl": 1}


def test_every_bad_line_reported_with_reason(release):
    tiny, _, _, report = release
    got = [(r.source, r.line, r.record_id, r.reason) for r in report.rejections]
    assert sorted(got, key=str) == sorted(tiny.rejected, key=str)
    by_reason = {r.reason: r.detail for r in report.rejections}
    outside = by_reason["boxes: box outside its image"]
    assert "1300" in outside and "1296x968" in outside
    assert by_reason["images: absolute image path"] == "/etc/hostname"


def test_grounding_fields(release):
    _, by_id, _, _ = release
    r = by_id["grounding/1"]
    assert (r.kind, r.data_type, r.images, r.question) == (
        "grounding", "single_image", ("scene0000_00/00010.png",), "Where is the chair?")
    assert r.boxes == (Box((0.0, 0.0, 1296.0, 968.0), "room"), Box((5.5, 6.5, 50.25, 60.75), "cup"))
    assert (r.question_type, r.options, r.answer, r.solution) == (None, None, None, None)
    assert r.meta == {"source": "spld_grounding_data.jsonl", "line": 2, "question_id": 1}


def test_spatial_fields(release):
    _, by_id, _, _ = release
    mc = by_id["spatial/100"]
    assert (mc.kind, mc.question_type, mc.options, mc.answer, mc.is_multiple_choice) == (
        "spatial", "relative distance", tuple(MC), "B", True)
    views = by_id["spatial/101"]
    assert (views.data_type, len(views.images), views.options, views.answer) == ("multi_view", 8, None, "45.5")
    video = by_id["spatial/102"]
    assert video.data_type == "video" and video.images == tuple(f"scene0001_00/{i:05d}.jpg" for i in range(6))
    assert by_id["spatial/112"].answer == "2.5"  # written as a JSON number


def test_cold_start_and_own_schema(release):
    _, by_id, _, _ = release
    cold = by_id["cold_start/line-1"]
    assert (cold.kind, cold.question, cold.answer) == ("cold_start", "Which is closer?", "B")
    assert cold.solution.startswith("<think>") and cold.question_type is None and cold.prompt == "Which is closer?"
    toy = by_id["toy/0001"]
    assert toy.meta == {"scene": 3, "seed": [1, 2]} and toy.data_type == "multi_view"


def test_own_jsonl_round_trips_through_the_reader(release, tmp_path):
    tiny, _, records, _ = release
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(record_to_json(r)) + "\n" for r in records))
    report = Report()
    again = list(iter_jsonl(path, tiny.root / "images", report))
    assert again == records and report.num_rejected == 0


def test_files_argument_and_missing_file(release):
    tiny, _, _, _ = release
    records, report = read_release(tiny.root, ["spld_spatial_data.jsonl"])
    assert {r.kind for r in records} == {"spatial"} and report.total == 16
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_release(tiny.root, ["nope.jsonl"])


def test_odd_rows_never_raise(tmp_path):
    (tmp_path / "images").mkdir()
    rows = ['{"question_id": 1, "question": 5, "image": 7, "data_type": null, "answer": {}}',
            '{"question_id": 2, "question": "q", "image": ["a"], "options": "A. x", "answer": true}',
            '{"question_id": 3, "question": "q", "image": [], "answer": [{"bbox_2d": 4}]}',
            '{"solution": 3, "prompt": null, "image": ["a"], "data_type": "video"}',
            '"just a string"', "null"]
    lines = [r.encode() for r in rows] + [b'{"question": "\xe9\xff"}']  # the last is not UTF-8
    (tmp_path / "odd.jsonl").write_bytes(b"\n".join(lines))
    records, report = read_release(tmp_path)
    assert records == [] and report.num_rejected == len(lines)
    assert [r.line for r in report.rejections] == list(range(1, len(lines) + 1))
    assert report.rejections[-1].reason == "malformed JSON line"


def test_fuzzed_rows_are_all_accounted_for(tmp_path):
    """Rows with every field set to values of every JSON type: reading never raises mid-file."""
    values = [None, 0, 1.5, True, "", "x", "A", "2", "A. x", [], ["x"], [1], ["A. x", "B. y"], {},
              {"bbox_2d": [1, 2, 3, 4]}, [{"bbox_2d": [1, 2, 3, 4], "label": "c"}], [{"bbox_2d": "x", "label": 1}],
              [{"bbox_2d": [1, 2, 3, 4], "label": None}], "<think>a</think><answer>A</answer>", "single_image"]
    keys = ["question_id", "question", "image", "images", "data_type", "answer", "options", "question_type",
            "prompt", "solution", "id", "kind", "boxes", "meta"]
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(400):
        chosen = rng.choice(keys, size=rng.integers(1, len(keys)), replace=False)
        lines.append(json.dumps({str(k): values[rng.integers(len(values))] for k in chosen}))
    for name in ("spld_grounding_data.jsonl", "spld_spatial_data.jsonl", "other.jsonl"):
        (tmp_path / name).write_text("\n".join(lines))
    records, report = read_release(tmp_path)
    assert report.total == 3 * len(lines) and len(records) == report.num_accepted


def test_hostile_lines_are_rejected_by_line_and_field(tmp_path):
    """Issue 16, item 1: each of these once crashed a read or a later write; now each is one rejection."""
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
    good = {"question_id": 0, "question": "How many?", "image": ["a.png"], "data_type": "single_image",
            "question_type": "object count", "answer": "3"}
    hostile = [
        (json.dumps(good | {"question_id": 1, "question": "How \ud800 many?"}), "question: text is not valid Unicode (a lone surrogate)"),
        (json.dumps(good | {"question_id": 2, "image": ["a.png\x00"]}), "images: image path holds a NUL byte"),
        ("[" * 100_000, "malformed JSON line"),
        ("{" * 50_000, "malformed JSON line"),
        (json.dumps(good | {"question_id": "\udfff", "answer": "-1"}), "answer: an object count must be a whole number >= 0"),
        (json.dumps({"id": "own/1", "kind": "spatial", **{k: good[k] for k in ("question", "question_type", "answer")},
                     "images": ["a.png"], "data_type": "single_image", "meta": {"m": "\ud834"}}),
         "meta: text is not valid Unicode (a lone surrogate)"),
        (json.dumps(good | {"question_id": 6, "answer": "1e400"}), "answer: not a finite number for a numeric question"),
    ]
    lines = [json.dumps(good)] + [line for line, _ in hostile] + [json.dumps(good | {"question_id": 9})]
    (tmp_path / "spld_spatial_data.jsonl").write_text("\n".join(lines))
    (tmp_path / "folder.jsonl").mkdir()  # not a file: not read
    records, report = read_release(tmp_path)
    assert [r.id for r in records] == ["spatial/0", "spatial/9"]
    got = [(r.line, r.reason) for r in report.rejections]
    assert got == [(i, reason) for i, (_, reason) in enumerate(hostile, start=2)]
    assert report.rejections[2].detail == "nested too deeply"
    assert report.rejections[4].record_id == "spatial/\udfff"


def test_a_cold_start_row_with_question_fields_is_asked_its_prompt_once():
    from ladder_jax.data.prompts import build_messages, reasoning_prompt
    from ladder_jax.data.spld import row_to_record

    prompt = reasoning_prompt("How far is the lamp?", None, False)
    row = {"question_id": 4, "prompt": prompt, "solution": "<think>x</think><answer>2.5</answer>",
           "image": ["a.jpg"], "data_type": "single_image", "question_type": "absolute distance",
           "question": "How far is the lamp?", "options": None, "answer": "2.5"}
    record = row_to_record(row, "cold_start.jsonl", 1)
    assert (record.question, record.prompt, record.answer) == ("How far is the lamp?", prompt, "2.5")
    text = build_messages(record, "cold_start")[0][-1]["content"][-1]["text"]
    assert text == prompt and not text.startswith("Question: Question:")
