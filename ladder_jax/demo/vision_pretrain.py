"""The toy ladder's stage 0 (`config.demo.vision_pretrain`, a named departure): the stand-in for the
pretrained vision encoder a real Qwen2.5-VL starts from.

The demo's model starts from random weights, and the language-model losses of stages 1 and 2 never
teach its vision tower to see: trained on with them it collapses to one vector per picture (every
image token alike), and no demo model answered differently with another room's picture
(bench/probes/picture_use.py, cell_probe.py). A real run starts from Qwen2.5-VL, whose tower already
says what is where. Stage 0 gives the demo's tower that: on the toy world's scene folders
(`scenes/<room>/rgb.png`, `instances.png`, `meta.json`), each merged image token (one 28×28 cell of
the picture) learns, through linear heads dropped afterwards,

- which object covers its cell (the labelled object covering most of it, when that is at least a
  quarter, else background), read against the language model's own embedding of the label's words:
  a sofa's image tokens come to point where the word "sofa" does, as a pretrained encoder's tokens
  do for the language model trained with it, so the question's words can find them;
- which row and which column of the picture's token grid it is (the tower has only relative
  positions, so where a cell lies must be learnt for the language model to box it).

The tower and merger then stay frozen through the ladder (the stages' `freeze_vision` and
`freeze_merger` in configs/toy_demo.py). The result is a params checkpoint, OUT/<dir>/final, that the
curriculum starts from (`config.model.init="params"`): random language model, pretrained tower.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("ladder_jax.demo")
BACKGROUND = "background"
REPORT = "report.json"


@dataclasses.dataclass(frozen=True)
class Rooms:
    """Scene folders as the tower sees them: one picture each, all of one grid."""

    pixels: np.ndarray  # (rooms, patches, patch_dim) float32
    grid_thw: np.ndarray  # (3,) the pictures' patch grid (1, h, w)
    objects: np.ndarray  # (rooms, cells) int32: index into `classes` of each merged token's cell, row-major
    classes: tuple[str, ...]  # classes[0] is BACKGROUND
    skipped: dict[str, int]  # why -> rooms left out

    @property
    def cells(self) -> tuple[int, int]:
        return int(self.grid_thw[1]) // 2, int(self.grid_thw[2]) // 2


def cell_truth(instances: np.ndarray, labels: dict[int, str], rows: int, cols: int) -> list[str]:
    """Row-major over a rows × cols grid laid on the instance map: the label of the labelled object
    covering most of each cell when it covers at least a quarter of it, else BACKGROUND (ids without a
    label, 0 among them, are background)."""
    h, w = instances.shape
    out = []
    for r in range(rows):
        for c in range(cols):
            cell = instances[r * h // rows:(r + 1) * h // rows, c * w // cols:(c + 1) * w // cols].ravel().tolist()
            counts = collections.Counter(i for i in cell if i in labels)
            top = max(counts, key=lambda i: (counts[i], -i), default=None)  # ties: the lower id
            out.append(labels[top] if top is not None and counts[top] * 4 >= len(cell) else BACKGROUND)
    return out


def read_rooms(scenes: Path, vision, classes: tuple[str, ...] | None = None) -> Rooms:
    """Every scene folder under `scenes` (sorted), processed at `vision`'s pixel bounds. A folder that
    cannot be read, or whose picture gets another grid than the first one's, is skipped and counted;
    with `classes` given (held-out rooms), labels outside it count as background."""
    from PIL import Image  # noqa: PLC0415

    from ladder_jax.data.scene_folder import SceneError, load_scene  # noqa: PLC0415
    from ladder_jax.data.vision_preprocess import preprocess_images  # noqa: PLC0415

    folders = sorted(p for p in scenes.iterdir() if p.is_dir()) if scenes.is_dir() else []
    pixels, truths, grid, skipped = [], [], None, collections.Counter()
    for folder in folders:
        try:
            scene = load_scene(folder)
        except SceneError as e:
            log.warning("vision pretraining skips %s", e)
            skipped["unreadable scene folder"] += 1
            continue
        vision_in = preprocess_images([Image.fromarray(scene.rgb)], vision)
        g = vision_in["image_grid_thw"][0]
        if grid is None:
            grid = g
        if not np.array_equal(g, grid):
            skipped[f"picture grid {tuple(g)} differs from {tuple(grid)}"] += 1
            continue
        pixels.append(vision_in["pixel_values"])
        truths.append(cell_truth(scene.instances, scene.labels, int(g[1]) // 2, int(g[2]) // 2))
    if not pixels:
        raise ValueError(f"vision pretraining found no readable scene folder in {scenes}")
    if classes is None:
        classes = (BACKGROUND, *sorted({label for t in truths for label in t} - {BACKGROUND}))
    index = {label: i for i, label in enumerate(classes)}
    objects = np.asarray([[index.get(label, 0) for label in t] for t in truths], np.int32)
    return Rooms(np.stack(pixels).astype(np.float32), np.asarray(grid), objects, tuple(classes), dict(skipped))


def label_vectors(embed_table: np.ndarray, tokenizer, labels) -> np.ndarray:
    """(labels, hidden) unit vectors: the mean of the language model's embeddings of each label's
    tokens, as a question writes it (" sofa") and as an answer does ("sofa")."""
    def one(label: str) -> np.ndarray:
        ids = tokenizer.encode(" " + label, add_special_tokens=False) + tokenizer.encode(label, add_special_tokens=False)
        v = np.asarray(embed_table, np.float32)[ids].mean(0)
        return v / max(float(np.linalg.norm(v)), 1e-12)
    return np.stack([one(label) for label in labels])


def _heads(dim: int, classes: int, rows: int, cols: int, seed: int):
    import jax.numpy as jnp  # noqa: PLC0415

    # Every leaf float32, none weak-typed: a weak-typed scale comes back from the first update strongly
    # typed, and the jitted step would compile a second time.
    background = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return {"background": jnp.asarray(background), "scale": jnp.asarray(4.0, jnp.float32), "object_bias": jnp.zeros(classes),
            "row": jnp.zeros((dim, rows)), "col": jnp.zeros((dim, cols))}


def _logits(visual_def, params, pixels, grid_thw, words):
    """The three heads' logits per merged token, read from features at unit rms (as the language
    model's RMSNorm sees them). An object's logit is the feature against `words` (its label's
    embedding, fixed); background's against a learnt direction."""
    import jax.numpy as jnp  # noqa: PLC0415
    from flax import nnx  # noqa: PLC0415

    visual_state, heads = params
    grid = jnp.broadcast_to(grid_thw, (pixels.shape[0], 1, 3))
    f = nnx.merge(visual_def, visual_state)(pixels, grid)
    f = f * jnp.reciprocal(jnp.sqrt(jnp.mean(f * f, axis=-1, keepdims=True) + 1e-6))
    background = heads["background"] / (jnp.linalg.norm(heads["background"]) + 1e-6)
    classes = jnp.concatenate([background[None], words], axis=0)
    return f @ classes.T * heads["scale"] + heads["object_bias"], f @ heads["row"], f @ heads["col"]


def _targets(objects, rows: int, cols: int):
    cells = np.arange(rows * cols)
    return objects, np.broadcast_to(cells // cols, objects.shape), np.broadcast_to(cells % cols, objects.shape)


def accuracy(predicted, objects: np.ndarray, rows: int, cols: int) -> dict[str, float]:
    """Shares of cells whose object (all cells; cells an object covers), row and column are predicted."""
    obj, row, col = (np.asarray(p) for p in predicted)
    want_obj, want_row, want_col = _targets(objects, rows, cols)
    covered = want_obj > 0
    return {"cells": float((obj == want_obj).mean()),
            "object_cells": float((obj[covered] == want_obj[covered]).mean()) if covered.any() else float("nan"),
            "row": float((row == want_row).mean()), "col": float((col == want_col).mean())}


def pretrain(graphdef, state, tokenizer, train: Rooms, held: Rooms | None, steps: int, batch_size: int,
             learning_rate: float, seed: int, log_every: int = 100) -> tuple[Any, dict[str, Any]]:
    """Adam on the tower, the merger and the heads for `steps` batches of `batch_size` rooms (drawn
    without replacement within a step); returns the model state with the trained tower and a report
    (held-out accuracy before and after, rooms used and skipped)."""
    import jax  # noqa: PLC0415
    import optax  # noqa: PLC0415
    from flax import nnx  # noqa: PLC0415

    module = nnx.merge(graphdef, state)
    visual_def, visual_state = nnx.split(module.visual)
    rows, cols = train.cells
    # Everything on one device (stage 0 is tiny): from the mesh's shardings the first step returns its
    # parameters sharded in another form, and the step compiled a second time.
    device = jax.devices()[0]
    params = jax.device_put((visual_state, _heads(module.visual.cfg.out_hidden_size, len(train.classes), rows, cols,
                                                  seed)), device)
    words = jax.device_put(label_vectors(module.embed_tokens[...], tokenizer, train.classes[1:]), device)
    grid = jax.device_put(train.grid_thw, device)
    tx = optax.adam(learning_rate)
    opt_state = jax.device_put(tx.init(params), device)  # committed, as the step returns it

    def loss_fn(params, pixels, objects):
        ce = optax.softmax_cross_entropy_with_integer_labels
        return sum(ce(logit, want).mean() for logit, want in
                   zip(_logits(visual_def, params, pixels, grid, words), _targets(objects, rows, cols)))

    @jax.jit
    def step(params, opt_state, pixels, objects):
        loss, grads = jax.value_and_grad(loss_fn)(params, pixels, objects)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    predict = jax.jit(lambda params, pixels: [z.argmax(-1) for z in _logits(visual_def, params, pixels, grid, words)])

    def held_out(params) -> dict[str, float] | None:
        if held is None:
            return None
        chunks = [predict(params, jax.device_put(held.pixels[i:i + batch_size], device))
                  for i in range(0, len(held.pixels), batch_size)]
        return accuracy([np.concatenate([c[k] for c in chunks]) for k in range(3)], held.objects, rows, cols)

    rng = np.random.default_rng(seed)
    before, losses = held_out(params), []
    batch = min(batch_size, len(train.pixels))
    for s in range(steps):
        pick = rng.choice(len(train.pixels), batch, replace=False)
        params, opt_state, loss = step(params, opt_state, *jax.device_put((train.pixels[pick], train.objects[pick]), device))
        if s == 0 or (s + 1) % log_every == 0 or s + 1 == steps:
            losses.append((s + 1, float(loss)))
            log.info("vision pretraining: step %d/%d, loss %.4f", s + 1, steps, float(loss))
    after = held_out(params)
    module.visual = nnx.merge(visual_def, params[0])
    report = {"steps": steps, "batch_size": batch, "learning_rate": learning_rate, "rooms": len(train.pixels),
              "held_out_rooms": 0 if held is None else len(held.pixels), "skipped": train.skipped,
              "classes": list(train.classes), "cells": [rows, cols], "loss": losses,
              "held_out_before": before, "held_out_after": after}
    return nnx.split(module)[1], report


def prepared(cfg, directory: Path, processor, mesh, phases=None):
    """`cfg` starting from the demo's pretrained tower: trains it into DIRECTORY/final once (from
    `cfg`'s random init, on the toy world's training rooms; scored on its held-out rooms), then
    returns a copy of `cfg` with `model.init="params"` there. With 0 steps, `cfg` itself."""
    from ladder_jax.train import stage_inputs  # noqa: PLC0415
    from ladder_jax.models.qwen25_vl.checkpoint import save_params  # noqa: PLC0415

    p = cfg.demo.vision_pretrain
    if p.steps == 0:
        return cfg
    final = directory / "final"
    if not (final / "params").exists():
        start = time.perf_counter()
        model_cfg, graphdef, state = stage_inputs.load_model_source(cfg, processor, mesh)
        root, vision = Path(cfg.data.root), processor.vision
        train = read_rooms(root / "scenes", vision)
        held = read_rooms(root / "eval" / "scenes", vision, train.classes) if (root / "eval" / "scenes").is_dir() else None
        log.info("vision pretraining: %d rooms (%d held out), %d classes, %d steps", len(train.pixels),
                 0 if held is None else len(held.pixels), len(train.classes), p.steps)
        state, report = pretrain(graphdef, state, processor.tokenizer, train, held, p.steps, p.batch_size, p.learning_rate, cfg.seed)
        partial = directory / "final.partial"
        shutil.rmtree(partial, ignore_errors=True)
        save_params(partial, model_cfg, state, processor=processor)
        (partial / REPORT).write_text(json.dumps(report, indent=1))
        partial.rename(final)
        if phases is not None:
            phases.add("vision pretraining", time.perf_counter() - start)
    started = cfg.copy_and_resolve_references()
    started.model.init, started.model.path = "params", str(final)
    return started


def report_of(cfg) -> dict[str, Any] | None:
    """The pretraining report beside the checkpoint `cfg` starts from, if it is one."""
    path = Path(cfg.model.path) / REPORT if cfg.model.init == "params" else None
    return json.loads(path.read_text()) if path is not None and path.exists() else None
