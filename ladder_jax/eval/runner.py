"""Run a model over a benchmark: batched, jitted greedy generation, then scoring and result files.

Items are visited in `schedule`'s order (grouped by media, so a video is decoded once; over
several processes each takes its share) and scored and written in file order. Each batch goes
through the prompt batcher bucketed (`ladder_jax.generate.prompt_batch`), so that a whole benchmark
compiles a handful of programs rather than one per batch. With a `resume.Staging` each batch's
rows are on disk before the next batch starts, and a rerun generates only what is missing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from ladder_jax.data.processor import Processor
from ladder_jax.data.report import Report
from ladder_jax.eval import media as media_lib
from ladder_jax.eval import resume, schedule, scoring
from ladder_jax.eval.benchmarks import Item
from ladder_jax.eval.decoding import MAX_NEW_TOKENS, Decoding
from ladder_jax.eval.resume import Staging
from ladder_jax.generate import greedy_texts, sampler


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
             protocol: str = "spatialladder", decoding: Decoding | None = None,
             staging: Staging | None = None) -> EvalResult:
    """Greedy answers for `items` (all of them, or the first `limit` in file order), scored under
    `protocol` (`metrics.score_item`).

    `processor` is used as given (`eval_processor` gives the reference's pixel bounds). Decoding
    stops at any of `decoding`'s end tokens with its repetition penalty (default: the model
    config's end token, no penalty). Items whose media cannot be decoded are skipped and recorded
    in `report` (the reader's, when given, so one report covers the run). max_new_tokens defaults
    to 1024 with thinking, else 128.

    `batch_size` prompts generate together, sharded over the data axes of the model's mesh where
    they divide them. With `staging` every finished item is appended to it and the items it held
    already are not generated again (`resume`). Over several processes, which need `staging` (their
    shared record), each generates its share of the items and every process returns the whole result.
    """
    items = list(items) if limit is None else list(items)[:limit]
    max_new_tokens = max_new_tokens or MAX_NEW_TOKENS[think]
    decoding = decoding or Decoding((model.config.eos_token_id,))
    report = Report() if report is None else report
    mesh, processes = sampler.mesh_of(model.state), jax.process_count()
    rows = schedule.rows_per_process(batch_size, mesh.shape["data"] * mesh.shape["fsdp"], processes)
    if staging is None and processes > 1:
        raise ValueError("evaluation over several processes needs a staging folder on a filesystem they share")
    order = schedule.media_order(items)
    done = dict(staging.done) if staging else {}
    todo = [i for i in order if items[i].id not in done]
    start = time.perf_counter()
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc=f"eval {benchmark}", unit="item",
               disable=not progress or jax.process_index() > 0)
    for chunk in schedule.process_batches(todo, rows, processes, jax.process_index()):
        finished = _generate(model, processor, [items[i] for i in chunk], rows, max_new_tokens, decoding,
                             benchmark=benchmark, protocol=protocol)
        if staging:
            staging.append(finished)
        done.update((row["id"], row) for row in finished)
        bar.update(min(len(chunk) * processes, bar.total - bar.n))
    bar.close()
    seconds = time.perf_counter() - start
    if staging:
        done = staging.gather()
    missing = [items[i].id for i in order if items[i].id not in done]
    if missing:
        raise resume.ResumeError(f"{len(missing)} items (e.g. {missing[0]!r}) have no result: another process's rows "
                                 "never reached the staging folder (is it on a filesystem every process shares?)")
    for i in order:  # skips in the order one process would have met them
        if "skipped" in done[items[i].id]:
            _skip(report, items[i], done[items[i].id]["skipped"], done[items[i].id]["detail"])
    predictions = [done[item.id] for item in items if "skipped" not in done[item.id]]
    name = model_name or (model.source_dir.name if getattr(model, "source_dir", None) else "model")
    summary = scoring.summary_json(
        benchmark, name, predictions, think=think, protocol=protocol, decoding=decoding.to_json(),
        max_new_tokens=max_new_tokens, num_items=len(items), num_skipped=report.num_rejected,
        skipped_by_reason=report.counts(), seconds=round(seconds, 2),
        items_per_second=round(len(todo) / seconds, 3) if seconds else None)
    return EvalResult(summary, predictions, report)


def _generate(model, processor: Processor, items: Sequence[Item], rows: int, max_new_tokens: int,
              decoding: Decoding, **scored_as) -> list[dict[str, Any]]:
    """Rows for `items` (this process's batch, maybe none): predictions, or skips for media that
    cannot be used. Every process calls it for each batch (generation is one global program)."""
    encoded, skipped = {}, []
    for item in items:
        try:
            encoded[item.id] = encode(processor, item, media_lib.load(item.media))
        except (media_lib.MediaError, ValueError) as e:
            skipped.append(resume.skip_row(item.id, "media: cannot decode or preprocess", str(e)))
    if not encoded and jax.process_count() == 1:
        return skipped
    texts = greedy_texts(model, processor, list(encoded.values()), rows, max_new_tokens,
                         eos_token_id=list(decoding.eos_token_ids), repetition_penalty=decoding.repetition_penalty)
    return scoring.predictions(items, dict(zip(encoded, texts)), **scored_as) + skipped


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
