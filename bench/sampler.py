"""Sampler throughput: ladder_jax `generate` vs transformers `generate`, same model, prompts and lengths.

    python bench/sampler.py [--quick] [--repeats 3]

A 43.5M-parameter random Qwen2.5-VL (8 text layers of width 512, a 4-block vision tower), saved as
a Hugging Face folder and loaded in both libraries. Three cases, each prompt 32 text tokens and one
224x224 image (64 image tokens): greedy decoding of 4 prompts x 64 new tokens; sampling G = 4
completions of 4 prompts x 64 tokens at temperature 1; and a GRPO-shaped batch, 16 prompts x G = 4
x 256 tokens (`--quick`: 4 x 4 x 64). EOS is disabled on both sides so every row decodes exactly
the requested tokens. Times include prefill (vision tower and prompt); ours after one compiling call.

`bandwidth_bound` is the tokens/s a decode step could reach if it only had to read the text
weights once plus every row's KV cache at a given memory bandwidth.
"""

from __future__ import annotations

import argparse

import common
from ladder_jax.generate import generate
from ladder_jax.models.qwen25_vl.config import ModelConfig, TextConfig, VisionConfig, preset

BENCH_MODEL = ModelConfig(
    text=TextConfig(vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                    num_attention_heads=8, num_key_value_heads=2, mrope_section=(8, 12, 12)),
    vision=VisionConfig(depth=4, hidden_size=256, intermediate_size=512, num_heads=4, out_hidden_size=512,
                        fullatt_block_indexes=(3,)),
    image_token_id=31990, video_token_id=31991, vision_start_token_id=31992, vision_end_token_id=31993,
    eos_token_id=31994, bos_token_id=None, pad_token_id=31995,
)
TEXT, GRID = 32, (16, 16)


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


def cases(quick: bool) -> list[tuple[str, int, int, int]]:
    """(name, prompts, group, new tokens)."""
    grpo = (4, 4, 64) if quick else (16, 4, 256)
    return [("greedy decode", 4, 1, 64), ("sampling G=4", 4, 4, 64),
            (f"GRPO sampling {grpo[0]}x{grpo[1]}", *grpo)]


def run(repeats: int = 3, quick: bool = False, models=None) -> list[dict]:
    import torch  # noqa: PLC0415

    torch.set_grad_enabled(False)
    cfg = BENCH_MODEL
    hf, ours = models or common.both_models(cfg)
    params = sum(p.numel() for p in hf.parameters())
    out = []
    for name, prompts, group, steps in cases(quick):
        common.header(name)
        inputs = common.image_prompts(cfg, prompts, TEXT, GRID)
        torch_inputs = {k: torch.from_numpy(v) for k, v in inputs.items()}
        if group == 1:
            ours_kw, hf_kw = dict(temperature=0.0), dict(do_sample=False)
        else:
            ours_kw = dict(temperature=1.0, num_samples=group)
            hf_kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, num_return_sequences=group)
        rows = prompts * group

        def ours_run():
            assert generate(ours, inputs, steps, eos_token_id=-1, **ours_kw).shape == (rows, steps)

        def hf_run():
            hf.generate(**torch_inputs, max_new_tokens=steps, min_new_tokens=steps, pad_token_id=cfg.pad_token_id,
                        **hf_kw)

        t = common.interleaved(ours_run, hf_run, repeats if steps <= 64 else max(1, repeats - 1))
        ours_s, hf_s = t.ours, t.theirs
        context = inputs["input_ids"].shape[1] + steps // 2
        out.append({"name": name, "what": f"{params / 1e6:.1f}M, {rows} rows x {steps} new", "unit": "tok/s",
                    "ours": rows * steps / ours_s, "theirs": rows * steps / hf_s, **t.quiet(),
                    "bound": lambda bw, rows=rows, context=context: bandwidth_bound(cfg, rows, context, bw, 4)})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bandwidth", type=float, default=3.35e12, help="bytes/s for the reference line (H100 SXM)")
    args = parser.parse_args()
    for r in run(args.repeats, args.quick):
        print(f"{r['name']:>24} ({r['what']}): ladder_jax {r['ours']:8.1f} tok/s   transformers {r['theirs']:8.1f} "
              f"tok/s   ratio {r['ours'] / r['theirs']:5.2f}x   {common.quiet_text(r)}")
    big = preset("3b")
    context = 600 + 1024 // 2  # a stage-3 prompt plus half of a 1,024-token completion, on average
    print(f"reference (not measured): 3B decode at batch 32, mean context {context}, bf16, "
          f"{args.bandwidth / 1e12:.2f} TB/s -> bandwidth bound {bandwidth_bound(big, 32, context, args.bandwidth):,.0f} tok/s")


if __name__ == "__main__":
    main()
