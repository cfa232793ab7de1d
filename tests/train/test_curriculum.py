"""The toy curriculum end to end with two steps per stage: stage 1 → stage 2 → cold start, each
starting from the previous stage's final params with a fresh optimizer; a second run skips the
finished stages; a stage whose final params are lost is finished again from its own checkpoint.

Meanwhile launch/local.sh trains stage 1 in two processes (one CPU device each, gloo). The toy
world has 32 grounding records and the batch is 8, so each step sees different rows; both
processes walk the one-process run's global order and each takes its half of every global batch,
so the per-step losses must agree."""

import argparse
import os
import shutil
import socket
import subprocess
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from ladder_jax import config_files
from ladder_jax.data.toyworld.generate import generate
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import cli, curriculum, stage_inputs
from ladder_jax.train.telemetry import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "toy_demo.py"
SFT = ("stage1", "stage2", "cold_start")


def overrides(workdir: Path, data: Path) -> list[str]:
    # The toy mesh: data parallel over every device (conftest's 8 fake CPUs); the tiny preset, SFT only.
    out = [f"--config.workdir={workdir}", f"--config.data.root={data}", "--config.model.preset=tiny",
           "--config.stages.stage3.steps=0"]
    for name in SFT:
        out += [f"--config.stages.{name}.{k}={v}" for k, v in
                dict(steps=2, log_every=1, checkpoint_every=2, progress=False, tensorboard=False).items()]
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_local(workdir: Path, data: Path) -> subprocess.Popen:
    """launch/local.sh with 2 processes: stage 1 only, as in the single-process run."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PORT=str(_free_port()), LOGDIR=str(workdir / "logs"),
               LADDER_JAX="python -m ladder_jax.train.cli")
    args = [*overrides(workdir, data), "--config.order=('stage1',)"]
    return subprocess.Popen(["bash", str(ROOT / "launch" / "local.sh"), "2", str(CONFIG), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = tmp_path_factory.mktemp("toyworld")
    generate(data, 8, seed=0, size=112, views=2, video_frames=4, eval_fraction=0.0, workers=1)
    workdir, local_dir = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("local")
    local = _launch_local(local_dir, data)
    try:
        cfg = config_files.load(CONFIG, overrides(workdir, data))
        outcomes = curriculum.run(cfg)
        out, _ = local.communicate(timeout=300)
    finally:
        local.kill()
    logs = "".join(p.read_text()[-2000:] for p in sorted((local_dir / "logs").glob("*.log")))
    return cfg, data, workdir, outcomes, (local.returncode, out + logs, local_dir)


def _params(cfg, directory: Path) -> dict:
    mesh = make_mesh(devices=jax.devices()[:1])
    return jax.device_get(nnx.to_pure_dict(stage_inputs.load_final(cfg, directory, mesh)[2]))


def _distance(a, b) -> float:
    return float(np.sqrt(sum(np.sum((np.asarray(x, np.float64) - y) ** 2)
                             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))))


def test_each_stage_trains_and_saves_final_params(world):
    cfg, _, workdir, outcomes, _ = world
    assert [(o.name, o.status) for o in outcomes] == [(n, "trained") for n in SFT] + [("stage3", "skipped: 0 steps")]
    for name in SFT:
        assert (workdir / name / "final" / "params").is_dir()
        rows = read_jsonl(workdir / name / "metrics.jsonl")
        # A fresh optimizer: the stage's step counter and warmup restart (lr(0) = 0).
        assert [r["step"] for r in rows] == [1, 2] and rows[0]["lr"] == 0.0 and rows[1]["lr"] > 0
        assert all(np.isfinite(r["loss"]) for r in rows)


def test_each_stage_starts_from_the_previous_final(world):
    cfg, _, workdir, _, _ = world
    mesh = make_mesh(devices=jax.devices()[:1])
    processor = stage_inputs.build_processor(cfg, stage_inputs.read_records(cfg)[0])
    init = jax.device_get(nnx.to_pure_dict(stage_inputs.load_model_source(cfg, processor, mesh)[2]))
    finals = [init] + [_params(cfg, workdir / name / "final") for name in SFT]
    for before, after in zip(finals[:-1], finals[1:]):
        step = _distance(before, after)
        assert step > 0  # the stage changed the params
        if before is not init:  # started from `before`: one stage's update is smaller than all so far
            assert _distance(init, after) > step


def test_second_run_skips_finished_stages(world, capsys):
    cfg, data, workdir, _, _ = world
    stamp = {n: (workdir / n / "final" / "params").stat().st_mtime_ns for n in SFT}
    parser = argparse.ArgumentParser()
    cli.configure("train", parser)
    assert cli.main("train", parser.parse_args(["--config", str(CONFIG), *overrides(workdir, data)])) == 0
    out = capsys.readouterr().out
    assert out.count('"status": "skipped: finished"') == 3
    assert stamp == {n: (workdir / n / "final" / "params").stat().st_mtime_ns for n in SFT}


def test_lost_final_is_rebuilt_from_the_stage_checkpoint(world):
    cfg, _, workdir, _, _ = world
    before = _params(cfg, workdir / "stage2" / "final")
    shutil.rmtree(workdir / "stage2" / "final")
    outcomes = curriculum.run(cfg)
    assert [o.status for o in outcomes[:3]] == ["skipped: finished", "trained", "skipped: finished"]
    assert len(read_jsonl(workdir / "stage2" / "metrics.jsonl")) == 2  # no step ran again
    after = _params(cfg, workdir / "stage2" / "final")
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


@pytest.mark.parametrize("damage", ["model_config.json", "params/_METADATA"])
def test_damaged_final_is_set_aside_and_rebuilt(world, damage):
    cfg, _, workdir, _, _ = world
    before = _params(cfg, workdir / "stage1" / "final")
    (workdir / "stage1" / "final" / damage).write_text("{truncated")
    outcomes = curriculum.run(cfg)
    assert [o.status for o in outcomes[:3]] == ["trained", "skipped: finished", "skipped: finished"]
    assert (workdir / "stage1" / ("final.damaged" if damage == "model_config.json" else "final.damaged-1") / damage).read_text() == "{truncated"
    after = _params(cfg, workdir / "stage1" / "final")
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


def test_two_local_processes_match_one(world):
    _, _, workdir, _, (returncode, log, local_dir) = world
    assert returncode == 0, log
    assert (local_dir / "stage1" / "final" / "params").is_dir()
    two = [r["loss"] for r in read_jsonl(local_dir / "stage1" / "metrics.jsonl")]  # written by process 0
    one = [r["loss"] for r in read_jsonl(workdir / "stage1" / "metrics.jsonl")]
    np.testing.assert_allclose(two, one, atol=1e-5, rtol=0)
