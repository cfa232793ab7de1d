"""Same seed, same bytes (whatever the worker count); another seed, another data set; the CLI verb."""

import argparse
import hashlib
import json

import pytest

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
        ["--out", str(tmp_path), "--scenes", "2", "--seed", "3", "--size", "48", "--views", "2",
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
