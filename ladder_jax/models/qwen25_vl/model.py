"""Qwen2.5-VL: vision tower + token embedding with vision features gathered in + text decoder.

Vision inputs are per sample and padded to static shapes: pixels (B, P, patch_dim) with P a multiple
of the merge unit, grids (B, K, 3) whose zero rows are padding, second_per_grid_ts (B, K_video).
`batching.py` converts a processor's flat, batch-concatenated arrays into this layout. Vision
features enter the sequence by a fixed-size gather (the k-th image pad token of a row takes the
row's k-th merged image feature), never by a data-dependent scatter.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ladder_jax.models.qwen25_vl import rope
from ladder_jax.models.qwen25_vl.config import ModelConfig
from ladder_jax.models.qwen25_vl.layers import dense, param
from ladder_jax.models.qwen25_vl.text import KVCache, TextDecoder, causal_mask
from ladder_jax.models.qwen25_vl.vision import VisionTower


# Completion positions whose (rows, chunk, vocab) float32 logits are alive at once when scoring
# (`token_logp`): all 1,024 of a GRPO completion at once would be 2.3 GiB for 4 rows of the 152k
# vocabulary, and as much again for their gradient.
LOGP_CHUNK = 128


class Qwen25VL(nnx.Module):
    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        dtype, pdtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
        t = cfg.text
        common = dict(dtype=dtype, param_dtype=pdtype, attention_impl=cfg.attention, remat=cfg.remat, rngs=rngs)
        self.visual = VisionTower(cfg.vision, **common)
        self.embed_tokens = param(rngs, (t.vocab_size, t.hidden_size), ("vocab", "embed"), pdtype)
        self.decoder = TextDecoder(t, **common)
        self.lm_head = None if t.tie_word_embeddings else param(rngs, (t.hidden_size, t.vocab_size), ("embed", "vocab"), pdtype)
        self.dtype = dtype

    # ---- inputs -------------------------------------------------------------------------------
    def embed(self, input_ids, pixel_values=None, image_grid_thw=None, pixel_values_videos=None, video_grid_thw=None):
        """Token embeddings with each row's vision features gathered into its pad tokens.

        Vision arrays are per sample: pixels (B, P, patch_dim), grids (B, K, 3); the tower keeps
        the batch axis, so a batch shards over the data axes like the token arrays do."""
        x = jnp.take(self.embed_tokens[...], input_ids, axis=0).astype(self.dtype)
        parts = [(p, g, tok) for p, g, tok in ((pixel_values, image_grid_thw, self.cfg.image_token_id),
                                                (pixel_values_videos, video_grid_thw, self.cfg.video_token_id))
                 if p is not None and p.shape[1] > 0]
        if not parts:
            return x
        # One tower call per row over its images then its videos.
        pixels = jnp.concatenate([p for p, _, _ in parts], axis=1)
        grids = [g.astype(jnp.int32) for _, g, _ in parts]
        if len(parts) == 2:
            filler = jax.vmap(_filler_item, in_axes=(0, None))(grids[0], parts[0][0].shape[1])
            grids = [grids[0], filler[:, None], grids[1]]
        feats = self.visual(pixels, jnp.concatenate(grids, axis=1)).astype(self.dtype)
        first_row = 0
        for p, _, token_id in parts:
            is_tok = input_ids == token_id
            rows = jnp.clip(first_row + jnp.cumsum(is_tok, axis=1) - 1, 0, feats.shape[1] - 1)
            x = jnp.where(is_tok[..., None], jnp.take_along_axis(feats, rows[..., None], axis=1), x)
            first_row += p.shape[1] // self.cfg.vision.merge_unit
        return x

    def positions(self, input_ids, attention_mask, image_grid_thw=None, video_grid_thw=None, second_per_grid_ts=None):
        """M-RoPE positions (3, B, L) and next positions (B,), from per-sample grids (B, K, 3)."""
        v = self.cfg.vision
        if video_grid_thw is not None and second_per_grid_ts is None:
            second_per_grid_ts = jnp.ones(video_grid_thw.shape[:2], jnp.float32)

        def one_row(ids, mask, img, vid, sec):
            pos, nxt = rope.mrope_positions(
                ids[None], mask[None], img, vid, sec, image_token_id=self.cfg.image_token_id,
                video_token_id=self.cfg.video_token_id, spatial_merge_size=v.spatial_merge_size,
                tokens_per_second=v.tokens_per_second)
            return pos[:, 0], nxt[0]

        pos, nxt = jax.vmap(one_row)(input_ids, attention_mask, image_grid_thw, video_grid_thw, second_per_grid_ts)
        return jnp.moveaxis(pos, 0, 1), nxt

    def logits(self, hidden):
        w = self.embed_tokens[...].T if self.lm_head is None else self.lm_head[...]
        return dense(hidden.astype(self.dtype), w.astype(self.dtype)).astype(jnp.float32)

    def _cos_sin(self, positions):
        t = self.cfg.text
        return rope.mrope_cos_sin(positions, t.head_dim, t.rope_theta, t.mrope_section)

    # ---- passes -------------------------------------------------------------------------------
    def __call__(self, input_ids, attention_mask, pixel_values=None, image_grid_thw=None,
                 pixel_values_videos=None, video_grid_thw=None, second_per_grid_ts=None, return_hidden=False):
        """Full forward: logits (B, L, V) float32 (or the final hidden states)."""
        x = self.embed(input_ids, pixel_values, image_grid_thw, pixel_values_videos, video_grid_thw)
        positions, _ = self.positions(input_ids, attention_mask, image_grid_thw, video_grid_thw, second_per_grid_ts)
        cos, sin = self._cos_sin(positions)
        if self.cfg.attention == "splash":
            mask, segments = None, attention_mask
        else:
            mask, segments = causal_mask(jnp.arange(input_ids.shape[1]), attention_mask.astype(bool)), None
        hidden, _ = self.decoder(x, cos, sin, mask, segments=segments)
        return hidden if return_hidden else self.logits(hidden)

    def token_logp(self, hidden, tokens, chunk: int = LOGP_CHUNK):
        """log softmax(logits)[token] (rows, T) float32 from hidden states (rows, T, D), `chunk`
        positions at a time, each chunk's logits recomputed in the backward pass: at most one
        chunk's (rows, chunk, V) logits are alive. The same per-position arithmetic as one pass."""
        def one(h, c):
            return jnp.take_along_axis(jax.nn.log_softmax(self.logits(h), axis=-1), c[..., None], axis=-1)[..., 0]

        rows, t, d = hidden.shape
        if t <= chunk:
            return one(hidden, tokens)
        pad = -t % chunk
        n = (t + pad) // chunk
        hs = jnp.moveaxis(jnp.pad(hidden, ((0, 0), (0, pad), (0, 0))).reshape(rows, n, chunk, d), 1, 0)
        cs = jnp.moveaxis(jnp.pad(tokens, ((0, 0), (0, pad))).reshape(rows, n, chunk), 1, 0)
        _, out = jax.lax.scan(lambda carry, xs: (carry, jax.checkpoint(one)(*xs)), None, (hs, cs))
        return jnp.moveaxis(out, 0, 1).reshape(rows, n * chunk)[:, :t]

    def score_completions(self, prompt: dict, completions, completion_mask, group_size: int,
                          chunk: int = LOGP_CHUNK):
        """Log-probabilities (rows, T) of sampled completion tokens, rows = prompts * group_size.

        The prompt (left-padded, per-sample vision inputs, B rows) is embedded once and repeated for
        its G completions (rows b*G .. b*G+G-1), so the vision tower runs once per prompt here as in
        the sampler's prefill. Completion positions continue from the prompt's next M-RoPE position,
        as decoding does; completion_mask (rows, T) marks real tokens (0 after EOS). Logits are
        taken `chunk` positions at a time (`token_logp`)."""
        ids, mask = prompt["input_ids"], prompt["attention_mask"]
        x = self.embed(ids, prompt.get("pixel_values"), prompt.get("image_grid_thw"),
                       prompt.get("pixel_values_videos"), prompt.get("video_grid_thw"))
        positions, next_position = self.positions(ids, mask, prompt.get("image_grid_thw"),
                                                  prompt.get("video_grid_thw"), prompt.get("second_per_grid_ts"))
        repeat = lambda a, axis=0: jnp.repeat(a, group_size, axis=axis)
        t = completions.shape[1]
        x = jnp.concatenate([repeat(x), jnp.take(self.embed_tokens[...], completions, axis=0).astype(self.dtype)], 1)
        tail = repeat(next_position)[None, :, None] + jnp.arange(t)[None, None, :]
        positions = jnp.concatenate([repeat(positions, 1), jnp.broadcast_to(tail, (3,) + tail.shape[1:])], axis=2)
        valid = jnp.concatenate([repeat(mask), completion_mask], axis=1)
        if self.cfg.attention == "splash":
            attn_mask, segments = None, valid
        else:
            attn_mask, segments = causal_mask(jnp.arange(valid.shape[1]), valid.astype(bool)), None
        hidden, _ = self.decoder(x, *self._cos_sin(positions), attn_mask, segments=segments)
        prompt_len = ids.shape[1]
        return self.token_logp(hidden[:, prompt_len - 1: prompt_len - 1 + t], completions, chunk)

    def prefill(self, cache: KVCache, input_ids, attention_mask, pixel_values=None, image_grid_thw=None,
                pixel_values_videos=None, video_grid_thw=None, second_per_grid_ts=None):
        """Writes a (left-padded) prompt into an empty cache; returns last-token logits (B, V) and the cache."""
        length = input_ids.shape[1]
        x = self.embed(input_ids, pixel_values, image_grid_thw, pixel_values_videos, video_grid_thw)
        positions, next_position = self.positions(input_ids, attention_mask, image_grid_thw, video_grid_thw,
                                                  second_per_grid_ts)
        key_valid = jax.lax.dynamic_update_slice_in_dim(cache.mask, attention_mask.astype(bool), 0, axis=1)
        mask = causal_mask(jnp.arange(length), key_valid)
        hidden, (k, v) = self.decoder(x, *self._cos_sin(positions), mask, cache)
        cache = KVCache(k=k, v=v, mask=key_valid, index=jnp.asarray(length, jnp.int32), next_position=next_position)
        return self.logits(hidden[:, -1]), cache

    def decode_reads(self) -> set[str]:
        """The parameters (top-level names) a decode step reads whole: the decoder layers and the
        LM head (the tied embedding table when there is no separate head). An untied embedding
        table serves one row per token, and the vision tower none."""
        return {"decoder", "embed_tokens"} if self.lm_head is None else {"decoder", "lm_head"}

    def decode_step(self, cache: KVCache, tokens):
        """One token per row at slot `cache.index`; returns logits (B, V) and the advanced cache."""
        x = jnp.take(self.embed_tokens[...], tokens[:, None], axis=0).astype(self.dtype)
        positions = jnp.broadcast_to(cache.next_position[None, :, None], (3, tokens.shape[0], 1))
        key_valid = jax.lax.dynamic_update_slice_in_dim(
            cache.mask, jnp.ones((tokens.shape[0], 1), bool), cache.index, axis=1)
        mask = causal_mask(cache.index[None], key_valid)
        hidden, (k, v) = self.decoder(x, *self._cos_sin(positions), mask, cache)
        cache = KVCache(k=k, v=v, mask=key_valid, index=cache.index + 1, next_position=cache.next_position + 1)
        return self.logits(hidden[:, 0]), cache


def _filler_item(grids, num_image_patches):
    """One row's images and videos share a tower call; the padding patches after its images must
    not count as part of its first video, so a filler item (1, 1, n_pad) covers them."""
    pad = num_image_patches - jnp.sum(jnp.prod(grids, axis=-1))
    one = jnp.where(pad > 0, 1, 0)
    return jnp.stack([one, one, pad]).astype(jnp.int32)
