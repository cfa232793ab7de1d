"""Measurement (not a test): does a trained demo model read the picture, or answer from the words?

Teacher-forced on held-out grounding answers (the stage-1 target a model is trained to write): the
mean negative log-likelihood and argmax accuracy of its label, number and other tokens, once with
each question's own picture and once with another held-out room's picture. A model that reads the
picture predicts the numbers better with its own; one that answers from the words scores the same
(to the third decimal). Also prints the scale of the image tokens' embeddings beside the text
tokens' (training can blow the vision output up by hundreds when the language model ignores it),
and how alike a picture's image tokens are: their mean pairwise cosine and the share of their
energy that is one vector common to every token (a random tower: about 0.27 and 0.13; a trained
demo tower that collapsed: 0.997 and 0.995, every token of every picture nearly the same vector).

    python bench/probes/picture_use.py WORKDIR [--stage stage1 | --stage init] [--items 60]

WORKDIR is a curriculum work directory (config.json, <stage>/final), e.g. a demo's OUT/ladder.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from flax import nnx

from ladder_jax import config_files
from ladder_jax.data import prompts
from ladder_jax.demo.evaluate import HeldOut, other_pictures
from ladder_jax.eval import media as media_lib
from ladder_jax.eval import runner
from ladder_jax.models.qwen25_vl.api import VisionLanguageModel, model_inputs
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import stage_inputs

CLASSES = ("label", "number", "other")


def token_classes(target: str, offsets) -> list[str]:
    """Per token (character offsets into `target`): inside a "label" value, inside a number, or other."""
    labels = [m.span(1) for m in re.finditer(r'"label": "([^"]*)"', target)]
    numbers = [m.span() for m in re.finditer(r"\d+", target)]

    def inside(spans, a, b):
        return any(a < end and b > start for start, end in spans)

    return ["label" if inside(labels, a, b) else "number" if inside(numbers, a, b) else "other" for a, b in offsets]


def teacher_forced(processor, record, item, original_hw: tuple[int, int] | None = None):
    """(prompt arrays, target text, its tokens with character offsets, prompt + target ids (1, T)):
    `record`'s stage-1 answer after the prompt of `item` (its question with the picture it shows).
    The boxes are rescaled from `original_hw` (the asked room's picture; default: the shown picture's
    processed size) to the shown picture's processed grid."""
    prompt = runner.encode(processor, item, media_lib.load(item.media))
    resized = tuple(int(v) * processor.vision.patch_size for v in prompt["image_grid_thw"][0][1:])
    target = prompts.grounding_target(record.boxes, original_hw or resized, resized) + "<|im_end|>"
    tokens = processor.tokenizer(target, add_special_tokens=False, return_offsets_mapping=True)
    return prompt, target, tokens, np.concatenate([prompt["input_ids"], [tokens["input_ids"]]], 1)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max(-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))


def scores(model, processor, held, other: bool) -> dict[str, dict[str, float]]:
    """Per token class: NLL and argmax accuracy of the held-out answers, with each question's own
    picture or (other=True) another room's (`evaluate.other_pictures`)."""
    items = [item for _, item in held.grounding]
    per_class: dict[str, list[tuple[float, bool]]] = {c: [] for c in CLASSES}
    for (record, _), item in zip(held.grounding, other_pictures(items) if other else items):
        prompt, target, t, full = teacher_forced(processor, record, item)
        ids = np.asarray([t["input_ids"]])
        logits = model(full, np.ones_like(full), prompt["pixel_values"], prompt["image_grid_thw"])[0]
        logp = log_softmax(logits[prompt["input_ids"].shape[1] - 1: -1])
        for row, tid, cls in zip(logp, ids[0], token_classes(target, t["offset_mapping"])):
            per_class[cls].append((-float(row[tid]), bool(row.argmax() == tid)))
    return {c: {"tokens": len(v), "nll": float(np.mean([x for x, _ in v])), "accuracy": float(np.mean([y for _, y in v]))}
            for c, v in per_class.items() if v}


def embedding_scale(model, held) -> dict[str, float]:
    """RMS of text-token and image-token input embeddings over the held-out prompts, and how alike
    each picture's image tokens are (`token_likeness`)."""
    module = nnx.merge(model.graphdef, model.state)
    text, image = [], []
    for _, item in held.grounding:
        x = model_inputs(model.config, dict(runner.encode(held.processor, item, media_lib.load(item.media))))
        e = np.asarray(module.embed(x["input_ids"], x["pixel_values"], x["image_grid_thw"]))[0]
        is_image = np.asarray(x["input_ids"])[0] == model.config.image_token_id
        image.append(e[is_image])
        text.append(e[~is_image])
    return {"text_rms": float(np.sqrt(np.mean(np.concatenate(text) ** 2))),
            "image_rms": float(np.sqrt(np.mean(np.concatenate(image) ** 2)))} | token_likeness(image)


def token_likeness(pictures: list[np.ndarray]) -> dict[str, float]:
    """Over pictures' image-token embeddings (each (tokens, hidden)): the mean cosine between two
    tokens of one picture, and the share of all tokens' energy in their common mean vector."""
    cosines = []
    for e in pictures:
        unit = e / np.linalg.norm(e, axis=-1, keepdims=True)
        pairs = np.triu_indices(len(e), 1)
        cosines.append((unit @ unit.T)[pairs])
    every = np.concatenate(pictures)
    return {"image_token_cosine": float(np.concatenate(cosines).mean()),
            "image_common_share": float(np.mean(every.mean(0) ** 2) / np.mean(every ** 2))}


def stage_model(workdir: Path, stage: str):
    """(config, records, image root, stage-1 processor, model) of a curriculum work directory: its
    finished `stage`, or with stage "init" the random model its config starts from."""
    cfg = config_files.load(workdir / "config.json")
    records, image_root, _ = stage_inputs.read_records(cfg)
    processor = stage_inputs.stage_processor(cfg, records, "stage1")
    mesh = make_mesh(1, 1, 1)
    source = (stage_inputs.load_model_source(cfg, processor, mesh) if stage == "init" else
              stage_inputs.load_final(cfg, workdir / stage / "final", mesh))
    return cfg, records, image_root, processor, VisionLanguageModel(*source, mesh)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("workdir", type=Path)
    p.add_argument("--stage", default="stage1", help="a finished stage, or `init` for the config's random model")
    p.add_argument("--items", type=int, default=60, help="held-out grounding questions")
    args = p.parse_args()
    cfg, _, _, processor, model = stage_model(args.workdir, args.stage)
    held = HeldOut(Path(cfg.data.root) / "eval", processor, args.items, 0, 96)
    print(json.dumps({"own picture": scores(model, processor, held, other=False),
                      "another room's picture": scores(model, processor, held, other=True),
                      "embeddings": embedding_scale(model, held)}, indent=1))


if __name__ == "__main__":
    main()
