"""What `loop.train` runs: a compiled step and what it was built from (its optimizer and every
sharding), plus what each kind of step (`sft.TrainStep`, `grpo.GRPOStep`) says of itself."""

from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar

import jax
import optax


@dataclasses.dataclass(frozen=True)
class CompiledStep:
    step: Callable  # (state, opt_state, global batch, rng) -> (state, opt_state, metrics)
    tx: optax.GradientTransformation
    state_shardings: object
    opt_shardings: object
    batch_shardings: dict  # the batch's sharded arrays, by key
    mesh: object

    batch_mode: ClassVar[str]  # how its text pads: "train" on the right, "prompt" on the left
    host_keys: ClassVar[tuple]  # this process's host-side batch values the step also takes

    @property
    def micro_batches(self) -> int:
        """How many micro-batches each global batch is split into."""
        raise NotImplementedError

    def flops(self, model_cfg, batch: dict, metrics: dict) -> float:
        """Model FLOPs of the step that took `batch` and returned `metrics`."""
        raise NotImplementedError

    @staticmethod
    def shape(batch: dict) -> tuple[int, int, int]:
        """(rows, text length, vision patches per row: images and videos together) of a batch."""
        rows, length = batch["input_ids"].shape
        return rows, length, batch["pixel_values"].shape[1] + batch["pixel_values_videos"].shape[1]

    def init_opt_state(self, state):
        """The optimizer state of `state`, built on the devices with its shardings."""
        return jax.jit(self.tx.init, out_shardings=self.opt_shardings)(state)
