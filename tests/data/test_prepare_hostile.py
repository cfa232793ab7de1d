"""Issue 16, item 1: `prepare` on hostile input rejects and counts each bad line, writes a complete
set or nothing, and never costs the previous good set."""

import argparse
import json

import pytest
from PIL import Image

from ladder_jax.atomic_output import OutputError
from ladder_jax.data import prepare as prepare_module
from ladder_jax.data.prepare import NothingAccepted, configure, main, prepare
from ladder_jax.data.report import Report
from ladder_jax.data.shards import ShardSource

GOOD = {"question_id": 0, "question": "How many chairs?", "image": ["a.png"], "data_type": "single_image",
        "question_type": "object count", "answer": "3"}
HOSTILE = [  # (line, reason) as read from spld_spatial_data.jsonl
    (json.dumps(GOOD | {"question_id": 1, "question": "How \ud800 many?"}), "question: text is not valid Unicode (a lone surrogate)"),
    (json.dumps(GOOD | {"question_id": 2, "image": ["a\x00.png"]}), "images: image path holds a NUL byte"),
    ("[" * 100_000, "malformed JSON line"),
    (json.dumps(GOOD | {"question_id": "\ud800", "answer": "2.5"}), "answer: an object count must be a whole number >= 0"),
    (json.dumps(GOOD | {"question_id": 4, "answer": "1e400"}), "answer: not a finite number for a numeric question"),
    (json.dumps(GOOD | {"question_id": 5, "answer": "-3"}), "answer: an object count must be a whole number >= 0"),
]


def make_release(root, lines):
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (16, 16), "red").save(root / "images" / "a.png")
    (root / "spld_spatial_data.jsonl").write_text("\n".join(lines) + "\n")
    return root


def good_lines(n):
    return [json.dumps(GOOD | {"question_id": 100 + i}) for i in range(n)]


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    configure("prepare", parser)
    return main("prepare", parser.parse_args([str(a) for a in argv]))


def test_hostile_lines_are_counted_and_the_set_is_complete(tmp_path):
    release = make_release(tmp_path / "rel", good_lines(1) + [line for line, _ in HOSTILE] + good_lines(3)[1:])
    info, report = prepare(release, tmp_path / "out", num_shards=2, workers=1)
    assert info["num_records"] == 3 and len(ShardSource.from_dir(tmp_path / "out")) == 3
    assert [(r.line, r.reason) for r in report.rejections] == [(i, why) for i, (_, why) in enumerate(HOSTILE, start=2)]
    on_disk = Report.from_json(json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8")))
    assert on_disk == report and on_disk.rejections[3].record_id == "spatial/\ud800"  # kept exactly
    assert "id=spatial/\\ud800" in report.summary()  # and printable on any terminal


def test_a_failure_mid_write_leaves_the_previous_good_set(tmp_path, monkeypatch):
    release = make_release(tmp_path / "rel", good_lines(5))
    out = tmp_path / "out"
    prepare(release, out, num_shards=2, workers=1)
    before = snapshot(out)
    calls = []

    def fail_on_third(record, frames):
        calls.append(record.id)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return b"x"

    monkeypatch.setattr(prepare_module, "encode_record", fail_on_third)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare(release, out, num_shards=2, workers=1, overwrite=True)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "rel"]  # no partial folder left beside


def test_a_run_that_accepts_nothing_replaces_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    prepare(make_release(tmp_path / "good", good_lines(2)), out, num_shards=1, workers=1)
    before = snapshot(out)
    bad = make_release(tmp_path / "bad", [line for line, _ in HOSTILE])
    with pytest.raises(NothingAccepted) as info:
        prepare(bad, out, overwrite=True, workers=1)
    assert info.value.report.num_rejected == len(HOSTILE)
    assert run_cli("--data", bad, "--out", out, "--overwrite") == 1
    captured = capsys.readouterr()
    assert f"{len(HOSTILE)} inputs: 0 accepted, {len(HOSTILE)} rejected" in captured.out
    assert captured.err.splitlines()[-1].startswith("ladder-jax prepare: all 6 inputs were rejected")
    assert snapshot(out) == before
    assert run_cli("--data", bad, "--out", tmp_path / "fresh") == 1 and not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("case", ["not empty", "foreign with --overwrite", "out is the data", "out holds the data",
                                  "out is a file", "missing --files", "zero shards", "no jsonl"])
def test_refusals_are_one_line_and_touch_nothing(tmp_path, capsys, case):
    release = make_release(tmp_path / "rel", good_lines(2))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    (tmp_path / "file").write_text("keep me")
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = {
        "not empty": ["--data", release, "--out", foreign],
        "foreign with --overwrite": ["--data", release, "--out", foreign, "--overwrite"],
        "out is the data": ["--data", release, "--out", release, "--overwrite"],
        "out holds the data": ["--data", release, "--out", tmp_path, "--overwrite"],
        "out is a file": ["--data", release, "--out", tmp_path / "file"],
        "missing --files": ["--data", release, "--out", tmp_path / "new", "--files", "nope.jsonl"],
        "zero shards": ["--data", release, "--out", tmp_path / "new", "--shards", "0"],
        "no jsonl": ["--data", empty, "--out", tmp_path / "new"],
    }[case]
    before = snapshot(tmp_path)
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ladder-jax prepare: ") and err.count("\n") == 1
    assert snapshot(tmp_path) == before and not (tmp_path / "new").exists()


def test_the_python_api_refuses_a_non_empty_output_too(tmp_path):
    release = make_release(tmp_path / "rel", good_lines(1))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    with pytest.raises(OutputError, match="not empty; pass --overwrite"):
        prepare(release, tmp_path / "out")
