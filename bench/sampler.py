"""Sampler throughput: ladder_jax `generate` vs transformers `generate`, same model, prompts and lengths.

    PYTHONPATH=. python bench/sampler.py [--new-tokens 64] [--prompts 4] [--group 4]

Builds a ~40M-parameter random Qwen2.5-VL (8 text layers of width 512, a 4-block vision tower),
saves it as a Hugging Face folder, loads it in both libraries, and times greedy decoding of
`--prompts` image prompts and sampling `--group` completions per prompt at temperature 1. EOS is
disabled on both sides so every row decodes exactly `--new-tokens` tokens. Times include prefill
(vision tower and prompt); ours are measured after one compiling call.

Also prints the memory-bandwidth bound of decoding with the 3B model at batch 32 for a given
bandwidth: the GPU comparison it belongs to needs a GPU, and this script does not fake one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from ladder_jax import VisionLanguageModel
from ladder_jax.generate import generate
from ladder_jax.models.qwen25_vl.config import ModelConfig, TextConfig, VisionConfig, preset, to_hf_dict

BENCH_MODEL = ModelConfig(
    text=TextConfig(vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                    num_attention_heads=8, num_key_value_heads=2, mrope_section=(8, 12, 12)),
    vision=VisionConfig(depth=4, hidden_size=256, intermediate_size=512, num_heads=4, out_hidden_size=512,
                        fullatt_block_indexes=(3,)),
    image_token_id=31990, video_token_id=31991, vision_start_token_id=31992, vision_end_token_id=31993,
    eos_token_id=31994, bos_token_id=None, pad_token_id=31995,
)


def hf_folder(cfg: ModelConfig, out_dir: str) -> Qwen2_5_VLForConditionalGeneration:
    torch.manual_seed(0)
    hf = to_hf_dict(cfg)
    model = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(**{k: v for k, v in hf.items() if k not in ("architectures", "model_type")})).eval()
    model.save_pretrained(out_dir)
    return model


def image_prompts(cfg: ModelConfig, count: int, text: int, grid_hw: tuple[int, int], seed: int = 0) -> dict:
    """`count` prompts of the same length: text, one image of grid_hw patches, text (processor layout)."""
    rng = np.random.default_rng(seed)
    image_tokens = grid_hw[0] * grid_hw[1] // cfg.vision.merge_unit
    rows, types = [], []
    for _ in range(count):
        image = [cfg.vision_start_token_id] + [cfg.image_token_id] * image_tokens + [cfg.vision_end_token_id]
        ids = list(rng.integers(0, 30000, text // 2)) + image + list(rng.integers(0, 30000, text - text // 2))
        rows.append(ids)
        types.append([1 if t == cfg.image_token_id else 0 for t in ids])
    patches = count * grid_hw[0] * grid_hw[1]
    return {"input_ids": np.array(rows), "attention_mask": np.ones((count, len(rows[0])), np.int64),
            "mm_token_type_ids": np.array(types),
            "pixel_values": rng.standard_normal((patches, cfg.vision.patch_dim)).astype(np.float32),
            "image_grid_thw": np.array([(1, *grid_hw)] * count)}


def timed_pair(first, second, repeats: int) -> tuple[float, float]:
    """Median seconds of each, runs interleaved so that load from elsewhere hits both alike."""
    times = ([], [])
    for _ in range(repeats):
        for fn, out in zip((first, second), times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def bandwidth_bound(cfg: ModelConfig, batch: int, context: int, bandwidth: float, bytes_per_value: int = 2) -> float:
    """Decode tokens/s if each step only had to read the text weights once plus every row's KV
    cache: batch * bandwidth / (weights + batch * context * kv_bytes_per_token). Tied embeddings
    are read once, as the lm_head; the vision tower is not read while decoding."""
    t = cfg.text
    kv = t.num_key_value_heads * t.head_dim
    layer = 2 * t.hidden_size * t.hidden_size + 2 * t.hidden_size * kv + 3 * t.hidden_size * t.intermediate_size
    weights = (t.num_hidden_layers * layer + t.vocab_size * t.hidden_size * (1 if t.tie_word_embeddings else 2))
    kv_per_token = 2 * t.num_hidden_layers * kv
    step_bytes = bytes_per_value * (weights + batch * context * kv_per_token)
    return batch * bandwidth / step_bytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--text-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bandwidth", type=float, default=3.35e12, help="bytes/s for the reference line (H100 SXM)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    cfg, steps = BENCH_MODEL, args.new_tokens
    folder = tempfile.mkdtemp()
    hf = hf_folder(cfg, folder)
    ours = VisionLanguageModel.from_pretrained(folder)
    inputs = image_prompts(cfg, args.prompts, args.text_tokens, (16, 16))
    torch_inputs = {k: torch.from_numpy(v) for k, v in inputs.items()}
    params = sum(p.numel() for p in hf.parameters())
    print(f"model {params / 1e6:.1f}M params; {args.prompts} prompts of {inputs['input_ids'].shape[1]} tokens "
          f"(64 image tokens each); {steps} new tokens per row; {args.repeats} interleaved runs, median; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    cases = {
        "greedy": (1, dict(do_sample=False), dict(temperature=0.0)),
        f"sample G={args.group}": (args.group, dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                                    num_return_sequences=args.group),
                                   dict(temperature=1.0, num_samples=args.group)),
    }
    for name, (group, hf_kw, our_kw) in cases.items():
        ours_run = lambda: generate(ours, inputs, steps, eos_token_id=-1, **our_kw)
        hf_run = lambda: hf.generate(**torch_inputs, max_new_tokens=steps, min_new_tokens=steps,
                                     pad_token_id=cfg.pad_token_id, **hf_kw)
        assert ours_run().shape == (args.prompts * group, steps)  # also compiles
        hf_run()
        rows = args.prompts * group
        ours_s, hf_s = timed_pair(ours_run, hf_run, args.repeats)
        ours_tps, hf_tps = rows * steps / ours_s, rows * steps / hf_s
        print(f"{name:>12}: ladder_jax {ours_tps:8.1f} tok/s   transformers {hf_tps:8.1f} tok/s   "
              f"ratio {ours_tps / hf_tps:5.2f}x")

    big = preset("3b")
    context = 600 + 1024 // 2  # a stage-3 prompt plus half of a 1,024-token completion, on average
    bound = bandwidth_bound(big, 32, context, args.bandwidth)
    print(f"reference (not measured; no GPU here): 3B decode at batch 32, mean context {context}, bf16, "
          f"{args.bandwidth / 1e12:.2f} TB/s -> bandwidth bound {bound:,.0f} tok/s")


if __name__ == "__main__":
    main()
