"""The GRPO training step (stage 3): rollout with the current policy, score, update.

`make_grpo_step(...)` returns a `GRPOStep`: its own kind of step, which `loop.train` runs like
SFT's `TrainStep` (checkpoints, resume, metrics): both are `CompiledStep`s. Its
`.step(state, opt_state, batch, rng)` runs on the host:

  1. sample G completions per prompt from the live, sharded `state` (`sampler.sample`: no
     weight copies), timed to its end with block_until_ready;
  2. `grpo_rollout.rewards` (the device reward kernel, group advantages) and a jit of
     `grpo_rollout.fixed_logps`: reference log-probs under `ref_state` (and old log-probs when
     updates_per_batch > 1), with the prompt's own images and videos;
  3. one jit (`grpo_update.update_fn`): updates_per_batch optimizer steps, exact micro-batching.

`batch` is a pipeline prompt-mode batch: the model arrays plus this process's `answers` and
`question_types` tuples. `ref_state` stays on the policy's mesh and shardings (device memory; it is
not offloaded to host memory). The optimizer schedule counts updates: with updates_per_batch = k,
set OptimConfig.total_steps to k × steps.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec

from ladder_jax.data.tokenizer import end_token_ids
from ladder_jax.generate import sampler
from ladder_jax.models.qwen25_vl import flops as flops_lib
from ladder_jax.models.qwen25_vl.inputs import MODEL_KEYS
from ladder_jax.parallel.sharding import batch_sharding, replicated, spec_for, state_shardings
from ladder_jax.train import grpo_rollout, optim
from ladder_jax.train import rewards as rewards_lib
from ladder_jax.train.grpo_loss import AGGREGATIONS, KL_ESTIMATORS
from ladder_jax.train.grpo_update import update_fn
from ladder_jax.train.reward_tables import byte_table
from ladder_jax.train.compiled_step import CompiledStep
from ladder_jax.train.sft import under_mesh


@dataclasses.dataclass(frozen=True)
class GRPOConfig:
    """SPEC.md section 3 reference values (lr 1e-6 and its linear decay live in OptimConfig).
    Sampling stops at either end token of the tokenizer (`tokenizer.end_token_ids`)."""

    group_size: int = 4
    beta: float = 0.01
    clip_eps: float = 0.2
    kl: str = "k3"
    aggregation: str = "sequence_mean"
    temperature: float = 1.0
    top_k: int = 50  # the generation default of the reference's transformers (0 turns the filter off)
    top_p: float = 1.0
    max_new_tokens: int = 1024
    # Rollouts decode with a copy of the weights gathered over data x fsdp once per rollout (one whole
    # tensor-split copy per device in the compute dtype); False gathers the sharded weights every token.
    gather_decode_weights: bool = True
    updates_per_batch: int = 1
    micro_batches: int = 1
    format_weight: float = 1.0
    accuracy_weight: float = 1.0
    length_penalty_weight: float = 0.0

    def __post_init__(self):
        checks = [
            (self.group_size >= 2, f"group_size must be >= 2 (advantages compare a group's completions), "
                                   f"got {self.group_size}"),
            (self.beta >= 0, f"beta must be >= 0, got {self.beta}"),
            (0 < self.clip_eps < 1, f"clip_eps must be in (0, 1), got {self.clip_eps}"),
            (self.temperature > 0, f"temperature must be > 0 (sampling), got {self.temperature}"),
            (0 < self.top_p <= 1 and self.top_k >= 0, f"need 0 < top_p <= 1 and top_k >= 0, got {self.top_p}, {self.top_k}"),
            (self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}"),
            (self.updates_per_batch >= 1 and self.micro_batches >= 1, "updates_per_batch and micro_batches must be >= 1"),
            (self.kl in KL_ESTIMATORS, f"kl must be one of {KL_ESTIMATORS}, got {self.kl!r}"),
            (self.aggregation in AGGREGATIONS, f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}"),
            (min(self.format_weight, self.accuracy_weight, self.length_penalty_weight) >= 0, "reward weights must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def reward_weights(self) -> rewards_lib.RewardConfig:
        return rewards_lib.RewardConfig(format_weight=self.format_weight, accuracy_weight=self.accuracy_weight,
                                        length_weight=self.length_penalty_weight)


@dataclasses.dataclass(frozen=True)
class GRPOStep(CompiledStep):
    """The GRPO step as `loop.train` runs it (a `CompiledStep`): `step` runs on the host
    (see module doc); its batches are left-padded prompts plus this process's answers and question
    types. Its FLOPs are those of everything it does: sampling, scoring and the updates."""

    cfg: GRPOConfig = GRPOConfig()
    batch_mode: ClassVar[str] = "prompt"
    host_keys: ClassVar[tuple] = ("answers", "question_types")
    metrics_group: ClassVar[str] = "grpo"  # TensorBoard / W&B group of its own metrics (rewards, KL, ...)

    @property
    def micro_batches(self) -> int:
        return self.cfg.micro_batches

    def flops(self, model_cfg, batch: dict, metrics: dict) -> float:
        """Model FLOPs of one step on this global prompt batch (B prompts of L tokens, P patches):

            prefill  forward(B, L, P): the vision tower and the prompt, once per prompt
            decode   `decode_steps` steps of B·G rows over the padded cache L + T (T = max_new_tokens)
            scoring  the reference (and, with updates_per_batch > 1, the old policy) over B·G rows
                     of L + T tokens, the vision tower once per prompt
            updates  updates_per_batch × 3 × that forward
        """
        c = self.cfg
        prompts, length, patches = self.shape(batch)
        rows, full = prompts * c.group_size, length + c.max_new_tokens
        scored = flops_lib.text_forward(model_cfg, rows * full, full) + flops_lib.vision_forward(model_cfg, prompts, patches)
        return (flops_lib.forward(model_cfg, prompts, length, patches)
                + flops_lib.decode(model_cfg, rows, int(metrics.get("decode_steps", c.max_new_tokens)), full)
                + (1 + (c.updates_per_batch > 1)) * scored + c.updates_per_batch * 3 * scored)


def rows_sharding(mesh, rows: int | None, ndim: int) -> NamedSharding:
    """Leading dimension of `rows` rows over data x fsdp (`batch_sharding`, also for rows=None),
    or replicated when the rows do not divide over them: the reference's one prompt per update
    runs on any mesh, every device (and process) working on the whole batch."""
    if rows is None or not replicated_rows(mesh, rows):
        return batch_sharding(mesh, ndim)
    return NamedSharding(mesh, PartitionSpec(*([None] * ndim)))


def replicated_rows(mesh, rows: int) -> bool:
    """True when `rows` do not divide over the mesh's data axes (of more than one device)."""
    return mesh.shape["data"] * mesh.shape["fsdp"] > 1 and spec_for((rows,), ("batch",), mesh)[0] is None


def rollout_shardings(mesh, prompts: int | None = None, group_size: int = 1) -> grpo_rollout.Rollout:
    rows = lambda ndim: rows_sharding(mesh, None if prompts is None else prompts * group_size, ndim)
    return grpo_rollout.Rollout(rows(2), rows(2), rows(1), rows(2), rows(2))


def _global(x, sharding):
    """This process's rows (host NumPy) as a global array on `sharding` (all rows when it is
    replicated). Only for arrays of fixed widths (the encoded answers), so the processes' shapes
    agree without an exchange."""
    return jax.make_array_from_process_local_data(sharding, np.asarray(x))


@dataclasses.dataclass(frozen=True)
class GRPOJits:
    """The update's pieces besides the sampler: shardings, the scoring and update jits (what
    `make_grpo_step` runs and `ladder_jax.plan` compiles abstractly)."""

    tx: optax.GradientTransformation
    state: object  # shardings of the policy (and the reference)
    opt: object
    batch: dict
    rollout: grpo_rollout.Rollout
    logps: Callable
    update: Callable


def grpo_jits(graphdef, state, optim_cfg: optim.OptimConfig, mesh, cfg: GRPOConfig, compiler_options: dict | None = None,
              prompts: int | None = None) -> GRPOJits:
    tx = optim.make_optimizer(optim_cfg, state)
    s_sh = state_shardings(state, mesh)
    o_sh = optim.opt_state_shardings(jax.eval_shape(tx.init, state), mesh)
    b_sh = {k: rows_sharding(mesh, prompts, ndim) for k, ndim in MODEL_KEYS.items()}
    r_sh = rollout_shardings(mesh, prompts, cfg.group_size)
    rows2 = r_sh.completions
    logps = jax.jit(under_mesh(functools.partial(grpo_rollout.fixed_logps, graphdef, group_size=cfg.group_size,
                                                 old_logp=cfg.updates_per_batch > 1,
                                                 micro_batches=cfg.micro_batches, mesh=mesh), mesh),
                    in_shardings=(s_sh, s_sh, b_sh, rows2, rows2), out_shardings=(rows2, rows2),
                    compiler_options=compiler_options)
    update = jax.jit(under_mesh(update_fn(graphdef, tx, optim.trainable_mask(state, optim_cfg), cfg, mesh), mesh),
                     in_shardings=(s_sh, o_sh, b_sh, r_sh), out_shardings=(s_sh, o_sh, replicated(mesh)),
                     donate_argnums=(0, 1), compiler_options=compiler_options)
    return GRPOJits(tx, s_sh, o_sh, b_sh, r_sh, logps, update)


def make_grpo_step(graphdef, state, ref_state, optim_cfg: optim.OptimConfig, mesh, grpo_cfg: GRPOConfig,
                   tokenizer, compiler_options: dict | None = None, prompts: int | None = None) -> GRPOStep:
    """The GRPO step on `mesh`. `state` may be abstract (it fixes shardings); `ref_state` is the
    frozen reference policy, copied onto the policy's shardings (passing the initial state is
    safe). `compiler_options` go to XLA for the scoring and update jits (the sampler compiles with
    the defaults). `prompts`, the global batch's prompt count, decides the batch shardings
    (`rows_sharding`: replicated when they do not divide over data x fsdp); None shards the rows."""
    cfg, ids = grpo_cfg, {"eos": end_token_ids(tokenizer), "pad": tokenizer.pad_token_id}
    jits = grpo_jits(graphdef, state, optim_cfg, mesh, cfg, compiler_options, prompts)
    tx, s_sh, o_sh, logps, update = jits.tx, jits.state, jits.opt, jits.logps, jits.update
    answer_sharding = functools.partial(rows_sharding, mesh, prompts)
    # A copy: the step donates the policy's buffers, and the reference is often the initial policy.
    ref_state = jax.jit(lambda t: jax.tree.map(jnp.copy, t), out_shardings=s_sh)(ref_state)
    host_table = byte_table(tokenizer)
    table, max_bytes = jax.device_put(host_table, replicated(mesh)), grpo_rollout.max_bytes(host_table, cfg.max_new_tokens)
    weights, rows1, rows2 = cfg.reward_weights, jits.rollout.advantages, jits.rollout.completions

    def step(state, opt_state, batch, rng):
        start = time.perf_counter()
        prompts = {k: batch[k] for k in MODEL_KEYS}
        out = sampler.sample(graphdef, state, prompts, rng, num_samples=cfg.group_size,
                             max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_k=cfg.top_k,
                             top_p=cfg.top_p, eos_id=ids["eos"], pad_id=ids["pad"],
                             gather_weights=cfg.gather_decode_weights)
        out = jax.block_until_ready(out)
        sampled = time.perf_counter() - start
        answers = grpo_rollout.fixed_width_answers(batch["answers"], batch["question_types"])
        answers = jax.tree.map(lambda a: _global(a, answer_sharding(np.ndim(a))), answers)
        _, advantages, metrics = grpo_rollout.rewards(table, out.tokens, out.lengths, answers, group_size=cfg.group_size,
                                                      weights=weights, max_bytes=max_bytes)
        # The sampler and the reward jit leave their outputs on GSPMD's choice; the jits below take
        # rows on the batch rule (a no-op move where they already are).
        completions, mask, advantages = jax.device_put((out.tokens, out.mask, advantages), (rows2, rows2, rows1))
        rollout = grpo_rollout.Rollout(completions, mask, advantages,
                                       *logps(state, ref_state, prompts, completions, mask))
        state, opt_state, update_metrics = update(state, opt_state, prompts, rollout)
        metrics = jax.block_until_ready(metrics | update_metrics)
        elapsed = time.perf_counter() - start
        generated = float(jnp.sum(out.lengths))
        timing = {"rollout_tokens_per_s": np.float64(generated / max(sampled, 1e-9)),
                  "generated_tokens_per_s": np.float64(generated / max(elapsed, 1e-9)),
                  "decode_steps": np.float64(jnp.max(out.lengths)),
                  "sample_time_share": np.float64(sampled / max(elapsed, 1e-9))}
        return state, opt_state, metrics | timing

    return GRPOStep(step, tx, s_sh, o_sh, jits.batch, mesh, cfg)
