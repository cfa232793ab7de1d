"""The training loop: feed batches to the jitted step, log, checkpoint, evaluate, resume, stop.

Started again with the same work directory, a run restores the latest checkpoint (params,
optimizer state, rng, counters, data-iterator position) and continues with the very next batch,
so its per-step losses are those of a run that was never interrupted. SIGTERM (a preemption
notice) saves at the next step boundary and returns with `preempted=True`; with several processes
they agree after every step whether any got one, so all stop after the same step.

Per step the loop waits for the step's metrics (a few scalars): non-finite steps are counted
exactly, and the data-wait time it reports is the time spent in `next(data)`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Callable, Iterator

import jax
import numpy as np

from ladder_jax.data.collate import padded_shapes, repad
from ladder_jax.models.qwen25_vl.config import ModelConfig
from ladder_jax.parallel.distributed import agreed_shapes, any_process, global_batch
from ladder_jax.parallel.mesh import batch_split_error
from ladder_jax.train import telemetry
from ladder_jax.train.checkpoint import Checkpointer, StopSignal
from ladder_jax.train.compiled_step import CompiledStep
from ladder_jax.paths import as_path

log = logging.getLogger(__name__)

# Host-side keys a pipeline batch may carry beside its arrays (tuples of per-row strings). A step
# receives those named in its `host_keys` (GRPO: answers, question types); the rest are dropped.
HOST_KEYS = ("ids", "answers", "question_types")


class TrainConfigError(ValueError):
    """A loop setting that cannot work with this mesh / step; raised before any compute."""


class NonFiniteLossError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    workdir: str
    total_steps: int
    batch_size: int  # global rows per step (all processes, all micro-batches)
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    eval_every: int = 0  # 0: never
    max_nonfinite: int = 5  # consecutive skipped steps before the run stops
    seed: int = 0
    tensorboard: bool = True
    progress: bool = True
    wandb_project: str = ""  # "": no Weights & Biases run (the curriculum sets config.logging.wandb_project)

    def __post_init__(self):
        if self.total_steps < 1 or self.batch_size < 1:
            raise ValueError(f"total_steps and batch_size must be >= 1, got {self.total_steps}, {self.batch_size}")
        if min(self.log_every, self.checkpoint_every, self.max_nonfinite, self.keep_checkpoints) < 1 or self.eval_every < 0:
            raise ValueError("log_every, checkpoint_every, keep_checkpoints and max_nonfinite must be >= 1, "
                             f"eval_every >= 0; got {self.log_every}, {self.checkpoint_every}, {self.keep_checkpoints}, "
                             f"{self.max_nonfinite}, {self.eval_every}")


@dataclasses.dataclass
class TrainResult:
    step: int
    state: object
    opt_state: object
    preempted: bool
    last_metrics: dict


def validate(cfg: LoopConfig, train_step: CompiledStep) -> None:
    """The batch must split over the step's mesh and the processes (LoopConfig checks its own ranges)."""
    shape = dict(train_step.mesh.shape)
    error = batch_split_error(cfg.batch_size, train_step.micro_batches,
                              (shape["data"], shape["fsdp"], shape["tensor"]), jax.process_count())
    if error:
        raise TrainConfigError(f"{error} (mesh {shape})")


def check_batch(batch: dict, local_rows: int, shardings: dict, host_keys=()) -> None:
    """The agreed batch contract, checked on the host before the step sees it: exactly the arrays
    the step has shardings for (SFT: with labels; GRPO prompts: without), plus host-side keys."""
    keys = set(shardings)
    missing, extra = keys - set(batch) - set(host_keys), set(batch) - keys - set(HOST_KEYS)
    missing |= set(host_keys) - set(batch)
    if missing or extra:
        raise TrainConfigError(f"batch keys differ from the contract: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for key in sorted(keys) + sorted(k for k in HOST_KEYS if k in batch):
        shape = np.shape(batch[key])
        ndim = len(shardings[key].spec) if key in shardings else 1
        if len(shape) != ndim or shape[0] != local_rows:
            raise TrainConfigError(f"batch[{key!r}] has shape {shape}; expected {ndim} dims with {local_rows} rows "
                                   f"(batch_size / processes)")


def step_batch(local: dict, train_step: CompiledStep, pad_id: int, host_keys=()) -> dict:
    """Global arrays for the step's sharded keys, plus this process's host-side values it asks for.

    Each process's pipeline padded its rows to its own buckets; the arrays are padded further to
    the shapes all processes agree on (the largest of each), the step's batch_mode saying which
    side text pads on, so every process builds the global arrays with one shape."""
    arrays = {k: local[k] for k in train_step.batch_shardings}
    arrays = repad(arrays, agreed_shapes(padded_shapes(arrays)), train_step.batch_mode, pad_id)
    return global_batch(arrays, train_step.batch_shardings) | {k: local[k] for k in host_keys}


class _Window:
    """Sums over the steps since the last log line. tokens/s counts non-padding input tokens (with
    several processes: this process's count times the process count). Metrics a step returns
    beyond the common ones (GRPO's rewards, KL, ...) are logged as their mean over the window."""

    COMMON = ("loss", "tokens", "grad_norm", "lr", "skipped")

    def __init__(self):
        self.steps = self.loss_tokens = self.tokens = self.inputs = self.flops = self.seconds = self.wait = 0.0
        self.extra = {}

    def add(self, m: dict, inputs: int, flops: float, seconds: float, wait: float) -> None:
        if not m["skipped"]:
            self.loss_tokens += m["loss"] * m["tokens"]
            self.tokens += m["tokens"]
        for key in m.keys() - set(self.COMMON):
            self.extra[key] = self.extra.get(key, 0.0) + m[key]
        self.steps += 1
        self.inputs += inputs
        self.flops += flops
        self.seconds += seconds
        self.wait += wait

    def scalars(self, m: dict, skipped_total: int) -> dict:
        return {"loss": self.loss_tokens / self.tokens if self.tokens else float("nan"),
                "lr": m["lr"], "grad_norm": m["grad_norm"], "label_tokens": self.tokens,
                "tokens_per_s": self.inputs / self.seconds, "mfu": telemetry.mfu(self.flops, self.seconds),
                "step_time_s": self.seconds / self.steps, "data_wait_s": self.wait / self.steps,
                "skipped_steps": skipped_total} | {k: v / self.steps for k, v in sorted(self.extra.items())}


def _start(train_step: CompiledStep, state, ckpt: Checkpointer, cfg: LoopConfig, set_data_state):
    """(step, state, opt_state, rng, meta): the latest checkpoint's, or a fresh start."""
    rng = jax.random.key(cfg.seed)
    steps = ckpt.steps()
    if not steps:
        return 0, state, train_step.init_opt_state(state), rng, {"skipped_total": 0, "nonfinite_run": 0}
    abstract_opt = jax.eval_shape(train_step.tx.init, state)
    problems = []
    for step in steps:  # newest first: a corrupt checkpoint falls back to the one before it
        try:
            r = ckpt.restore(step, state, abstract_opt, rng, train_step.state_shardings, train_step.opt_shardings)
            if r.data_state is not None:
                if set_data_state is None:
                    raise TrainConfigError("the checkpoint holds a data-iterator state but the data has no set_state")
                set_data_state(r.data_state)
        except TrainConfigError:
            raise
        except Exception as e:  # noqa: BLE001 — orbax, JSON and iterator-state errors all mean "unreadable"
            why = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            problems.append(f"step {step}: {why}")
            moved = ckpt.quarantine(step)
            log.warning("checkpoint of step %d in %s is unreadable (%s); moved it to %s and trying the one before",
                        step, cfg.workdir, why, moved)
            continue
        return step, r.state, r.opt_state, r.rng, r.meta
    raise TrainConfigError(f"every checkpoint in {Path(cfg.workdir) / 'checkpoints'} is unreadable (moved to its corrupt/ "
                           f"folder): {'; '.join(problems)}. Delete the workdir's checkpoints to start over.")


def train(train_step: CompiledStep, state, data: Iterator[dict], cfg: LoopConfig, model_cfg: ModelConfig, *,
          get_data_state: Callable[[], dict] | None = None, set_data_state: Callable[[dict], None] | None = None,
          eval_fn: Callable[[int, object], dict | None] | None = None,
          checkpointer: Checkpointer | None = None, pad_id: int | None = None) -> TrainResult:
    """Trains to `cfg.total_steps`, resuming from `cfg.workdir` when it holds a checkpoint.

    `data` yields this process's rows of each global batch (the agreed batch contract);
    get/set_data_state default to the iterator's own `get_state` / `set_state` (Grain's).
    `eval_fn(step, state)` runs every `eval_every` steps; a returned dict is logged as `eval/*`.
    `pad_id` is the id the data pads input_ids with (default: model_cfg.pad_token_id, which a hub
    config may leave unset); batches are padded further with it when processes agree on shapes."""
    validate(cfg, train_step)
    pad_id = model_cfg.pad_token_id if pad_id is None else pad_id
    if pad_id is None:
        raise TrainConfigError("no pad id: the model config has no pad_token_id; pass the tokenizer's as pad_id")
    get_data_state = get_data_state or getattr(data, "get_state", None)
    set_data_state = set_data_state or getattr(data, "set_state", None)
    ckpt = checkpointer or Checkpointer(as_path(cfg.workdir) / "checkpoints", keep=cfg.keep_checkpoints)
    step, state, opt_state, rng, meta = _start(train_step, state, ckpt, cfg, set_data_state)
    writer = telemetry.MetricsWriter(cfg.workdir, resume_step=step, tensorboard=cfg.tensorboard,
                                     wandb_project=cfg.wandb_project, group=getattr(train_step, "metrics_group", "train"),
                                     config=dataclasses.asdict(cfg))
    progress = telemetry.Progress(cfg.total_steps, step, cfg.progress)
    run = _Run(train_step, cfg, model_cfg, ckpt, writer, progress, get_data_state, eval_fn, meta, pad_id)
    try:
        with StopSignal() as stop:
            return run.loop(step, state, opt_state, rng, data, stop)
    finally:
        ckpt.wait()
        writer.close()
        progress.close()


class _Run:
    """The loop's state between steps; `loop` is the whole control flow."""

    def __init__(self, train_step, cfg, model_cfg, ckpt, writer, progress, get_data_state, eval_fn, meta, pad_id):
        self.ts, self.cfg, self.model_cfg, self.pad_id = train_step, cfg, model_cfg, pad_id
        self.ckpt, self.writer, self.progress = ckpt, writer, progress
        self.get_data_state, self.eval_fn = get_data_state, eval_fn
        self.skipped_total, self.nonfinite_run = int(meta["skipped_total"]), int(meta["nonfinite_run"])
        self.local_rows = cfg.batch_size // jax.process_count()
        self.host_keys = train_step.host_keys

    def loop(self, step, state, opt_state, rng, data, stop) -> TrainResult:
        window, last = _Window(), {}
        while step < self.cfg.total_steps:
            t0 = time.perf_counter()
            local = next(data, None)
            if local is None:
                self._save(step, state, opt_state, rng, force=True)
                raise TrainConfigError(f"the data ran out after {step} of {self.cfg.total_steps} steps (saved); "
                                       f"make the iterator repeat or lower total_steps")
            wait = time.perf_counter() - t0
            check_batch(local, self.local_rows, self.ts.batch_shardings, self.host_keys)
            inputs = int(np.sum(local["attention_mask"])) * jax.process_count()
            batch = step_batch(local, self.ts, self.pad_id, self.host_keys)
            state, opt_state, m = self.ts.step(state, opt_state, batch, jax.random.fold_in(rng, step))
            m = {k: v.item() for k, v in jax.device_get(m).items()}
            step += 1
            window.add(m, inputs, self.ts.flops(self.model_cfg, batch, m), time.perf_counter() - t0 - wait, wait)
            self._count_nonfinite(step, m)
            self.progress.update(m["loss"], inputs / max(time.perf_counter() - t0, 1e-9))
            if step % self.cfg.log_every == 0 or step == self.cfg.total_steps:
                last = window.scalars(m, self.skipped_total)
                self.writer.write(step, last)
                window = _Window()
            saved = step % self.cfg.checkpoint_every == 0 or step == self.cfg.total_steps
            if saved:
                self._save(step, state, opt_state, rng)
            self._evaluate(step, state)
            if any_process(stop.requested) or self.ckpt.reached_preemption(step):
                if not saved:
                    self._save(step, state, opt_state, rng, force=True)
                return TrainResult(step, state, opt_state, True, last)
        self._check_finished(step, state)
        return TrainResult(step, state, opt_state, False, last)

    def _check_finished(self, step: int, state) -> None:
        """A run is trained only if its last step updated the model (skipped steps leave the weights as they were)."""
        if self.nonfinite_run:
            raise NonFiniteLossError(
                f"the run reached its last step ({step}) but the last {self.nonfinite_run} step(s) had a non-finite loss "
                f"or gradient and were skipped, so it is not taken as trained (the weights are those of step "
                f"{step - self.nonfinite_run}). Check the data at the end of the epoch for empty/corrupt samples or lower "
                f"the learning rate, then train again from an earlier checkpoint.")

    def _count_nonfinite(self, step: int, m: dict) -> None:
        self.skipped_total += m["skipped"]
        self.nonfinite_run = self.nonfinite_run + 1 if m["skipped"] else 0
        if self.nonfinite_run >= self.cfg.max_nonfinite:
            raise NonFiniteLossError(
                f"{self.nonfinite_run} consecutive steps up to step {step} had a non-finite loss or gradient "
                f"(last loss {m['loss']}, grad norm {m['grad_norm']}); their updates were skipped. Lower the "
                f"learning rate, check the data for empty/corrupt samples, or raise max_nonfinite.")

    def _save(self, step, state, opt_state, rng, force: bool = False) -> None:
        meta = {"skipped_total": self.skipped_total, "nonfinite_run": self.nonfinite_run}
        data_state = self.get_data_state() if self.get_data_state else None
        self.ckpt.save(step, state, opt_state, rng, meta, data_state, force=force)

    def _evaluate(self, step: int, state) -> None:
        if self.eval_fn is None or not self.cfg.eval_every or step % self.cfg.eval_every:
            return
        result = self.eval_fn(step, state)
        if result:
            self.writer.write(step, {f"eval/{k}": v for k, v in result.items()})
