"""The sampler of GRPO rollouts and of generation: a jitted multimodal prefill, then a while-loop decode.

Two jitted stages over the trainer's own (graphdef, state), so no weights are copied:

- `_prefill` runs the vision tower and the prompt ONCE per prompt (B rows), then repeats the KV
  cache G times along the batch (rows b*G .. b*G+G-1 belong to prompt b) and pads it with room
  for the completion. Its inputs are the only place pixels enter.
- `_decode` takes that cache (donated: the loop updates it in place and hands it back, so its
  memory is never held twice) and runs a `lax.while_loop` of one token per row per step, with
  static shapes throughout, per-row EOS stopping and an early exit once every row is done.

Sharding: the state keeps the shardings the trainer gave it (heads on `tensor`, `embed` on
`fsdp`); prompt arrays, the cache and every (rows, ...) output are put on the `batch` rule of
`ladder_jax.parallel.sharding` explicitly, because the cache is created inside the jit and
nothing else would tell GSPMD how to lay out its largest buffer.

Randomness: row r at step t draws with `fold_in(fold_in(rng, r), t)`: independent rows, and draws
that do not depend on how the rows are sharded.

`sample` is called outside jit (it reads the mesh from the state's NamedShardings, as
`api.init_state` / `from_pretrained` make them); the trainer's jitted step runs after it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import nnx

from ladder_jax.models.qwen25_vl.text import KVCache
from ladder_jax.parallel.sharding import spec_for


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class SampleOutput:
    """tokens (N, T) int32, `pad_id` after a row's EOS; N = B * G rows, row b*G+g is sample g of prompt b.
    logprobs (N, T): log-prob of each token under the distribution it was drawn from (temperature,
    top-k, top-p applied; 0 for greedy, where that distribution is a point mass). model_logprobs
    (N, T): under the unmodified model (temperature 1, no filtering), what GRPO's ratio needs.
    Both are 0 after a row's end. lengths (N,): completion tokens, EOS included. done (N,): the row
    emitted EOS (False: cut at max_new_tokens)."""

    tokens: jax.Array
    logprobs: jax.Array
    model_logprobs: jax.Array
    lengths: jax.Array
    done: jax.Array

    @property
    def mask(self) -> jax.Array:
        """(N, T) True on completion tokens (EOS included)."""
        return jnp.arange(self.tokens.shape[1])[None, :] < self.lengths[:, None]


def sample(graphdef, state, prompts: dict, rng, *, num_samples: int = 1, max_new_tokens: int,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, eos_id: int, pad_id: int) -> SampleOutput:
    """G = `num_samples` completions per prompt, on the mesh the state lives on.

    prompts: the model's per-sample layout, left-padded (`prompt_batch`, or the pipeline's prompt
    batches): input_ids and attention_mask (B, L) plus any of pixel_values (B, P, patch_dim),
    image_grid_thw (B, K, 3), pixel_values_videos, video_grid_thw, second_per_grid_ts. temperature 0 is greedy; top_k 0 and
    top_p 1.0 disable those filters. eos_id and pad_id are traced (no recompile when they change); a
    negative eos_id never matches, so every row runs to max_new_tokens. Each distinct L, B, G,
    max_new_tokens and filter setting compiles once; bucket prompt lengths upstream."""
    if max_new_tokens < 1 or num_samples < 1:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) and num_samples ({num_samples}) must be >= 1")
    if temperature < 0 or top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"need temperature >= 0, top_k >= 0, 0 < top_p <= 1; got {temperature}, {top_k}, {top_p}")
    mesh = jax.tree.leaves(state)[0].sharding.mesh
    with jax.set_mesh(mesh):
        prompts = {k: jax.device_put(v, _rows_sharding(mesh, jnp.shape(v))) for k, v in prompts.items()}
        logits, cache = _prefill(graphdef, state, prompts, num_samples=num_samples, max_new_tokens=max_new_tokens)
        out, _ = _decode(graphdef, state, cache, logits, rng, jnp.int32(eos_id), jnp.int32(pad_id),
                         max_new_tokens=max_new_tokens, temperature=float(temperature), top_k=int(top_k),
                         top_p=float(top_p))
    return out


def _rows_sharding(mesh, shape):
    """Leading (row) dimension by the `batch` rule, replicated where the mesh does not divide it."""
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*_rows_spec(mesh, shape)))


def _rows_spec(mesh, shape):
    return (spec_for(shape[:1], ("batch",), mesh)[0],) + (None,) * (len(shape) - 1)


def _on_rows(x, axis: int = 0, heads_axis: int | None = None):
    """Constrains dimension `axis` to the batch rule (and `heads_axis` to the kv_heads rule)."""
    mesh = jax.sharding.get_abstract_mesh()
    spec = [None] * x.ndim
    spec[axis] = spec_for((x.shape[axis],), ("batch",), mesh)[0]
    if heads_axis is not None:
        spec[heads_axis] = spec_for((x.shape[heads_axis],), ("kv_heads",), mesh)[0]
    return jax.lax.with_sharding_constraint(x, jax.sharding.PartitionSpec(*spec))


@functools.partial(jax.jit, static_argnames=("graphdef", "num_samples", "max_new_tokens"))
def _prefill(graphdef, state, prompts, *, num_samples, max_new_tokens):
    """B prompts -> last-token logits (B*G, V) and a cache of B*G rows with max_new_tokens - 1 free
    slots (the last sampled token is never fed back)."""
    model = nnx.merge(graphdef, state)
    batch, length = prompts["input_ids"].shape
    cache = KVCache.empty(model.cfg.text, batch, length, jnp.dtype(model.cfg.dtype))
    logits, cache = model.prefill(cache, **prompts)
    room = max_new_tokens - 1

    def grow(x, axis, slot_axis=None):
        x = jnp.repeat(x, num_samples, axis=axis)
        if slot_axis is None:
            return x
        pad = [(0, 0)] * x.ndim
        pad[slot_axis] = (0, room)
        return jnp.pad(x, pad)

    cache = KVCache(k=_on_rows(grow(cache.k, 1, 2), 1, 3), v=_on_rows(grow(cache.v, 1, 2), 1, 3),
                    mask=_on_rows(grow(cache.mask, 0, 1)), index=cache.index,
                    next_position=_on_rows(grow(cache.next_position, 0)))
    # Gather the vocab (sharded on `tensor` by the lm_head) before the repeat: sampling needs whole
    # rows, and GSPMD cannot move a repeated, vocab-sharded array onto rows without replicating it.
    return _on_rows(grow(_on_rows(logits), 0)), cache


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens", "temperature", "top_k", "top_p"),
                   donate_argnames=("cache",))
def _decode(graphdef, state, cache, logits, rng, eos_id, pad_id, *, max_new_tokens, temperature, top_k, top_p):
    """Samples token 0 from the prefill logits, then feeds each token back until every row is done
    or max_new_tokens are out. Returns the SampleOutput and the (donated, updated) cache."""
    rows = logits.shape[0]
    row_keys = jax.vmap(jax.random.fold_in, (None, 0))(rng, jnp.arange(rows))
    filters = dict(temperature=temperature, top_k=top_k, top_p=top_p)

    def advance(out, step, logits):
        keys = jax.vmap(jax.random.fold_in, (0, None))(row_keys, step)
        token, logprob = choose(logits, keys, **filters)
        model_logprob = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), token[:, None], axis=-1)[:, 0]
        live = ~out.done
        token = jnp.where(live, token, pad_id)
        out = SampleOutput(
            tokens=out.tokens.at[:, step].set(token),
            logprobs=out.logprobs.at[:, step].set(jnp.where(live, logprob, 0.0)),
            model_logprobs=out.model_logprobs.at[:, step].set(jnp.where(live, model_logprob, 0.0)),
            lengths=out.lengths + live.astype(jnp.int32),
            done=out.done | (live & (token == eos_id)))
        return out, token

    blank = SampleOutput(
        tokens=_on_rows(jnp.full((rows, max_new_tokens), pad_id, jnp.int32)),
        logprobs=_on_rows(jnp.zeros((rows, max_new_tokens), jnp.float32)),
        model_logprobs=_on_rows(jnp.zeros((rows, max_new_tokens), jnp.float32)),
        lengths=_on_rows(jnp.zeros((rows,), jnp.int32)), done=_on_rows(jnp.zeros((rows,), bool)))
    out, token = advance(blank, 0, logits)

    def running(carry):
        step, _, _, out = carry
        return (step < max_new_tokens) & ~jnp.all(out.done)

    def body(carry):
        step, cache, token, out = carry
        logits, cache = nnx.merge(graphdef, state).decode_step(cache, token)
        out, token = advance(out, step, logits)
        return step + 1, cache, token, out

    _, cache, _, out = jax.lax.while_loop(running, body, (jnp.int32(1), cache, token, out))
    return out, cache


# ---- choosing a token from logits ---------------------------------------------------------------
def filter_logits(logits, top_k: int = 0, top_p: float = 1.0):
    """Sets logits outside the top-k, then outside the nucleus, to -inf (transformers' order; call
    it on temperature-scaled logits). Static shapes: a top_k, a sort and a cumulative sum.

    top-k keeps every token whose logit is >= the k-th largest (ties with it all stay). top-p keeps
    token t iff the probability of the tokens strictly more likely than t is < top_p: the
    smallest prefix of the sorted distribution reaching top_p, widened to whole ties, so the most
    likely token always stays and the rule never depends on how a sort orders equal values."""
    if 0 < top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits >= kth, logits, -jnp.inf)
    if top_p < 1.0:
        probs = jax.nn.softmax(logits, axis=-1)
        ranked = jnp.flip(jnp.sort(probs, axis=-1), axis=-1)
        # Exclusive cumulative sum: monotone in float arithmetic, so the kept ranks are a prefix.
        ahead = jnp.concatenate([jnp.zeros_like(ranked[..., :1]), jnp.cumsum(ranked, axis=-1)[..., :-1]], axis=-1)
        kept = jnp.sum(ahead < top_p, axis=-1, keepdims=True)
        smallest_kept = jnp.take_along_axis(ranked, kept - 1, axis=-1)
        logits = jnp.where(probs >= smallest_kept, logits, -jnp.inf)
    return logits


def choose(logits, keys, *, temperature: float, top_k: int = 0, top_p: float = 1.0):
    """One token per row: argmax when temperature == 0 (filters ignored, as transformers does),
    else a draw from softmax(filter(logits / temperature)) with row r using keys[r]. Returns the
    tokens (N,) and their log-probs under that distribution (0 for greedy)."""
    if temperature == 0.0:
        token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return token, jnp.zeros(token.shape, jnp.float32)
    scaled = filter_logits(logits.astype(jnp.float32) / temperature, top_k, top_p)
    token = jax.vmap(jax.random.categorical)(keys, scaled).astype(jnp.int32)
    logprob = jnp.take_along_axis(jax.nn.log_softmax(scaled, axis=-1), token[:, None], axis=-1)[:, 0]
    return token, logprob
