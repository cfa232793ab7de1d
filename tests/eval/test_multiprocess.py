"""`ladder-jax eval` on two local processes (jax.distributed on 127.0.0.1, gloo collectives, one
CPU device each): each reads and generates its share of the items, one of them a batch whose only
item fails to decode, and process 0 writes what one process writes."""

import os
import subprocess
import sys

from tests.eval.results import assert_same_result, runner_result
from tests.train.test_multiprocess import ROOT, _free_port, _tail


def test_two_processes_write_what_one_writes(model, model_dir, data, tmp_path):
    args = ["eval", "--model", str(model_dir), "--benchmark", "cvbench", "--data", str(data["cvbench"]),
            "--batch-size", "2", "--max-new-tokens", "3", "--min-pixels", "784", "--max-pixels", "3136"]
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
    procs = [subprocess.Popen([sys.executable, "-m", "ladder_jax.cli", *args, "--out", str(tmp_path / "two"),
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in range(2)]
    try:
        one = runner_result(model, model_dir, "cvbench", data["cvbench"], tmp_path / "one", batch_size=2,
                            max_new_tokens=3)  # while the two run
        outputs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    failed = [f"process {i} exited {p.returncode}:\n{_tail(err)}" for i, (p, (_, err)) in enumerate(zip(procs, outputs))
              if p.returncode != 0]
    assert not failed, "\n".join(failed)
    assert "3 scored, 3 skipped" in outputs[0][0] and "scored" not in outputs[1][0]  # process 0 prints and writes
    assert_same_result(tmp_path / "two", one)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # the staging folders are gone
