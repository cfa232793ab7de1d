"""segment_attention (chunked key spans + dense fallback) equals plain per-segment softmax attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_jax.models.qwen25_vl.segment_attention import needed_span, segment_attention, segment_bounds, span_ladder


def reference(q, k, v, segments):
    """Position p attends to every position with segment id segments[p]; plain loops."""
    b, n, h, d = q.shape
    group = h // k.shape[2]
    out = np.zeros_like(q)
    for i in range(b):
        for p in range(n):
            keys = np.flatnonzero(segments[i] == segments[i, p])
            for head in range(h):
                s = k[i, keys, head // group] @ q[i, p, head] / np.sqrt(d)
                w = np.exp(s - s.max())
                out[i, p, head] = (w / w.sum()) @ v[i, keys, head // group]
    return out


def runs(rng, n, chunk, longest, pad_tail):
    """Contiguous segment ids with run lengths in [1, longest], then a padded tail (negative ids per chunk)."""
    ids, seg = [], 0
    while len(ids) < n - pad_tail:
        ids += [seg] * int(rng.integers(1, longest + 1))
        seg += 1
    ids = ids[: n - pad_tail]
    tail = [-1 - p // chunk for p in range(n - pad_tail, n)]
    return np.asarray(ids + tail, np.int32)


CASES = {  # name: (n, chunk, longest run, padded tail)
    "windows_aligned": (64, 8, 8, 0),
    "windows_ragged": (64, 8, 8, 13),
    "runs_of_one": (32, 8, 1, 0),
    "frames_spanning_chunks": (96, 8, 20, 5),
    "one_long_run_forces_dense": (64, 8, 64, 0),
    "all_padding": (32, 8, 1, 32),
}


@pytest.mark.parametrize("name", CASES)
def test_matches_reference(name):
    n, chunk, longest, pad_tail = CASES[name]
    rng = np.random.default_rng(len(name))
    b, h, kv, d = 2, 4, 2, 8
    segments = np.stack([runs(rng, n, chunk, longest, pad_tail) for _ in range(b)])
    q, k, v = (rng.standard_normal((b, n, heads, d)).astype(np.float32) for heads in (h, kv, kv))
    spans = span_ladder(n, chunk, (1, 2, 3, 4))
    got = jax.jit(lambda *a: segment_attention(*a, chunk=chunk, spans=spans))(q, k, v, segments)
    np.testing.assert_allclose(np.asarray(got), reference(q, k, v, segments), atol=2e-5)


def test_bounds_and_need_match_python():
    rng = np.random.default_rng(3)
    for _ in range(20):
        chunk = int(rng.choice([2, 4, 8]))
        n = chunk * int(rng.integers(1, 9))
        seg = runs(rng, n, chunk, int(rng.integers(1, 2 * n)), int(rng.integers(0, n + 1)))[None]
        start, end = (np.asarray(a)[0] for a in segment_bounds(jnp.asarray(seg)))
        for p in range(n):
            same = np.flatnonzero(seg[0] == seg[0, p])
            assert (start[p], end[p]) == (same.min(), same.max() + 1)
        want = max(end[c + chunk - 1] - start[c] for c in range(0, n, chunk))
        assert int(needed_span(jnp.asarray(seg), chunk)) == want


def test_gradients_equal_dense():
    """The chunked rungs differentiate like the dense one (spans=() is dense attention)."""
    rng = np.random.default_rng(1)
    n, chunk = 48, 8
    segments = runs(rng, n, chunk, 8, 6)[None]
    q, k, v = (jnp.asarray(rng.standard_normal((1, n, 2, 4)), jnp.float32) for _ in range(3))
    w = jnp.asarray(rng.standard_normal((1, n, 2, 4)), jnp.float32)

    def loss(spans):
        return jax.grad(lambda q, k, v: jnp.sum(w * segment_attention(q, k, v, segments, chunk=chunk, spans=spans)),
                        argnums=(0, 1, 2))(q, k, v)

    for got, want in zip(loss(span_ladder(n, chunk, (1, 2, 3))), loss(())):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_ladder_keeps_spans_below_length():
    assert span_ladder(64, 16, (1, 2, 3, 4)) == (16, 32, 48)
    assert span_ladder(16, 16, (1, 2, 3)) == ()
