"""Run a model over a benchmark: batched, jitted greedy generation, then scoring and result files.

Items are visited grouped by their media (every question about one video back to back, so it is
decoded once) and scored and written in file order. Each batch goes through the prompt batcher
bucketed (`ladder_jax.generate.prompt_batch`), so that a whole benchmark compiles a handful of
programs rather than one per batch.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ladder_jax.data.processor import Processor
from ladder_jax.data.report import Report
from ladder_jax.eval import media as media_lib
from ladder_jax.eval import scoring
from ladder_jax.eval.benchmarks import Item
from ladder_jax.eval.decoding import Decoding
from ladder_jax.generate import greedy_texts

MAX_NEW_TOKENS = {True: 1024, False: 128}  # with / without thinking (SPEC.md section 4)


@dataclasses.dataclass
class EvalResult:
    summary: dict[str, Any]
    predictions: list[dict[str, Any]]
    report: Report

    def write(self, out_dir: Path) -> dict[str, Path]:
        """summary.json, summary.md, predictions.jsonl and skipped.json (every skipped row, why)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {name: out / name for name in ("summary.json", "summary.md", "predictions.jsonl", "skipped.json")}
        paths["summary.json"].write_text(json.dumps(self.summary, indent=1, ensure_ascii=False) + "\n")
        paths["summary.md"].write_text(scoring.markdown(self.summary))
        with open(paths["predictions.jsonl"], "w") as f:
            for row in self.predictions:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.report.write(paths["skipped.json"])
        return paths


def eval_processor(processor: Processor, min_pixels: int = media_lib.EVAL_MIN_PIXELS,
                   max_pixels: int = media_lib.EVAL_MAX_PIXELS) -> Processor:
    """`processor` with the reference evaluator's pixel bounds for images and video frames alike
    (default min 16·28·28, max 512·28·28, its run_eval.sh) and frame lists at 2 frames per second."""
    bounds = dict(min_pixels=min_pixels, max_pixels=max_pixels, video_min_pixels=min_pixels,
                  video_max_pixels=max_pixels, frame_rate=2.0)
    return Processor(processor.tokenizer, dataclasses.replace(processor.vision, **bounds))


def evaluate(model, processor: Processor, items: Sequence[Item], *, benchmark: str = "vsi", batch_size: int = 8,
             max_new_tokens: int | None = None, think: bool = False, limit: int | None = None,
             report: Report | None = None, progress: bool = True, model_name: str | None = None,
             protocol: str = "spatialladder", decoding: Decoding | None = None) -> EvalResult:
    """Greedy answers for `items` (all of them, or the first `limit` in file order), scored under
    `protocol` (`metrics.score_item`).

    `processor` is used as given (`eval_processor` gives the reference's pixel bounds). Decoding
    stops at any of `decoding`'s end tokens with its repetition penalty (default: the model
    config's end token, no penalty). Items whose media cannot be decoded are skipped and recorded
    in `report` (the reader's, when given, so one report covers the run). max_new_tokens defaults
    to 1024 with thinking, else 128.
    """
    items = list(items) if limit is None else list(items)[:limit]
    max_new_tokens = max_new_tokens or MAX_NEW_TOKENS[think]
    decoding = decoding or Decoding((model.config.eos_token_id,))
    report = Report() if report is None else report
    start, outputs = time.perf_counter(), {}
    bar = tqdm(total=len(items), desc=f"eval {benchmark}", unit="item", disable=not progress)
    for chunk in _batches(_media_order(items), batch_size):
        encoded = {}
        for i in chunk:
            try:
                encoded[items[i].id] = encode(processor, items[i], media_lib.load(items[i].media))
            except (media_lib.MediaError, ValueError) as e:
                _skip(report, items[i], "media: cannot decode or preprocess", str(e))
        if encoded:
            texts = greedy_texts(model, processor, list(encoded.values()), batch_size, max_new_tokens,
                                 eos_token_id=list(decoding.eos_token_ids),
                                 repetition_penalty=decoding.repetition_penalty)
            outputs.update(zip(encoded, texts))
        bar.update(len(chunk))
    bar.close()
    seconds = time.perf_counter() - start
    rows = scoring.predictions(items, outputs, benchmark=benchmark, protocol=protocol)
    name = model_name or (model.source_dir.name if getattr(model, "source_dir", None) else "model")
    summary = scoring.summary_json(
        benchmark, name, rows, think=think, protocol=protocol, decoding=decoding.to_json(),
        max_new_tokens=max_new_tokens, num_items=len(items), num_skipped=report.num_rejected,
        skipped_by_reason=report.counts(), seconds=round(seconds, 2),
        items_per_second=round(len(items) / seconds, 3) if seconds else None)
    return EvalResult(summary, rows, report)


def _media_order(items: Sequence[Item]) -> list[int]:
    """Indices grouped by media (groups in order of first appearance), same-shaped media together."""
    groups: dict[tuple, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.media.key, []).append(i)
    shape = {key: (key[0], len(key[1]) or 1) for key in groups}
    return [i for key in sorted(groups, key=lambda k: shape[k]) for i in groups[key]]


def _batches(order: list[int], size: int):
    for start in range(0, len(order), size):
        yield order[start:start + size]


def _skip(report: Report, item: Item, reason: str, detail: str) -> None:
    if report.accepted[item.source] > 0:  # the reader counted it as read: move it to the rejected
        report.retract(item.source, item.id, reason, detail)
    else:
        report.reject(item.source, item.row, item.id, reason, detail)


def encode(processor: Processor, item: Item, visual: media_lib.Visual) -> dict[str, np.ndarray]:
    """One generation prompt in the processor's layout, (1, L) ids. A video's frames come already
    sampled and resized: the processor keeps every one, at its frame rate (2 for `eval_processor`)."""
    text = processor.apply_chat_template(item.messages(), add_generation_prompt=True)
    if visual.video and visual.all_frames:
        processor = _with_frames(processor, len(visual.video))
    return processor(text, images=visual.images, videos=[visual.video] if visual.video else None)


@functools.lru_cache(maxsize=16)
def _with_frames(processor: Processor, num_frames: int) -> Processor:
    """`processor` taking all `num_frames` given frames (cached: the tokenizer's special ids are
    looked up on construction)."""
    return Processor(processor.tokenizer, dataclasses.replace(processor.vision, num_frames=num_frames))
