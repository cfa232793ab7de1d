"""Generation: the jitted sampler (`sampler`), the prompt batcher (`prompt_batch`) and the
completions built on them (`generate`, `greedy_texts`), used by GRPO, evaluation and the demo."""

from ladder_jax.generate.completions import generate, greedy_texts

__all__ = ["generate", "greedy_texts"]
