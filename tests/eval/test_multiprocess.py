"""`ladder-jax eval` on two local processes (jax.distributed on 127.0.0.1, gloo collectives, one
CPU device each): each decodes and generates its share of the items (3: process 1 has none left
for the second batch and fills its row with a placeholder), and process 0 writes what one process
writes."""

import os
import subprocess
import sys

from tests.eval.results import assert_same_result, raw_outputs, runner_result
from tests.train.test_grpo_multiprocess import _finish
from tests.train.test_multiprocess import ROOT, _free_port
from tests.xla_env import xla_flags


def test_two_processes_write_what_one_writes(model, model_dir, data, tmp_path):
    args = ["eval", "--model", str(model_dir), "--benchmark", "vsi", "--data", str(data["vsi"]), "--limit", "3",
            "--batch-size", "2", "--max-new-tokens", "3", "--num-frames", "4", "--min-pixels", "784",
            "--max-pixels", "3136"]
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
    procs = [subprocess.Popen([sys.executable, "-m", "ladder_jax.cli", *args, "--out", str(tmp_path / "two"),
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in range(2)]
    try:
        one = runner_result(model, model_dir, "vsi", data["vsi"], tmp_path / "one", batch_size=2, max_new_tokens=3,
                            num_frames=4, limit=3)  # while the two run
    except BaseException:
        for p in procs:
            p.kill()
        raise
    first, second = _finish(procs)
    assert "3 scored, 9 skipped" in first and "scored" not in second  # process 0 prints and writes
    assert_same_result(tmp_path / "two", one)
    assert len(set(raw_outputs(one))) > 1  # the answers differ, so rows were not mixed up unnoticed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # the staging folders are gone
