"""Measurement (not a test): does the toy curriculum learn? CPU-sized, about 15 minutes.

Trains the `tiny` preset through stage 1 and stage 2 of configs/toy_demo.py on a fresh toy
world, and scores held-out scenes before and after: stage 1 by the mean box IoU of greedy
grounding answers (`rewards.iou_reward`), stage 2 by the toy-world benchmark (answer accuracy on
multiple choice, MRA on numeric questions) through `eval.runner.evaluate`. Prints one JSON line.

    PYTHONPATH=. python tests/train/toy_learning.py [--workdir DIR] [--scenes 300]
        [--stage1-steps 400] [--stage2-steps 600] [--eval-items 200]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import jax
import numpy as np

from ladder_jax import config_files
from ladder_jax.data import prompts, spld
from ladder_jax.data.processor import Processor
from ladder_jax.data.toyworld.generate import generate
from ladder_jax.data.vision_preprocess import VisionConfig
from ladder_jax.eval import media as media_lib
from ladder_jax.eval import runner
from ladder_jax.eval.benchmarks import Item, read_benchmark
from ladder_jax.eval.media import Media
from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import curriculum, stage_inputs
from ladder_jax.train.metrics import read_jsonl
from ladder_jax.train.rewards import iou_reward

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "toy_demo.py"


def grounding_iou(model, processor: Processor, root: Path, batch: int = 8, max_new_tokens: int = 96) -> float:
    """Mean IoU of greedy stage-1 answers on the grounding records under `root`."""
    records, _ = spld.read_release(root, [spld.GROUNDING_FILE])
    image_root = spld.default_image_root(root)
    scores = []
    for start in range(0, len(records), batch):
        chunk = records[start:start + batch]
        encoded = []
        for r in chunk:
            item = Item(id=r.id, question_type="grounding", prompt=prompts.grounding_prompt(r.question),
                        media=Media("images", tuple(str(image_root / p) for p in r.images)), ground_truth="",
                        think=False)
            encoded.append(runner.encode(processor, item, media_lib.load(item.media)))
        texts = runner.generate(model, processor, encoded, batch, max_new_tokens)
        scores += [iou_reward(t, r.boxes) for t, r in zip(texts, chunk)]
    return float(np.mean(scores))


def spatial_scores(model, processor: Processor, eval_root: Path, limit: int) -> dict:
    items, report = read_benchmark("toyworld", eval_root)
    result = runner.evaluate(model, processor, items, benchmark="toyworld", batch_size=8, max_new_tokens=16,
                             limit=limit, report=report, progress=False)
    return result.summary


def _loss_ends(path: Path) -> tuple[float, float]:
    rows = read_jsonl(path)
    return rows[0]["loss"], rows[-1]["loss"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", default=tempfile.mkdtemp(prefix="toy_learning_"))
    p.add_argument("--scenes", type=int, default=300)
    p.add_argument("--stage1-steps", type=int, default=400)
    p.add_argument("--stage2-steps", type=int, default=600)
    p.add_argument("--eval-items", type=int, default=200)
    args = p.parse_args()
    work = Path(args.workdir)
    data = work / "toyworld"
    if not (data / "toyworld_summary.json").exists():
        generate(data, args.scenes, seed=0, size=112, views=2, video_frames=4, eval_fraction=0.2, workers=1)
    cfg = config_files.load(CONFIG, [f"--config.workdir={work / 'run'}", f"--config.data.root={data}",
                                     "--config.mesh.data=1", f"--config.stages.stage1.steps={args.stage1_steps}",
                                     f"--config.stages.stage2.steps={args.stage2_steps}",
                                     "--config.stages.cold_start.steps=0", "--config.stages.stage3.steps=0"])
    s = cfg.stages.stage1
    vision = VisionConfig(min_pixels=s.min_pixels, max_pixels=s.max_pixels, video_min_pixels=s.video_min_pixels,
                          video_max_pixels=s.video_max_pixels, num_frames=s.num_frames)
    records, _, _ = stage_inputs.read_records(cfg)
    processor = Processor(stage_inputs.build_processor(cfg, records).tokenizer, vision)
    mesh = make_mesh(devices=jax.devices()[:1])

    def scores(model) -> dict:
        summary = spatial_scores(model, processor, data / "eval", args.eval_items)
        tasks = {task: round(t["score"], 3) for task, t in summary["tasks"].items()}
        return {"box_iou": grounding_iou(model, processor, data / "eval"), "spatial": summary["scores"], "tasks": tasks}

    untrained = scores(VisionLanguageModel(*stage_inputs.load_model_source(cfg, processor, mesh), mesh))
    curriculum.run(cfg)
    after, trained = {}, [stage for stage in ("stage1", "stage2") if cfg.stages[stage].steps]
    for stage in trained:
        model_cfg, graphdef, state = stage_inputs.load_final(cfg, work / "run" / stage / "final", mesh)
        after[stage] = scores(VisionLanguageModel(model_cfg, graphdef, state, mesh))
    losses = {stage: _loss_ends(work / "run" / stage / "metrics.jsonl") for stage in trained}
    print(json.dumps({"untrained": untrained, "after": after, "loss_first_last_window": losses,
                      "workdir": str(work)}, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
