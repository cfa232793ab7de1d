"""Prefill + step-by-step decode through the KV cache reproduces the full forward's logits."""

import numpy as np
import pytest

from tests.models.qwen25_vl.reference import batch_inputs, build_sample

LAYOUTS = {
    "text": [[("text", 7)], [("text", 3)]],
    "image": [[("text", 3), ("image", (4, 6)), ("text", 4)], [("text", 2), ("image", (8, 4)), ("text", 2)]],
    "video": [[("text", 2), ("video", (2, 4, 4)), ("text", 3)], [("text", 5)]],
}


@pytest.mark.parametrize("name,spare", [(name, 3) for name in LAYOUTS] + [("image", 150)])
def test_decode_matches_full_forward(name, spare, tiny_cfg, ours, rng):
    """spare 150: a cache much longer than the steps, so the decode attends over short prefixes of
    the cache (the written-prefix ladder's S/8 and S/4 rungs) as the index grows."""
    steps = 5 if spare == 3 else 12  # the index crosses S/8 (rungs 0 and 1)
    lengths = [len(build_sample(tiny_cfg, np.random.default_rng(0), p)[0]) for p in LAYOUTS[name]]
    prompts = [build_sample(tiny_cfg, rng, p, pad_left=max(lengths) - n) for p, n in zip(LAYOUTS[name], lengths)]
    prompt = batch_inputs(tiny_cfg, prompts)
    continuation = rng.integers(0, 400, size=(len(prompts), steps))

    full = dict(prompt, input_ids=np.concatenate([prompt["input_ids"], continuation], axis=1),
                attention_mask=np.concatenate([prompt["attention_mask"], np.ones_like(continuation)], axis=1))
    expected = ours(**full)[:, max(lengths) - 1:]  # logits at the last prompt token and each fed token

    logits, cache = ours.prefill(prompt, cache_size=max(lengths) + steps + spare)
    got = [np.asarray(logits)]
    for i in range(steps):
        logits, cache = ours.decode_step(cache, continuation[:, i])
        got.append(np.asarray(logits))
    np.testing.assert_allclose(np.stack(got, axis=1), expected, atol=1e-4, rtol=0)


def test_score_completions_equals_full_forward(tiny_cfg, ours, rng):
    """Scoring G completions per prompt (vision once per prompt) = log_softmax of a plain forward
    over each prompt + completion, at the completion tokens."""
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from ladder_jax.models.qwen25_vl.api import model_inputs

    group, steps = 3, 4
    layouts = LAYOUTS["image"]
    lengths = [len(build_sample(tiny_cfg, np.random.default_rng(0), p)[0]) for p in layouts]
    prompt = batch_inputs(tiny_cfg, [build_sample(tiny_cfg, rng, p, pad_left=max(lengths) - n)
                                     for p, n in zip(layouts, lengths)])
    completions = rng.integers(0, 400, size=(len(layouts) * group, steps))
    completion_mask = (np.arange(steps)[None] < rng.integers(1, steps + 1, size=(len(completions), 1))).astype(np.int32)
    per_sample = {k: jnp.asarray(v) for k, v in model_inputs(tiny_cfg, prompt).items()}
    got = jax.jit(lambda s: nnx.merge(ours.graphdef, s).score_completions(
        per_sample, jnp.asarray(completions), jnp.asarray(completion_mask), group))(ours.state)

    for row in range(len(completions)):
        b = row // group
        one = {k: v[b:b + 1] for k, v in prompt.items() if k in ("input_ids", "attention_mask")}
        first = sum(int(np.prod(g)) for g in prompt["image_grid_thw"][:b])
        one["pixel_values"] = prompt["pixel_values"][first:first + int(np.prod(prompt["image_grid_thw"][b]))]
        one["image_grid_thw"] = prompt["image_grid_thw"][b:b + 1]
        one["input_ids"] = np.concatenate([one["input_ids"], completions[row:row + 1]], 1)
        one["attention_mask"] = np.concatenate([one["attention_mask"], completion_mask[row:row + 1]], 1)
        logits = ours(**one)[0, max(lengths) - 1: max(lengths) - 1 + steps]
        top = logits.max(-1, keepdims=True)
        logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        expected = logp[np.arange(steps), completions[row]]
        real = completion_mask[row].astype(bool)
        np.testing.assert_allclose(np.asarray(got)[row][real], expected[real], atol=1e-4)


def test_scoring_in_chunks_equals_one_pass(tiny_cfg, ours, rng):
    """Completion log-probs taken 3 positions at a time (7 = 3 + 3 + 1: a padded last chunk) equal one
    pass over all 7, and so do their gradients (each chunk's logits are recomputed in the backward)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from ladder_jax.models.qwen25_vl.api import model_inputs

    group, steps = 2, 7
    layouts = LAYOUTS["image"]
    lengths = [len(build_sample(tiny_cfg, np.random.default_rng(0), p)[0]) for p in layouts]
    prompt = batch_inputs(tiny_cfg, [build_sample(tiny_cfg, rng, p, pad_left=max(lengths) - n)
                                     for p, n in zip(layouts, lengths)])
    prompt = {k: jnp.asarray(v) for k, v in model_inputs(tiny_cfg, prompt).items()}
    completions = jnp.asarray(rng.integers(0, 400, size=(len(layouts) * group, steps)))
    mask = jnp.ones(completions.shape, jnp.int32)

    def score(state, chunk):
        return nnx.merge(ours.graphdef, state).score_completions(prompt, completions, mask, group, chunk=chunk)

    whole, chunked = (jax.jit(score, static_argnums=1)(ours.state, c) for c in (steps, 3))
    np.testing.assert_allclose(np.asarray(chunked), np.asarray(whole), atol=1e-6, rtol=0)
    grad = lambda c: jax.jit(jax.grad(lambda s: jnp.sum(score(s, c))))(ours.state)
    for a, b in zip(jax.tree.leaves(grad(3)), jax.tree.leaves(grad(steps))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)
