"""A stop signal (SIGTERM) during training: `ladder-jax demo` saves, evaluates nothing and exits 3
with "interrupted; run the same command again to resume"; `ladder-jax train` on the run's own
config.json resumes from that checkpoint and, stopped again, says the same."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from tests.xla_env import xla_flags

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--config.demo.scenes=12", "--config.demo.vision_pretrain.steps=2", "--config.stages.stage1.steps=400", "--config.stages.stage1.log_every=1",
        "--config.stages.stage2.steps=1", "--config.stages.cold_start.steps=0", "--config.stages.stage3.steps=0",
        "--config.demo.grounding_items=4", "--config.demo.spatial_items=4", "--config.demo.hf_check_items=2"]
MESSAGE = "interrupted; run the same command again to resume"


def _stop_after_a_step(argv, metrics: Path, steps_before: int = 0) -> tuple[int, str]:
    """Runs `python -m ladder_jax.cli ARGV`, sends SIGTERM once `metrics` has a step beyond `steps_before`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1))
    proc = subprocess.Popen([sys.executable, "-m", "ladder_jax.cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.exists() and any(json.loads(line)["step"] > steps_before
                                        for line in metrics.read_text().splitlines() if line.strip()):
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.5)
        _, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    return proc.returncode, err


def test_demo_and_train_exit_cleanly_after_a_stop_signal(tmp_path):
    out = tmp_path / "demo"
    stage1 = out / "ladder" / "stage1"
    code, err = _stop_after_a_step(["demo", "--quick", "--out", str(out), *TINY], stage1 / "metrics.jsonl")
    assert code == 3, err[-3000:]
    assert err.strip().splitlines()[-1] == f"ladder-jax demo: interrupted in stage1 (saved); run the same command again to resume"
    assert "Traceback" not in err and "model_config.json" not in err
    assert not (stage1 / "final").exists() and not list((out / "evals").glob("*.json"))
    saved = sorted(int(p.name) for p in (stage1 / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and saved[-1] < 400
    assert "ladder_jax.train.curriculum: stage1: 400 steps" in err  # our INFO lines reach the terminal

    code, err = _stop_after_a_step(["train", "--config", str(out / "ladder" / "config.json")],
                                   stage1 / "metrics.jsonl", steps_before=saved[-1])
    assert code == 3, err[-3000:]
    assert err.strip().splitlines()[-1] == f"ladder-jax train: {MESSAGE}"
    resumed = sorted(int(p.name) for p in (stage1 / "checkpoints").iterdir() if p.name.isdigit())
    assert resumed[-1] > saved[-1] and not (stage1 / "final").exists()
