"""Measurement (not a test): where do a stage-1 model's heads look when it starts writing a box?

A model that boxes by looking must, at the token that predicts a box's first number, attend to the
asked object's image tokens. Teacher-forced on held-out grounding answers, through the stage's model
exported to a transformers folder (eager attention, which returns the weights), this prints per
layer × head:

- mass: the attention share on the picture's image tokens from that position;
- lift: the share of that mass on the cells the asked object covers (at least a quarter of a cell)
  over the share of cells it covers. 1 is attention spread over the picture regardless of the
  object; a head that looks at the asked object scores well above 1.

once with each question's own picture and once with another held-out room's (the lift there is
what chance alignment gives). Boxes whose object covers no cell, or all of them, are left out.

    python bench/probes/attention_probe.py WORKDIR [--stage stage1] [--items 40]

WORKDIR is a curriculum work directory (config.json, <stage>/final) on single-image grounding
records, e.g. a demo's OUT/ladder.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ladder_jax.demo.evaluate import HeldOut, other_pictures
from ladder_jax.demo.hf_check import export
from picture_use import stage_model, teacher_forced  # this folder is on the path when a probe runs as a script

BOX_START = '"bbox_2d": ['


def cell_cover(box, rows: int, cols: int, cell: int) -> np.ndarray:
    """(rows·cols,) row-major: the share of each cell × cell block the inclusive xyxy `box` covers."""
    x1, y1, x2, y2 = box
    x2, y2 = x2 + 1, y2 + 1
    r, c = np.divmod(np.arange(rows * cols), cols)
    ox = np.clip(np.minimum(x2, (c + 1) * cell) - np.maximum(x1, c * cell), 0, None)
    oy = np.clip(np.minimum(y2, (r + 1) * cell) - np.maximum(y1, r * cell), 0, None)
    return ox * oy / cell ** 2


def box_starts(target: str, offsets) -> list[tuple[int, dict]]:
    """(index of the token holding each box's first number, the answer object) in `target`."""
    objects = [json.loads(o) for o in re.findall(r"\{[^{}]*\}", target)]
    starts = [m.end() for m in re.finditer(re.escape(BOX_START), target)]
    tokens = [next(i for i, (a, e) in enumerate(offsets) if a <= s < e) for s in starts]
    return list(zip(tokens, objects))


def probe(hf, processor, held: HeldOut, other: bool) -> dict:
    import torch  # noqa: PLC0415

    items = [item for _, item in held.grounding]
    mass = lift = None
    boxes = 0
    for (record, own), item in zip(held.grounding, other_pictures(items) if other else items):
        with Image.open(own.media.paths[0]) as picture:  # the boxes are on the asked room's picture
            original = (picture.height, picture.width)
        p, target, enc, ids = teacher_forced(processor, record, item, original)
        _, gh, gw = (int(v) for v in p["image_grid_thw"][0])
        with torch.no_grad():
            out = hf(input_ids=torch.tensor(ids), attention_mask=torch.ones(ids.shape, dtype=torch.long),
                     pixel_values=torch.tensor(np.asarray(p["pixel_values"])),
                     image_grid_thw=torch.tensor(np.asarray(p["image_grid_thw"])), output_attentions=True)
        weights = np.stack([a[0].numpy() for a in out.attentions])  # (layers, heads, T, T)
        image = np.flatnonzero(ids[0] == hf.config.image_token_id)
        merge = processor.vision.merge_size
        cell = merge * processor.vision.patch_size
        for token, obj in box_starts(target, enc["offset_mapping"]):  # boxes on the resized grid
            covered = cell_cover(obj["bbox_2d"], gh // merge, gw // merge, cell) >= 0.25
            if not 0 < covered.mean() < 1:
                continue
            a = weights[:, :, p["input_ids"].shape[1] + token - 1, image]  # the position predicting the number
            m = a.sum(-1)
            l = (a * covered).sum(-1) / np.maximum(m, 1e-9) / covered.mean()
            mass, lift, boxes = (m, l, 1) if mass is None else (mass + m, lift + l, boxes + 1)
    if not boxes:
        return {"boxes": 0}
    return {"boxes": boxes, "mass": (mass / boxes).tolist(), "lift": (lift / boxes).tolist()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workdir", type=Path)
    p.add_argument("--stage", default="stage1", help="a finished stage")
    p.add_argument("--items", type=int, default=40, help="held-out grounding questions")
    args = p.parse_args()
    import torch  # noqa: PLC0415
    from transformers import Qwen2_5_VLForConditionalGeneration  # noqa: PLC0415

    cfg, _, _, processor, model = stage_model(args.workdir, args.stage)
    held = HeldOut(Path(cfg.data.root) / "eval", processor, args.items, 0, 96)
    with tempfile.TemporaryDirectory() as folder:
        export(model, processor, Path(folder) / "hf")
        hf = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            Path(folder) / "hf", attn_implementation="eager", torch_dtype=torch.float32).eval()
    print(f"{args.workdir} {args.stage}: per layer, each head's mass on the picture | lift on the asked object")
    for name, other in (("own picture", False), ("another room's picture", True)):
        result = probe(hf, processor, held, other)
        print(f"{name}: {result['boxes']} boxes")
        for layer, (mass, lift) in enumerate(zip(result.get("mass", []), result.get("lift", []))):
            print(f"  layer {layer}: " + " ".join(f"{m:.3f}" for m in mass) + " | " + " ".join(f"{x:.2f}" for x in lift))


if __name__ == "__main__":
    main()
