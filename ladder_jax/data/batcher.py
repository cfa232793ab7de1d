"""A Grain batching step that drops `Skipped` items and hands their tally to the host with the batch.

It runs in the worker processes (after the per-example map), so a skip's reason would be lost in
the worker if it were simply filtered out. Instead each output is `(batch, tally)`: the tally lists
the examples used (by source) and every item skipped while this batch was filled. The host adds
tallies to its `Report` as batches arrive, so the counts are exact and checkpoint with the batches.

Checkpointing: a batch is emitted only after consuming exactly its items, so the iterator state
right after an output is the parent's state; nothing is buffered across outputs.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable

import grain

from ladder_jax.data.buckets import Buckets
from ladder_jax.data.examples import Example, Skipped

REMAINDER_REASON = "dropped: incomplete last batch (drop_remainder)"


@dataclasses.dataclass
class Tally:
    accepted: collections.Counter  # source -> examples used in this batch
    skipped: list[Skipped]


class BucketBatchIterDataset(grain.IterDataset):
    """Batches of exactly `batch_size` usable examples, padded to `buckets` by `collate`.

    At the end of the data the incomplete last batch is dropped (and its examples reported) when
    `drop_remainder`, else emitted smaller. An output may have `batch=None` when only a tally is
    left to deliver. More than `max_consecutive_skips` skipped items in a row means the data or
    the configuration is broken, not a few bad records, and raises with the reasons seen.
    """

    def __init__(self, parent: grain.IterDataset, batch_size: int, buckets: Buckets, collate: Callable,
                 drop_remainder: bool = True, max_consecutive_skips: int = 1000):
        super().__init__(parent)
        self._args = (batch_size, buckets, collate, drop_remainder, max_consecutive_skips)

    def __iter__(self) -> _BucketBatchIterator:
        return _BucketBatchIterator(self._parent.__iter__(), *self._args)

    def __str__(self) -> str:
        return f"BucketBatchIterDataset(batch_size={self._args[0]})"


class _BucketBatchIterator(grain.DatasetIterator):
    def __init__(self, parent, batch_size: int, buckets: Buckets, collate: Callable, drop_remainder: bool,
                 max_consecutive_skips: int):
        super().__init__(parent)
        self._batch_size, self._buckets, self._collate = batch_size, buckets, collate
        self._drop_remainder, self._max_skips = drop_remainder, max_consecutive_skips

    def __next__(self) -> tuple[dict | None, Tally]:
        examples: list[Example] = []
        tally = Tally(collections.Counter(), [])
        run = 0  # skipped items since the last usable one
        while len(examples) < self._batch_size:
            try:
                item = next(self._parent)
            except StopIteration:
                return self._finish(examples, tally)
            if isinstance(item, Skipped):
                tally.skipped.append(item)
                run += 1
                if run > self._max_skips:
                    raise RuntimeError(_too_many(tally.skipped[-run:]))
            else:
                examples.append(item)
                run = 0
        return self._emit(examples, tally)

    def _finish(self, examples: list[Example], tally: Tally) -> tuple[dict | None, Tally]:
        if examples and not self._drop_remainder:
            return self._emit(examples, tally)
        for e in examples:
            tally.skipped.append(Skipped(e.source, None, e.id, REMAINDER_REASON))
        if not tally.skipped:
            raise StopIteration
        return None, tally

    def _emit(self, examples: list[Example], tally: Tally) -> tuple[dict, Tally]:
        tally.accepted.update(e.source for e in examples)
        sizes = self._buckets.fit_batch([e.sizes for e in examples])
        return self._collate(examples, sizes), tally

    def get_state(self) -> dict[str, Any]:
        return self._parent.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state)


def _too_many(skipped: list[Skipped]) -> str:
    reasons = collections.Counter(s.reason for s in skipped).most_common(5)
    first = skipped[0]
    return (f"{len(skipped)} items in a row were skipped (reasons: {dict(reasons)}; first: "
            f"{first.source} id={first.record_id} {first.detail}); check the data root and the stage")
