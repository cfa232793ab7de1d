"""Shape buckets: the few padded shapes a batch may take, so jit compiles a bounded set of programs.

A batch has five sizes that jit sees: sequence length L, image patches P and image items K, video
patches Pv and video items Kv. Each is padded up to the smallest bucket that holds every example of
the batch. A dimension that no example of the batch uses stays 0 (the contract allows zero-size
vision arrays), so a text-only or image-only batch does not pay for video padding.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence


class Sizes(NamedTuple):
    """What one example needs (or one batch is padded to)."""

    length: int
    image_patches: int
    image_items: int
    video_patches: int
    video_items: int


class BucketError(ValueError):
    """An example that no bucket holds; `reason` is the fixed phrase reports group by."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason} ({detail})")


_NAMES = {
    "length": "tokens",
    "image_patches": "image patches",
    "image_items": "images",
    "video_patches": "video patches",
    "video_items": "videos",
}


@dataclasses.dataclass(frozen=True)
class Buckets:
    """Allowed padded sizes per dimension, each an increasing tuple.

    The defaults hold stage 2 of SpatialLadder-26k at the training resolution (at most 128 merged
    tokens, 512 patches, per image or per pair of video frames): 8-view sets reach 4,096 patches
    and ~1,100 tokens, 16-frame videos 4,096 patches. Patch buckets must be multiples of the
    merge unit (4) because the vision merger groups 2x2 patches.
    """

    lengths: tuple[int, ...] = (256, 512, 1024, 2048, 4096)
    image_patches: tuple[int, ...] = (256, 512, 1024, 2048, 4096)
    image_items: tuple[int, ...] = (1, 2, 4, 8)
    video_patches: tuple[int, ...] = (512, 1024, 2048, 4096)
    video_items: tuple[int, ...] = (1,)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            values = tuple(getattr(self, field.name))
            object.__setattr__(self, field.name, values)
            if not values or any(b <= 0 for b in values) or list(values) != sorted(set(values)):
                raise ValueError(f"Buckets.{field.name} must be positive and strictly increasing, got {values}")
        for field in ("image_patches", "video_patches"):
            if any(b % 4 for b in getattr(self, field)):
                raise ValueError(f"Buckets.{field} must be multiples of 4 (the 2x2 merge unit)")

    def fit(self, need: Sequence[int]) -> Sizes:
        """The smallest bucket sizes that hold `need`; raises BucketError if one exceeds every bucket."""
        return Sizes(*(_smallest(getattr(self, _field(name)), value, name) for name, value in zip(Sizes._fields, need)))

    def fit_batch(self, needs: Sequence[Sequence[int]]) -> Sizes:
        """Buckets for a batch: the elementwise maximum of its examples' needs, fitted."""
        return self.fit(Sizes(*(max(column) for column in zip(*needs))))

    def max_programs(self) -> int:
        """Upper bound on distinct batch shapes (per batch size): vision dims are all-zero or bucketed."""
        images = len(self.image_patches) * len(self.image_items) + 1
        videos = len(self.video_patches) * len(self.video_items) + 1
        return len(self.lengths) * images * videos


def _field(name: str) -> str:
    return "lengths" if name == "length" else name


def _smallest(buckets: tuple[int, ...], value: int, name: str) -> int:
    if value == 0 and name != "length":
        return 0
    for bucket in buckets:
        if value <= bucket:
            return bucket
    raise BucketError(f"too long: {_NAMES[name]} exceed the largest bucket", f"{value} > {buckets[-1]}")
