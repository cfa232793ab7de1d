"""Attention restricted to contiguous segments (the vision tower's windows and frames), at a cost
linear in the sequence length instead of quadratic.

The segments must each be one contiguous run of positions (the tower sorts patches into window
order, as transformers does before its per-window cu_seqlens attention). Queries go in chunks of
`chunk` positions; chunk i attends to a gathered key span of `span` positions that starts where its
first query's segment starts. Every key a chunk's queries may see lies in that span exactly when
the chunk's need, end(segment of its last query) - start(segment of its first query), is at most
`span`. The span is chosen at run time from a static ladder of sizes (one `lax.switch`, so only the
chosen branch runs) as the smallest rung covering every chunk's need; the last rung is dense
attention with a segment mask. The result is therefore exact for any layout: the ladder only
decides how much work is done.

Negative ids mark padding; callers give padding a distinct id per chunk so that a long padded tail
does not force a wide span (a padding position then attends to the padding of its own chunk).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ladder_jax.models.qwen25_vl.layers import attention


def segment_bounds(segments):
    """segments (B, N), equal ids contiguous -> (start, end): each position's run as [start, end)."""
    n = segments.shape[1]
    idx = jnp.arange(n)
    change = segments[:, 1:] != segments[:, :-1]
    edge = jnp.ones_like(segments[:, :1], bool)
    first = jnp.concatenate([edge, change], axis=1)
    last = jnp.concatenate([change, edge], axis=1)
    start = jax.lax.cummax(jnp.where(first, idx, 0), axis=1)
    end = jax.lax.cummin(jnp.where(last, idx + 1, n), axis=1, reverse=True)
    return start, end


def needed_span(segments, chunk: int):
    """The widest key span any query chunk of `segments` (B, N) needs (N a multiple of chunk)."""
    start, end = segment_bounds(segments)
    return jnp.max(end[:, chunk - 1::chunk] - start[:, ::chunk])


def span_ladder(n: int, chunk: int, rungs) -> tuple[int, ...]:
    """The spans (multiples `rungs` of chunk) below n worth compiling; spans >= n are the dense rung."""
    return tuple(sorted({r * chunk for r in rungs if r * chunk < n}))


def _chunked(q, k, v, segments, *, chunk: int, span: int, implementation: str):
    b, n, heads, dim = q.shape
    m = n // chunk
    start, _ = segment_bounds(segments)
    first = jnp.clip(start[:, ::chunk], 0, n - span)  # (B, M): a span never runs past the end
    idx = first[..., None] + jnp.arange(span)  # (B, M, S)
    gather = jax.vmap(lambda a, i: a[i])
    kg, vg, key_seg = gather(k, idx), gather(v, idx), gather(segments, idx)
    mask = segments.reshape(b, m, chunk)[..., :, None] == key_seg[..., None, :]  # (B, M, C, S)
    kv_heads = k.shape[2]
    out = attention(q.reshape(b * m, chunk, heads, dim), kg.reshape(b * m, span, kv_heads, dim),
                    vg.reshape(b * m, span, kv_heads, dim), mask.reshape(b * m, 1, chunk, span), implementation)
    return out.reshape(b, n, heads, dim)


def _dense(q, k, v, segments, *, implementation: str):
    mask = segments[:, None, :, None] == segments[:, None, None, :]
    return attention(q, k, v, mask, implementation)


def segment_attention(q, k, v, segments, *, chunk: int, spans: tuple[int, ...], implementation: str = "xla"):
    """q (B, N, H, D), k/v (B, N, K, D), segments (B, N) int with equal ids contiguous; N % chunk == 0.

    Position p attends to every position with its segment id. `spans` (ascending multiples of
    chunk, each < N) are the chunked rungs tried before dense attention."""
    branches = [functools.partial(_chunked, chunk=chunk, span=s, implementation=implementation) for s in spans]
    branches.append(functools.partial(_dense, implementation=implementation))
    if len(branches) == 1:
        return branches[0](q, k, v, segments)
    need = needed_span(segments, chunk)
    rung = jnp.sum(need > jnp.asarray(spans, jnp.int32))
    return jax.lax.switch(rung, branches, q, k, v, segments)
