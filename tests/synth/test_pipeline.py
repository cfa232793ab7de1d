"""`ladder-jax synth --scenes`: output files, audit fields, the skip report and speed."""

import argparse
import json
import time

import numpy as np
import pytest

from tests.synth.analytic import camera, random_room, render
from ladder_jax.data.scene_folder import load_scene, write_scene
from ladder_jax.data.schema import QUESTION_TYPES, validate
from ladder_jax.data.spld import GROUNDING_FILE, SPATIAL_FILE, read_release
from ladder_jax.synth import cli
from ladder_jax.synth.analyze import analyze_scene
from ladder_jax.synth.records import as_record

RELEASE_FIELDS = {"question_id", "question", "options", "answer", "image", "question_type", "data_type"}
AUDIT = {"predicate", "objects", "value", "unit", "definition"}


def make_room(folder, seed, intrinsics=True):
    boxes = random_room(np.random.default_rng(seed))
    k, c2w = camera(1.6, 30, 224, 224)
    depth, ids, rgb = render(boxes, k, c2w, 224, 224, wall_y=6.5)
    return write_scene(folder, rgb, depth, ids, {i + 1: b.label for i, b in enumerate(boxes)}, k if intrinsics else None)


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    cli.configure("synth", parser)
    return cli.main("synth", parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    make_room(root / "room0", 0)
    make_room(root / "room1", 1, intrinsics=False)
    (root / "room2").mkdir()
    (root / "room2" / "meta.json").write_text("{not json")
    out = tmp_path_factory.mktemp("out")
    assert run_cli("--scenes", str(root), "--out", str(out)) == 0
    return out


FILES = {"spatial": SPATIAL_FILE, "grounding": GROUNDING_FILE, "freeform": "freeform/freeform_qa.jsonl"}


def rows(out, kind):
    return [json.loads(line) for line in (out / FILES[kind]).read_text().splitlines()]


def test_spatial_rows_use_release_fields_and_audit_fields(output):
    spatial = rows(output, "spatial")
    assert spatial and all(RELEASE_FIELDS | AUDIT <= set(r) for r in spatial)
    assert {r["question_type"] for r in spatial} <= set(QUESTION_TYPES)
    assert len({r["question_id"] for r in spatial}) == len(spatial)
    for r in spatial:
        assert (output / "images" / r["image"][0]).is_file()
        record = validate(as_record(r), output / "images")
        assert record.meta["predicate"] == r["predicate"] and record.is_multiple_choice == (r["options"] is not None)
    assumed = [r for r in spatial if r["scene"] == "room1"]
    assert assumed and all("assumed intrinsics" in r["assumptions"][0] for r in assumed)


def test_grounding_and_free_form_rows(output):
    grounding, free = rows(output, "grounding"), rows(output, "freeform")
    assert grounding and all(set(b) == {"bbox_2d", "label"} and len(b["bbox_2d"]) == 4 for g in grounding for b in g["answer"])
    assert free and all(AUDIT <= set(r) and r["answer"] for r in free)


def test_the_output_folder_reads_as_a_release_with_every_row_valid(output):
    records, report = read_release(output)
    lines = sum(len(rows(output, kind)) for kind in ("spatial", "grounding"))
    assert report.rejections == [] and len(records) == lines
    assert {r.kind for r in records} == {"spatial", "grounding"}


def test_report_names_the_skipped_scene(output):
    report = json.loads((output / "report.json").read_text())
    assert report["scenes_done"] == 2
    assert "room2" in report["skipped_scenes"] and "meta.json is not valid JSON" in report["skipped_scenes"]["room2"]
    assert any("measurements" in k for k in report["dropped"]["room0"])


def test_a_224_scene_with_10_objects_takes_well_under_a_second(tmp_path):
    scene = load_scene(make_room(tmp_path / "r", 3))
    assert len(scene.labels) == 10
    analyze_scene(scene)
    start = time.perf_counter()
    analyze_scene(scene)
    assert time.perf_counter() - start < 0.5


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_existing_output_is_never_truncated(output, tmp_path, capsys):
    """Issue 16, item 9: refused without --overwrite; with it, a run where no scene succeeds keeps the
    old release (JSONL and images), and a good run replaces it whole, stale images included."""
    out = tmp_path / "out"
    out.mkdir()
    for f in output.rglob("*"):
        if f.is_file():
            (out / f.relative_to(output)).parent.mkdir(parents=True, exist_ok=True)
            (out / f.relative_to(output)).write_bytes(f.read_bytes())
    (out / "images" / "stale.png").write_bytes((out / "images" / "room0.png").read_bytes())
    before = snapshot(out)
    broken = tmp_path / "broken"
    for name in ("a", "b"):
        (broken / name).mkdir(parents=True)
        (broken / name / "meta.json").write_text("{not json")
    assert run_cli("--scenes", str(broken), "--out", str(out)) == 2
    assert capsys.readouterr().err.startswith("ladder-jax synth: the output ")
    assert run_cli("--scenes", str(broken), "--out", str(out), "--overwrite") == 1
    captured = capsys.readouterr()
    assert "skipped a:" in captured.out and "skipped b:" in captured.out
    assert captured.err == f"ladder-jax synth: none of the 2 scenes in {broken} could be used; the output folder was left as it was\n"
    assert snapshot(out) == before
    good = tmp_path / "good"
    make_room(good / "room5", 5)
    assert run_cli("--scenes", str(good), "--out", str(out), "--overwrite") == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["room5.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "good", "out"]


@pytest.mark.parametrize("case", ["missing scenes", "scenes is a file", "empty scenes", "out is the input",
                                  "foreign out"])
def test_refusals_are_one_line(tmp_path, capsys, case):
    make_room(tmp_path / "scenes" / "room0", 0)
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    argv, code = {
        "missing scenes": (["--scenes", tmp_path / "nope", "--out", tmp_path / "new"], 2),
        "scenes is a file": (["--scenes", tmp_path / "file", "--out", tmp_path / "new"], 2),
        "empty scenes": (["--scenes", tmp_path / "empty", "--out", tmp_path / "new"], 1),
        "out is the input": (["--scenes", tmp_path / "scenes", "--out", tmp_path, "--overwrite"], 2),
        "foreign out": (["--scenes", tmp_path / "scenes", "--out", tmp_path / "mine", "--overwrite"], 2),
    }[case]
    before = snapshot(tmp_path)
    assert run_cli(*map(str, argv)) == code
    err = capsys.readouterr().err
    assert err.startswith("ladder-jax synth: ") and err.count("\n") == 1
    assert snapshot(tmp_path) == before and not (tmp_path / "new").exists()
