"""What a training run reports: JSONL + TensorBoard (+ optional Weights & Biases) scalars, a progress
bar, and an MFU estimate.

`metrics.jsonl` keeps the loop's flat names (loss, lr, reward, eval/...); TensorBoard and W&B get
them grouped: `train/` (what every step reports), `grpo/` (what only the GRPO step reports:
rewards, KL, clip fraction, rollout speed), `eval/` (evaluations); a name with a `/` keeps its group.

MFU = model FLOPs (`models/qwen25_vl/flops.py`, counted by each step kind) / (time · devices ·
peak), with the dense bf16 peak of the device kind; unknown kinds (and CPUs) give None.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
from tqdm.auto import tqdm

from ladder_jax.paths import as_path


# Dense bf16 peak FLOP/s per device, matched by substring of `device.device_kind` (first match wins).
PEAK_FLOPS = (
    ("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12), ("A100", 312e12),
    ("L40S", 362e12), ("L4", 121e12), ("TPU v4", 275e12), ("TPU v5 lite", 197e12), ("TPU v5e", 197e12),
    ("TPU v5", 459e12), ("TPU v6 lite", 918e12), ("TPU v6e", 918e12),
)


def peak_flops(device=None) -> float | None:
    kind = (device or jax.devices()[0]).device_kind
    return next((peak for name, peak in PEAK_FLOPS if name in kind), None)


def mfu(flops: float, seconds: float, devices: int | None = None, device=None) -> float | None:
    peak = peak_flops(device)
    if peak is None or seconds <= 0:
        return None
    return flops / (seconds * (devices or jax.device_count()) * peak)


# What the loop logs for every step kind (loop._Window.scalars); anything else a step returns is its own.
TRAIN_SCALARS = frozenset({"loss", "lr", "grad_norm", "label_tokens", "tokens_per_s", "mfu", "step_time_s",
                           "data_wait_s", "skipped_steps"})


def tag(name: str, group: str = "train") -> str:
    """The grouped TensorBoard / W&B name of a metric: train/ for the loop's own, `group`/ for a
    step kind's own, unchanged when it already names a group (eval/...)."""
    if "/" in name:
        return name
    return f"train/{name}" if name in TRAIN_SCALARS else f"{group}/{name}"


class WandbError(RuntimeError):
    pass


def wandb_run(logdir, project: str, config: dict | None = None):
    """A W&B run for one stage's `logdir` (WORKDIR/STAGE): named WORKDIR-NAME/STAGE, grouped by the
    work directory, with an id fixed by the path so a resumed stage continues its own run. wandb
    is an optional extra, imported only here; WANDB_MODE=offline writes under logdir/wandb."""
    try:
        import wandb  # noqa: PLC0415 (optional dependency)
    except ImportError:
        raise WandbError("config.logging.wandb_project is set but wandb is not installed: "
                         "pip install 'ladder-jax[wandb]' (or leave wandb_project empty)") from None
    logdir = Path(logdir)
    run_id = hashlib.sha1(str(logdir.absolute()).encode()).hexdigest()[:16]
    return wandb.init(project=project, name=f"{logdir.parent.name}/{logdir.name}", group=logdir.parent.name,
                      id=run_id, resume="allow", dir=str(logdir), config=config or {})


class MetricsWriter:
    """Scalars per step to `metrics.jsonl`, TensorBoard event files and, with `wandb_project`, a
    W&B run (process 0 only). `group` names the step kind's own metrics (see `tag`).

    A run (re)starting at `resume_step` (0: from scratch) drops records of later steps, written by
    a run that was interrupted, from the JSONL and purges them from TensorBoard: each step appears
    once there (W&B keeps what it was sent; it ignores steps at or below ones it has)."""

    def __init__(self, logdir, resume_step: int = 0, tensorboard: bool = True, wandb_project: str = "",
                 group: str = "train", config: dict | None = None):
        self.active = jax.process_index() == 0
        self.path = as_path(logdir) / "metrics.jsonl"
        self.group = group
        self.tb = self.wandb = None
        if not self.active:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            keep = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
            self.path.write_text("".join(line + "\n" for line in keep))
        if tensorboard:
            from tensorboardX import SummaryWriter  # noqa: PLC0415 (optional dependency)
            self.tb = SummaryWriter(str(as_path(logdir) / "tensorboard"), purge_step=resume_step + 1)
        if wandb_project:
            self.wandb = wandb_run(logdir, wandb_project, config)

    def write(self, step: int, scalars: dict) -> None:
        if not self.active:
            return
        clean = {k: (None if v is None else float(v)) for k, v in scalars.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **clean}) + "\n")
        grouped = {tag(k, self.group): v for k, v in clean.items() if v is not None}
        if self.tb is not None:
            for k, v in grouped.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log(grouped, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class Progress:
    """tqdm bar over steps with loss, tokens/s and (tqdm's) ETA; silent on processes other than 0."""

    def __init__(self, total: int, start: int, enabled: bool = True):
        self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True,
                        disable=not enabled or jax.process_index() != 0)

    def update(self, loss: float, tokens_per_s: float) -> None:
        self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
