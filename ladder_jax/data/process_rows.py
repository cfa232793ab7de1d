"""Each process's rows of the global batches, taken from one item order that every process shares.

Global batch k is items [k*B, (k+1)*B) of the global order; process p of P takes its p-th block of
B/P items, the order in which `jax.make_array_from_process_local_data` concatenates the processes'
rows. So which items form a global batch does not depend on how many processes draw it.

A finite order may end in a short global batch of R < B items: it is split into P equal blocks
of R // P, and the R % P items that do not divide evenly are read by no process (every process
then yields the same number of items, and so the same number of batches).
"""

from __future__ import annotations

from typing import Any

import grain


def local_length(total: int, global_batch_size: int, process_count: int) -> int:
    """How many of `total` global items each process takes."""
    full, rest = divmod(total, global_batch_size)
    return full * (global_batch_size // process_count) + rest // process_count


def global_index(index: int, total: int, global_batch_size: int, process_index: int, process_count: int) -> int:
    """The global item that is local item `index` of process `process_index`."""
    rows = global_batch_size // process_count
    full, rest = divmod(total, global_batch_size)
    batch, row = divmod(index, rows)
    if batch < full:
        return batch * global_batch_size + process_index * rows + row
    return full * global_batch_size + process_index * (rest // process_count) + index - full * rows


class ProcessRowsMapDataset(grain.MapDataset):
    """Process `process_index`'s rows of the global batches of `parent` (random access, like the
    parent: a shuffled and repeated parent keeps reshuffling each epoch)."""

    def __init__(self, parent: grain.MapDataset, global_batch_size: int, process_index: int, process_count: int):
        super().__init__(parent)
        if global_batch_size % process_count or not 0 <= process_index < process_count:
            raise ValueError(f"process {process_index} of {process_count} cannot take rows of a global batch "
                             f"of {global_batch_size}")
        self._total = len(parent)
        self._args = (global_batch_size, process_index, process_count)
        self._length = local_length(self._total, global_batch_size, process_count)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index) -> Any:
        if isinstance(index, slice):
            return self.slice(index)
        return self._parent[global_index(index, self._total, *self._args)]

    def __str__(self) -> str:
        b, p, n = self._args
        return f"ProcessRowsMapDataset(global_batch_size={b}, process={p} of {n})"
