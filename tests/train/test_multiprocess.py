"""Two local processes (jax.distributed on 127.0.0.1, gloo collectives, one CPU device each) train
the same global batches as one process and get the same per-step losses."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from ladder_jax.train.metrics import read_jsonl
from tests.train.tiny import reference_losses

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), XLA_FLAGS="--xla_force_host_platform_device_count=1")
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tests.train.tiny", "--workdir", str(tmp_path), "--steps", str(STEPS),
         "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    reference = reference_losses(6)[:STEPS]  # computed here while the two processes run
    try:
        outputs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    losses = [r["loss"] for r in read_jsonl(tmp_path / "metrics.jsonl")]  # written by process 0
    np.testing.assert_allclose(losses, reference, atol=1e-5, rtol=0)
    step_dir = tmp_path / "checkpoints" / str(STEPS) / "data"
    assert sorted(p.name for p in step_dir.glob("*.json")) == ["process_0-of-2.json", "process_1-of-2.json"]
