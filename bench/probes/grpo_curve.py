"""Measurement (not a test): GRPO on toy-world questions raises the mean reward of a tiny model.

    PYTHONPATH=. python bench/probes/grpo_curve.py --workdir /tmp/grpo_curve [--grpo-steps 300]

1. Two toy worlds (different seeds): one for a brief cold-start SFT, one for GRPO prompts.
2. Cold start: the SFT world's spatial questions (numeric and multiple choice; single image,
   multi-view, video) with a short solution `<think>let me think</think><answer>{answer}</answer>`
   (the reward's format; short so that it fits the small completion budget), trained briefly
   through sft.make_train_step + loop.train, so the format is only partly learnt.
3. GRPO from that state (reference = the SFT state) on the other world's stage-3 prompts, through
   loop.train, logging every 20 steps: the per-window means of the rewards land in metrics.jsonl.
Prints one JSON line per window and writes them to WORKDIR/curve.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import jax

from ladder_jax.data.buckets import Buckets
from ladder_jax.data.pipeline import Pipeline, PipelineConfig
from ladder_jax.data.processor import Processor
from ladder_jax.data.spld import default_image_root, read_release
from ladder_jax.data.tokenizer import default_corpus, special_token_ids, train_tokenizer
from ladder_jax.data.toyworld.generate import generate
from ladder_jax.generate import sampler
from ladder_jax.models.qwen25_vl.api import init_state
from ladder_jax.models.qwen25_vl.config import for_tokenizer, preset
from ladder_jax.models.qwen25_vl.inputs import MODEL_KEYS
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train.grpo import GRPOConfig, make_grpo_step
from ladder_jax.train.loop import LoopConfig, train
from ladder_jax.train.telemetry import read_jsonl
from ladder_jax.train.optim import OptimConfig
from ladder_jax.train.sft import make_train_step

PIXELS = 112 * 112  # every image and frame resized to 112x112: 64 patches, 16 tokens
BUCKETS = Buckets(lengths=(320,), image_patches=(128,), image_items=(2,), video_patches=(128,), video_items=(1,))
REPORTED = ("reward_total", "reward_format", "reward_accuracy", "reward_total_std", "zero_std_groups",
            "completion_length", "kl", "clip_fraction", "loss", "rollout_tokens_per_s", "sample_time_share",
            "step_time_s")


def world(root: Path, seed: int):
    generate(root, scenes=8, seed=seed, size=64, views=2, video_frames=4, eval_fraction=0.0, workers=1)
    records, _ = read_release(root)
    return [r for r in records if r.kind == "spatial"]


def pipeline(records, processor, stage: str, batch: int, root: Path) -> Pipeline:
    cfg = PipelineConfig(stage, batch, num_epochs=None, buckets=BUCKETS, min_pixels=PIXELS, max_pixels=PIXELS,
                         video_min_pixels=PIXELS, video_max_pixels=PIXELS, num_frames=4)
    return Pipeline(records, processor, cfg, data_root=default_image_root(root))


def cold_start(records):
    return [dataclasses.replace(r, id=f"cold/{r.id}", kind="cold_start",
                                solution=f"<think>let me think</think><answer>{r.answer}</answer>") for r in records]


def samples(graphdef, state, batch, tok, max_new_tokens: int, n: int = 4) -> list[str]:
    """A few sampled completions (temperature 1) of the first prompts of `batch`, decoded."""
    prompts = {k: batch[k] for k in MODEL_KEYS}
    out = sampler.sample(graphdef, state, prompts, jax.random.key(0), num_samples=1, max_new_tokens=max_new_tokens,
                         eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    return [tok.decode(row[:length]) for row, length in zip(jax.device_get(out.tokens)[:n], jax.device_get(out.lengths))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", required=True)
    p.add_argument("--sft-steps", type=int, default=150)
    p.add_argument("--grpo-steps", type=int, default=300)
    p.add_argument("--max-new-tokens", type=int, default=32)
    args = p.parse_args()
    work = Path(args.workdir)
    tok = train_tokenizer(default_corpus())
    processor = Processor(tok)
    cfg = for_tokenizer(preset("tiny"), special_token_ids(tok), len(tok))
    mesh = make_mesh(devices=jax.devices()[:1])
    graphdef, state = init_state(cfg, mesh, seed=0)

    sft_records = cold_start(world(work / "sft_world", seed=1))
    sft_step = make_train_step(graphdef, state, OptimConfig(learning_rate=2e-3, total_steps=args.sft_steps), mesh)
    data = iter(pipeline(sft_records, processor, "cold_start", 8, work / "sft_world"))
    loop_cfg = LoopConfig(workdir=str(work / "sft"), total_steps=args.sft_steps, batch_size=8, log_every=20,
                          checkpoint_every=args.sft_steps, progress=False, tensorboard=False)
    state = train(sft_step, state, data, loop_cfg, cfg).state

    grpo_cfg = GRPOConfig(group_size=4, max_new_tokens=args.max_new_tokens, beta=0.01)
    optim_cfg = OptimConfig(learning_rate=3e-4, total_steps=args.grpo_steps, warmup_ratio=0.05)
    ref = jax.tree.map(lambda x: x.copy(), state)
    grpo_step = make_grpo_step(graphdef, state, ref, optim_cfg, mesh, grpo_cfg, tok)
    data = iter(pipeline(world(work / "grpo_world", seed=0), processor, "stage3", 4, work / "grpo_world"))
    shown = next(iter(pipeline(world(work / "show_world", seed=2), processor, "stage3", 4, work / "show_world")))
    print(json.dumps({"after_sft": samples(graphdef, state, shown, tok, args.max_new_tokens)}))
    loop_cfg = LoopConfig(workdir=str(work / "grpo"), total_steps=args.grpo_steps, batch_size=4, log_every=20,
                          checkpoint_every=args.grpo_steps, progress=False, tensorboard=False)
    state = train(grpo_step, state, data, loop_cfg, cfg).state
    print(json.dumps({"after_grpo": samples(graphdef, state, shown, tok, args.max_new_tokens)}))
    curve = [{"step": r["step"], **{k: round(r[k], 4) for k in REPORTED}}
             for r in read_jsonl(work / "grpo" / "metrics.jsonl")]
    for row in curve:
        print(json.dumps(row))
    (work / "curve.json").write_text(json.dumps(curve, indent=1))


if __name__ == "__main__":
    main()
