"""Two local processes (jax.distributed on 127.0.0.1, gloo collectives, one CPU device each) train
the same global batches as one process and get the same per-step losses: when the global batch is
the whole data set, and when each process pads its own rows to its own (differing) buckets and the
processes agree on shapes before building the global arrays."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ladder_jax.train.telemetry import read_jsonl
from tests.train.tiny import reference_losses
from tests.xla_env import xla_flags

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A persistent compilation cache: both data sets give one global shape, so the second pair of
    processes loads the step the first pair compiled."""
    return tmp_path_factory.mktemp("jax_cache")


def _start_two(workdir, data: str, cache_dir) -> list[subprocess.Popen]:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), XLA_FLAGS=xla_flags(1),
               JAX_COMPILATION_CACHE_DIR=str(cache_dir), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    return [subprocess.Popen(
        [sys.executable, "-m", "tests.train.tiny", "--workdir", str(workdir), "--steps", str(STEPS), "--data", data,
         "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]


def _tail(err: str, chars: int = 2000) -> str:
    """The end of a process's stderr without the native stack-trace lines."""
    return "\n".join(line for line in err.splitlines() if not line.lstrip().startswith("@ 0x"))[-chars:]


def _finish(procs) -> list[dict]:
    """Each process's closing JSON line, once both exited cleanly."""
    try:
        outputs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    failed = [f"process {i} exited {p.returncode}:\n{_tail(err)}" for i, (p, (_, err)) in enumerate(zip(procs, outputs))
              if p.returncode != 0]
    assert not failed, "\n".join(failed)  # every process's stderr: the first to fail says why
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


def test_two_processes_match_one(tmp_path, cache_dir):
    procs = _start_two(tmp_path, "fixed", cache_dir)
    reference = reference_losses(6)[:STEPS]  # computed here while the two processes run
    _finish(procs)
    losses = [r["loss"] for r in read_jsonl(tmp_path / "metrics.jsonl")]  # written by process 0
    np.testing.assert_allclose(losses, reference, atol=1e-5, rtol=0)
    step_dir = tmp_path / "checkpoints" / str(STEPS) / "data"
    assert sorted(p.name for p in step_dir.glob("*.json")) == ["process_0-of-2.json", "process_1-of-2.json"]


def test_processes_with_their_own_buckets_match_one(tmp_path, cache_dir):
    procs = _start_two(tmp_path, "buckets", cache_dir)
    reference = reference_losses(STEPS, "buckets")
    first, second = (out["local_shapes"] for out in _finish(procs))
    assert len(first) == len(second) == STEPS
    assert any(a != b for a, b in zip(first, second)), "the processes' own buckets never differed: no test"
    losses = [r["loss"] for r in read_jsonl(tmp_path / "metrics.jsonl")]
    np.testing.assert_allclose(losses, reference, atol=1e-5, rtol=0)
