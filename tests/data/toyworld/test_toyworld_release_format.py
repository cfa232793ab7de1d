"""The written files read as the SpatialLadder-26k release (SPEC.md section 2), train and eval."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ladder_jax.data.prompts import reasoning_prompt
from ladder_jax.data.schema import DATA_TYPES, MULTIPLE_CHOICE_TYPES, NUMERIC_TYPES, QUESTION_TYPES
from ladder_jax.data.toyworld import generate
from ladder_jax.data.toyworld.generate import SUMMARY_FILE

GROUNDING_FIELDS = {"question_id", "question", "image", "data_type", "answer"}
SPATIAL_FIELDS = {"question_id", "question", "options", "answer", "image", "question_type", "data_type"}
FORMAT = re.compile(r"^<think>.*?</think>\s*<answer>.*?</answer>$", re.DOTALL)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _roots(out: Path):
    return [out, out / "eval"]


def _check_paths(root: Path, paths):
    assert isinstance(paths, list) and paths and all(isinstance(p, str) for p in paths)
    for p in paths:
        assert not p.startswith("/") and ".." not in Path(p).parts
        assert (root / "images" / p).is_file(), p


def test_grounding_rows_match_the_release_fields(dataset):
    out, _, _ = dataset
    for root in _roots(out):
        rows = _rows(root / "spld_grounding_data.jsonl")
        assert rows
        for row in rows:
            assert set(row) == GROUNDING_FIELDS
            assert isinstance(row["question_id"], int) and isinstance(row["question"], str)
            assert row["data_type"] == "single_image" and len(row["image"]) == 1
            _check_paths(root, row["image"])
            width, height = Image.open(root / "images" / row["image"][0]).size
            assert row["answer"] and all(set(box) == {"bbox_2d", "label"} for box in row["answer"])
            labels = [box["label"] for box in row["answer"]]
            assert len(set(labels)) == len(labels)  # each object type once, like the release
            for box in row["answer"]:
                x1, y1, x2, y2 = box["bbox_2d"]
                assert all(isinstance(v, int) for v in box["bbox_2d"])
                assert 0 <= x1 <= x2 <= width - 1 and 0 <= y1 <= y2 <= height - 1
                assert box["label"] in row["question"]
        per_image = {}
        for row in rows:
            per_image.setdefault(row["image"][0], []).append(row["question"])
        assert all(len(set(q)) == len(q) <= 4 for q in per_image.values())  # distinct, grounding_per_scene=4
        assert max(len(q) for q in per_image.values()) > 1


def test_spatial_rows_match_the_release_fields(dataset):
    out, _, settings = dataset
    frames = {"single_image": 1, "multi_view": settings["views"], "video": settings["video_frames"]}
    for root in _roots(out):
        rows = _rows(root / "spld_spatial_data.jsonl")
        ids = [row["question_id"] for row in rows]
        assert len(set(ids)) == len(ids)
        for row in rows:
            assert set(row) == SPATIAL_FIELDS
            assert isinstance(row["question_id"], int) and isinstance(row["answer"], str)
            assert row["question_type"] in QUESTION_TYPES and row["data_type"] in DATA_TYPES
            assert len(row["image"]) == frames[row["data_type"]]
            _check_paths(root, row["image"])
            if row["question_type"] in MULTIPLE_CHOICE_TYPES:
                letters = [opt.split(". ", 1)[0] for opt in row["options"]]
                assert letters == list("ABCD"[: len(letters)]) and len(letters) >= 3
                texts = [opt.split(". ", 1)[1] for opt in row["options"]]
                assert len(set(texts)) == len(texts)
                assert row["answer"] in letters
            else:
                assert row["options"] is None
                assert float(row["answer"]) >= 0


def test_every_question_type_and_data_type_is_present(dataset):
    out, _, _ = dataset
    rows = _rows(out / "spld_spatial_data.jsonl") + _rows(out / "eval" / "spld_spatial_data.jsonl")
    kinds = {(r["question_type"], r["data_type"]) for r in rows}
    for qt in QUESTION_TYPES:
        assert any(k[0] == qt for k in kinds), qt
    for qt in set(NUMERIC_TYPES + MULTIPLE_CHOICE_TYPES) - {"appearance order", "room size"}:
        assert {(qt, dt) for dt in DATA_TYPES} <= kinds, qt
    assert {dt for qt, dt in kinds if qt == "appearance order"} == {"video"}
    assert {dt for qt, dt in kinds if qt == "room size"} == {"multi_view", "video"}


def test_cold_start_solutions_are_well_formed_and_agree_with_the_spatial_answers(dataset):
    out, _, _ = dataset
    for root in _roots(out):
        spatial = {r["question_id"]: r for r in _rows(root / "spld_spatial_data.jsonl")}
        rows = _rows(root / "cold_start.jsonl")
        assert {r["data_type"] for r in rows} == set(DATA_TYPES)
        for row in rows:
            assert {"prompt", "solution", "image", "data_type"} <= set(row)
            assert FORMAT.match(row["solution"].strip())
            answer = re.search(r"<answer>(.*?)</answer>", row["solution"]).group(1)
            source = spatial[row["question_id"]]
            assert answer == source["answer"] and row["image"] == source["image"]
            # The stage-3 prompt, options inside the question as the reference's GRPO script builds it
            mc = bool(source["options"])
            options = "\nOptions:\n" + "\n".join(source["options"]) if mc else ""
            assert row["prompt"].startswith(f"Question: {source['question']}{options} \nPlease Think about")
            assert row["prompt"] == reasoning_prompt(source["question"], source["options"], mc)


def test_eval_scenes_are_held_out(dataset):
    out, summary, _ = dataset
    train = {p.name for p in (out / "images").iterdir()}
    held = {p.name for p in (out / "eval" / "images").iterdir()}
    assert train and held and not train & held
    assert summary["scenes"] == {"train": 6, "eval": 2}
    assert sorted(p.name for p in (out / "eval" / "scenes").iterdir()) == sorted(held)


def test_scene_folders_follow_the_issue_7_format(dataset):
    out, _, settings = dataset
    folders = sorted((out / "scenes").iterdir())
    assert len(folders) == 6
    for folder in folders:
        meta = json.loads((folder / "meta.json").read_text())
        depth = np.load(folder / "depth.npy")
        instances = np.asarray(Image.open(folder / "instances.png"))
        rgb = np.asarray(Image.open(folder / "rgb.png"))
        size = settings["size"]
        assert depth.dtype == np.float32 and depth.shape == (size, size) and (depth > 0).all()
        assert instances.dtype == np.uint16 and instances.shape == (size, size)
        assert rgb.dtype == np.uint8 and rgb.shape == (size, size, 3)
        assert np.array(meta["intrinsics"]).shape == (3, 3) and np.array(meta["camera_to_world"]).shape == (4, 4)
        listed = {o["id"]: o["label"] for o in meta["objects"]}
        assert set(np.unique(instances)) - {0} == set(listed)
        gt = {o["id"]: o for o in meta["gt_objects"]}
        assert all(gt[i]["label"] == label for i, label in listed.items())
        for obj in meta["gt_objects"]:
            assert obj["pixels"] == int((instances == obj["id"]).sum())
        # The grounding / single-image frame is the scene-folder frame (JPEG against PNG).
        jpg = np.asarray(Image.open(out / "images" / folder.name / "single.jpg"), dtype=float)
        assert np.abs(jpg - rgb).mean() < 3.0


def test_the_release_reader_accepts_every_record(dataset):
    from ladder_jax.data.spld import read_release
    for root in _roots(dataset[0]):
        lines = sum(len(_rows(p)) for p in root.glob("*.jsonl"))
        records, report = read_release(root)
        assert report.num_rejected == 0, report.summary()
        assert len(records) == lines
        kinds = {r.kind for r in records}
        assert kinds == {"grounding", "spatial", "cold_start"}


def _same_world_but_cold_start(dataset, folder: Path, **setting):
    """(root, other root, spatial rows by id) per split of the fixture world and one generated with
    `setting`, after checking their grounding and spatial files are byte-identical."""
    out, _, small = dataset
    generate(folder, 8, 7, **setting, **small)
    for root, other in zip(_roots(out), _roots(folder)):
        for name in ("spld_grounding_data.jsonl", "spld_spatial_data.jsonl"):
            assert (root / name).read_bytes() == (other / name).read_bytes()
        yield root, other, {r["question_id"]: r for r in _rows(root / "spld_spatial_data.jsonl")}


def test_short_reasoning_changes_only_the_cold_start_thinking_and_states_the_deciding_fact(dataset, tmp_path):
    small = dataset[2]
    for root, other, spatial in _same_world_but_cold_start(dataset, tmp_path / "short", reasoning="short"):
        for worked, row in zip(_rows(root / "cold_start.jsonl"), _rows(other / "cold_start.jsonl"), strict=True):
            assert {k: v for k, v in worked.items() if k != "solution"} == {k: v for k, v in row.items() if k != "solution"}
            assert FORMAT.match(row["solution"]) and len(row["solution"]) < len(worked["solution"])
            think, answer = re.fullmatch(r"<think>(.*)</think><answer>(.*)</answer>", row["solution"]).groups()
            source = spatial[row["question_id"]]
            assert answer == source["answer"]
            if source["options"]:  # the right option's text, then its letter
                chosen = source["options"]["ABCD".index(answer)].split(". ", 1)[1]
                assert chosen in think and think.endswith(f"option {answer}."), think
            else:
                assert f" {answer} " in f" {think} ", think
    with pytest.raises(ValueError, match="cold-start solutions are one of"):
        generate(tmp_path / "bad", 1, 7, reasoning="long", **small)


def test_cold_start_all_writes_every_spatial_question_and_changes_nothing_else(dataset, tmp_path):
    small, every = dataset[2], tmp_path / "all"
    for root, other, spatial in _same_world_but_cold_start(dataset, every, cold_start="all"):
        one, rows = _rows(root / "cold_start.jsonl"), _rows(other / "cold_start.jsonl")
        assert sorted(r["question_id"] for r in rows) == sorted(spatial)  # each spatial question once
        by_id = {r["question_id"]: r for r in rows}
        assert all(by_id[r["question_id"]] == r for r in one)  # the drawn ones, unchanged among them
        for row in rows:
            source = spatial[row["question_id"]]
            assert (row["answer"], row["image"], row["data_type"]) == (source["answer"], source["image"],
                                                                        source["data_type"])
    assert json.loads((every / SUMMARY_FILE).read_text())["cold_start"] == "all"
    with pytest.raises(ValueError, match="cold-start records are written for one of"):
        generate(tmp_path / "bad", 1, 7, cold_start="some", **small)
