"""GRPO's rollout scoring: rewards, group advantages and the fixed log-probs of a sampled batch.

After the sampler has drawn G completions per prompt, two pure functions turn them into what the
policy updates need: `rewards` (format / accuracy rewards from token ids by the device reward
kernel, r = w_f·r_format + w_a·r_accuracy − w_len·p_len, and the group advantages) and
`fixed_logps` (the reference model's log-probs and, when the policy is updated more than once per
batch, the pre-update policy's log-probs). Every scoring pass gets the prompt's own visual inputs (images and videos):
the reference trainer drops the video pixels there (SPEC.md section 3), we do not.

Rows follow the sampler: rows b*G .. b*G+G-1 are the completions of prompt b.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ladder_jax.train import rewards as rewards_lib
from ladder_jax.train.grpo_loss import group_advantages
from ladder_jax.train.reward_kernels import score_tokens
from ladder_jax.train.reward_tables import Answers, ByteTable
from ladder_jax.train.sft import split_micro

# Fixed widths of the encoded ground truths, so the scoring compiles once and every process's rows
# have the same shape: 768 digits hold every float64 MRA bound (reward_tables.encode_cleaned_answers).
CHOICE_WIDTH, DIGIT_WIDTH = 16, 768


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Rollout:
    """A scored batch of B prompts x G completions, what the update reads: completions (B*G, T)
    int32 with mask (B*G, T); advantages (B*G,); ref_logp and old_logp (B*G, T) (old_logp all
    zeros when unused)."""

    completions: jax.Array
    mask: jax.Array
    advantages: jax.Array
    ref_logp: jax.Array
    old_logp: jax.Array


def fixed_width_answers(answers, question_types) -> Answers:
    """This process's ground truths, cleaned like the reference, at the fixed widths (host side)."""
    return rewards_lib.encode_answers(list(answers), list(question_types), CHOICE_WIDTH, DIGIT_WIDTH)


def max_bytes(table: ByteTable, max_new_tokens: int) -> int:
    """Bytes that hold any completion of max_new_tokens tokens: the reward never truncates."""
    return max_new_tokens * max(int(np.max(table.length)), 1)


def by_group(x, group_size: int):
    """Per-completion rows (B*G, ...) -> (B, G, ...): each prompt's completions together."""
    return x.reshape(-1, group_size, *x.shape[1:])


def ungroup(x):
    """(b, G, ...) -> (b*G, ...), `by_group` undone."""
    return x.reshape(-1, *x.shape[2:])


def completion_logp(graphdef, state, prompts: dict, completions, mask, group_size: int):
    """log pi(token) (rows, T) of each completion token given its prompt, pixels included."""
    return nnx.merge(graphdef, state).score_completions(prompts, completions, mask, group_size)


@partial(jax.jit, static_argnames=("group_size", "weights", "max_bytes"))
def rewards(table: ByteTable, completions, lengths, answers: Answers, *, group_size: int,
            weights: rewards_lib.RewardConfig, max_bytes: int):
    """(rewards, advantages, metrics) of a sampled batch; `answers` has one row per prompt.

    r = w_f·r_format + w_a·r_accuracy − w_len·p_len per completion (the device reward kernel) and
    A = (r − mean_group r) / (std_group r + 1e-4). A module-level jit: every caller with the same
    shapes shares one compilation of the reward kernel."""
    per_row = jax.tree.map(lambda a: jnp.repeat(a, group_size, axis=0), answers)
    scores = score_tokens(table, completions, lengths, per_row, max_bytes=max_bytes)
    format_r = scores["format"].astype(jnp.float32)
    accuracy = scores["accuracy_tenths"].astype(jnp.float32) / 10.0
    penalty = rewards_lib.length_penalty(lengths, weights)
    total = rewards_lib.total_reward(weights, format_r, accuracy, penalty).astype(jnp.float32)
    named = {"format": format_r, "accuracy": accuracy, "total": total}
    return named, group_advantages(total, group_size), reward_metrics(named, lengths, group_size)


def fixed_logps(graphdef, state, ref_state, prompts: dict, completions, mask, *, group_size: int, old_logp: bool,
                micro_batches: int = 1, mesh=None):
    """(ref_logp, old_logp): the reference's log-probs and, if `old_logp`, the current policy's
    (zeros otherwise), gradients stopped; pure, for the trainer to jit. With `micro_batches` M > 1
    the prompts are scored M groups of prompts at a time (`sft.split_micro`'s strided split, each
    prompt with its G completions), so only 1/M of the batch's activations are live at once; the
    values are the same."""
    score = partial(completion_logp, graphdef, group_size=group_size)

    def both(p, c, m):
        ref = score(ref_state, p, c, m)
        return ref, score(state, p, c, m) if old_logp else jnp.zeros_like(ref)

    if micro_batches == 1:
        ref, old = both(prompts, completions, mask)
    else:
        micro = split_micro({"p": prompts, "c": by_group(completions, group_size), "m": by_group(mask, group_size)},
                            micro_batches, mesh)
        ref, old = jax.lax.map(lambda b: both(b["p"], ungroup(b["c"]), ungroup(b["m"])), micro)
        # (M, B/M * G, T) back to rows in the batch's order: micro-batch m holds prompts m, m+M, ...
        unsplit = lambda x: jnp.swapaxes(x.reshape(micro_batches, -1, group_size, x.shape[-1]), 0, 1).reshape(
            -1, x.shape[-1])
        ref, old = unsplit(ref), unsplit(old)
    return jax.lax.stop_gradient(ref), jax.lax.stop_gradient(old)


def reward_metrics(named: dict, lengths, group_size: int) -> dict:
    """Mean and std (over all completions) of each reward, the share of groups whose total reward
    has zero spread (they carry no gradient), and the mean completion length."""
    out = {}
    for name, r in named.items():
        out[f"reward_{name}"], out[f"reward_{name}_std"] = jnp.mean(r), jnp.std(r)
    groups = named["total"].reshape(-1, group_size)
    out["zero_std_groups"] = jnp.mean((jnp.max(groups, 1) == jnp.min(groups, 1)).astype(jnp.float32))
    out["completion_length"] = jnp.mean(lengths.astype(jnp.float32))
    return out
