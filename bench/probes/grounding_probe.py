"""Measurement (not a test): what limits held-out stage-1 box IoU on the toy world?

Trains stage 1 only (the demo curriculum, `demo` preset) and prints, for held-out grounding
questions: the mean box IoU of greedy answers (`eval.grounding.parsed_iou`, labels must match), the share
of answers that parse as boxes, the IoU a position-blind model would get by answering each label's
mean training box, how well the boxes' centres follow the objects across (x) and down (y) beside
what the label alone predicts (`centres`: a model that reads only the label scores the prior's
correlation, about 0.0 across and 0.44 down on the toy world), and a few answers next to the truth.

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
from ladder_jax.demo.evaluate import HeldOut, label_mean_boxes, position_blind_iou
from ladder_jax.demo.run import demo_config
from ladder_jax.eval import media as media_lib
from ladder_jax.eval import runner
from ladder_jax.eval.grounding import parse_boxes
from ladder_jax.generate import greedy_texts
from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import curriculum, stage_inputs


def keep_single_object(root: Path) -> None:
    for split in (root, root / "eval"):
        path = split / FILES["grounding"]
        rows = [line for line in path.read_text().splitlines() if len(json.loads(line)["answer"]) == 1]
        path.write_text("\n".join(rows) + "\n")


def centres(pairs) -> dict[str, float]:
    """Correlation and mean distance of predicted and true box centres, across and down, over
    (predicted xyxy, true xyxy) pairs."""
    if len(pairs) < 3:
        return {"pairs": len(pairs)}
    p, t = (np.array([pair[i] for pair in pairs], np.float64) for i in (0, 1))
    out: dict[str, float] = {"pairs": len(pairs)}
    for axis, (lo, hi) in (("x", (0, 2)), ("y", (1, 3))):
        cp, ct = (p[:, lo] + p[:, hi]) / 2, (t[:, lo] + t[:, hi]) / 2
        out[f"corr_{axis}"] = float(np.corrcoef(cp, ct)[0, 1]) if cp.std() > 0 and ct.std() > 0 else 0.0
        out[f"mean_abs_d{axis}"] = float(np.abs(cp - ct).mean())
    return out


def centre_pairs(model, processor, held, train_records) -> dict[str, dict[str, float]]:
    """`centres` of the model's boxes (the first box it gives each asked label) and of each label's
    mean training box, over the same held-out objects."""
    means = label_mean_boxes(train_records)
    ours, blind = [], []
    for start in range(0, len(held.grounding), 8):
        chunk = held.grounding[start:start + 8]
        encoded = [runner.encode(processor, item, media_lib.load(item.media)) for _, item in chunk]
        for text, (record, _) in zip(greedy_texts(model, processor, encoded, 8, held.grounding_tokens), chunk):
            given = {label: xyxy for xyxy, label in reversed(parse_boxes(text) or [])}
            for b in record.boxes:
                if b.label in given and b.label in means:
                    ours.append((given[b.label], b.bbox_2d))
                    blind.append((means[b.label], b.bbox_2d))
    return {"model": centres(ours), "label_prior": centres(blind)}


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
    scores["centres"] = centre_pairs(model, processor, held, [r for r in records if r.kind == "grounding"])
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
