"""GRPO: the micro-batched gradient against a plain full-forward reference, ρ = 1 at the first
update, video pixels reaching the reference and policy scoring, device rewards wired to the right
group, and exact resume through the training loop."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ladder_jax.data.tokenizer import default_corpus, special_token_ids, train_tokenizer
from ladder_jax.models.qwen25_vl import flops as flops_lib
from ladder_jax.models.qwen25_vl.api import init_state
from ladder_jax.models.qwen25_vl.config import for_tokenizer, preset
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.parallel.sharding import batch_sharding, replicated
from ladder_jax.train import grpo_rollout
from ladder_jax.train.grpo import GRPOConfig, make_grpo_step
from ladder_jax.train.grpo_update import grpo_grads
from ladder_jax.train.loop import LoopConfig, step_batch, train
from ladder_jax.train.telemetry import read_jsonl
from ladder_jax.train.optim import OptimConfig
from ladder_jax.train.reward_tables import byte_table
from ladder_jax.train.rewards import score_completion
from tests.train.grpo_tiny import LocalPrompts
from tests.train.tiny import FAST_COMPILE

G, T, PROMPTS, LENGTH = 4, 16, 4, 24
ANSWERS = ("A", "3", "B", "12")
TYPES = ("relative direction", "object count", "relative distance", "object size")


@pytest.fixture(scope="module")
def setup():
    tok = train_tokenizer(default_corpus())
    cfg = for_tokenizer(preset("tiny"), special_token_ids(tok), len(tok))
    mesh = make_mesh(devices=jax.devices()[:1])
    graphdef, state = init_state(cfg, mesh, seed=0)
    ref = jax.tree.map(lambda p: 0.9 * p, state)  # a different reference, so the KL term is not zero
    return tok, cfg, mesh, graphdef, state, ref


def prompt_batch(cfg, seed: int, video: bool = False) -> dict:
    """Left-padded prompt-mode batch: text, one image (1, 4, 4) or video (2, 4, 4) block, text."""
    rng, v = np.random.default_rng(seed), cfg.vision
    grid = (2, 4, 4) if video else (1, 4, 4)
    patches = int(np.prod(grid))
    pad_token = cfg.video_token_id if video else cfg.image_token_id
    ids, mask = np.full((PROMPTS, LENGTH), cfg.pad_token_id, np.int32), np.zeros((PROMPTS, LENGTH), np.int32)
    for b in range(PROMPTS):
        row = [*rng.integers(20, 700, 3), cfg.vision_start_token_id, *[pad_token] * (patches // v.merge_unit),
               cfg.vision_end_token_id, *rng.integers(20, 700, int(rng.integers(2, 6)))]
        ids[b, LENGTH - len(row):], mask[b, LENGTH - len(row):] = row, 1
    pixels = rng.standard_normal((PROMPTS, patches, v.patch_dim)).astype(np.float32)
    grids = np.tile(np.asarray(grid, np.int32), (PROMPTS, 1, 1))
    none = lambda *shape: np.zeros((PROMPTS, *shape), np.float32)
    return {"input_ids": ids, "attention_mask": mask,
            "pixel_values": none(0, v.patch_dim) if video else pixels,
            "image_grid_thw": np.zeros((PROMPTS, 0, 3), np.int32) if video else grids,
            "pixel_values_videos": pixels if video else none(0, v.patch_dim),
            "video_grid_thw": grids if video else np.zeros((PROMPTS, 0, 3), np.int32),
            "second_per_grid_ts": np.ones((PROMPTS, 1 if video else 0), np.float32),
            "answers": ANSWERS, "question_types": TYPES}


def model_arrays(batch):
    return {k: jnp.asarray(v) for k, v in batch.items() if k not in ("answers", "question_types")}


def fixed_rollout(setup, seed: int = 0, old_noise: float = 0.0) -> tuple[dict, grpo_rollout.Rollout]:
    """A hand-made rollout: random completions with varied lengths, random advantages, the true
    reference log-probs and (if old_noise) old log-probs = reference + noise (so some tokens clip)."""
    tok, cfg, mesh, graphdef, state, ref = setup
    rng = np.random.default_rng(seed)
    prompts = model_arrays(prompt_batch(cfg, seed))
    completions = jnp.asarray(rng.integers(20, 700, (PROMPTS * G, T)), jnp.int32)
    lengths = jnp.asarray(rng.integers(1, T + 1, PROMPTS * G), jnp.int32)
    mask = jnp.arange(T)[None, :] < lengths[:, None]
    ref_logp, _ = jitted_logps(graphdef, False)(ref, ref, prompts, completions, mask)
    old = ref_logp + old_noise * jnp.asarray(rng.standard_normal(ref_logp.shape), jnp.float32)
    advantages = jnp.asarray(rng.standard_normal(PROMPTS * G), jnp.float32)
    return prompts, grpo_rollout.Rollout(completions, mask, advantages, ref_logp, old)


def reference_loss(graphdef, state, prompts, rollout, first, beta, clip_eps=0.2):
    """SPEC section 3 written out on a plain full forward (prompt ⧺ completion, log_softmax);
    `first`: π_old is π itself (the only update on a batch)."""
    model = nnx.merge(graphdef, state)
    rep = lambda x: jnp.repeat(x, G, axis=0)
    inputs = {k: rep(v) for k, v in prompts.items()}
    inputs["input_ids"] = jnp.concatenate([inputs["input_ids"], rollout.completions], axis=1)
    inputs["attention_mask"] = jnp.concatenate([inputs["attention_mask"], rollout.mask.astype(jnp.int32)], axis=1)
    logits = model(**inputs)[:, LENGTH - 1:LENGTH - 1 + T]
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits, -1), rollout.completions[..., None], -1)[..., 0]
    old = jnp.where(first, jax.lax.stop_gradient(logp), rollout.old_logp)
    ratio, a = jnp.exp(logp - old), rollout.advantages[:, None]
    d = rollout.ref_logp - logp
    tok = -jnp.minimum(ratio * a, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * a) + beta * (jnp.exp(d) - d - 1)
    m = rollout.mask.astype(jnp.float32)
    return jnp.mean(jnp.sum(tok * m, 1) / jnp.sum(m, 1))


@functools.lru_cache(maxsize=None)
def jitted_logps(graphdef, old_logp: bool, micro_batches: int = 1, mesh=None):
    fn = functools.partial(grpo_rollout.fixed_logps, graphdef, group_size=G, old_logp=old_logp,
                           micro_batches=micro_batches, mesh=mesh)
    return jax.jit(fn, compiler_options=FAST_COMPILE)


@functools.lru_cache(maxsize=None)
def reference_grads(graphdef):
    """One compilation for both update modes: `first` and beta are traced."""
    return jax.jit(jax.value_and_grad(functools.partial(reference_loss, graphdef)), compiler_options=FAST_COMPILE)


@functools.lru_cache(maxsize=None)
def jitted_grads(graphdef, cfg: GRPOConfig, mesh):
    return jax.jit(lambda s, p, r: grpo_grads(graphdef, s, p, r, cfg, mesh), compiler_options=FAST_COMPILE)


def close(a, b, rtol=2e-4):
    scale = max(float(jnp.max(jnp.abs(b))), 1e-6)
    return float(jnp.max(jnp.abs(a - b))) <= rtol * scale


@pytest.mark.parametrize("updates, noise", [(1, 0.0), (2, 0.3)])
def test_gradient_matches_plain_reference(setup, updates, noise):
    _, _, mesh, graphdef, state, _ = setup
    cfg = GRPOConfig(group_size=G, max_new_tokens=T, updates_per_batch=updates, beta=0.1)
    prompts, rollout = fixed_rollout(setup, old_noise=noise)
    grads, total, count, stats = jitted_grads(graphdef, cfg, mesh)(state, prompts, rollout)
    want_loss, want = reference_grads(graphdef)(state, prompts, rollout, updates == 1, cfg.beta)
    assert float(total / count) == pytest.approx(float(want_loss), rel=1e-5, abs=1e-7)
    got = jax.tree.map(lambda g: g / count, grads)
    assert all(close(a, b) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)))
    assert float(jnp.max(jnp.abs(got["embed_tokens"].get_value()))) > 0  # a real gradient
    if updates == 1:
        assert float(stats["ratio_max_dev"]) == 0.0 and float(stats["clipped"]) == 0.0
    else:
        assert float(stats["clipped"]) > 0  # the noisy old log-probs make the clip matter


def test_micro_batches_add_up_exactly(setup):
    _, _, mesh, graphdef, state, _ = setup
    prompts, rollout = fixed_rollout(setup, seed=3)
    one = GRPOConfig(group_size=G, max_new_tokens=T, beta=0.1)
    g1, s1, c1, _ = jitted_grads(graphdef, one, mesh)(state, prompts, rollout)
    g2, s2, c2, _ = jitted_grads(graphdef, dataclasses.replace(one, micro_batches=2), mesh)(state, prompts, rollout)
    assert float(c1) == float(c2) == PROMPTS * G
    assert float(s2) == pytest.approx(float(s1), rel=1e-6)
    assert all(close(a, b, 1e-5) for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)))


@pytest.mark.parametrize("micro", [2, 4])
def test_scoring_in_micro_batches_gives_each_row_its_own_log_probs(setup, micro):
    """Scoring M groups of prompts at a time (less memory live) returns the same log-probs, in the
    batch's row order, as scoring the whole batch: prompts with different texts and lengths, so a
    row given another prompt's log-probs would show."""
    _, _, mesh, graphdef, state, ref = setup
    prompts, rollout = fixed_rollout(setup, seed=5)
    whole = jitted_logps(graphdef, True)(state, ref, prompts, rollout.completions, rollout.mask)
    split = jitted_logps(graphdef, True, micro, mesh)(state, ref, prompts, rollout.completions, rollout.mask)
    for a, b in zip(whole, split):
        assert a.shape == b.shape == (PROMPTS * G, T)
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(whole[0] - whole[1]))) > 0  # policy and reference differ


def test_video_pixels_reach_reference_and_policy_scoring(setup):
    _, cfg, _, graphdef, state, ref = setup
    _, rollout = fixed_rollout(setup)
    batch = prompt_batch(cfg, 0, video=True)
    a = jitted_logps(graphdef, True)(state, ref, model_arrays(batch), rollout.completions, rollout.mask)
    batch["pixel_values_videos"] = batch["pixel_values_videos"] + 1.0
    b = jitted_logps(graphdef, True)(state, ref, model_arrays(batch), rollout.completions, rollout.mask)
    for name, x, y in zip(("ref_logp", "old_logp"), a, b):
        assert float(jnp.max(jnp.abs(x - y) * rollout.mask)) > 1e-4, f"{name} ignores the video pixels"


def test_device_rewards_match_the_reference_and_hit_their_group(setup):
    tok, mesh = setup[0], setup[2]
    texts = ["<think>hmm</think><answer>A</answer>", "<think>x</think> <answer>3.0</answer>", "B", "<answer>11</answer>"]
    rows = [texts[(i + i // G) % len(texts)] for i in range(PROMPTS * G)]
    ids = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in rows]
    rows2, rows1 = batch_sharding(mesh, 2), batch_sharding(mesh, 1)
    completions = jax.device_put(np.array([row + [tok.pad_token_id] * (T - len(row)) for row in ids], np.int32), rows2)
    lengths = jax.device_put(np.array([len(row) for row in ids], np.int32), rows1)
    # Inputs placed as the step places them, so the step reuses this compilation of the kernel.
    table = jax.device_put(byte_table(tok), replicated(mesh))
    answers = jax.tree.map(lambda a: jax.device_put(a, batch_sharding(mesh, a.ndim)),
                           grpo_rollout.fixed_width_answers(ANSWERS, TYPES))
    named, advantages, metrics = grpo_rollout.rewards(
        table, completions, lengths, answers, group_size=G, weights=GRPOConfig().reward_weights,
        max_bytes=grpo_rollout.max_bytes(jax.device_get(table), T))
    scored = np.array([score_completion(text, ANSWERS[i // G], TYPES[i // G]) for i, text in enumerate(rows)])
    want = {"format": scored[:, 0], "accuracy": scored[:, 1], "total": scored.sum(1)}
    for key in ("format", "accuracy", "total"):
        np.testing.assert_allclose(np.asarray(named[key]), want[key], atol=1e-6)
        assert float(metrics[f"reward_{key}"]) == pytest.approx(np.mean(want[key]), abs=1e-6)
    groups = want["total"].reshape(PROMPTS, G)
    expected = (groups - groups.mean(1, keepdims=True)) / (groups.std(1, ddof=1, keepdims=True) + 1e-4)
    np.testing.assert_allclose(np.asarray(advantages), expected.reshape(-1), rtol=1e-5, atol=1e-5)
    assert float(np.std(want["total"])) > 0


@pytest.fixture(scope="module")
def grpo_step(setup):
    tok, _, mesh, graphdef, state, ref = setup
    cfg = GRPOConfig(group_size=G, max_new_tokens=T, beta=0.1)
    return make_grpo_step(graphdef, state, ref, OptimConfig(learning_rate=3e-3, total_steps=8), mesh, cfg, tok,
                          FAST_COMPILE)


def test_step_reports_every_metric_and_ratio_one(setup, grpo_step):
    _, cfg, _, _, state, _ = setup
    state = jax.tree.map(jnp.copy, state)  # the step donates it
    opt = grpo_step.init_opt_state(state)
    batch = step_batch(prompt_batch(cfg, 0), grpo_step, cfg.pad_token_id, grpo_step.host_keys)
    _, _, m = grpo_step.step(state, opt, batch, jax.random.key(0))
    names = {"loss", "grad_norm", "lr", "skipped", "kl", "clip_fraction", "zero_std_groups", "completion_length",
             "rollout_tokens_per_s", "generated_tokens_per_s", "decode_steps", "sample_time_share"}
    names |= {f"reward_{k}{s}" for k in ("format", "accuracy", "total") for s in ("", "_std")}
    assert names <= set(m)
    assert float(m["ratio_max_dev"]) == 0.0 and float(m["clip_fraction"]) == 0.0
    assert float(m["kl"]) > 0 and 0 < float(m["sample_time_share"]) < 1 and 1 <= float(m["completion_length"]) <= T
    assert float(m["completion_length"]) <= float(m["decode_steps"]) <= T
    assert 0 < float(m["generated_tokens_per_s"]) < float(m["rollout_tokens_per_s"])


def test_flops_count_sampling_scoring_and_updates(setup, grpo_step):
    """The step's FLOPs: prefill + decode (only the steps it ran) + reference scoring + 3x per update."""
    _, cfg, _, _, _, _ = setup
    batch = prompt_batch(cfg, 0)
    (prompts, length), patches = batch["input_ids"].shape, batch["pixel_values"].shape[1] + batch["pixel_values_videos"].shape[1]
    g = grpo_step.cfg
    rows, full = prompts * g.group_size, length + g.max_new_tokens
    scored = flops_lib.text_forward(cfg, rows * full, full) + flops_lib.vision_forward(cfg, prompts, patches)
    prefill = flops_lib.forward(cfg, prompts, length, patches)
    for steps in (1, T):
        expected = prefill + flops_lib.decode(cfg, rows, steps, full) + 4 * scored  # 1 scoring + 3 (one update)
        assert grpo_step.flops(cfg, batch, {"decode_steps": steps}) == pytest.approx(expected)
    twice = dataclasses.replace(grpo_step, cfg=dataclasses.replace(g, updates_per_batch=2))
    assert twice.flops(cfg, batch, {"decode_steps": 1}) - grpo_step.flops(cfg, batch, {"decode_steps": 1}) == \
        pytest.approx(4 * scored)  # the old policy's scoring pass and a second update


def test_interrupted_run_resumes_exactly(setup, grpo_step, tmp_path):
    _, cfg, _, _, state, _ = setup

    def run(workdir, steps):
        loop_cfg = LoopConfig(workdir=str(workdir), total_steps=steps, batch_size=PROMPTS, log_every=1,
                              checkpoint_every=2, progress=False, tensorboard=False)
        train(grpo_step, jax.tree.map(jnp.copy, state), LocalPrompts(cfg, slice(None)), loop_cfg, cfg)
        return read_jsonl(workdir / "metrics.jsonl")

    keys = ("loss", "kl", "grad_norm", "completion_length", "reward_total", "reward_format", "reward_accuracy")
    whole = run(tmp_path / "whole", 5)
    run(tmp_path / "cut", 2)
    resumed = run(tmp_path / "cut", 5)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5]
    assert [[r[k] for k in keys] for r in resumed] == [[r[k] for k in keys] for r in whole]
    assert len({r["loss"] for r in whole}) == 5  # the policy moves: every step differs


def test_one_prompt_per_update_runs_replicated_on_eight_devices_as_on_one(setup):
    """The reference's batch (1 prompt x G 4) does not divide over 8 devices: it is replicated, and
    the step gives what one device gives (same completions, loss, rewards and parameters)."""
    tok, cfg, _, graphdef, state, ref = setup
    assert jax.device_count() == 8
    one_prompt = {k: v[:1] for k, v in prompt_batch(cfg, 3).items()}
    grpo_cfg = GRPOConfig(group_size=G, max_new_tokens=T, beta=0.1, micro_batches=1)
    results = []
    for mesh in (make_mesh(devices=jax.devices()[:1]), make_mesh(2, 4, 1)):
        s_sh = jax.tree.map(lambda x: x.sharding, jax.device_put(state, replicated(mesh)))
        start = jax.device_put(jax.device_get(state), s_sh)
        step = make_grpo_step(graphdef, start, jax.device_put(jax.device_get(ref), s_sh),
                              OptimConfig(learning_rate=3e-3, total_steps=8, warmup_ratio=0.0, decay="linear",
                                          eps=1e-3),
                              mesh, grpo_cfg, tok, FAST_COMPILE, prompts=1)
        assert step.batch_shardings["input_ids"].spec == jax.sharding.PartitionSpec(None, None) or mesh.size == 1
        start = jax.device_put(jax.device_get(state), step.state_shardings)
        batch = step_batch(one_prompt, step, cfg.pad_token_id, step.host_keys)
        new, _, m = step.step(start, step.init_opt_state(start), batch, jax.random.key(5))
        results.append((jax.device_get(m), jax.device_get(new)))
    (m1, s1), (m8, s8) = results
    for key in ("loss", "grad_norm", "reward_total", "completion_length", "kl"):
        np.testing.assert_allclose(m8[key], m1[key], rtol=2e-4, atol=1e-6, err_msg=key)
    assert float(m1["lr"]) == pytest.approx(3e-3)  # linear decay, no warmup: the first update at the peak
    # Adam's first step is lr·g/(|g| + eps): with the default eps a near-zero gradient summed in
    # another order can flip its whole step; eps = 1e-3 keeps the update smooth in g
    for a, b in zip(jax.tree.leaves(s8), jax.tree.leaves(s1)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
