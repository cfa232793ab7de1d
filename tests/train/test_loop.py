"""The loop: exact resume after SIGKILL, clean save-and-exit on SIGTERM, metrics files, eval hook,
non-finite steps skipped then stopped, and bad configs rejected before any compute."""

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ladder_jax.train.checkpoint import Checkpointer
from ladder_jax.train.loop import LoopConfig, NonFiniteLossError, TrainConfigError, train
from ladder_jax.train.telemetry import read_jsonl
from tests.train.tiny import CFG, BatchIterator, fresh_state, make_batch, reference_losses, run, tiny_step

ROOT = Path(__file__).resolve().parents[2]


def script_env(cache_dir) -> dict:
    """Subprocesses share a persistent compilation cache: only the first one compiles the step."""
    return dict(os.environ, PYTHONPATH=str(ROOT), JAX_COMPILATION_CACHE_DIR=str(cache_dir),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def start_script(workdir, cache_dir, *args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.train.tiny", "--workdir", str(workdir), "--steps", "6", "--devices", "1", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=script_env(cache_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_killed_then_preempted_run_reproduces_uninterrupted_losses(tmp_path):
    work, cache = tmp_path / "run", tmp_path / "jax_cache"
    killed = start_script(work, cache, "--kill-at", "3")
    reference = reference_losses(6)  # computed here while the subprocess runs
    _, err = killed.communicate(timeout=240)
    assert killed.returncode == -signal.SIGKILL, err[-2000:]
    assert Checkpointer(work / "checkpoints").latest_step() == 2

    preempted = start_script(work, cache, "--term-at", "3")  # resumes at 2; SIGTERM after step 3
    out, err = preempted.communicate(timeout=240)
    assert preempted.returncode == 0, err[-2000:]
    assert '"step": 3, "preempted": true' in out
    assert Checkpointer(work / "checkpoints").latest_step() == 3

    result = run(work, 6, tiny_step()[1])  # this process resumes at 3 and finishes
    assert (result.step, result.preempted) == (6, False)
    records = read_jsonl(work / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert tuple(r["loss"] for r in records) == reference  # bit-exact on CPU
    assert list((work / "tensorboard").glob("events.out.tfevents.*"))


def test_metrics_eval_hook_and_finished_run(tmp_path):
    calls = []
    result = run(tmp_path, 4, tiny_step()[1], hook=lambda step, state: calls.append(step) or {"score": step / 10},
                 checkpoint_every=4)
    assert calls == [1, 2, 3, 4] and result.step == 4
    records = read_jsonl(tmp_path / "metrics.jsonl")
    train_rows = [r for r in records if "loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    assert all(r["tokens_per_s"] > 0 and r["mfu"] is None and r["data_wait_s"] >= 0 for r in train_rows)
    assert [r["eval/score"] for r in records if "eval/score" in r] == [0.1, 0.2, 0.3, 0.4]
    again = run(tmp_path, 4, tiny_step()[1])  # already finished: nothing to do
    assert again.step == 4 and len(read_jsonl(tmp_path / "metrics.jsonl")) == len(records)


class _Poisoned(BatchIterator):
    """Batches whose pixels are NaN at the given (1-based) steps."""

    def __init__(self, bad_steps):
        super().__init__(CFG)
        self.bad_steps = bad_steps

    def __next__(self):
        batch = dict(super().__next__())
        if self.position in self.bad_steps:
            batch["pixel_values"] = np.full_like(batch["pixel_values"], np.nan)
        return batch


def _loop_cfg(workdir, steps, **kw):
    return LoopConfig(workdir=str(workdir), total_steps=steps, batch_size=8, log_every=1, checkpoint_every=100,
                      progress=False, tensorboard=False, **kw)


def test_nonfinite_steps_are_skipped_counted_then_stop(tmp_path):
    ts = tiny_step()[1]
    result = train(ts, fresh_state(ts), _Poisoned({2}), _loop_cfg(tmp_path / "a", 3, max_nonfinite=2), CFG)
    assert [r["skipped_steps"] for r in read_jsonl(tmp_path / "a" / "metrics.jsonl")] == [0, 1, 1]
    assert result.step == 3
    with pytest.raises(NonFiniteLossError, match="2 consecutive steps up to step 3"):
        train(ts, fresh_state(ts), _Poisoned({2, 3}), _loop_cfg(tmp_path / "b", 5, max_nonfinite=2), CFG)


def test_a_run_whose_last_step_is_nonfinite_does_not_end_trained(tmp_path):
    ts = tiny_step()[1]
    with pytest.raises(NonFiniteLossError, match="last 1 step\\(s\\).*weights are those of step 2"):
        train(ts, fresh_state(ts), _Poisoned({3}), _loop_cfg(tmp_path, 3, max_nonfinite=5), CFG)
    with pytest.raises(NonFiniteLossError, match="not taken as trained"):  # resuming the finished run says so again
        train(ts, fresh_state(ts), _Poisoned(set()), _loop_cfg(tmp_path, 3, max_nonfinite=5), CFG)


def test_bad_config_fails_before_any_compute(tmp_path):
    ts = tiny_step(2, 2, 2, micro=2)[1]  # built, never compiled: validation comes first
    with pytest.raises(TrainConfigError, match="multiple of 8"):
        train(ts, None, iter(()), dataclasses.replace(_loop_cfg(tmp_path, 3), batch_size=12), CFG)
    bad = dict(make_batch(CFG, 0))
    del bad["second_per_grid_ts"]
    with pytest.raises(TrainConfigError, match="missing \\['second_per_grid_ts'\\]"):
        train(tiny_step()[1], fresh_state(tiny_step()[1]), iter([bad]), _loop_cfg(tmp_path / "b", 3), CFG)
