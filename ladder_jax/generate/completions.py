"""Completions of prompts as a processor returns them: sampled token ids (`generate`, the inference
API) or greedy decoded texts (`greedy_texts`, what evaluation and the demo score)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from ladder_jax.data.buckets import Sizes
from ladder_jax.generate import sampler
from ladder_jax.generate.prompt_batch import pad_id, prompt_batch, prompt_sizes
from ladder_jax.parallel.distributed import agreed_shapes, global_batch, local_rows


def generate(model, inputs: dict, max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
             top_p: float = 1.0, num_samples: int = 1, seed: int = 0, eos_token_id: int | Sequence[int] | None = None,
             repetition_penalty: float = 1.0) -> np.ndarray:
    """Completions (B * num_samples, max_new_tokens) int32 of a `VisionLanguageModel` for a
    left-padded prompt batch in the processor layout; row b*G+g is sample g of prompt b. Greedy at
    temperature 0. After a row's end token (one of eos_token_id, the config's when None; a
    negative id never stops) come pad tokens. repetition_penalty: transformers' rule (1.0: off)."""
    cfg = model.config
    eos = cfg.eos_token_id if eos_token_id is None else eos_token_id
    out = sampler.sample(model.graphdef, model.state, prompt_batch(cfg, [inputs]), jax.random.key(seed),
                         num_samples=num_samples, max_new_tokens=max_new_tokens, temperature=temperature,
                         top_k=top_k, top_p=top_p, eos_id=eos, pad_id=pad_id(cfg),
                         repetition_penalty=repetition_penalty)
    return np.asarray(out.tokens)


def greedy_texts(model, processor, prompts: Sequence[dict], batch_size: int, max_new_tokens: int, *,
                 eos_token_id: int | Sequence[int] | None = None, repetition_penalty: float = 1.0) -> list[str]:
    """Greedy completions, decoded up to the end token (one of eos_token_id, the config's when
    None), for up to `batch_size` processor outputs of one prompt each, with transformers'
    repetition penalty (1.0: off); the batch is bucketed, so that many batches compile a few programs.

    With several processes, all call it together, each with its own prompts (none where it has
    none left) and the same `batch_size`, its share of the global batch's rows: they agree on one
    bucket, generate as one global batch, and each gets its own prompts' texts."""
    cfg = model.config
    eos = cfg.eos_token_id if eos_token_id is None else eos_token_id
    own = list(prompts) or [_placeholder(cfg)]
    sizes = Sizes(*agreed_shapes({"sizes": prompt_sizes(cfg, own, bucketed=True)})["sizes"])
    local = prompt_batch(cfg, own, rows=batch_size, sizes=sizes)
    mesh, rows = sampler.mesh_of(model.state), batch_size * jax.process_count()
    batch = global_batch(local, {k: sampler.rows_sharding(mesh, (rows, *np.shape(v)[1:])) for k, v in local.items()})
    out = sampler.sample(model.graphdef, model.state, batch, jax.random.key(0), max_new_tokens=max_new_tokens,
                         temperature=0.0, eos_id=eos, pad_id=pad_id(cfg), repetition_penalty=repetition_penalty)
    tokens, lengths = local_rows(out.tokens), local_rows(out.lengths)
    ends = set(np.asarray(sampler.end_tokens(eos)).tolist())
    return [processor.tokenizer.decode([t for t in tokens[r, :lengths[r]] if t not in ends], skip_special_tokens=True)
            for r in range(len(prompts))]


def _placeholder(cfg) -> dict[str, np.ndarray]:
    """A one-token prompt for a process with none left: its rows keep the global batch whole, and
    their answers are dropped."""
    return {"input_ids": np.full((1, 1), pad_id(cfg)), "attention_mask": np.ones((1, 1), np.int64)}
