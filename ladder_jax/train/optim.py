"""AdamW with linear warmup + cosine or linear decay, global-norm clipping, a weight-decay mask and optional
frozen vision tower / merger; the optimizer state is sharded like the parameters it mirrors.

Parameters are the model's nnx State: each Param carries logical `axes`, so optimizer moments
(which optax builds by mapping over the params) carry them too and shard by the same rules.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding

from ladder_jax.parallel.sharding import replicated, spec_for

FROZEN, DECAY, NO_DECAY = "frozen", "decay", "no_decay"
DECAYS = ("cosine", "linear")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """SFT reference values (SPEC.md section 3): lr 1e-5, cosine, warmup ratio 0.1. GRPO's
    reference is lr 1e-6, `decay="linear"`, no warmup (`stages.GRPO_OPTIM`)."""

    learning_rate: float = 1e-5
    total_steps: int = 1000
    warmup_ratio: float = 0.1
    decay: str = "cosine"  # after the warmup: "cosine" | "linear" (transformers' lr_scheduler_type)
    end_lr_ratio: float = 0.0
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    freeze_vision: bool = False  # the vision tower without its merger (`visual/` minus `visual/merger`)
    freeze_merger: bool = False  # the patch merger (`visual/merger`)
    # the token embedding table (`embed_tokens`; with tied embeddings, the output head too): words keep
    # the vectors a frozen tower was aligned with (the toy ladder's stage 0)
    freeze_embeddings: bool = False

    def __post_init__(self):
        checks = [
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (0 <= self.warmup_ratio <= 1, f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}"),
            (0 <= self.end_lr_ratio <= 1, f"end_lr_ratio (final lr / peak) must be in [0, 1], got {self.end_lr_ratio}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.max_grad_norm > 0, f"max_grad_norm must be > 0 (it scales gradients down to that norm), "
                                     f"got {self.max_grad_norm}"),
            (0 <= self.b1 < 1 and 0 <= self.b2 < 1 and self.eps > 0, "need 0 <= b1, b2 < 1 and eps > 0"),
            (self.total_steps >= 0, f"total_steps must be >= 0, got {self.total_steps}"),
            (self.decay in DECAYS, f"decay must be one of {DECAYS}, got {self.decay!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def warmup_steps(self) -> int:
        return math.ceil(self.total_steps * self.warmup_ratio)


def schedule(cfg: OptimConfig) -> optax.Schedule:
    """lr(s) = peak·s/w for s < w; then, T = total_steps,
        cosine: end + (peak − end)·½(1 + cos(π·(s − w)/(T − w)))
        linear: peak + (end − peak)·(s − w)/(T − w)    (constant `end` from T on)

    transformers' `cosine` and `linear` schedules with warmup (end = 0): with a warmup, step 0
    trains at lr 0; without one (GRPO's reference), step 0 trains at the peak."""
    if cfg.decay == "linear":
        decay = optax.linear_schedule(cfg.learning_rate, cfg.learning_rate * cfg.end_lr_ratio,
                                      max(cfg.total_steps - cfg.warmup_steps, 1))
        if not cfg.warmup_steps:
            return decay
        warmup = optax.linear_schedule(0.0, cfg.learning_rate, cfg.warmup_steps)
        return optax.join_schedules([warmup, decay], [cfg.warmup_steps])
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=cfg.learning_rate, warmup_steps=cfg.warmup_steps,
        decay_steps=max(cfg.total_steps, cfg.warmup_steps + 1), end_value=cfg.learning_rate * cfg.end_lr_ratio)


def is_variable(x) -> bool:
    return isinstance(x, nnx.Variable)


def _path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def frozen_parts(cfg: OptimConfig) -> tuple[bool, ...]:
    """The settings the update's memory and work depend on beyond the shapes: which parts are frozen.
    Stages equal here compile to programs of the same memory and cost (what `ladder-jax plan` needs),
    though not to one program: the schedule's numbers (peak, warmup, total steps) are constants in it."""
    return cfg.freeze_vision, cfg.freeze_merger, cfg.freeze_embeddings


def param_label(path: str, axes: tuple[str, ...], cfg: OptimConfig) -> str:
    """frozen | decay | no_decay. Matrices decay; vectors (norm scales, biases) do not, judged by
    their logical axes without the stacked `layers` axis, so a stacked norm (layers, dim) is a vector."""
    in_merger = path.startswith("visual/merger/")
    if ((cfg.freeze_merger and in_merger) or (cfg.freeze_vision and path.startswith("visual/") and not in_merger)
            or (cfg.freeze_embeddings and path == "embed_tokens")):
        return FROZEN
    return DECAY if len([a for a in axes if a != "layers"]) >= 2 else NO_DECAY


def param_labels(params, cfg: OptimConfig):
    """A tree of labels, a prefix of `params` (one label per Param)."""
    return jax.tree_util.tree_map_with_path(
        lambda p, v: param_label(_path_str(p), tuple(v.get_metadata()["axes"]), cfg), params, is_leaf=is_variable)


def make_optimizer(cfg: OptimConfig, params) -> optax.GradientTransformation:
    """clip(global norm over trainable grads) -> AdamW (decay on matrices only) -> ×lr(s); frozen
    params get zero updates and keep no moments. `params` (abstract is fine) only fixes the labels.

    The learning rate is injected (optax.inject_hyperparams), so the optimizer state holds the lr
    its last update used: `applied_lr` reads it for the metrics."""
    labels = param_labels(params, cfg)
    decay_mask = jax.tree.map(lambda label: label == DECAY, labels)

    def adamw(learning_rate):
        # Only the lr is injected: injected b1, b2 would be float32 arrays, and 1 - b1 in float32
        # (0.100000024) is not float32(1 - b1) (0.1), so every moment would change.
        return optax.adamw(learning_rate, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay,
                           mask=decay_mask)

    # float32: the default follows the params' dtype, and bf16 params would round the lr.
    scheduled = optax.inject_hyperparams(adamw, hyperparam_dtype=jnp.float32)(learning_rate=schedule(cfg))
    train = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), scheduled)
    trainable = jax.tree.map(lambda label: "train" if label != FROZEN else FROZEN, labels)
    return optax.partition({"train": train, FROZEN: optax.set_to_zero()}, trainable)


def trainable_mask(params, cfg: OptimConfig):
    """Prefix tree of bools: True where a Param is trained."""
    return jax.tree.map(lambda label: label != FROZEN, param_labels(params, cfg))


def applied_lr(opt_state):
    """The learning rate of the update that produced `opt_state`: lr(s) for the s-th update (from 0)."""
    return optax.tree.get(opt_state, "hyperparams")["learning_rate"]


def opt_state_shardings(abstract_opt_state, mesh):
    """Moments mirror their Param (same logical axes, same sharding); counters are replicated."""
    def one(x):
        if is_variable(x):
            return NamedSharding(mesh, spec_for(x.get_value().shape, x.get_metadata()["axes"], mesh))
        return replicated(mesh)
    return jax.tree.map(one, abstract_opt_state, is_leaf=is_variable)

