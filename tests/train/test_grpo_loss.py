"""GRPO loss pieces against plain-Python references, on random and hostile inputs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_jax.train import grpo_loss


def ref_advantages(rewards, g, eps=1e-4):
    out = []
    for start in range(0, len(rewards), g):
        grp = rewards[start:start + g]
        mean = sum(grp) / g
        std = math.sqrt(sum((r - mean) ** 2 for r in grp) / (g - 1))
        out += [(r - mean) / (std + eps) for r in grp]
    return out


def ref_token_loss(lp, old, ref, a, eps, beta, kl):
    ratio = math.exp(lp - old)
    surrogate = min(ratio * a, min(max(ratio, 1 - eps), 1 + eps) * a)
    k = (math.exp(ref - lp) - (ref - lp) - 1) if kl == "k3" else (lp - ref)
    return -surrogate + beta * k


@pytest.mark.parametrize("g", [2, 4, 8])
def test_advantages_match_reference(g):
    rng = np.random.default_rng(g)
    for _ in range(50):
        kind = rng.integers(3)
        r = (rng.integers(0, 3, size=4 * g) * 0.5 if kind == 0 else np.full(4 * g, 2.0) if kind == 1
             else rng.standard_normal(4 * g) * 10)
        got = np.asarray(jax.jit(grpo_loss.group_advantages, static_argnums=1)(jnp.asarray(r), g))
        np.testing.assert_allclose(got, ref_advantages(list(r), g), rtol=1e-5, atol=1e-5)
        assert np.isfinite(got).all()


@pytest.mark.parametrize("kl", ["k3", "k1"])
@pytest.mark.parametrize("how", grpo_loss.AGGREGATIONS)
def test_loss_and_aggregation_match_reference(kl, how):
    rng = np.random.default_rng(0)
    rows, t, eps, beta = 8, 11, 0.2, 0.04
    lp = rng.uniform(-8, 0, (rows, t)); old = lp + rng.normal(0, 0.5, (rows, t)); ref = lp + rng.normal(0, 1, (rows, t))
    adv = rng.normal(0, 1, rows)
    lengths = rng.integers(0, t + 1, rows)  # includes empty completions
    mask = (np.arange(t)[None] < lengths[:, None]).astype(np.float32)
    tok, _, _ = grpo_loss.per_token_loss(jnp.asarray(lp), jnp.asarray(old), jnp.asarray(ref), jnp.asarray(adv),
                                         clip_eps=eps, beta=beta, kl=kl)
    total, count = grpo_loss.aggregate(tok, jnp.asarray(mask), how, max_len=16)
    ref_tok = [[ref_token_loss(lp[i, j], old[i, j], ref[i, j], adv[i], eps, beta, kl) for j in range(t)] for i in range(rows)]
    np.testing.assert_allclose(np.asarray(tok), ref_tok, rtol=1e-5, atol=1e-5)
    if how == "sequence_mean":
        expect = sum(sum(ref_tok[i][:lengths[i]]) / max(lengths[i], 1) for i in range(rows)) / rows
    elif how == "token_mean":
        expect = sum(sum(ref_tok[i][:lengths[i]]) for i in range(rows)) / max(lengths.sum(), 1)
    else:
        expect = sum(sum(ref_tok[i][:lengths[i]]) for i in range(rows)) / (rows * 16)
    assert float(total) / max(float(count), 1.0) == pytest.approx(expect, rel=1e-5, abs=1e-6)


def test_sums_and_counts_split_exactly_over_micro_batches():
    rng = np.random.default_rng(1)
    tok = jnp.asarray(rng.normal(size=(8, 5))); mask = jnp.asarray(rng.integers(0, 2, (8, 5)))
    for how in grpo_loss.AGGREGATIONS:
        whole = grpo_loss.aggregate(tok, mask, how, max_len=5)
        parts = [grpo_loss.aggregate(tok[i:i + 2], mask[i:i + 2], how, max_len=5) for i in range(0, 8, 2)]
        assert float(whole[0]) == pytest.approx(sum(float(p[0]) for p in parts), rel=1e-6)
        assert float(whole[1]) == pytest.approx(sum(float(p[1]) for p in parts))


def test_clipping_and_kl_properties():
    lp = jnp.log(jnp.array([[0.5, 0.5]])); old = jnp.log(jnp.array([[0.25, 0.5]]))  # ratio 2 and 1
    tok, kl, clipped = grpo_loss.per_token_loss(lp, old, lp, jnp.array([1.0]), clip_eps=0.2, beta=0.1)
    np.testing.assert_allclose(np.asarray(tok), [[-1.2, -1.0]], rtol=1e-6)  # positive A: ratio capped at 1.2
    assert np.asarray(clipped).tolist() == [[True, False]] and float(jnp.abs(kl).max()) == 0.0
    tok, _, clipped = grpo_loss.per_token_loss(lp, old, lp, jnp.array([-1.0]), clip_eps=0.2, beta=0.0)
    np.testing.assert_allclose(np.asarray(tok), [[2.0, 1.0]], rtol=1e-6)  # negative A: the unclipped term is smaller
    assert not np.asarray(clipped).any()
    d = jnp.linspace(-5, 5, 101)
    assert float(grpo_loss.kl_penalty(jnp.zeros_like(d), d, "k3").min()) >= 0.0
    with pytest.raises(ValueError, match="aggregation"):
        grpo_loss.aggregate(tok, jnp.ones_like(tok), "mean")
