"""Which items each process generates: every item once, media kept together but for the ends of
the processes' runs, and the same number of batches on every process."""

import pytest

from ladder_jax.eval.benchmarks import Item
from ladder_jax.eval.media import Media
from ladder_jax.eval.schedule import ScheduleError, media_order, process_batches, process_share, rows_per_process


def _items(videos: list[str]) -> list[Item]:
    return [Item(id=str(i), question_type="object_counting", prompt="", media=Media("video_file", (v,)),
                 ground_truth="1", think=False) for i, v in enumerate(videos)]


def test_media_order_groups_the_questions_of_one_video():
    items = _items(["a", "b", "a", "c", "b", "a"])
    assert media_order(items) == [0, 2, 5, 1, 4, 3]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_the_shares_are_contiguous_balanced_and_cover_every_item_once(count):
    order = list(range(10, 20))
    shares = [process_share(order, count, i) for i in range(count)]
    assert sum(shares, []) == order
    assert max(map(len, shares)) - min(map(len, shares)) <= 1 and len(shares[0]) == max(map(len, shares))


@pytest.mark.parametrize("count, rows", [(1, 3), (2, 2), (3, 1), (4, 3)])
def test_every_process_runs_as_many_batches_as_the_longest(count, rows):
    order = list(range(11))
    batches = [list(process_batches(order, rows, count, i)) for i in range(count)]
    assert len({len(b) for b in batches}) == 1
    assert all(len(chunk) <= rows for b in batches for chunk in b)
    assert sorted(i for b in batches for chunk in b for i in chunk) == order


def test_no_items_no_batches():
    assert list(process_batches([], 4, 2, 1)) == []


def test_the_batch_must_split_over_the_data_axes_and_processes():
    assert rows_per_process(3, 8, 1) == 3  # one process: rows the data axes do not divide are replicated
    assert rows_per_process(8, 4, 2) == 4
    with pytest.raises(ScheduleError, match="use a multiple of 4"):
        rows_per_process(6, 4, 2)
    with pytest.raises(ScheduleError, match="multiple of 2"):
        rows_per_process(4, 1, 2)
