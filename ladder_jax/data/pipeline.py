"""The Grain input pipeline of each stage: records or shards → padded batches in the batch contract.

    source (records + data root, or ShardSource)
      → one global order, the same on every process: seeded shuffle, reshuffled every epoch
        → repeat (N epochs or forever)
      → this process's rows: its block of global_batch_size / shard_count items out of every
        global_batch_size consecutive ones (`process_rows`)
      → decode + validate + process, one item at a time (`examples.Encoder`; bad input → Skipped)
      → batches of exactly batch_size usable examples, padded to buckets (`batcher`, `collate`)
      → worker processes (mp_prefetch) → host: skips counted in a Report, batch returned.

`Pipeline(...)` builds it; iterating gives a `PipelineIterator` whose `get_state()` is a JSON-able
dict that `set_state()` resumes from with exactly the next batch.

Global batch k is items [k*B, (k+1)*B) of the global order, whatever the number of processes, as
long as nothing is skipped and `num_workers` is 0: a process replaces a skipped item with its own
next item (shifting its later rows), and each worker batches its own slice of the process's items.
A finite run's last, short global batch leaves out the items that do not split evenly over the
processes (`unused_by_sharding`). So the batch order depends on the seed and `num_workers`, and
once items are skipped or workers are used also on the shard: restore with the same ones.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from pathlib import Path
from typing import Any, Sequence

import grain
import jax

from ladder_jax.data import prompts
from ladder_jax.data.batcher import BucketBatchIterDataset, Tally
from ladder_jax.data.buckets import Buckets
from ladder_jax.data.collate import collate
from ladder_jax.data.examples import STAGE_KINDS, Encoder, Mode, SafeSource, Skipped
from ladder_jax.data.process_rows import ProcessRowsMapDataset
from ladder_jax.data.processor import Processor
from ladder_jax.data.report import Report
from ladder_jax.data.schema import Record

TRAIN_MIN_PIXELS = 16 * 28 * 28  # SPEC section 3
TRAIN_MAX_PIXELS = 128 * 28 * 28


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """What a stage's pipeline does. Pixel bounds default to the SPEC training resolution for
    images and video frames alike (the release's videos are frame lists); `num_frames=0` keeps
    every listed frame, as the reference trains (N > 0 samples N per video: shorter sequences, a
    named departure). `mode=None` means "prompt" for stage 3 and "train" otherwise."""

    stage: prompts.Stage
    global_batch_size: int
    mode: Mode | None = None
    answer_only_loss: bool = True  # False: the reference's labels, all but pads (Processor.encode_record)
    label_video_pads: bool = False  # with answer_only_loss=False, as the reference: <|video_pad|> is labelled too
    seed: int = 0
    shuffle: bool = True
    num_epochs: int | None = 1  # None: repeat forever (multi-host training: stop at a step count)
    drop_remainder: bool = True
    num_workers: int = 0  # worker processes; 0 decodes in this process
    worker_buffer_size: int = 2  # batches each worker prepares ahead
    buckets: Buckets = Buckets()
    min_pixels: int = TRAIN_MIN_PIXELS
    max_pixels: int = TRAIN_MAX_PIXELS
    video_min_pixels: int = TRAIN_MIN_PIXELS
    video_max_pixels: int = TRAIN_MAX_PIXELS
    num_frames: int = 0
    max_consecutive_skips: int = 1000

    def __post_init__(self):
        if self.stage not in prompts.STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; expected one of {prompts.STAGES}")
        if self.mode is None:
            object.__setattr__(self, "mode", "prompt" if self.stage == "stage3" else "train")
        if self.mode not in ("train", "prompt"):
            raise ValueError(f"mode must be 'train' or 'prompt', got {self.mode!r}")
        if self.global_batch_size <= 0 or self.num_workers < 0 or self.num_epochs == 0:
            raise ValueError(f"need global_batch_size > 0, num_workers >= 0, num_epochs > 0 or None: {self}")
        if self.num_frames < 0 or self.worker_buffer_size < 1 or self.max_consecutive_skips < 1:
            raise ValueError(f"need num_frames >= 0 (0: every frame), worker_buffer_size >= 1 and "
                             f"max_consecutive_skips >= 1, got {self.num_frames}, {self.worker_buffer_size}, "
                             f"{self.max_consecutive_skips}")
        for low, high in (("min_pixels", "max_pixels"), ("video_min_pixels", "video_max_pixels")):
            if not 0 < getattr(self, low) <= getattr(self, high):
                raise ValueError(f"need 0 < {low} <= {high}, got {getattr(self, low)}, {getattr(self, high)}")


class Pipeline:
    """One stage's pipeline over `source` for process `shard_index` of `shard_count`.

    `source` is a sequence of `Record`s (images read from `data_root`, paths validated) or a
    `ShardSource` (images from the frames stored in the shards). Records of kinds the stage does
    not use are left out up front (`left_out` counts them by kind). The per-process batch size is
    global_batch_size / shard_count. Every process reads the same number of items (on average
    len(source) // shard_count per epoch), so all yield the same number of batches up to skipped
    examples.
    """

    def __init__(self, source: Sequence[Record] | Any, processor: Processor, config: PipelineConfig, *,
                 data_root: str | Path | None = None, shard_index: int | None = None, shard_count: int | None = None):
        self.config = config
        self.shard_index = jax.process_index() if shard_index is None else shard_index
        self.shard_count = jax.process_count() if shard_count is None else shard_count
        if not 0 <= self.shard_index < self.shard_count:
            raise ValueError(f"shard_index {self.shard_index} is outside [0, {self.shard_count})")
        if config.global_batch_size % self.shard_count:
            raise ValueError(f"global_batch_size {config.global_batch_size} does not divide over "
                             f"{self.shard_count} processes")
        self.batch_size = config.global_batch_size // self.shard_count
        source, self.left_out = _select_kinds(source, config.stage)
        self.num_examples = len(source)
        self.local_examples = self.num_examples // self.shard_count
        self.processor = stage_processor(processor, config)
        self.encoder = Encoder(self.processor, config.stage, config.mode, config.buckets, config.answer_only_loss,
                               None if data_root is None else Path(data_root), config.label_video_pads)
        self._source = SafeSource(source, type(source).__name__)

    def global_items(self) -> grain.MapDataset:
        """Every item of the run in the order all processes share: shuffled by the seed and
        reshuffled each epoch (Grain's shuffle seeds each epoch of a repeated index range anew)."""
        ds = grain.MapDataset.source(self._source)
        ds = ds.shuffle(seed=self.config.seed) if self.config.shuffle else ds
        return ds.repeat(self.config.num_epochs)

    def local_items(self) -> grain.MapDataset:
        """This process's rows of the run's global batches, in order."""
        return ProcessRowsMapDataset(self.global_items(), self.config.global_batch_size, self.shard_index,
                                     self.shard_count)

    def dataset(self) -> grain.IterDataset:
        """The Grain dataset of `(batch or None, Tally)` outputs; `PipelineIterator` unwraps them."""
        c = self.config
        ds = self.local_items().map(self.encoder)
        # One read thread: a fast tokenizer must not be called from several threads at once, and
        # parallelism comes from the worker processes. A small read-ahead bounds the memory.
        read = grain.ReadOptions(num_threads=1, prefetch_buffer_size=2 * self.batch_size)
        v = self.processor.vision
        batch_fn = functools.partial(collate, mode=c.mode, pad_id=self.processor.ids["pad"],
                                     patch_dim=3 * v.temporal_patch_size * v.patch_size**2)
        ds = BucketBatchIterDataset(ds.to_iter_dataset(read), self.batch_size, c.buckets, batch_fn,
                                    c.drop_remainder, c.max_consecutive_skips)
        if c.num_workers:
            ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=c.num_workers,
                                                             per_worker_buffer_size=c.worker_buffer_size))
        return ds

    def __iter__(self) -> PipelineIterator:
        if self.config.num_workers:
            _mark_flags_parsed()
        return PipelineIterator(self.dataset())

    @property
    def batches_per_epoch(self) -> int:
        """Batches of one epoch if nothing is skipped (and, with workers, before each worker's
        own remainder at the very end of a finite run); epochs run on without a break, so with
        several epochs a global batch may hold the end of one and the start of the next."""
        full, rest = divmod(self.local_examples, self.batch_size)
        return full + (1 if rest and not self.config.drop_remainder else 0)

    @property
    def unused_by_sharding(self) -> int:
        """Items of the run that no process reads: the part of a finite run's last, short global
        batch that does not split evenly over the processes (`process_rows`)."""
        if self.config.num_epochs is None:
            return 0
        return self.num_examples * self.config.num_epochs % self.shard_count

    def describe(self, sample: int = 64) -> dict[str, Any]:
        """Sizes of the data set and a bucket histogram of the first `sample` examples this
        process reads (encoded here, in this process)."""
        items = self.local_items()
        histogram = {name: collections.Counter() for name in ("length", "image_patches", "image_items",
                                                              "video_patches", "video_items")}
        skipped = collections.Counter()
        for i in range(min(sample, len(items))):
            example = self.encoder(items[i])
            if isinstance(example, Skipped):
                skipped[example.reason] += 1
                continue
            for name, bucket in self.config.buckets.fit(example.sizes)._asdict().items():
                histogram[name][bucket] += 1
        return {
            "stage": self.config.stage, "mode": self.config.mode, "examples": self.num_examples,
            "left_out_by_kind": self.left_out,
            "process": f"{self.shard_index} of {self.shard_count}", "local_examples": self.local_examples,
            "unused_by_sharding": self.unused_by_sharding,
            "batch_size": self.batch_size, "global_batch_size": self.config.global_batch_size,
            "batches_per_epoch": self.batches_per_epoch, "epochs": self.config.num_epochs or "forever",
            "sampled": min(sample, len(items)), "skipped_in_sample": dict(skipped),
            "bucket_histogram": {k: dict(sorted(v.items())) for k, v in histogram.items()},
            "max_batch_shapes": self.config.buckets.max_programs(),
        }

    def summary(self, sample: int = 64) -> str:
        d = self.describe(sample)
        lines = [f"{d['stage']} ({d['mode']}): {d['examples']} examples (other kinds left out: "
                 f"{d['left_out_by_kind'] or 'none'}); process {d['process']} uses {d['local_examples']} per epoch "
                 f"({d['unused_by_sharding']} unused by sharding at the end of the run)",
                 f"  batch {d['batch_size']} per process ({d['global_batch_size']} global), "
                 f"{d['batches_per_epoch']} batches per epoch, epochs: {d['epochs']}",
                 f"  buckets of the first {d['sampled']} examples (at most {d['max_batch_shapes']} batch shapes):"]
        lines += [f"    {name:14s} {hist}" for name, hist in d["bucket_histogram"].items()]
        if d["skipped_in_sample"]:
            lines.append(f"  skipped in the sample: {d['skipped_in_sample']}")
        return "\n".join(lines)


class PipelineIterator:
    """Batches (dicts in the batch contract plus `ids`, and `answers` / `question_types` in prompt
    mode). `report` counts every example used and every item skipped, by reason; `batch_shapes`
    counts the (B, L, P, K, Pv, Kv) shapes emitted, i.e. the programs jit compiles (with several
    processes: this process's shapes, before the processes agree on the largest)."""

    def __init__(self, dataset: grain.IterDataset):
        self._it = iter(dataset)
        self.report = Report()
        self.batch_shapes: collections.Counter = collections.Counter()

    def __iter__(self) -> PipelineIterator:
        return self

    def __next__(self) -> dict:
        while True:
            batch, tally = next(self._it)
            self._count(tally)
            if batch is not None:
                self.batch_shapes[batch_shape(batch)] += 1
                return batch

    def _count(self, tally: Tally) -> None:
        for source, n in tally.accepted.items():
            self.report.accept(source, n)
        for s in tally.skipped:
            self.report.reject(s.source, s.line, s.record_id, s.reason, s.detail)

    def get_state(self) -> dict[str, Any]:
        """JSON-serialisable; `set_state` continues with exactly the batch after the last one returned."""
        shapes = [[list(shape), n] for shape, n in sorted(self.batch_shapes.items())]
        return {"grain": self._it.get_state(), "report": self.report.to_json(), "batch_shapes": shapes}

    def set_state(self, state: dict[str, Any]) -> None:
        self._it.set_state(state["grain"])
        self.report = Report.from_json(state["report"])
        self.batch_shapes = collections.Counter({tuple(shape): n for shape, n in state["batch_shapes"]})

    def close(self) -> None:
        """Stops the worker processes (also done on garbage collection, which is not prompt)."""
        if hasattr(self._it, "close"):
            self._it.close()

    def __enter__(self) -> PipelineIterator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def batch_shape(batch: dict) -> tuple[int, int, int, int, int, int]:
    """(B, L, P, K, Pv, Kv) of a batch."""
    b, length = batch["input_ids"].shape
    p, k = batch["pixel_values"].shape[1], batch["image_grid_thw"].shape[1]
    return b, length, p, k, batch["pixel_values_videos"].shape[1], batch["video_grid_thw"].shape[1]


def _select_kinds(source: Any, stage: prompts.Stage) -> tuple[Any, dict[str, int]]:
    """The items of the kinds `stage` trains on, in order, and the others counted by kind. A
    source with `records()` and `subset()` (ShardSource) is narrowed by its records' kinds, so a
    prepared set gives a stage exactly the items its release would; an entry that cannot be
    decoded is kept, to be skipped and reported when read."""
    kinds = STAGE_KINDS[stage]
    if isinstance(source, (list, tuple)):
        left_out = collections.Counter(r.kind for r in source if isinstance(r, Record) and r.kind not in kinds)
        return [r for r in source if not isinstance(r, Record) or r.kind in kinds], dict(left_out)
    if hasattr(source, "records") and hasattr(source, "subset"):
        records = source.records()
        left_out = collections.Counter(r.kind for r in records if r is not None and r.kind not in kinds)
        if left_out:
            source = source.subset([i for i, r in enumerate(records) if r is None or r.kind in kinds])
        return source, dict(left_out)
    return source, {}


def stage_processor(processor: Processor, config: PipelineConfig) -> Processor:
    """`processor` with the pixel bounds and frame count of `config`."""
    overrides = dict(min_pixels=config.min_pixels, max_pixels=config.max_pixels,
                     video_min_pixels=config.video_min_pixels, video_max_pixels=config.video_max_pixels,
                     num_frames=config.num_frames)
    return Processor(processor.tokenizer, dataclasses.replace(processor.vision, **overrides))


def _mark_flags_parsed() -> None:
    """Grain's worker processes read absl flags; a program that never parsed them (a notebook,
    pytest, a script without absl.app) must mark them parsed before workers start."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
