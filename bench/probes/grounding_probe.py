"""Measurement (not a test): what limits held-out stage-1 box IoU on the toy world?

Trains stage 1 only (the demo curriculum, `demo` preset) and prints, for held-out grounding
questions: the mean box IoU of greedy answers (`eval.grounding.parsed_iou`, labels must match), the share
of answers that parse as boxes, the IoU a position-blind model would get by answering each label's
mean training box, and a few answers next to the truth.

    PYTHONPATH=. python bench/probes/grounding_probe.py --workdir DIR [--scenes 600] [--steps 400]
        [--learning-rate LR] [--grounding-per-scene N] [--size 224] [--train-questions 160]
        [--single-object]      (keep only one-object questions: no choice of which label to copy)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from ladder_jax.data.toyworld.generate import FILES, generate
from ladder_jax.demo.evaluate import HeldOut, position_blind_iou
from ladder_jax.demo.run import demo_config
from ladder_jax.eval import media as media_lib
from ladder_jax.eval import runner
from ladder_jax.generate import greedy_texts
from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import curriculum, stage_inputs


def keep_single_object(root: Path) -> None:
    for split in (root, root / "eval"):
        path = split / FILES["grounding"]
        rows = [line for line in path.read_text().splitlines() if len(json.loads(line)["answer"]) == 1]
        path.write_text("\n".join(rows) + "\n")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", required=True)
    p.add_argument("--scenes", type=int, default=600)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--grounding-per-scene", type=int, default=4)
    p.add_argument("--single-object", action="store_true")
    p.add_argument("--size", type=int, default=112, help="rendered image side (multiple of 56)")
    p.add_argument("--train-questions", type=int, default=0,
                   help="also score this many training questions (memorised vs not learnt)")
    p.add_argument("--learning-rate", type=float, default=None, help="stage 1's peak rate (default: the demo's)")
    args = p.parse_args()
    work = Path(args.workdir)
    cfg = demo_config(work, overrides=[
        f"--config.demo.scenes={args.scenes}", f"--config.stages.stage1.steps={args.steps}",
        f"--config.demo.size={args.size}", f"--config.demo.grounding_per_scene={args.grounding_per_scene}",
        "--config.order=('stage1',)"] + ([f"--config.stages.stage1.learning_rate={args.learning_rate}"]
                                        if args.learning_rate else []))
    d, data = cfg.demo, Path(cfg.data.root)
    if not (data / "toyworld_summary.json").exists():
        generate(data, d.scenes, cfg.seed, size=d.size, views=d.views, video_frames=d.video_frames,
                 eval_fraction=d.eval_fraction, grounding_per_scene=d.grounding_per_scene)
        if args.single_object:
            keep_single_object(data)
    curriculum.run(cfg)
    records, _, _ = stage_inputs.read_records(cfg)
    processor = stage_inputs.stage_processor(cfg, records)
    mesh = make_mesh(1, 1, 1)
    model = VisionLanguageModel(*stage_inputs.load_final(cfg, Path(cfg.workdir) / "stage1" / "final", mesh), mesh)
    tokens = cfg.stages.stage3.grpo.max_new_tokens
    held = HeldOut(data / "eval", processor, 10**6, 0, tokens)
    scores = held.grounding_scores(model)
    if args.train_questions:
        scores["train"] = HeldOut(data, processor, args.train_questions, 0, tokens).grounding_scores(model)
    sample = held.grounding[:4]
    texts = greedy_texts(model, processor, [runner.encode(processor, item, media_lib.load(item.media))
                                            for _, item in sample], 8, held.grounding_tokens)
    print(json.dumps({
        **scores,
        "position_blind_mean_box_iou": position_blind_iou([r for r in records if r.kind == "grounding"],
                                                          [r for r, _ in held.grounding]),
        "examples": [{"answer": t, "truth": [(b.label, list(b.bbox_2d)) for b in r.boxes]}
                     for t, (r, _) in zip(texts, sample)]}, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
