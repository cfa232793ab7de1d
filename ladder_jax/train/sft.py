"""The SFT loss and the jitted, sharded training step.

token_loss returns (sum, count) over label tokens; the step takes the whole global batch's
denominator first and differentiates Σ_microbatches sum / denominator, so micro-batches,
data-parallel shards and hosts add up to the loss of one big batch. Two averages
(`StepConfig.loss_average`):

  "token"   loss = Σ_b Σ_t l_bt / Σ_b n_b          (every label token of the batch weighs the same)
  "sample"  loss = (1/B') Σ_b (1/n_b) Σ_t l_bt      (each row's token mean, then the mean over the
            B' rows that have a label: the reference's per-device batch of 1 averaged over
            devices and accumulation steps)

where n_b is row b's label-token count.
Mixed precision and rematerialisation come from the model config: `dtype="bfloat16",
param_dtype="float32"` computes in bf16 against fp32 master weights (grads and Adam moments are
fp32); `remat="full" | "dots"` checkpoints each scanned layer.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from ladder_jax.models.qwen25_vl import flops as flops_lib
from ladder_jax.models.qwen25_vl.inputs import IGNORE_INDEX, TRAIN_KEYS
from ladder_jax.parallel.sharding import batch_sharding, replicated, spec_for, state_shardings
from ladder_jax.train import optim
from ladder_jax.train.compiled_step import CompiledStep


LOSS_AVERAGES = ("token", "sample")


@dataclasses.dataclass(frozen=True)
class StepConfig:
    micro_batches: int = 1  # gradient accumulation: the global batch is split into this many
    loss_chunk: int = 0  # sequence positions per logits chunk (0: all at once); bounds the (B, L, V) logits
    loss_average: str = "token"  # "token" | "sample" (the reference's): see the module doc

    def __post_init__(self):
        if self.micro_batches < 1 or self.loss_chunk < 0:
            raise ValueError(f"micro_batches must be >= 1 and loss_chunk >= 0, got {self.micro_batches}, {self.loss_chunk}")
        if self.loss_average not in LOSS_AVERAGES:
            raise ValueError(f"loss_average must be one of {LOSS_AVERAGES}, got {self.loss_average!r}")


def shifted_targets(labels):
    """targets[:, t] = labels[:, t + 1] (logits at t predict the next token); the last is IGNORE_INDEX."""
    return jnp.concatenate([labels[:, 1:], jnp.full_like(labels[:, :1], IGNORE_INDEX)], axis=1)


def token_weights(targets, loss_average: str = "token"):
    """(B, L) float32 weight of each position's loss: 1 on a target ("token"), 1/n_b on row b's
    n_b targets ("sample"); 0 where there is no target."""
    valid = (targets != IGNORE_INDEX).astype(jnp.float32)
    if loss_average == "token":
        return valid
    return valid / jnp.maximum(jnp.sum(valid, axis=1, keepdims=True), 1.0)


def token_loss(logits, targets, weights=None):
    """(Σ_t w_t·(−log softmax(logits_t)[y_t]), #{t: y_t ≠ −100}) over positions with a target;
    float32. `weights` (B, L) default to 1 on every target."""
    valid = targets != IGNORE_INDEX
    weights = valid.astype(jnp.float32) if weights is None else weights
    logz = jax.nn.logsumexp(logits, axis=-1)
    gold = jnp.take_along_axis(logits, jnp.where(valid, targets, 0)[..., None], axis=-1)[..., 0]
    return jnp.sum(jnp.where(valid, (logz - gold) * weights, 0.0)), jnp.sum(valid).astype(jnp.float32)


def chunked_loss(model, hidden, targets, chunk: int, weights=None):
    """token_loss over sequence chunks of `chunk` positions, each chunk's logits recomputed in the
    backward pass, so at most (B, chunk, V) logits are alive at once."""
    b, length, d = hidden.shape
    pad = -length % chunk
    weights = (targets != IGNORE_INDEX).astype(jnp.float32) if weights is None else weights
    hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
    targets = jnp.pad(targets, ((0, 0), (0, pad)), constant_values=IGNORE_INDEX)
    weights = jnp.pad(weights, ((0, 0), (0, pad)))
    n = (length + pad) // chunk
    hs = jnp.moveaxis(hidden.reshape(b, n, chunk, d), 1, 0)
    ts = jnp.moveaxis(targets.reshape(b, n, chunk), 1, 0)
    ws = jnp.moveaxis(weights.reshape(b, n, chunk), 1, 0)

    @jax.checkpoint
    def one(h, t, w):
        return token_loss(model.logits(h), t, w)

    def body(acc, xs):
        s, c = one(*xs)
        return (acc[0] + s, acc[1] + c), None

    (total, count), _ = jax.lax.scan(body, (jnp.zeros(()), jnp.zeros(())), (hs, ts, ws))
    return total, count


def batch_loss(graphdef, state, batch, loss_chunk: int = 0, loss_average: str = "token"):
    """(weighted sum, label count) of next-token cross-entropy on `batch` (the agreed training
    batch), positions weighted by `token_weights`."""
    model = nnx.merge(graphdef, state)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    targets = shifted_targets(batch["labels"])
    weights = token_weights(targets, loss_average)
    if loss_chunk:
        return chunked_loss(model, model(**inputs, return_hidden=True), targets, loss_chunk, weights)
    return token_loss(model(**inputs), targets, weights)


def split_micro(batch, micro_batches: int, mesh):
    """(B, ...) -> (M, B/M, ...) with micro-batch m = rows m, m+M, m+2M, ...: every device keeps
    its own rows (a data shard holds a contiguous block, so strided rows split it evenly). B/M rows
    that do not divide over the data axes stay replicated (a GRPO batch of one prompt)."""
    def one(x):
        x = jnp.swapaxes(x.reshape(x.shape[0] // micro_batches, micro_batches, *x.shape[1:]), 0, 1)
        spec = PartitionSpec(None, spec_for(x.shape[1:2], ("batch",), mesh)[0], *([None] * (x.ndim - 2)))
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
    return jax.tree.map(one, batch)


def label_count(labels):
    """#{t: labels[t + 1] ≠ −100} over the batch, float32: token_loss's count, summed."""
    return jnp.sum(shifted_targets(labels) != IGNORE_INDEX).astype(jnp.float32)


def loss_denominator(labels, loss_average: str = "token"):
    """What the weighted sums divide by, float32: the label tokens of the batch ("token") or its
    rows with at least one label token ("sample")."""
    if loss_average == "token":
        return label_count(labels)
    return jnp.sum(jnp.any(shifted_targets(labels) != IGNORE_INDEX, axis=1)).astype(jnp.float32)


def accumulate_grads(graphdef, state, batch, step_cfg: StepConfig, mesh):
    """(grads, loss, count): loss = Σ sum / max(denominator, 1) and its gradient, summed over
    micro-batches (lax.scan); the denominator (`loss_denominator`) and the count of label tokens
    are taken from the whole batch first.

    The loss divides by the count inside the differentiated function, so every gradient collective
    waits for the count's all-reduce. XLA:CPU orders collectives only by when they start; two that
    do not depend on each other can interleave across processes (gloo), which then abort on
    mismatched messages."""
    count = label_count(batch["labels"])
    denom = jnp.maximum(loss_denominator(batch["labels"], step_cfg.loss_average), 1.0)
    grad_fn = jax.value_and_grad(
        lambda s, b: batch_loss(graphdef, s, b, step_cfg.loss_chunk, step_cfg.loss_average)[0] / denom)

    def body(acc, micro):
        loss, grads = grad_fn(state, micro)
        return (jax.tree.map(jnp.add, acc[0], grads), acc[1] + loss), None

    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), state)
    (grads, loss), _ = jax.lax.scan(body, (zeros, jnp.zeros(())), split_micro(batch, step_cfg.micro_batches, mesh))
    return grads, loss, count


def _global_norm(grads, trainable):
    """√(Σ g²) over the trainable parameters' gradients."""
    chosen = [g for keep, g in zip(jax.tree.leaves(trainable), jax.tree.leaves(grads, is_leaf=optim.is_variable)) if keep]
    return optax.tree.norm(chosen)


def train_step_fn(graphdef, tx, trainable, step_cfg: StepConfig, mesh) -> Callable:
    """The pure step (state, opt_state, batch, rng) -> (state, opt_state, metrics).

    loss = Σ sum / max(denominator, 1) (`accumulate_grads`); grads likewise. A non-finite loss or
    grad norm skips the update (state and optimizer state come back unchanged) and reports
    skipped = 1; `tokens` is the batch's label-token count in both averages. `rng` is the per-step
    key; Qwen2.5-VL trains without dropout, so this loss does not draw from it."""
    def step(state, opt_state, batch, rng):
        del rng
        grads, loss, count = accumulate_grads(graphdef, state, batch, step_cfg, mesh)
        state, opt_state, metrics = apply_grads(tx, trainable, state, opt_state, grads, loss)
        return state, opt_state, metrics | {"tokens": count}
    return step


def apply_summed_grads(tx, trainable, state, opt_state, grads, total, count):
    """apply_grads after dividing summed gradients and a loss sum once by max(count, 1)."""
    denom = jnp.maximum(count, 1.0)
    return apply_grads(tx, trainable, state, opt_state, jax.tree.map(lambda g: g / denom, grads), total / denom)


def apply_grads(tx, trainable, state, opt_state, grads, loss):
    """One optimizer update; a non-finite loss or grad norm keeps state and optimizer state
    unchanged. Returns (state, opt_state, {loss, grad_norm, lr, skipped}); lr is the update's,
    also when it is skipped."""
    grad_norm = _global_norm(grads, trainable)
    # Not optax.apply_if_finite: it checks the gradients only (a non-finite loss with finite
    # gradients is applied), applies non-finite updates after max_consecutive_errors, and changes
    # its own counters in the optimizer state on a skipped step.
    ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    updates, new_opt = tx.update(grads, opt_state, state)
    new_state = optax.apply_updates(state, updates)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)
    metrics = {"loss": loss, "grad_norm": grad_norm, "lr": optim.applied_lr(new_opt),
               "skipped": (~ok).astype(jnp.int32)}
    return keep(new_state, state), keep(new_opt, opt_state), metrics


def under_mesh(fn: Callable, mesh) -> Callable:
    """`fn` traced with `mesh` as the context mesh. Without it, code that reads the context mesh
    (splash attention's shard_map) sees none and GSPMD replicates the kernel: every device then
    gathers the whole batch's q, k, v (measured by `ladder-jax plan`: 3B stage 1 on v5e-16 at 2,048
    tokens, 12.7 GiB of temporaries and ~10^5 GiB gathered per step instead of 3.6 and 30)."""
    def run(*args):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return fn(*args)
    return run


def batch_shardings(mesh) -> dict:
    return {k: batch_sharding(mesh, ndim) for k, ndim in TRAIN_KEYS.items()}


@dataclasses.dataclass(frozen=True)
class TrainStep(CompiledStep):
    """The SFT step as `loop.train` runs it (a `CompiledStep`). Its batches are right-padded
    (collate's "train" mode) and carry no host-side keys."""

    step_cfg: StepConfig = StepConfig()
    batch_mode: ClassVar[str] = "train"
    host_keys: ClassVar[tuple] = ()

    @property
    def micro_batches(self) -> int:
        return self.step_cfg.micro_batches

    def flops(self, model_cfg, batch: dict, metrics: dict) -> float:
        """Model FLOPs of the step on this global batch: forward and backward on its padded shapes."""
        del metrics
        return flops_lib.train(model_cfg, *self.shape(batch))


def make_train_step(graphdef, state, optim_cfg: optim.OptimConfig, mesh, step_cfg: StepConfig = StepConfig(),
                    compiler_options: dict | None = None) -> TrainStep:
    """jit of `train_step_fn` with explicit in/out shardings from the rules table; state and
    optimizer state are donated. `state` may be abstract (it fixes labels and shardings).
    `compiler_options` go to XLA (e.g. {"xla_backend_optimization_level": 0} compiles a CPU test
    model about 3x faster)."""
    tx = optim.make_optimizer(optim_cfg, state)
    s_sh = state_shardings(state, mesh)
    o_sh = optim.opt_state_shardings(jax.eval_shape(tx.init, state), mesh)
    b_sh = batch_shardings(mesh)
    fn = under_mesh(train_step_fn(graphdef, tx, optim.trainable_mask(state, optim_cfg), step_cfg, mesh), mesh)
    jitted = jax.jit(fn, in_shardings=(s_sh, o_sh, b_sh, replicated(mesh)),
                     out_shardings=(s_sh, o_sh, replicated(mesh)), donate_argnums=(0, 1),
                     compiler_options=compiler_options)
    return TrainStep(jitted, tx, s_sh, o_sh, b_sh, mesh, step_cfg)
