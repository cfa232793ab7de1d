"""Measurement (not a test): do stages 1 and 2 learn? CPU-sized, about 15 minutes.

Trains stage 1 and stage 2 of configs/toy_demo.py on a fresh toy world, and scores held-out
scenes before and after with the demo's `HeldOut`: stage 1 by the mean box IoU of greedy grounding
answers, stage 2 by the toy-world benchmark (accuracy on multiple choice, MRA on numbers) per
question type. Prints one JSON document. (`ladder-jax demo` measures the whole ladder.)

    PYTHONPATH=. python bench/probes/toy_learning.py [--workdir DIR] [--scenes 300]
        [--stage1-steps 400] [--stage2-steps 600] [--eval-items 200]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import jax

from ladder_jax import config_files
from ladder_jax.data.toyworld.generate import generate
from ladder_jax.demo.evaluate import HeldOut
from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import curriculum, stage_inputs
from ladder_jax.train.telemetry import read_jsonl

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "toy_demo.py"


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
    records, _, _ = stage_inputs.read_records(cfg)
    processor = stage_inputs.stage_processor(cfg, records)
    mesh = make_mesh(devices=jax.devices()[:1])
    held = HeldOut(data / "eval", processor, grounding_items=10**6, spatial_items=args.eval_items,
                   reasoning_tokens=cfg.stages.stage3.grpo.max_new_tokens)

    def scores(model) -> dict:
        return {"box_iou": held.grounding_scores(model)["box_iou"], "spatial": held.direct_scores(model, "model")}

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
