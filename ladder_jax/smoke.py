"""`ladder-jax smoke`: the whole inference path on a tiny random model, in seconds.

Trains a tokenizer, builds a tiny Qwen2.5-VL, preprocesses a random image with the stage-2
prompt, runs the jitted forward and a greedy KV-cache decode, and prints timings. Untrained
weights answer gibberish; the point is that every piece runs together on this machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)


def main(verb: str, args) -> int:
    from ladder_jax.data.processor import Processor
    from ladder_jax.data.tokenizer import default_corpus, special_token_ids, train_tokenizer
    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
    from ladder_jax.models.qwen25_vl.config import for_tokenizer, preset

    if args.new_tokens < 1:
        raise ValueError(f"--new-tokens must be at least 1, got {args.new_tokens}")
    t0 = time.time()
    tokenizer = train_tokenizer(default_corpus(), vocab_size=1024)
    cfg = for_tokenizer(preset("tiny"), special_token_ids(tokenizer), len(tokenizer))
    model = VisionLanguageModel.from_config(cfg, seed=args.seed)
    processor = Processor(tokenizer)
    image = Image.fromarray(np.random.default_rng(args.seed).integers(0, 255, (224, 224, 3), np.uint8))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text":
                 "Question: How far is the chair from the table?\nPlease answer the question using a "
                 "numerical value (e.g., 42 or 3.1) directly."}]}]
    inputs = processor(processor.apply_chat_template(messages, add_generation_prompt=True), images=[image])
    t1 = time.time()
    logits = model(**inputs)
    t2 = time.time()
    step, cache = model.prefill(inputs, cache_size=inputs["input_ids"].shape[1] + args.new_tokens)
    tokens = []
    for _ in range(args.new_tokens):
        tokens.append(int(np.argmax(np.asarray(step)[0])))
        step, cache = model.decode_step(cache, np.array([tokens[-1]]))
    t3 = time.time()
    n_params = sum(x.size for x in __import__("jax").tree.leaves(model.state))
    print(f"tiny Qwen2.5-VL: {n_params / 1e6:.2f}M parameters, vocabulary {len(tokenizer)}")
    print(f"prompt: {inputs['input_ids'].shape[1]} tokens, image grid {inputs['image_grid_thw'][0].tolist()}")
    print(f"forward logits {logits.shape} finite={bool(np.isfinite(logits).all())} in {t2 - t1:.2f}s (with compile)")
    print(f"greedy decode of {args.new_tokens} tokens in {t3 - t2:.2f}s: {tokenizer.decode(tokens)!r}")
    print(f"setup (tokenizer, model, processor) {t1 - t0:.2f}s; total {t3 - t0:.2f}s")
    return 0
