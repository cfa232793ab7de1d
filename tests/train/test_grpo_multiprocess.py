"""Stage 3 across processes: two local processes (jax.distributed on 127.0.0.1, gloo collectives,
one CPU device each) draw the same rollouts and get the same rewards, losses, KL and gradient
norms as one process with two devices, step for step (two micro-batches, so the update's scan and
its statistics' reductions run on both processes)."""

import json
import os
import subprocess
import sys

import numpy as np

from ladder_jax.train.telemetry import read_jsonl
from tests.train.test_multiprocess import ROOT, _free_port, _tail
from tests.xla_env import xla_flags

STEPS = 2
COMPARED = ("loss", "kl", "grad_norm", "clip_fraction", "ratio_max_dev", "reward_total", "reward_format",
            "reward_accuracy", "completion_length", "label_tokens")


def _start(workdir, devices: int, process: tuple[int, int, int] | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS=xla_flags(devices))
    argv = [sys.executable, "-m", "tests.train.grpo_tiny", "--workdir", str(workdir), "--steps", str(STEPS),
            "--micro-batches", "2"]
    if process:
        port, count, index = process
        argv += ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(count), "--process-id", str(index)]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs) -> list[str]:
    try:
        outputs = [p.communicate(timeout=900) for p in procs]
    finally:
        for p in procs:
            p.kill()
    failed = [f"process {i} exited {p.returncode}:\n{_tail(err)}" for i, (p, (_, err)) in enumerate(zip(procs, outputs))
              if p.returncode != 0]
    assert not failed, "\n".join(failed)
    return [out for out, _ in outputs]


def _rollouts(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def test_two_processes_match_one(tmp_path):
    port = _free_port()
    procs = [_start(tmp_path / "two", 1, (port, 2, i)) for i in range(2)] + [_start(tmp_path / "one", 2)]
    first, _, single = _finish(procs)
    two, one = _rollouts(first), _rollouts(single)
    assert (two["processes"], two["devices"], one["processes"], one["devices"]) == (2, 2, 1, 2)
    assert len(two["rollouts"]) == STEPS and two["rollouts"] == one["rollouts"]
    assert np.asarray(one["rollouts"]).shape == (STEPS, 16, 12)  # 4 prompts x 4 samples, 12 new tokens
    a, b = read_jsonl(tmp_path / "two" / "metrics.jsonl"), read_jsonl(tmp_path / "one" / "metrics.jsonl")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, STEPS + 1))
    for key in COMPARED:
        np.testing.assert_allclose([r[key] for r in a], [r[key] for r in b], rtol=1e-5, atol=1e-7, err_msg=key)
    assert all(r["kl"] > 0 for r in b)  # the reference differs from the policy: the KL term is live
