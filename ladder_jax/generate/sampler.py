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
import numbers
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from ladder_jax.models.qwen25_vl.text import KVCache
from ladder_jax.parallel.sharding import gathered_for_decode, spec_for


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
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, eos_id: int | Sequence[int], pad_id: int,
           repetition_penalty: float = 1.0, gather_weights: bool = True) -> SampleOutput:
    """G = `num_samples` completions per prompt, on the mesh the state lives on.

    prompts: the model's per-sample layout, left-padded (`prompt_batch`, or the pipeline's prompt
    batches): input_ids and attention_mask (B, L) plus any of pixel_values (B, P, patch_dim),
    image_grid_thw (B, K, 3), pixel_values_videos, video_grid_thw, second_per_grid_ts. temperature 0
    is greedy; top_k 0 and top_p 1.0 disable those filters. eos_id is one end token or a set of them (a row stops at the
    first it emits); a negative id never matches, so `-1` runs every row to max_new_tokens.
    repetition_penalty (transformers' rule, `apply_repetition_penalty`) acts on every token of the
    prompt (padding excluded) and of the row's completion so far, before temperature and the
    filters; 1.0 turns it off. eos ids, pad_id and the penalty are traced (no recompile when their
    values change; a different NUMBER of eos ids, or switching the penalty on, compiles again).
    Each distinct L, B, G, max_new_tokens and filter setting compiles once; bucket prompt lengths
    upstream. `gather_weights`: the decode loop reads a copy of the weights in the compute dtype,
    gathered over the data axes once before its first step (`sharding.gathered_for_decode`); on an
    FSDP mesh each device holds one whole (tensor-split) copy meanwhile. False keeps them sharded
    and gathers them every step instead."""
    if max_new_tokens < 1 or num_samples < 1:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) and num_samples ({num_samples}) must be >= 1")
    if temperature < 0 or top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"need temperature >= 0, top_k >= 0, 0 < top_p <= 1; got {temperature}, {top_k}, {top_p}")
    if not (isinstance(repetition_penalty, numbers.Real) and 0.0 < repetition_penalty < float("inf")):
        raise ValueError(f"repetition_penalty must be a finite number > 0 (1.0: off); got {repetition_penalty!r}")
    eos_ids = end_tokens(eos_id)
    penalize = repetition_penalty != 1.0
    mesh = mesh_of(state)
    with jax.set_mesh(mesh):
        prompts = {k: jax.device_put(v, rows_sharding(mesh, jnp.shape(v))) for k, v in prompts.items()}
        logits, cache = _prefill(graphdef, state, prompts, num_samples=num_samples, max_new_tokens=max_new_tokens)
        seen = (_prompt_presence(prompts["input_ids"], prompts["attention_mask"], vocab=logits.shape[-1],
                                 num_samples=num_samples) if penalize else None)
        out, _ = _decode(graphdef, state, cache, logits, rng, eos_ids, jnp.int32(pad_id),
                         jnp.float32(repetition_penalty), seen, max_new_tokens=max_new_tokens,
                         temperature=float(temperature), top_k=int(top_k), top_p=float(top_p),
                         gather_weights=gather_weights)
    return out


def end_tokens(eos_id) -> jax.Array:
    """One end-token id or a non-empty sequence of them -> an int32 (E,) array (refuses anything else)."""
    ids = [eos_id] if isinstance(eos_id, numbers.Integral) else eos_id
    if (isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) or not ids
            or not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids)):
        raise ValueError(f"eos_id must be an int or a non-empty sequence of ints; got {eos_id!r}")
    if any(not -2 ** 31 <= int(i) < 2 ** 31 for i in ids):
        raise ValueError(f"eos_id out of the int32 range: {eos_id!r}")
    return jnp.asarray([int(i) for i in ids], jnp.int32)


def apply_repetition_penalty(logits, seen, penalty):
    """transformers' RepetitionPenaltyLogitsProcessor: where `seen` (N, V) is True, a logit < 0 is
    multiplied by `penalty` and any other is divided by it; elsewhere logits are unchanged."""
    logits = logits.astype(jnp.float32)
    # XLA rewrites x / broadcast(p) as x * (1 / p), one ulp away from transformers' division; the
    # barrier keeps a true elementwise division.
    penalty = jax.lax.optimization_barrier(jnp.broadcast_to(jnp.asarray(penalty, jnp.float32), logits.shape))
    return jnp.where(seen, jnp.where(logits < 0, logits * penalty, logits / penalty), logits)


def prompt_presence(input_ids, attention_mask, vocab: int):
    """(B, V) bool: the token ids each prompt row holds outside its padding (attention_mask 0).
    transformers also penalises the pad id of a left-padded batch; we do not, so a row's
    completion never depends on the batch it shares."""
    rows = jnp.arange(input_ids.shape[0])[:, None]
    ids = jnp.where(attention_mask > 0, input_ids, vocab)  # padding -> out of range -> dropped
    return jnp.zeros((input_ids.shape[0], vocab), bool).at[rows, ids].set(True, mode="drop")


@functools.partial(jax.jit, static_argnames=("vocab", "num_samples"))
def _prompt_presence(input_ids, attention_mask, *, vocab, num_samples):
    """`prompt_presence` of B prompts repeated G times (rows b*G .. b*G+G-1 belong to prompt b)."""
    return _on_rows(jnp.repeat(prompt_presence(input_ids, attention_mask, vocab), num_samples, axis=0))


def mesh_of(state):
    """The mesh the (sharded) parameters live on."""
    return jax.tree.leaves(state)[0].sharding.mesh


def rows_sharding(mesh, shape):
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

    cache = KVCache(k=_on_rows(grow(cache.k, 1, 3), 1, 2), v=_on_rows(grow(cache.v, 1, 3), 1, 2),
                    mask=_on_rows(grow(cache.mask, 0, 1)), index=cache.index,
                    next_position=_on_rows(grow(cache.next_position, 0)))
    # Gather the vocab (sharded on `tensor` by the lm_head) before the repeat: sampling needs whole
    # rows, and GSPMD cannot move a repeated, vocab-sharded array onto rows without replicating it.
    return _on_rows(grow(_on_rows(logits), 0)), cache


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens", "temperature", "top_k", "top_p",
                                             "gather_weights"), donate_argnames=("cache",))
def _decode(graphdef, state, cache, logits, rng, eos_ids, pad_id, penalty, seen, *, max_new_tokens, temperature,
            top_k, top_p, gather_weights=True):
    """Samples token 0 from the prefill logits, then feeds each token back until every row is done
    or max_new_tokens are out. `seen` (N, V) marks the tokens the repetition penalty acts on (None:
    no penalty); each sampled token joins it. Returns the SampleOutput and the (donated, updated) cache."""
    if gather_weights:  # once, before the loop: each step then reads them without a collective
        model = nnx.merge(graphdef, state)
        state = gathered_for_decode(state, jnp.dtype(model.cfg.dtype), model.decode_reads())
    rows = logits.shape[0]
    row_keys = jax.vmap(jax.random.fold_in, (None, 0))(rng, jnp.arange(rows))
    filters = dict(temperature=temperature, top_k=top_k, top_p=top_p)

    def advance(out, seen, step, logits):
        keys = jax.vmap(jax.random.fold_in, (0, None))(row_keys, step)
        shaped = logits if seen is None else apply_repetition_penalty(logits, seen, penalty)
        token, logprob = choose(shaped, keys, **filters)
        model_logprob = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), token[:, None], axis=-1)[:, 0]
        live = ~out.done
        token = jnp.where(live, token, pad_id)
        out = SampleOutput(
            tokens=out.tokens.at[:, step].set(token),
            logprobs=out.logprobs.at[:, step].set(jnp.where(live, logprob, 0.0)),
            model_logprobs=out.model_logprobs.at[:, step].set(jnp.where(live, model_logprob, 0.0)),
            lengths=out.lengths + live.astype(jnp.int32),
            done=out.done | (live & jnp.any(token[:, None] == eos_ids[None, :], axis=-1)))
        if seen is not None:
            seen = seen.at[jnp.arange(rows), token].set(True, mode="drop")
        return out, seen, token

    blank = SampleOutput(
        tokens=_on_rows(jnp.full((rows, max_new_tokens), pad_id, jnp.int32)),
        logprobs=_on_rows(jnp.zeros((rows, max_new_tokens), jnp.float32)),
        model_logprobs=_on_rows(jnp.zeros((rows, max_new_tokens), jnp.float32)),
        lengths=_on_rows(jnp.zeros((rows,), jnp.int32)), done=_on_rows(jnp.zeros((rows,), bool)))
    out, seen, token = advance(blank, seen, 0, logits)

    def running(carry):
        step, _, _, out, _ = carry
        return (step < max_new_tokens) & ~jnp.all(out.done)

    def body(carry):
        step, cache, token, out, seen = carry
        logits, cache = nnx.merge(graphdef, state).decode_step(cache, token)
        out, seen, token = advance(out, seen, step, logits)
        return step + 1, cache, token, out, seen

    _, cache, _, out, _ = jax.lax.while_loop(running, body, (jnp.int32(1), cache, token, out, seen))
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
    token = draw(scaled, keys)
    logprob = jnp.take_along_axis(jax.nn.log_softmax(scaled, axis=-1), token[:, None], axis=-1)[:, 0]
    return token, logprob


def draw(logits, keys, block: int = 256):
    """One token per row from softmax(logits), row r inverting the distribution's cumulative sum at
    one uniform number from keys[r] (as torch.multinomial does), in two levels: the block of `block`
    tokens the number falls in, then the token inside it. O(V) arithmetic and one random number per
    row; Gumbel-max (`jax.random.categorical`) draws V of them, which on CPU cost more than the model's
    whole decode step at a GRPO batch. Only a token of non-zero probability is ever returned, whatever
    the rounding of the sums."""
    rows, vocab = logits.shape
    num_blocks = -(-vocab // block)
    probs = jnp.pad(jax.nn.softmax(logits, axis=-1), ((0, 0), (0, num_blocks * block - vocab)))
    blocks = probs.reshape(rows, num_blocks, block)
    mass = blocks.sum(-1)
    upto = jnp.cumsum(mass, axis=-1)
    target = jax.vmap(lambda key: jax.random.uniform(key, (), jnp.float32))(keys) * upto[:, -1]
    b = _first(upto > target[:, None], mass > 0)
    inside = jnp.take_along_axis(blocks, b[:, None, None], axis=1)[:, 0]
    rest = target - jnp.take_along_axis(upto - mass, b[:, None], axis=-1)[:, 0]
    i = _first(jnp.cumsum(inside, axis=-1) > rest[:, None], inside > 0)
    return jnp.minimum(b * block + i, vocab - 1).astype(jnp.int32)  # in range even for a row of NaNs


def _first(reached, positive):
    """Per row, the first index where `reached` holds among the `positive` ones; the last positive
    one when rounding left the target past every sum."""
    hit = reached & positive
    last = positive.shape[-1] - 1 - jnp.argmax(positive[:, ::-1], axis=-1)
    return jnp.where(jnp.any(hit, axis=-1), jnp.argmax(hit, axis=-1), last)
