"""Measurement (not a test): do a demo model's image tokens say which object each picture cell shows?

Each image token of a toy-world room picture covers one cell (28×28 pixels at the demo's 112). The
toy world's scene folders hold the picture's per-pixel object ids (`instances.png`), so every cell
has a truth (`demo.vision_pretrain.cell_truth`, which stage 0 trains on): the label of the object
covering most of it when that is at least a quarter, else "background". A ridge
classifier (one-vs-rest, fit on some rooms, scored on others) reads that truth from

- the token's embedding as the language model's RMSNorm sees it (unit length),
- the cell's own pixels as a 4×4×4 colour histogram (what a tower that kept colour could give),
- the cell's mean and spread of RGB (six numbers, linear: the floor for a linear reader).

It prints each probe's accuracy over all cells and over the cells an object covers. The demo's
labels each have their own colour, so "which object is here" is the first thing a model must read
before it can box or count anything.

    python bench/probes/cell_probe.py WORKDIR [--stage stage1 | --stage init] [--rooms 450]

WORKDIR is a curriculum work directory (config.json, <stage>/final) whose data root is a toy world
with scene folders, e.g. a demo's OUT/ladder; `--stage init` scores the random model the config
starts from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np
from flax import nnx
from PIL import Image

from ladder_jax.demo.vision_pretrain import BACKGROUND, cell_truth
from picture_use import stage_model  # this folder is on the path when a probe runs as a script

def pixel_features(pixels: np.ndarray, side: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per cell, row-major: a 4×4×4 colour histogram (square-rooted shares) and mean + std of RGB."""
    cell = pixels.shape[0] // side
    hists, moments = [], []
    for row in range(side):
        for col in range(side):
            rgb = pixels[row * cell:(row + 1) * cell, col * cell:(col + 1) * cell].reshape(-1, 3)
            bins = rgb // 64
            hists.append(np.sqrt(np.bincount(bins[:, 0] * 16 + bins[:, 1] * 4 + bins[:, 2], minlength=64) / len(rgb)))
            moments.append(np.r_[rgb.mean(0), rgb.std(0)] / 255.0)
    return hists, moments


def ridge_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, classes: int, ridge: float = 10.0):
    """One-vs-rest ridge on standardised features, fit on `train` rows, scored on the rest: accuracy
    over all held-out cells and over those whose truth is an object (class > 0)."""
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    a = np.c_[(x - mean) / std, np.ones(len(x))]
    targets = np.eye(classes)[y] * 2 - 1
    w = np.linalg.solve(a[train].T @ a[train] + ridge * np.eye(a.shape[1]), a[train].T @ targets[train])
    held = ~train
    pred = (a[held] @ w).argmax(1)
    objects = y[held] > 0
    return float((pred == y[held]).mean()), float((pred[objects] == y[held][objects]).mean())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workdir", type=Path)
    p.add_argument("--stage", default="stage1", help="a finished stage, or `init` for the config's random model")
    p.add_argument("--rooms", type=int, default=450, help="rooms read; two thirds fit the probes, a third scores them")
    args = p.parse_args()
    cfg, records, image_root, processor, model = stage_model(args.workdir, args.stage)
    module = nnx.merge(model.graphdef, model.state)
    embed = jax.jit(module.embed)
    pictures = {}
    for r in records:
        if r.kind == "grounding" and len(r.images) == 1:
            pictures.setdefault(r.images[0], r)
    classes = [BACKGROUND]
    tokens, hists, moments, truth, room = [], [], [], [], []
    for k, (path, record) in enumerate(list(pictures.items())[:args.rooms]):
        scene = Path(cfg.data.root) / "scenes" / Path(path).parent.name
        meta = json.loads((scene / "meta.json").read_text())
        picture = Image.open(Path(image_root) / path).convert("RGB")
        enc = processor.encode_record(record, [picture], "stage1")
        ids = enc["input_ids"][None]
        e = np.asarray(embed(ids, enc["pixel_values"][None], enc["image_grid_thw"][None]))[0]
        t = e[ids[0] == model.config.image_token_id]
        side = int(round(np.sqrt(len(t))))
        labels = cell_truth(np.asarray(Image.open(scene / "instances.png")).astype(np.int64),
                            {o["id"]: o["label"] for o in meta["gt_objects"]}, side, side)
        h, m = pixel_features(np.asarray(picture), side)
        classes += sorted(set(labels) - set(classes))
        tokens += list(t / np.linalg.norm(t, axis=-1, keepdims=True))
        hists += h
        moments += m
        truth += [classes.index(label) for label in labels]
        room += [k] * len(labels)
    y, room = np.array(truth), np.array(room)
    train = room < (2 * (room.max() + 1)) // 3
    majority = np.bincount(y[train]).argmax()
    out = {"workdir": str(args.workdir), "stage": args.stage, "cells": len(y), "object_share": float((y > 0).mean()),
           "majority_class_accuracy": float((y[~train] == majority).mean())}
    for name, x in (("token_embedding", tokens), ("cell_colour_histogram", hists), ("cell_rgb_mean_std", moments)):
        out[name] = dict(zip(("accuracy", "object_cells"), ridge_accuracy(np.array(x), y, train, len(classes))))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
