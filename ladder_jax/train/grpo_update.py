"""GRPO's policy update: the loss of a scored rollout, its exact micro-batched gradient, and
`updates_per_batch` optimizer steps, as one pure function to jit.

Per token: l = −min(ρA, clip(ρ, 1−ε, 1+ε)A) + β·KL(π‖π_ref), ρ = exp(log π − log π_old), reduced by
`aggregation` to (sum, count) per micro-batch; loss = Σ sum / Σ count over micro-batches, and the
gradient likewise, so any micro_batches gives the same update. With one update per batch π_old is
π itself with the gradient stopped (ρ = 1 exactly, the gradient is A·∇log π), as in TRL.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ladder_jax.train.grpo_loss import aggregate, per_token_loss
from ladder_jax.train.grpo_rollout import Rollout, by_group, completion_logp, ungroup
from ladder_jax.train.sft import apply_summed_grads, split_micro


def policy_loss(graphdef, state, micro: dict, cfg):
    """(sum, (count, stats)) of the GRPO loss on one micro-batch: `micro` holds prompts (b, ...)
    and grouped rollout arrays (b, G, ...). stats are sums over completion tokens of the KL
    estimate and of clipped tokens, the token count and max |ρ − 1|."""
    completions, mask = ungroup(micro["completions"]), ungroup(micro["mask"])
    logp = completion_logp(graphdef, state, micro["prompts"], completions, mask, cfg.group_size)
    old = jax.lax.stop_gradient(logp) if cfg.updates_per_batch == 1 else ungroup(micro["old_logp"])
    tokens, kl, clipped = per_token_loss(logp, old, ungroup(micro["ref_logp"]), ungroup(micro["advantages"]),
                                         clip_eps=cfg.clip_eps, beta=cfg.beta, kl=cfg.kl)
    # Collective order (parallel/distributed.py): across CPU processes two reductions in one jit must
    # depend on each other. Every sum is taken per row, stacked and reduced at once (one all-reduce);
    # the max's input depends on those sums, and the differentiated loss on the max, so that every
    # gradient reduction waits for both. 0 * x keeps the values exact (x is finite; a non-finite
    # loss is skipped anyway).
    row_total, row_count = jax.vmap(lambda t, k: aggregate(t[None], k[None], cfg.aggregation, cfg.max_new_tokens))(
        tokens, mask)
    m = mask.astype(jnp.float32)
    sums = jnp.sum(jnp.stack([row_total, row_count, jnp.sum(kl * m, 1), jnp.sum(clipped * m, 1), jnp.sum(m, 1)], 1), 0)
    total, count, kl_sum, clipped_sum, token_sum = (sums[i] for i in range(5))
    after_sums = 0.0 * jax.lax.stop_gradient(jnp.minimum(count, 1.0))
    deviation = jax.lax.stop_gradient(jnp.max(jnp.where(mask, jnp.abs(jnp.exp(logp - old) - 1.0), 0.0) + after_sums))
    tied = total * (1.0 + 0.0 * jnp.minimum(deviation, 1.0))
    stats = {"kl": kl_sum, "clipped": clipped_sum, "tokens": token_sum, "ratio_max_dev": deviation}
    return tied, (count, stats)


def grouped(prompts: dict, rollout: Rollout, group_size: int) -> dict:
    """Prompts (B, ...) and the rollout's per-row arrays regrouped to (B, G, ...), so that a
    micro-batch split over prompts keeps every group whole and with its prompt."""
    arrays = dict(completions=rollout.completions, mask=rollout.mask, advantages=rollout.advantages,
                  ref_logp=rollout.ref_logp, old_logp=rollout.old_logp)
    return {"prompts": prompts} | {k: by_group(v, group_size) for k, v in arrays.items()}


def grpo_grads(graphdef, state, prompts: dict, rollout: Rollout, cfg, mesh):
    """(Σ grads of the loss sums, Σ sum, Σ count, summed stats) over cfg.micro_batches micro-batches."""
    grad_fn = jax.value_and_grad(lambda s, b: policy_loss(graphdef, s, b, cfg), has_aux=True)

    def body(acc, micro):
        (total, (count, stats)), grads = grad_fn(state, micro)
        merged = {k: jnp.maximum(acc[3][k], v) if k == "ratio_max_dev" else acc[3][k] + v for k, v in stats.items()}
        return (jax.tree.map(jnp.add, acc[0], grads), acc[1] + total, acc[2] + count, merged), None

    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), state)
    stats0 = {k: jnp.zeros(()) for k in ("kl", "clipped", "tokens", "ratio_max_dev")}
    batch = split_micro(grouped(prompts, rollout, cfg.group_size), cfg.micro_batches, mesh)
    (grads, total, count, stats), _ = jax.lax.scan(body, (zeros, jnp.zeros(()), jnp.zeros(()), stats0), batch)
    return grads, total, count, stats


def update_fn(graphdef, tx, trainable, cfg, mesh):
    """The pure (state, opt_state, prompts, rollout) -> (state, opt_state, metrics) of
    cfg.updates_per_batch optimizer steps on one rollout (each counts as an optimizer step for the
    schedule). A non-finite loss or grad norm skips that update. Metrics are means over the
    updates (skipped: 1 if any was skipped)."""
    def one(state, opt_state, prompts, rollout):
        grads, total, count, stats = grpo_grads(graphdef, state, prompts, rollout, cfg, mesh)
        state, opt_state, metrics = apply_summed_grads(tx, trainable, state, opt_state, grads, total, count)
        tokens = jnp.maximum(stats["tokens"], 1.0)
        return state, opt_state, metrics | {
            "tokens": stats["tokens"], "kl": stats["kl"] / tokens, "clip_fraction": stats["clipped"] / tokens,
            "ratio_max_dev": stats["ratio_max_dev"]}

    def update(state, opt_state, prompts, rollout):
        def body(carry, _):
            s, o, m = one(*carry, prompts, rollout)
            return (s, o), m

        (state, opt_state), per = jax.lax.scan(body, (state, opt_state), None, length=cfg.updates_per_batch)
        metrics = {k: jnp.max(v) if k == "skipped" else jnp.mean(v) for k, v in per.items()}
        return state, opt_state, metrics
    return update
