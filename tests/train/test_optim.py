"""AdamW schedule, weight-decay mask, frozen towers, clipping and optimizer-state sharding."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from ladder_jax.models.qwen25_vl.api import abstract_model
from ladder_jax.models.qwen25_vl.config import preset
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import optim

CFG = preset("tiny")


def _flat(tree):
    return {"/".join(map(str, p)): v for p, v in nnx.to_flat_state(tree)}


def test_schedule_is_linear_warmup_then_cosine():
    cfg = optim.OptimConfig(learning_rate=2e-5, total_steps=100, warmup_ratio=0.1)
    lr = optim.schedule(cfg)
    assert cfg.warmup_steps == 10
    for s in (0, 3, 10, 37, 80, 100):
        want = 2e-5 * (s / 10 if s < 10 else 0.5 * (1 + math.cos(math.pi * (s - 10) / 90)))
        assert abs(float(lr(s)) - want) <= 1e-6 * 2e-5, s  # float32 schedule


def test_grpo_schedule_decays_linearly_from_the_peak_without_warmup():
    cfg = optim.OptimConfig(learning_rate=1e-6, total_steps=2600, warmup_ratio=0.0, decay="linear")
    lr = optim.schedule(cfg)
    # (2600 - s) / 2600 of the peak: the first update at 1e-6, the middle at half, the last at 1/2600
    for s, want in ((0, 1e-6), (1300, 5e-7), (1950, 2.5e-7), (2599, 1e-6 / 2600), (2600, 0.0), (3000, 0.0)):
        assert abs(float(lr(s)) - want) <= 1e-6 * 1e-6, s
    warm = optim.schedule(optim.OptimConfig(learning_rate=2e-5, total_steps=100, warmup_ratio=0.1, decay="linear"))
    for s, want in ((0, 0.0), (5, 1e-5), (10, 2e-5), (55, 1e-5), (100, 0.0)):  # 55: (100 - 55) / 90 = ½
        assert abs(float(warm(s)) - want) <= 1e-6 * 2e-5, s


def test_schedules_match_transformers_lr_lambdas():
    from transformers import optimization as hf  # noqa: PLC0415

    for total, ratio in ((1, 0.0), (7, 0.0), (100, 0.1), (2600, 0.0), (37, 0.5), (10, 1.0)):
        for decay, fn in (("linear", hf._get_linear_schedule_with_warmup_lr_lambda),
                          ("cosine", hf._get_cosine_schedule_with_warmup_lr_lambda)):
            cfg = optim.OptimConfig(learning_rate=1e-6, total_steps=total, warmup_ratio=ratio, decay=decay)
            kw = dict(num_warmup_steps=cfg.warmup_steps, num_training_steps=total)
            kw |= {"num_cycles": 0.5} if decay == "cosine" else {}
            lr = optim.schedule(cfg)
            for s in sorted({0, 1, cfg.warmup_steps, total // 2, max(total - 1, 0)}):
                if s < total:
                    assert abs(float(lr(s)) - 1e-6 * fn(s, **kw)) <= 1e-6 * 1e-6, (decay, total, ratio, s)


def test_unknown_decay_is_refused():
    with pytest.raises(ValueError, match="decay must be one of"):
        optim.OptimConfig(decay="constant")


def test_labels_decay_matrices_and_freeze_towers():
    _, abstract = abstract_model(CFG)
    labels = lambda **kw: _flat_labels(optim.param_labels(abstract, optim.OptimConfig(**kw)))
    plain = labels()
    assert plain["embed_tokens"] == plain["decoder/layers/q_proj/kernel"] == plain["visual/merger/fc1/kernel"] == "decay"
    assert plain["decoder/layers/q_proj/bias"] == plain["decoder/layers/input_layernorm/weight"] == "no_decay"
    assert plain["decoder/norm/weight"] == plain["visual/merger/ln_q/weight"] == "no_decay"
    vision = labels(freeze_vision=True)
    assert vision["visual/patch_embed"] == vision["visual/blocks/qkv/kernel"] == "frozen"
    assert vision["visual/merger/fc2/kernel"] == "decay" and vision["embed_tokens"] == "decay"
    merger = labels(freeze_merger=True)
    assert {k for k, v in merger.items() if v == "frozen"} == {k for k in plain if k.startswith("visual/merger/")}
    words = labels(freeze_embeddings=True)
    assert {k for k, v in words.items() if v == "frozen"} == {"embed_tokens"}


def _flat_labels(labels):
    leaves = jax.tree_util.tree_flatten_with_path(labels)[0]
    return {"/".join(str(k.key) for k in p): v for p, v in leaves}


def test_update_decays_only_matrices_and_skips_frozen():
    _, abstract = abstract_model(CFG)
    state = jax.tree.map(lambda x: jnp.full(x.shape, 0.5, x.dtype), abstract)
    cfg = optim.OptimConfig(learning_rate=0.1, total_steps=10, warmup_ratio=0.0, weight_decay=0.5, freeze_vision=True)
    tx = optim.make_optimizer(cfg, state)
    opt_state = jax.jit(tx.init)(state)
    zero = jax.tree.map(jnp.zeros_like, state)
    updates, opt_state = jax.jit(tx.update)(zero, opt_state, state)
    p, u = _flat(state), _flat(updates)
    # Zero gradients: Adam's direction is 0, so the update is -lr * wd * p on decayed matrices only.
    np.testing.assert_allclose(u["embed_tokens"].get_value(), -0.1 * 0.5 * p["embed_tokens"].get_value(), rtol=1e-6)
    assert not np.any(u["decoder/norm/weight"].get_value())
    assert not np.any(u["visual/blocks/qkv/kernel"].get_value())  # frozen: no decay either
    mu = [s.mu for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
          if isinstance(s, optax.ScaleByAdamState)][0]
    moments = [str(path) for path, _ in jax.tree_util.tree_flatten_with_path(mu)[0]]
    assert not any("blocks" in m for m in moments) and any("merger" in m for m in moments)  # frozen: no moments
    assert float(optim.applied_lr(opt_state)) == float(optim.schedule(cfg)(0))  # constant after 0 warmup steps


def test_applied_lr_is_the_schedule_at_each_update():
    params = {"a": nnx.Param(jnp.ones((3, 2)), axes=("embed", "mlp"))}
    cfg = optim.OptimConfig(learning_rate=1e-3, total_steps=10, warmup_ratio=0.3)
    tx, lr = optim.make_optimizer(cfg, params), optim.schedule(cfg)
    opt_state, update = tx.init(params), jax.jit(tx.update)
    for s in range(8):
        _, opt_state = update(params, opt_state, params)
        np.testing.assert_allclose(optim.applied_lr(opt_state), lr(s), rtol=1e-6, err_msg=str(s))
        assert optim.applied_lr(opt_state).dtype == jnp.float32
    _, first = update(params, tx.init(params), params)
    assert float(optim.applied_lr(first)) == 0.0  # warmup: the first update trains at lr 0


def test_clipping_uses_the_global_norm():
    params = {"a": nnx.Param(jnp.ones((3, 2)), axes=("embed", "mlp")), "b": nnx.Param(jnp.ones((4,)), axes=("norm",))}
    tx = optim.make_optimizer(optim.OptimConfig(max_grad_norm=1.0), params)
    grads = jax.tree.map(lambda x: 10.0 * x, params)
    _, state = tx.update(grads, tx.init(params), params)
    adam = [s for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
            if isinstance(s, optax.ScaleByAdamState)][0]
    # First moment = (1 - b1) * clipped gradient, whose global norm is max_grad_norm.
    assert abs(float(optax.tree.norm(adam.mu)) / 0.1 - 1.0) < 1e-5


def test_moments_shard_like_their_params():
    mesh = make_mesh(data=2, fsdp=2, tensor=2)
    _, abstract = abstract_model(CFG)
    tx = optim.make_optimizer(optim.OptimConfig(), abstract)
    shardings = optim.opt_state_shardings(jax.eval_shape(tx.init, abstract), mesh)
    specs = {tuple(str(getattr(k, "key", getattr(k, "name", k))) for k in p): s.spec
             for p, s in jax.tree_util.tree_flatten_with_path(shardings)[0]}
    gate = [s for p, s in specs.items() if p[-3:] == ("mlp", "gate_proj", "kernel")]
    assert gate and all(s == P(None, "fsdp", "tensor") for s in gate)
    assert any(p[-1] == "count" and s == P() for p, s in specs.items())
