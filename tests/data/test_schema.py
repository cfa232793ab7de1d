"""Record validation: each rule rejects with the record id and a reason; JSON round trip is exact."""

import dataclasses
import json
import os
import pickle

import pytest
from PIL import Image

from ladder_jax.data.schema import Box, Record, RecordError, record_from_json, record_to_json, validate

MC = ("A. left", "B. right", "C. behind")
NOT_NUMBER = "answer: not a finite number for a numeric question"
BAD_SOLUTION = "solution: needs exactly one <think>...</think> then one non-empty <answer>...</answer>"


def spatial(**changes) -> Record:
    base = Record(id="s/1", kind="spatial", question="Where?", images=("a.jpg",), data_type="single_image",
                  question_type="relative direction", options=MC, answer="B")
    return dataclasses.replace(base, **changes)


def grounding(**changes) -> Record:
    base = Record(id="g/1", kind="grounding", question="Find it", images=("a.jpg",), data_type="single_image",
                  boxes=(Box((1.0, 2.0, 30.0, 40.0), "cup"),))
    return dataclasses.replace(base, **changes)


def cold(**changes) -> Record:
    base = Record(id="c/1", kind="cold_start", question="How far?", images=("a.jpg",), data_type="single_image",
                  question_type="absolute distance", answer="2.5",
                  solution="<think>let me think</think> <answer>2.5</answer>")
    return dataclasses.replace(base, **changes)


def reason_of(record, *args, **kwargs) -> str:
    with pytest.raises(RecordError) as info:
        validate(record, *args, **kwargs)
    assert info.value.record_id == record.id
    assert repr(record.id) in str(info.value) and info.value.reason in str(info.value)
    return info.value.key


def test_valid_records_pass_unchanged():
    for record in (spatial(), grounding(), cold(),
                   spatial(question_type="object size", options=None, answer="1.5e2"),
                   spatial(data_type="multi_view", images=("a.jpg", "b.jpg")), cold(question_type=None, answer=None)):
        assert validate(record) is record


@pytest.mark.parametrize("record, key", [
    (spatial(id=""), "id: missing, empty or not a string"),
    (spatial(question="  "), "question: missing or empty"),
    (spatial(images=()), "images: wrong number of images for single_image"),
    (spatial(images=("a.jpg", "b.jpg")), "images: wrong number of images for single_image"),
    (spatial(data_type="multi_view"), "images: wrong number of images for multi_view"),
    (spatial(images=["a.jpg"]), "images: must be a tuple of non-empty paths"),
    (spatial(kind="caption"), "kind: unknown kind"),
    (spatial(data_type="image"), "data_type: unknown data_type"),
    (spatial(question_type="colour"), "question_type: unknown question_type"),
    (spatial(question_type=None), "question_type: missing"),
    (spatial(options=None), "options: missing for a multiple-choice question"),
    (spatial(options=("A. x", "left")), "options: option is not of the form 'A. text'"),
    (spatial(options=("A. x", "A. y")), "options: repeated option letter"),
    (spatial(answer="D"), "answer: not one of the option letters"),
    (spatial(answer="B. right"), "answer: not one of the option letters"),
    (spatial(answer=None), "answer: missing or empty"),
    (spatial(answer=2), "answer: must be a string or null"),
    (spatial(question_type="room size", options=MC, answer="3"), "options: not allowed for a numeric question"),
    (spatial(question_type="room size", options=None, answer="abc"), NOT_NUMBER),
    (spatial(question_type="room size", options=None, answer="nan"), NOT_NUMBER),
    (spatial(question_type="room size", options=None, answer="inf"), NOT_NUMBER),
    (spatial(question_type="room size", options=None, answer="1_000"), NOT_NUMBER),
    (spatial(boxes=(Box((0, 0, 1, 1), "x"),)), "boxes: not allowed in a spatial record"),
    (spatial(solution="<think>a</think><answer>B</answer>"),
     "solution: not allowed in a spatial record (use kind cold_start)"),
    (grounding(boxes=()), "boxes: missing or empty"),
    (grounding(boxes=(Box((5, 2, 5, 40), "cup"),)), "boxes: box has x2 <= x1 or y2 <= y1"),
    (grounding(boxes=(Box((5, 40, 9, 2), "cup"),)), "boxes: box has x2 <= x1 or y2 <= y1"),
    (grounding(boxes=(Box((-1, 2, 5, 40), "cup"),)), "boxes: box outside its image"),
    (grounding(boxes=(Box((1, 2, 5), "cup"),)), "boxes: bbox_2d must be 4 finite numbers"),
    (grounding(boxes=(Box((1, 2, 5, float("nan")), "cup"),)), "boxes: bbox_2d must be 4 finite numbers"),
    (grounding(boxes=(Box((1, 2, 5, 9), ""),)), "boxes: box needs bbox_2d and a non-empty label"),
    (grounding(answer="A"), "answer: not allowed in a grounding record"),
    (cold(solution="2.5"), BAD_SOLUTION),
    (cold(solution="<answer>2.5</answer><think>x</think>"), BAD_SOLUTION),
    (cold(solution="<think>a</think><think>b</think><answer>2.5</answer>"), BAD_SOLUTION),
    (cold(solution="<think>a</think><answer> </answer>"), BAD_SOLUTION),
    (cold(solution="<think>a</think><answer>2.5</answer> trailing"), BAD_SOLUTION),
    (cold(prompt=" "), "prompt: empty"),
    (spatial(prompt="Question: x"), "prompt: not allowed in a spatial record (its prompt is built from the question)"),
    (grounding(prompt="Question: x"), "prompt: not allowed in a grounding record"),
    (cold(solution=None), "solution: missing"),
    (cold(answer="3"), "answer: differs from the solution's <answer>"),
    (cold(answer=None, solution="<think>a</think><answer>far</answer>"), NOT_NUMBER),
    (spatial(images=("/abs/a.jpg",)), "images: absolute image path"),
    (spatial(images=("C:\\frames\\a.jpg",)), "images: absolute image path"),
    (spatial(images=("x/../../a.jpg",)), "images: image path escapes the data root"),
])
def test_each_rule_rejects_with_id_and_reason(record, key):
    assert reason_of(record) == key


def numeric(question_type, answer):
    return spatial(question_type=question_type, options=None, answer=answer)


COUNT = "answer: an object count must be a whole number >= 0"


@pytest.mark.parametrize("record, key", [  # issue 16, item 2: truths that can never score or mean nothing
    (numeric("absolute distance", "1e400"), NOT_NUMBER),
    (numeric("object size", "-1e400"), NOT_NUMBER),
    (numeric("room size", "  NaN "), NOT_NUMBER),
    (numeric("object count", "-3"), COUNT),
    (numeric("object count", "2.5"), COUNT),
    (numeric("object count", "1e-3"), COUNT),
    (numeric("object size", "-45"), "answer: object size cannot be negative"),
    (numeric("room size", "-0.5"), "answer: room size cannot be negative"),
    (numeric("absolute distance", "-1e-9"), "answer: absolute distance cannot be negative"),
    (cold(answer=None, solution="<think>a</think><answer>-2</answer>"), "answer: absolute distance cannot be negative"),
])
def test_numeric_truths_outside_their_meaning_are_refused(record, key):
    assert reason_of(record) == key


def test_numeric_truths_at_the_edges_of_their_meaning_pass():
    for question_type, answer in [("object count", "0"), ("object count", "3.0"), ("object count", "1e2"),
                                  ("absolute distance", "0"), ("absolute distance", "-0"), ("room size", "1e300")]:
        assert validate(numeric(question_type, answer))


@pytest.mark.parametrize("record, key", [  # issue 16, item 1: what UTF-8 JSON cannot hold is refused by field
    (spatial(question="Where is the \ud800 chair?"), "question: text is not valid Unicode (a lone surrogate)"),
    (spatial(id="s/\udfff"), "id: text is not valid Unicode (a lone surrogate)"),
    (spatial(options=("A. left", "B. \udc80")), "options: text is not valid Unicode (a lone surrogate)"),
    (grounding(boxes=(Box((1, 2, 3, 4), "cup\ud83d"),)), "boxes: text is not valid Unicode (a lone surrogate)"),
    (spatial(meta={"note\ud800": 1}), "meta: text is not valid Unicode (a lone surrogate)"),
    (spatial(meta={"frames": {1, 2}}), "meta: not JSON data"),
    (spatial(images=("a\x00.jpg",)), "images: image path holds a NUL byte"),
    (spatial(data_type="video", images=("f0.jpg", "\x00")), "images: image path holds a NUL byte"),
])
def test_text_that_cannot_be_written_is_refused_by_field(record, key):
    assert reason_of(record) == key


def nested_meta(levels: int) -> dict:
    """A meta dict nested `levels` deep in all (the dict itself is the first level)."""
    deep: list = []
    for _ in range(levels - 2):
        deep = [deep]
    return {"deep": deep}


@pytest.mark.parametrize("levels", [33, 900, 100_000])  # 900: json.loads reads it, a deeper reader may not
def test_meta_nested_deeper_than_a_reader_can_follow_is_refused(levels):
    assert reason_of(spatial(meta=nested_meta(levels))) == "meta: nested more than 32 levels"


def test_meta_nested_32_levels_passes():
    assert validate(spatial(meta=nested_meta(32)))


def test_nul_byte_is_refused_against_a_real_root(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    assert reason_of(spatial(images=("a.png\x00",)), tmp_path) == "images: image path holds a NUL byte"


def test_boxes_checked_against_given_size():
    record = grounding(boxes=(Box((1, 2, 1296, 968), "room"),))
    assert validate(record, image_sizes=[(1296, 968)]) is record
    assert reason_of(record, image_sizes=[(1295, 968)]) == "boxes: box outside its image"
    assert reason_of(record, image_sizes=[(1296, 967)]) == "boxes: box outside its image"


def test_paths_resolved_against_root(tmp_path):
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(root / "sub" / "a.png")
    (tmp_path / "outside.png").write_bytes((root / "sub" / "a.png").read_bytes())
    os.symlink(tmp_path / "outside.png", root / "escape.png")
    os.symlink(root / "sub" / "a.png", root / "inside.png")
    assert validate(spatial(images=("sub/a.png",)), root)
    assert validate(spatial(images=("inside.png",)), root)  # a symlink that stays inside is fine
    assert validate(spatial(images=("sub/../sub/a.png",)), root)
    assert reason_of(spatial(images=("escape.png",)), root) == "images: image path escapes the data root"
    assert reason_of(spatial(images=("../outside.png",)), root) == "images: image path escapes the data root"
    assert reason_of(spatial(images=("sub/b.png",)), root) == "images: image file not found"
    assert reason_of(spatial(images=("sub",)), root) == "images: image file not found"


def test_box_checked_against_image_header(tmp_path):
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    inside = grounding(images=("a.png",), boxes=(Box((0, 0, 40, 30), "all"),))
    assert validate(inside, tmp_path) is inside
    assert reason_of(dataclasses.replace(inside, boxes=(Box((0, 0, 41, 30), "all"),)), tmp_path) == \
        "boxes: box outside its image"
    assert reason_of(dataclasses.replace(inside, images=("bad.png",)), tmp_path) == "images: unreadable image header"


def test_json_round_trip_is_exact():
    records = [spatial(meta={"scene": "s0", "nested": {"k": [1, 2.5, None]}}), grounding(), cold(),
               grounding(boxes=(Box((1.25, 2.0, 3.0, 4.5), "a"), Box((0.0, 0.0, 9.0, 9.0), "b")))]
    for record in records:
        text = json.dumps(record_to_json(record))
        again = record_from_json(json.loads(text))
        assert again == record
        assert record_to_json(again) == json.loads(text)
        assert isinstance(again.images, tuple) and all(isinstance(b.bbox_2d, tuple) for b in again.boxes)


@pytest.mark.parametrize("d, key", [
    ([], "record: not a JSON object"),
    ({"id": "x", "kind": "spatial", "question": "q", "images": ["a"], "data_type": "video", "extra": 1},
     "extra: unknown field"),
    ({"id": "x", "kind": "spatial", "question": "q", "data_type": "video"}, "images: missing or empty"),
    ({"id": "x", "kind": "spatial", "question": "q", "images": "a.jpg", "data_type": "video"},
     "images: must be a list of strings"),
    ({"id": "x", "kind": "grounding", "question": "q", "images": ["a"], "data_type": "single_image",
      "boxes": [{"bbox_2d": ["1", 2, 3, 4], "label": "c"}]}, "boxes: box needs bbox_2d (numbers) and label"),
    ({"id": "x", "kind": "grounding", "question": "q", "images": ["a"], "data_type": "single_image",
      "boxes": [{"bbox_2d": [1, 2, 3, 10**400], "label": "c"}]}, "boxes: bbox_2d must be 4 finite numbers"),
])
def test_record_from_json_rejects_bad_shapes(d, key):
    with pytest.raises(RecordError) as info:
        record_from_json(d)
    assert info.value.key == key


def test_record_error_survives_pickling():  # errors cross Grain worker processes
    error = RecordError("s/1", "answer", "bad", "detail")
    again = pickle.loads(pickle.dumps(error))
    assert (again.record_id, again.key, again.detail, str(again)) == ("s/1", "answer: bad", "detail", str(error))
