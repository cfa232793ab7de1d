"""launch/tpu_pod.sh with a stand-in `gcloud` on PATH: the runtime image follows the accelerator,
`install` makes a Python 3.11 environment on every worker, `train` runs `python -m ladder_jax.cli`
from it on every worker, `logs` reads any worker, `stop` signals the run, `import` runs import-hf on
worker 0's CPU. Every command sent over ssh must parse as bash."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.launch import standins

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "launch" / "tpu_pod.sh"


def pod(tmp_path, *args, **env):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    standins.install(bin_dir, ("gcloud",), sys.executable)
    log.unlink(missing_ok=True)
    done = subprocess.run(["bash", str(SCRIPT), *args], env=standins.environment(bin_dir, log, **env),
                          capture_output=True, text=True, cwd=ROOT)
    calls = standins.calls(log)
    for c in calls:
        assert c["syntax"] in (None, "ok"), c
    return done, calls


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def ssh_command(call: dict) -> str:
    assert call["args"][:4] == ["compute", "tpus", "tpu-vm", "ssh"]
    return option(call["args"], "--command")


@pytest.mark.parametrize("accelerator, runtime", [
    ("v5litepod-16", "v2-alpha-tpuv5-lite"), ("v5p-32", "v2-alpha-tpuv5"), ("v6e-8", "v2-alpha-tpuv6e"),
    ("v4-32", "tpu-ubuntu2204-base")])
def test_create_picks_the_runtime_of_the_accelerator(tmp_path, accelerator, runtime):
    done, calls = pod(tmp_path, "create", ACCELERATOR=accelerator, TPU_NAME="t1", ZONE="z1")
    assert done.returncode == 0, done.stderr
    (call,) = calls
    assert call["args"][:5] == ["compute", "tpus", "tpu-vm", "create", "t1"]
    assert option(call["args"], "--accelerator-type") == accelerator and option(call["args"], "--version") == runtime
    assert option(call["args"], "--zone") == "z1" and "--spot" not in call["args"]


def test_an_explicit_version_wins_and_an_unknown_accelerator_needs_one(tmp_path):
    _, (call,) = pod(tmp_path, "create", ACCELERATOR="v5litepod-16", VERSION="custom", SPOT="1", PROJECT="p")
    assert option(call["args"], "--version") == "custom" and "--spot" in call["args"]
    assert option(call["args"], "--project") == "p"
    done, calls = pod(tmp_path, "create", ACCELERATOR="v9-8")
    assert done.returncode != 0 and "set VERSION" in done.stderr and calls == []


def test_install_makes_a_python_311_environment_on_every_worker(tmp_path):
    done, calls = pod(tmp_path, "install")
    assert done.returncode == 0, done.stderr
    scp, ssh = calls
    assert scp["args"][3] == "scp" and "--worker=all" in scp["args"]
    command = ssh_command(ssh)
    assert "--worker=all" in ssh["args"]
    assert "uv venv --allow-existing --python 3.11 $HOME/.venv-ladder-jax" in command
    assert "-e '.[tpu]'" in command and "$HOME/.venv-ladder-jax/bin/python" in command


def test_train_runs_the_module_from_the_environment_on_every_worker(tmp_path):
    done, calls = pod(tmp_path, "train", "configs/q.py:tpu-v5e-16", "--config.workdir=gs://b/run one")
    assert done.returncode == 0, done.stderr
    (ssh,) = calls
    command = ssh_command(ssh)
    assert "--worker=all" in ssh["args"]
    assert ("$HOME/.venv-ladder-jax/bin/python -m ladder_jax.cli train --config configs/q.py:tpu-v5e-16 "
            "--config.workdir=gs://b/run\\ one --config.distributed=auto") in command
    assert "nohup" in command and "echo $! > train.pid" in command
    assert "ladder-jax train" not in command  # nothing relies on PATH over ssh


def test_logs_of_any_worker_and_of_all(tmp_path):
    _, (ssh,) = pod(tmp_path, "logs", "3")
    assert "--worker=3" in ssh["args"] and "tail -n 100 -f ladder_jax/train.log" in ssh_command(ssh)
    _, (ssh,) = pod(tmp_path, "logs")
    assert "--worker=0" in ssh["args"]
    _, (ssh,) = pod(tmp_path, "logs", "all")
    assert "--worker=all" in ssh["args"] and "-f" not in ssh_command(ssh).split()


def test_stop_sends_sigterm_to_the_run_on_every_worker(tmp_path):
    done, (ssh,) = pod(tmp_path, "stop")
    assert done.returncode == 0 and "--worker=all" in ssh["args"]
    assert "kill -TERM $(cat train.pid)" in ssh_command(ssh)


def test_import_runs_import_hf_on_worker_0_on_its_cpu(tmp_path):
    _, (ssh,) = pod(tmp_path, "import", "/data/Qwen2.5-VL-3B-Instruct", "gs://b/qwen3b")
    assert "--worker=0" in ssh["args"]
    assert ("JAX_PLATFORMS=cpu $HOME/.venv-ladder-jax/bin/python -m ladder_jax.cli import-hf "
            "/data/Qwen2.5-VL-3B-Instruct gs://b/qwen3b") in ssh_command(ssh)


def test_usage(tmp_path):
    done, calls = pod(tmp_path)
    assert done.returncode == 2 and "install" in done.stderr and "stop" in done.stderr and calls == []
    done, calls = pod(tmp_path, "train")
    assert done.returncode == 2 and calls == []
