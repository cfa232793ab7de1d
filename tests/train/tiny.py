"""The tiny training setup shared by the tests, and a script the subprocess tests launch.

Batches follow the agreed per-sample layout: text, one image block (vision_start, image pads,
vision_end), text, right padding; the loss is on the text after the image. Train steps are
cached per (mesh, micro-batches) so each compiles once per process, at XLA optimisation level 0
(a third of the default compile time on CPU; every run that is compared uses the same options).
Two data sets: "fixed" (every global batch one shape, sliced by process) and "buckets" (each
process collates only its own rows, to its own buckets, as the pipeline does).

    python -m tests.train.tiny --workdir W --steps N [--kill-at K] [--term-at K] [--devices 1]
        [--data fixed|buckets] [--coordinator 127.0.0.1:PORT --num-processes 2 --process-id I]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import tempfile

import numpy as np

from ladder_jax.data.buckets import Buckets, Sizes
from ladder_jax.data.collate import collate
from ladder_jax.data.examples import Example
from ladder_jax.data.pipeline import batch_shape
from ladder_jax.models.qwen25_vl.batching import RowVision
from ladder_jax.models.qwen25_vl.config import ModelConfig, preset
from ladder_jax.models.qwen25_vl.inputs import IGNORE_INDEX

CFG = preset("tiny")
BATCH = 8
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
# The "buckets" data: global batches of text-only rows (T: at most 16 tokens, no image) and image
# rows (I: 18-32 tokens, one 16-patch image). With two processes (rows 0-3 and 4-7) the processes'
# own buckets differ on steps 1, 2 and 4; every global batch holds an image row, so the agreed
# shape is always the fixed data's (8, 32, 16, 1, 0, 0) and nothing compiles twice.
KINDS = ("TTTTIIII", "IIIITTTT", "TITTTTIT", "TTTTTITT")
BUCKETS = Buckets(lengths=(16, 32), image_patches=(16,), image_items=(1,), video_patches=(16,), video_items=(1,))


def make_batch(cfg: ModelConfig, seed: int, batch: int = 8, length: int = 32, grid=(1, 4, 4)) -> dict:
    rng = np.random.default_rng(seed)
    v = cfg.vision
    patches = int(np.prod(grid))
    n_img = patches // v.merge_unit
    ids = np.full((batch, length), cfg.pad_token_id, np.int32)
    mask = np.zeros((batch, length), np.int32)
    labels = np.full((batch, length), IGNORE_INDEX, np.int32)
    for b in range(batch):
        prompt = rng.integers(0, 400, size=int(rng.integers(2, 5)))
        answer = rng.integers(0, 400, size=int(rng.integers(4, length - n_img - 8)))
        row = [*prompt, cfg.vision_start_token_id, *[cfg.image_token_id] * n_img, cfg.vision_end_token_id, *answer]
        ids[b, :len(row)], mask[b, :len(row)] = row, 1
        labels[b, len(row) - len(answer):len(row)] = answer
    return {
        "input_ids": ids, "attention_mask": mask, "labels": labels,
        "pixel_values": rng.standard_normal((batch, patches, v.patch_dim)).astype(np.float32),
        "image_grid_thw": np.tile(np.asarray(grid, np.int32), (batch, 1, 1)),
        "pixel_values_videos": np.zeros((batch, 0, v.patch_dim), np.float32),
        "video_grid_thw": np.zeros((batch, 0, 3), np.int32),
        "second_per_grid_ts": np.ones((batch, 0), np.float32),
    }


def _example(cfg: ModelConfig, rng, kind: str, name: str) -> Example:
    v, grid = cfg.vision, (1, 4, 4)
    none = RowVision(np.zeros((0, v.patch_dim), np.float32), np.zeros((0, 3), np.int32), np.zeros(0, np.float32))
    prompt = rng.integers(0, 400, size=int(rng.integers(2, 5)))
    if kind == "I":
        image = RowVision(rng.standard_normal((int(np.prod(grid)), v.patch_dim)).astype(np.float32),
                          np.asarray([grid], np.int32), np.ones(1, np.float32))
        block = [cfg.vision_start_token_id, *[cfg.image_token_id] * (len(image.patches) // v.merge_unit),
                 cfg.vision_end_token_id]
        answer = rng.integers(0, 400, size=int(rng.integers(10, 23)))
    else:
        image, block, answer = none, [], rng.integers(0, 400, size=int(rng.integers(4, 9)))
    ids = np.asarray([*prompt, *block, *answer], np.int32)
    labels = np.full(len(ids), IGNORE_INDEX, np.int32)
    labels[len(ids) - len(answer):] = answer
    sizes = Sizes(len(ids), len(image.patches), len(image.grids), 0, 0)
    return Example(name, "tiny", ids, labels, image, none, "", "", sizes)


class BucketedRows:
    """This process's rows of each global batch of the "buckets" data, collated to the smallest
    buckets that hold them (what each process's pipeline does); cycles through KINDS. `shapes`
    lists the (B, L, P, K, Pv, Kv) of every batch served; checkpointable like BatchIterator."""

    def __init__(self, cfg: ModelConfig, rows: slice):
        self.cfg, self.rows, self.position, self.shapes = cfg, rows, 0, []
        self.batches = [[_example(cfg, np.random.default_rng([seed, i]), kind, f"{seed}.{i}")
                         for i, kind in enumerate(kinds)] for seed, kinds in enumerate(KINDS)]

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        examples = self.batches[self.position % len(self.batches)][self.rows]
        self.position += 1
        sizes = BUCKETS.fit_batch([e.sizes for e in examples])
        batch = collate(examples, sizes, "train", self.cfg.pad_token_id, self.cfg.vision.patch_dim)
        self.shapes.append(batch_shape(batch))
        return batch

    def get_state(self) -> dict:
        return {"position": self.position}

    def set_state(self, state: dict) -> None:
        self.position = int(state["position"])


class BatchIterator:
    """Cycles through `n` fixed batches; checkpointable like a Grain iterator (get_state/set_state)."""

    def __init__(self, cfg: ModelConfig, n: int = 4, **kw):
        self.batches = [make_batch(cfg, seed, **kw) for seed in range(n)]
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        out = self.batches[self.position % len(self.batches)]
        self.position += 1
        return out

    def get_state(self) -> dict:
        return {"position": self.position}

    def set_state(self, state: dict) -> None:
        self.position = int(state["position"])


@functools.lru_cache(maxsize=None)
def tiny_step(data: int = 1, fsdp: int = 1, tensor: int = 1, micro: int = 1, loss_average: str = "token"):
    """(graphdef, TrainStep) on the first data·fsdp·tensor devices; compiled once per process."""
    import jax  # noqa: PLC0415 (the script must initialise jax.distributed first)

    from ladder_jax.models.qwen25_vl.api import abstract_model
    from ladder_jax.parallel.mesh import make_mesh
    from ladder_jax.train.optim import OptimConfig
    from ladder_jax.train.sft import StepConfig, make_train_step

    mesh = make_mesh(data, fsdp, tensor, devices=jax.devices()[:data * fsdp * tensor])
    graphdef, abstract = abstract_model(CFG)
    optim_cfg = OptimConfig(learning_rate=3e-3, total_steps=40, weight_decay=0.01)
    return graphdef, make_train_step(graphdef, abstract, optim_cfg, mesh,
                                     StepConfig(micro_batches=micro, loss_average=loss_average), FAST_COMPILE)


@functools.lru_cache(maxsize=None)
def _host_init():
    import jax  # noqa: PLC0415

    from ladder_jax.models.qwen25_vl.api import init_state
    from ladder_jax.parallel.mesh import make_mesh
    return jax.device_get(init_state(CFG, make_mesh(devices=jax.local_devices()[:1]), seed=0)[1])


def fresh_state(train_step):
    """The seed-0 initial parameters on the step's shardings (initialised once per process)."""
    import jax  # noqa: PLC0415
    return jax.device_put(_host_init(), train_step.state_shardings)


class LocalRows:
    """This process's rows of each global batch, keeping the iterator's state methods."""

    def __init__(self, it, rows: slice):
        self.it, self.rows = it, rows
        self.get_state, self.set_state = it.get_state, it.set_state

    def __iter__(self):
        return self

    def __next__(self):
        return {k: v[self.rows] for k, v in next(self.it).items()}


def local_data(kind: str = "fixed"):
    """This process's rows of the "fixed" or the "buckets" tiny data."""
    from ladder_jax.parallel.distributed import process_rows  # noqa: PLC0415

    rows = process_rows(BATCH)
    return LocalRows(BatchIterator(CFG), rows) if kind == "fixed" else BucketedRows(CFG, rows)


def run(workdir, steps: int, train_step, hook=None, checkpointer=None, checkpoint_every: int = 2, data=None):
    """The loop on `data` (default: the cycling fixed tiny data); returns the TrainResult."""
    from ladder_jax.train.loop import LoopConfig, train  # noqa: PLC0415

    cfg = LoopConfig(workdir=str(workdir), total_steps=steps, batch_size=BATCH, log_every=1,
                     checkpoint_every=checkpoint_every, eval_every=1 if hook else 0, progress=False)
    data = local_data() if data is None else data
    state = fresh_state(train_step)
    return train(train_step, state, data, cfg, CFG, eval_fn=hook, checkpointer=checkpointer)


@functools.lru_cache(maxsize=None)
def reference_losses(steps: int = 6, data: str = "fixed") -> tuple[float, ...]:
    """Per-step losses of an uninterrupted single-device run (in this process) on the `data` set."""
    from ladder_jax.train.telemetry import read_jsonl  # noqa: PLC0415
    workdir = tempfile.mkdtemp(prefix="tiny_reference_")
    run(workdir, steps, tiny_step()[1], checkpoint_every=steps, data=local_data(data))
    return tuple(r["loss"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")))


def parse_process_args(p: argparse.ArgumentParser):
    """Adds --coordinator/--num-processes/--process-id, parses, and joins the distributed run when
    asked (before jax is used: a test script is one process of a gloo run)."""
    p.add_argument("--coordinator")
    p.add_argument("--num-processes", type=int)
    p.add_argument("--process-id", type=int)
    args = p.parse_args()
    if args.num_processes:
        from ladder_jax.parallel.distributed import initialize  # noqa: PLC0415
        initialize(args.coordinator, args.num_processes, args.process_id)
    return args


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--kill-at", type=int, default=0, help="SIGKILL itself after this step (once its checkpoint is committed)")
    p.add_argument("--term-at", type=int, default=0, help="SIGTERM itself after this step")
    p.add_argument("--devices", type=int, default=0, help="data-parallel devices (0: all)")
    p.add_argument("--data", choices=("fixed", "buckets"), default="fixed")
    args = parse_process_args(p)
    import jax  # noqa: PLC0415

    from ladder_jax.train.checkpoint import Checkpointer  # noqa: PLC0415
    ckpt = Checkpointer(os.path.join(args.workdir, "checkpoints"))

    def hook(step, state):
        if step == args.kill_at:
            ckpt.wait()
            os.kill(os.getpid(), signal.SIGKILL)
        if step == args.term_at:
            os.kill(os.getpid(), signal.SIGTERM)

    data = local_data(args.data)
    result = run(args.workdir, args.steps, tiny_step(data=args.devices or jax.device_count())[1], hook, ckpt, data=data)
    out = {"step": result.step, "preempted": result.preempted}
    if isinstance(data, BucketedRows):
        out["local_shapes"] = data.shapes  # this process's own padded shapes, before the processes agree
    print(json.dumps(out))


if __name__ == "__main__":
    main()
