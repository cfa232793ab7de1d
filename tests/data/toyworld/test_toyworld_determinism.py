"""Same seed, same bytes (whatever the worker count); another seed, another data set; the CLI verb."""

import argparse
import hashlib
import importlib
import json

import pytest
from pathlib import Path

from ladder_jax.data.toyworld import generate
from ladder_jax.data.toyworld import cli

TINY = dict(size=48, views=2, video_frames=4, eval_fraction=0.34)


def _digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "toyworld_summary.json"  # holds the wall time
    }


def test_same_seed_gives_identical_files_with_one_or_two_workers(tmp_path):
    first = generate(tmp_path / "a", 3, 11, workers=1, **TINY)
    second = generate(tmp_path / "b", 3, 11, workers=2, **TINY)
    assert first["counts"] == second["counts"]
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a == b and len(a) > 3 * (1 + 2 + 4)


def test_another_seed_gives_other_scenes(tmp_path):
    generate(tmp_path / "a", 2, 1, workers=1, **TINY)
    generate(tmp_path / "b", 2, 2, workers=1, **TINY)
    meta = "scenes/scene_000000/meta.json"
    assert (tmp_path / "a" / meta).read_text() != (tmp_path / "b" / meta).read_text()


def test_cli_verb_writes_the_data_set(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.configure("toyworld", parser)
    args = parser.parse_args(
        ["--out", str(tmp_path), "--num-scenes", "2", "--seed", "3", "--size", "48", "--views", "2",
         "--video-frames", "4", "--workers", "1"]
    )
    assert cli.main("toyworld", args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["scenes"] == {"train": 2, "eval": 0} and summary["frames_per_scene"] == 7
    for name in ("spld_grounding_data.jsonl", "spld_spatial_data.jsonl", "cold_start.jsonl"):
        assert (tmp_path / name).is_file() and (tmp_path / "eval" / name).is_file()


def test_bad_arguments_are_rejected_with_their_values(tmp_path):
    with pytest.raises(ValueError, match="scenes=0"):
        generate(tmp_path, 0, 0)


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    cli.configure("toyworld", parser)
    small = ["--size", "48", "--views", "2", "--video-frames", "4", "--workers", "1", "--eval-fraction", "0"]
    return cli.main("toyworld", parser.parse_args(small + [str(a) for a in argv]))


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_replaces_an_earlier_world_only_with_overwrite_and_only_when_complete(tmp_path, capsys, monkeypatch):
    """Issue 16, item 9: the release JSONL is never truncated and no stale image survives."""
    out = tmp_path / "out"
    assert run_cli("--out", out, "--num-scenes", "2", "--seed", "1") == 0
    (out / "images" / "stale.jpg").write_bytes(b"old")
    before = snapshot(out)
    capsys.readouterr()
    assert run_cli("--out", out, "--num-scenes", "1", "--seed", "2") == 2
    assert capsys.readouterr().err.startswith("ladder-jax toyworld: the output ")
    generate_module = importlib.import_module("ladder_jax.data.toyworld.generate")  # the package exports the function

    def crash(job, seed, cfg):
        raise RuntimeError("out of disk")

    with monkeypatch.context() as m:
        m.setattr(generate_module, "_build", crash)
        with pytest.raises(RuntimeError, match="out of disk"):
            run_cli("--out", out, "--num-scenes", "1", "--seed", "2", "--overwrite")
    assert snapshot(out) == before
    assert run_cli("--out", out, "--num-scenes", "1", "--seed", "2", "--overwrite") == 0
    assert json.loads(capsys.readouterr().out)["out_dir"] == str(out)
    assert not (out / "images" / "stale.jpg").exists() and not (out / "images" / "scene_000001").exists()
    assert json.loads((out / "toyworld_summary.json").read_text())["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("argv", [["--num-scenes", "0"], ["--num-scenes", "1", "--size", "8"], ["--num-scenes", "1", "--foreign"]])
def test_cli_refusals_are_one_line_and_write_nothing(tmp_path, capsys, argv):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    out = foreign if "--foreign" in argv else tmp_path / "new"
    argv = [a for a in argv if a != "--foreign"] + ["--overwrite"]
    assert run_cli("--out", out, *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ladder-jax toyworld: ") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"] and (foreign / "notes.txt").read_text() == "keep me"


def test_the_old_scenes_spelling_still_counts_with_a_warning(tmp_path, capsys):
    assert run_cli("--out", tmp_path / "old", "--scenes", "1", "--seed", "4") == 0
    assert "--scenes N is deprecated" in capsys.readouterr().err
    assert run_cli("--out", tmp_path / "new", "--num-scenes", "1", "--seed", "4") == 0
    assert "deprecated" not in capsys.readouterr().err
    old, new = snapshot(tmp_path / "old"), snapshot(tmp_path / "new")
    timing = Path("toyworld_summary.json")  # its "seconds" differ
    assert old.keys() == new.keys() and {k: v for k, v in old.items() if k != timing} == \
        {k: v for k, v in new.items() if k != timing}
    with pytest.raises(SystemExit):  # one of the two, not both
        run_cli("--out", tmp_path / "both", "--scenes", "1", "--num-scenes", "1")
