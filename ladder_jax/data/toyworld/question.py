"""What every question builder shares: the visibility of objects in a view set, and the output type.

An object is *seen* in a frame when at least `min_pixels` of it are visible, and *glimpsed* when any
pixel is. Questions only name objects that are seen and whose label is unique in the room; a
question whose answer would hinge on a mere glimpse is not asked, so every answer is unambiguous.
"""

from __future__ import annotations

import dataclasses

import numpy as np

LETTERS = "ABCDEFGH"


@dataclasses.dataclass(frozen=True)
class Question:
    question_type: str
    question: str
    options: tuple[str, ...] | None  # "A. ..." strings, or None for numeric answers
    answer: str  # option letter or number
    reasoning: str  # a short correct derivation from the geometry, for cold-start solutions
    fact: str  # the one grounded statement that decides the answer, in words (the "short" cold start)


@dataclasses.dataclass(frozen=True)
class Views:
    data_type: str  # single_image, multi_view or video
    pixels: np.ndarray  # (frames, n_objects + 1) visible pixels per frame and instance id
    min_pixels: int

    def seen(self) -> np.ndarray:
        return (self.pixels >= self.min_pixels).any(0)

    def glimpsed_only(self) -> np.ndarray:
        """Ids visible somewhere, but never clearly: neither countable nor safely ignorable."""
        return (self.pixels > 0).any(0) & ~self.seen()

    def first_seen(self) -> np.ndarray:
        seen = self.pixels >= self.min_pixels
        return np.where(seen.any(0), seen.argmax(0), len(self.pixels))

    def first_glimpse(self) -> np.ndarray:
        glimpse = self.pixels > 0
        return np.where(glimpse.any(0), glimpse.argmax(0), len(self.pixels))


def lettered(choices: list[str]) -> tuple[str, ...]:
    return tuple(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def format_number(value: float, decimals: int = 2) -> str:
    """Shortest decimal text of `value` rounded to `decimals` places ("23.4", "3", "2.05")."""
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
