"""Which items each process generates, batch by batch.

Items are visited grouped by their media (every question about one video back to back, so it is
decoded once). Over several processes each takes one contiguous run of that order, so a video's
questions are split only where one process's run ends (at most one extra decode per process), and
every process runs the same number of batches: generation is one global program that all of them
must enter together, so a process whose run is shorter pads with empty batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ladder_jax.eval.benchmarks import Item


class ScheduleError(ValueError):
    """A batch that cannot split over the mesh's data axes and the processes."""


def rows_per_process(batch_size: int, data_devices: int, process_count: int) -> int:
    """Each process's prompts per generation step: all `batch_size` with one process (rows the
    data axes do not divide are replicated); with several, an equal share, which needs the batch
    to divide over the data axes (data x fsdp = `data_devices`) and those to span the processes."""
    if process_count == 1:
        return batch_size
    if data_devices % process_count:
        raise ScheduleError(f"the mesh's data axes (data x fsdp = {data_devices}) must span all {process_count} "
                            f"processes: give --mesh data and fsdp sizes whose product is a multiple of {process_count}")
    if batch_size % data_devices:
        raise ScheduleError(f"--batch-size {batch_size} must divide over the data axes (data x fsdp = "
                            f"{data_devices}) across {process_count} processes; use a multiple of {data_devices}")
    return batch_size // process_count


def media_order(items: Sequence[Item]) -> list[int]:
    """Indices grouped by media (groups in order of first appearance), same-shaped media together."""
    groups: dict[tuple, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.media.key, []).append(i)
    shape = {key: (key[0], len(key[1]) or 1) for key in groups}
    return [i for key in sorted(groups, key=lambda k: shape[k]) for i in groups[key]]


def process_share(order: Sequence[int], process_count: int, process_index: int) -> list[int]:
    """Process `process_index`'s contiguous run of `order`; the first len % count runs hold one more."""
    per, extra = divmod(len(order), process_count)
    start = process_index * per + min(process_index, extra)
    return list(order[start:start + per + (process_index < extra)])


def process_batches(order: Sequence[int], rows: int, process_count: int = 1,
                    process_index: int = 0) -> Iterator[list[int]]:
    """This process's batches of at most `rows` items from its share of `order`, then empty ones
    until it has run as many batches as the process with the longest share."""
    share = process_share(order, process_count, process_index)
    longest = len(process_share(order, process_count, 0))
    for start in range(0, -(-longest // rows) * rows, rows):
        yield share[start:start + rows]
