"""launch/slurm_gpu.sbatch with stand-in `srun` / `scontrol` on PATH: one task per node with the
node's 8 GPUs, a stop signal before the time limit, `python -m ladder_jax.cli train` with the
config and overrides, and a requeue exactly when the run stopped and saved (status 3)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.launch import standins

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "launch" / "slurm_gpu.sbatch"


def directives() -> dict[str, str]:
    out = {}
    for line in SCRIPT.read_text().splitlines():
        if line.startswith("#SBATCH "):
            key, _, value = line.split(maxsplit=1)[1].partition("=")
            out[key] = value
    return out


def test_directives_one_task_per_node_all_gpus_signal_and_requeue():
    d = directives()
    assert d["--ntasks-per-node"] == "1" and d["--gpus-per-node"] == "8"
    signal, _, seconds = d["--signal"].partition("@")
    assert signal == "TERM" and int(seconds) >= 60  # every task (not B:, the batch shell only), early enough to save
    assert "--requeue" in d and d["--open-mode"] == "append"


def _sbatch(tmp_path, status: int, *args, **env):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    standins.install(bin_dir, ("srun", "scontrol"), sys.executable)
    environ = standins.environment(bin_dir, log, SLURM_JOB_ID="4242", SLURM_JOB_NUM_NODES="2",
                                   STANDIN_EXIT_SRUN=str(status), STANDIN_ENV="XLA_PYTHON_CLIENT_MEM_FRACTION", **env)
    done = subprocess.run(["bash", str(SCRIPT), *args], env=environ, capture_output=True, text=True, cwd=tmp_path)
    return done, standins.calls(log)


@pytest.mark.parametrize("status, requeued", [(0, False), (3, True), (1, False)])
def test_srun_runs_the_module_and_requeues_only_after_a_save(tmp_path, status, requeued):
    done, calls = _sbatch(tmp_path, status, "configs/x.py:gpu-8xh100", "--config.mesh.fsdp=16")
    assert done.returncode == status, done.stderr
    srun = calls[0]
    assert srun["program"] == "srun"
    assert srun["args"][-8:] == ["python", "-m", "ladder_jax.cli", "train", "--config", "configs/x.py:gpu-8xh100",
                                 "--config.mesh.fsdp=16", "--config.distributed=auto"]
    assert "--ntasks-per-node=1" in srun["args"] and "--kill-on-bad-exit=1" in srun["args"]
    assert srun["env"]["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.92"
    assert [c["args"] for c in calls[1:]] == ([["requeue", "4242"]] if requeued else [])


def test_requeue_can_be_turned_off_and_python_chosen(tmp_path):
    done, calls = _sbatch(tmp_path, 3, "c.py", REQUEUE="0", PYTHON="/opt/venv/bin/python")
    assert done.returncode == 3
    assert [c["program"] for c in calls] == ["srun"] and "/opt/venv/bin/python" in calls[0]["args"]


def test_missing_config_is_a_usage_error(tmp_path):
    done, calls = _sbatch(tmp_path, 0)
    assert done.returncode != 0 and "usage" in done.stderr and calls == []
