"""GRPO's pure pieces: group advantages, the clipped surrogate with a KL penalty, and the ways to
reduce per-token losses. Losses return (sum, count) so micro-batches and hosts add up exactly.

Rows are ordered by group: rows g*G .. g*G+G-1 are the G completions of prompt g (the sampler's
layout). Token arrays are (rows, T) with a 0/1 `mask` over real completion tokens.
"""

from __future__ import annotations

import jax.numpy as jnp

AGGREGATIONS = ("sequence_mean", "token_mean", "dr_grpo")
KL_ESTIMATORS = ("k3", "k1")


def group_advantages(rewards, group_size: int, eps: float = 1e-4):
    """A_i = (r_i - mean_group(r)) / (std_group(r) + eps), std with Bessel's correction (ddof=1),
    as torch's `.std()` in the reference trainer; a group whose rewards are all equal gets A = 0."""
    r = rewards.reshape(-1, group_size).astype(jnp.float32)
    mean = r.mean(axis=1, keepdims=True)
    std = jnp.sqrt(jnp.sum((r - mean) ** 2, axis=1, keepdims=True) / max(group_size - 1, 1))
    return ((r - mean) / (std + eps)).reshape(-1)


def kl_penalty(logp, ref_logp, estimator: str = "k3"):
    """Per-token KL(pi || ref) estimate from samples of pi.
    k3: exp(ref - logp) - (ref - logp) - 1 (unbiased, >= 0; the reference's choice); k1: logp - ref."""
    if estimator == "k3":
        d = ref_logp - logp
        return jnp.exp(d) - d - 1.0
    if estimator == "k1":
        return logp - ref_logp
    raise ValueError(f"kl estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")


def per_token_loss(logp, old_logp, ref_logp, advantages, *, clip_eps: float, beta: float, kl: str = "k3"):
    """-min(rho A, clip(rho, 1-eps, 1+eps) A) + beta KL, with rho = exp(logp - old_logp).

    Returns (loss, kl, clipped) per token; `clipped` marks tokens where the clipped term won."""
    ratio = jnp.exp(logp - old_logp)
    adv = advantages[:, None]
    unclipped = ratio * adv
    clipped_obj = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv
    surrogate = jnp.minimum(unclipped, clipped_obj)
    kl_tok = kl_penalty(logp, ref_logp, kl) if beta else jnp.zeros_like(logp)
    return -surrogate + beta * kl_tok, kl_tok, clipped_obj < unclipped


def aggregate(per_token, mask, how: str, max_len: int | None = None):
    """Reduces (rows, T) token losses to (sum, count); the loss is sum / count after summing over
    micro-batches and hosts.
    sequence_mean: sum_i mean_t(l_it) / rows (the reference: per-sequence token mean, then mean);
    token_mean:    sum_it l_it / sum_it m_it;
    dr_grpo:       sum_it l_it / (rows * max_len) (Dr. GRPO's constant normaliser)."""
    mask = mask.astype(per_token.dtype)
    masked = per_token * mask
    if how == "sequence_mean":
        per_seq = masked.sum(axis=1) / jnp.maximum(mask.sum(axis=1), 1.0)
        return per_seq.sum(), jnp.asarray(per_token.shape[0], per_token.dtype)
    if how == "token_mean":
        return masked.sum(), mask.sum()
    if how == "dr_grpo":
        length = per_token.shape[1] if max_len is None else max_len
        return masked.sum(), jnp.asarray(per_token.shape[0] * length, per_token.dtype)
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
