"""Prefill + step-by-step decode through the KV cache reproduces the full forward's logits."""

import numpy as np
import pytest

from tests.models.qwen25_vl.reference import batch_inputs, build_sample

LAYOUTS = {
    "text": [[("text", 7)], [("text", 3)]],
    "image": [[("text", 3), ("image", (4, 6)), ("text", 4)], [("text", 2), ("image", (8, 4)), ("text", 2)]],
    "video": [[("text", 2), ("video", (2, 4, 4)), ("text", 3)], [("text", 5)]],
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_decode_matches_full_forward(name, tiny_cfg, ours, rng):
    steps = 5
    lengths = [len(build_sample(tiny_cfg, np.random.default_rng(0), p)[0]) for p in LAYOUTS[name]]
    prompts = [build_sample(tiny_cfg, rng, p, pad_left=max(lengths) - n) for p, n in zip(LAYOUTS[name], lengths)]
    prompt = batch_inputs(tiny_cfg, prompts)
    continuation = rng.integers(0, 400, size=(len(prompts), steps))

    full = dict(prompt, input_ids=np.concatenate([prompt["input_ids"], continuation], axis=1),
                attention_mask=np.concatenate([prompt["attention_mask"], np.ones_like(continuation)], axis=1))
    expected = ours(**full)[:, max(lengths) - 1:]  # logits at the last prompt token and each fed token

    logits, cache = ours.prefill(prompt, cache_size=max(lengths) + steps + 3)
    got = [np.asarray(logits)]
    for i in range(steps):
        logits, cache = ours.decode_step(cache, continuation[:, i])
        got.append(np.asarray(logits))
    np.testing.assert_allclose(np.stack(got, axis=1), expected, atol=1e-4, rtol=0)
