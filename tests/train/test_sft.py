"""The SFT loss and step: (sum, count) maths, sharded = single device, exact accumulation, NaN skip,
learning, and the FLOPs model behind MFU."""

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ladder_jax.models.qwen25_vl import flops as flops_lib
from ladder_jax.train import sft, telemetry
from ladder_jax.train.optim import OptimConfig, make_optimizer, schedule, trainable_mask
from tests.train.tiny import CFG, BatchIterator, fresh_state, make_batch, tiny_step


def _losses(train_step, steps: int, batches=None):
    state = fresh_state(train_step)
    opt_state = train_step.init_opt_state(state)
    batches = batches or [make_batch(CFG, seed) for seed in range(steps)]
    out = []
    for i, b in enumerate(batches):
        b = jax.device_put(b, train_step.batch_shardings)
        state, opt_state, m = train_step.step(state, opt_state, b, jax.random.key(i))
        out.append(jax.device_get(m))
    return out, state


def test_token_loss_is_shifted_sum_and_count():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 5, 7)).astype(np.float32)
    labels = np.array([[-100, 3, 1, -100, 6], [-100, -100, -100, 2, 0]])
    total, count = sft.token_loss(jnp.asarray(logits), sft.shifted_targets(jnp.asarray(labels)))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = [-logp[b, t - 1, labels[b, t]] for b in range(2) for t in range(1, 5) if labels[b, t] != -100]
    assert count == 5
    np.testing.assert_allclose(total, np.sum(want), rtol=1e-6)


def test_sample_average_weights_each_row_by_its_label_count():
    labels = jnp.asarray([[-100, 3, 1, -100, 6], [-100, -100, -100, 1, 0], [-100] * 5])
    targets = sft.shifted_targets(labels)  # row 0: 3 targets, row 1: 2, row 2: none
    np.testing.assert_allclose(sft.token_weights(targets, "sample"),
                               [[1 / 3, 1 / 3, 0, 1 / 3, 0], [0, 0, 1 / 2, 1 / 2, 0], [0] * 5])
    np.testing.assert_array_equal(sft.token_weights(targets, "token"), targets != -100)
    assert float(sft.loss_denominator(labels, "token")) == 5 and float(sft.loss_denominator(labels, "sample")) == 2
    # Two classes. Logits (log 3, 0): target 0 costs log(4/3), target 1 costs log 4; (0, 0): log 2.
    l3, l2, l4 = np.log(4 / 3), np.log(2), np.log(4)
    logits = np.zeros((3, 5, 2), np.float32)
    logits[0, [0, 1, 3], 0] = np.log(3)  # row 0 targets 3, 1, 6 → classes taken mod 2 below
    logits[1, 3, 0] = np.log(3)
    two_class = jnp.where(targets == -100, -100, targets % 2)  # row 0: 1, 1, 0; row 1: 1, 0
    row0 = [l4, l4, l3]  # positions 0, 1 (class 1 under (log 3, 0)), 3 (class 0 under (log 3, 0))
    row1 = [l2, l3]  # position 2 under (0, 0); position 3 (class 0 under (log 3, 0))
    total, count = sft.token_loss(jnp.asarray(logits), two_class, sft.token_weights(two_class, "sample"))
    np.testing.assert_allclose(total / 2, (np.mean(row0) + np.mean(row1)) / 2, rtol=1e-6)
    total, count = sft.token_loss(jnp.asarray(logits), two_class)
    np.testing.assert_allclose(total / count, np.mean(row0 + row1), rtol=1e-6)
    assert count == 5


def _reference_losses(logits, labels):
    """Plain Python: (token mean, mean of row token means over rows with a label) of the shifted loss."""
    per_row = []
    for row_logits, row_labels in zip(logits, labels):
        losses = []
        for t in range(len(row_labels) - 1):
            y = row_labels[t + 1]
            if y != -100:
                z = row_logits[t].astype(np.float64)
                losses.append(np.log(np.sum(np.exp(z - z.max()))) + z.max() - z[y])
        per_row.append(losses)
    flat = [x for r in per_row for x in r]
    means = [np.mean(r) for r in per_row if r]
    return (np.mean(flat) if flat else 0.0), (np.mean(means) if means else 0.0)


def test_both_averages_match_plain_python_on_hostile_label_layouts():
    @functools.partial(jax.jit, static_argnames="average")
    def loss(logits, labels, average):
        targets = sft.shifted_targets(labels)
        total, _ = sft.token_loss(logits, targets, sft.token_weights(targets, average))
        return total / jnp.maximum(sft.loss_denominator(labels, average), 1.0)

    rng = np.random.default_rng(7)
    for case in range(60):  # random layouts, padded to one shape per vocabulary (no label on the padding)
        b, length, v = rng.integers(1, 5), rng.integers(1, 9), int(rng.integers(2, 6))
        logits = (rng.standard_normal((4, 8, v)) * rng.choice([0.1, 3.0, 30.0])).astype(np.float32)
        labels = np.full((4, 8), -100)
        labels[:b, :length] = rng.integers(0, v, (b, length))
        labels[:b, :length][rng.random((b, length)) < rng.choice([0.0, 0.5, 0.95, 1.0])] = -100
        token_mean, sample_mean = _reference_losses(logits[:b, :length], labels[:b, :length])
        for average, want in (("token", token_mean), ("sample", sample_mean)):
            got = loss(jnp.asarray(logits), jnp.asarray(labels), average)
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, err_msg=f"case {case} {average}")


def test_sample_average_micro_batches_equal_one_big_batch():
    # Rows with 4..20 label tokens: the sample average differs from the token average.
    whole, state_a = _losses(tiny_step(loss_average="sample")[1], 2)
    micro, state_b = _losses(tiny_step(micro=2, loss_average="sample")[1], 2)
    tokens, _ = _losses(tiny_step()[1], 1)
    np.testing.assert_allclose([m["loss"] for m in micro], [m["loss"] for m in whole], atol=1e-5, rtol=0)
    assert abs(float(whole[0]["loss"]) - float(tokens[0]["loss"])) > 1e-4
    assert [m["tokens"] for m in micro] == [m["tokens"] for m in whole]
    for a, b in zip(jax.tree.leaves(state_b), jax.tree.leaves(state_a)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_chunked_loss_equals_full_logits_with_gradients():
    rng = np.random.default_rng(1)
    w = jnp.asarray(rng.standard_normal((8, 11)), jnp.float32)
    hidden = jnp.asarray(rng.standard_normal((2, 13, 8)), jnp.float32)
    targets = jnp.asarray(rng.integers(-1, 11, (2, 13))).at[:, ::3].set(-100)
    model = lambda w: types.SimpleNamespace(logits=lambda h: h @ w)
    full = lambda w, h: sft.token_loss(model(w).logits(h), targets)[0]
    chunked = lambda w, h: sft.chunked_loss(model(w), h, targets, 4)[0]
    np.testing.assert_allclose(chunked(w, hidden), full(w, hidden), rtol=1e-6)
    for a, b in zip(jax.grad(chunked, (0, 1))(w, hidden), jax.grad(full, (0, 1))(w, hidden)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    weights = sft.token_weights(targets, "sample")
    np.testing.assert_allclose(sft.chunked_loss(model(w), hidden, targets, 4, weights)[0],
                               sft.token_loss(model(w).logits(hidden), targets, weights)[0], rtol=1e-6)


def test_sharded_222_run_equals_single_device_run():
    assert jax.device_count() == 8
    single, _ = _losses(tiny_step()[1], 5)
    sharded, _ = _losses(tiny_step(2, 2, 2)[1], 5)
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose([m[key] for m in sharded], [m[key] for m in single], atol=1e-5, rtol=0)


def test_two_micro_batches_equal_one_big_batch():
    whole, state_a = _losses(tiny_step()[1], 2)
    micro, state_b = _losses(tiny_step(micro=2)[1], 2)
    # Same sums in another order: equal up to float32 rounding.
    np.testing.assert_allclose([m["loss"] for m in micro], [m["loss"] for m in whole], atol=1e-5, rtol=0)
    assert [m["tokens"] for m in micro] == [m["tokens"] for m in whole]
    for a, b in zip(jax.tree.leaves(state_b), jax.tree.leaves(state_a)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_nonfinite_step_is_skipped_and_reported():
    ts = tiny_step()[1]
    state = fresh_state(ts)
    opt_state = ts.init_opt_state(state)
    before = jax.device_get((state, opt_state))
    bad = make_batch(CFG, 0)
    bad["pixel_values"][0, 0, 0] = np.nan
    state, opt_state, m = ts.step(state, opt_state, jax.device_put(bad, ts.batch_shardings), jax.random.key(0))
    assert int(m["skipped"]) == 1 and not np.isfinite(float(m["loss"]))
    for a, b in zip(jax.tree.leaves(jax.device_get((state, opt_state))), jax.tree.leaves(before)):
        np.testing.assert_array_equal(a, b)
    _, _, m = ts.step(state, opt_state, jax.device_put(make_batch(CFG, 0), ts.batch_shardings), jax.random.key(1))
    assert int(m["skipped"]) == 0 and np.isfinite(float(m["loss"]))


def test_skipped_updates_keep_everything_and_log_their_lr():
    """A non-finite loss with finite gradients is skipped like non-finite gradients; a skipped step
    reports the lr its update would have used, and the next update uses it."""
    params = {"a": nnx.Param(jnp.ones((3, 2)), axes=("embed", "mlp")), "b": nnx.Param(jnp.ones((2,)), axes=("norm",))}
    cfg = OptimConfig(learning_rate=1e-3, total_steps=10, warmup_ratio=0.3)
    tx, lr = make_optimizer(cfg, params), schedule(cfg)
    apply = jax.jit(functools.partial(sft.apply_grads, tx, trainable_mask(params, cfg)))
    grads = jax.tree.map(lambda p: 0.5 * p, params)
    nan_grads = jax.tree.map(lambda p: p.at[0].set(jnp.nan), grads)
    state, opt_state = params, tx.init(params)
    logged = []
    for loss, g in ((1.0, grads), (jnp.inf, grads), (1.0, nan_grads), (jnp.nan, grads), (1.0, grads), (1.0, grads)):
        before = jax.device_get((state, opt_state))
        state, opt_state, m = apply(state, opt_state, g, jnp.float32(loss))
        logged.append((int(m["skipped"]), float(m["lr"])))
        if m["skipped"]:
            for a, b in zip(jax.tree.leaves(jax.device_get((state, opt_state))), jax.tree.leaves(before)):
                np.testing.assert_array_equal(a, b)
    assert [skipped for skipped, _ in logged] == [0, 1, 1, 1, 0, 0]
    np.testing.assert_allclose([x for _, x in logged], [lr(s) for s in (0, 1, 1, 1, 1, 2)], rtol=1e-6)


def test_loss_falls_on_repeated_data():
    data = BatchIterator(CFG, n=2)
    out, _ = _losses(tiny_step()[1], 24, [next(data) for _ in range(24)])
    losses = [float(m["loss"]) for m in out]
    assert losses[0] > 6.0  # about ln(vocab 512) = 6.24 at random init
    assert np.mean(losses[-2:]) < 0.6 * losses[0], losses


def test_mfu_is_not_reported_on_a_cpu():
    assert telemetry.peak_flops() is None and telemetry.mfu(flops_lib.train(CFG, 8, 32, 16), 1.0) is None

