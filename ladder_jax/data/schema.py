"""One record type for every stage: grounding (stage 1), spatial QA (stages 2 and 3), cold start.

The field names follow the SpatialLadder-26k release (SPEC.md section 2); validation on read lives
beside this type so that every reader (release JSONL, ArrayRecord shards, toy world, synthesis)
rejects the same things with the same messages.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Kind = Literal["grounding", "spatial", "cold_start"]
DataType = Literal["single_image", "multi_view", "video"]

MULTIPLE_CHOICE_TYPES = ("relative distance", "relative direction", "appearance order")
NUMERIC_TYPES = ("object size", "room size", "object count", "absolute distance")
QUESTION_TYPES = MULTIPLE_CHOICE_TYPES + NUMERIC_TYPES
DATA_TYPES = ("single_image", "multi_view", "video")


@dataclasses.dataclass(frozen=True)
class Box:
    """An absolute-pixel xyxy box on the record's original image, with its label."""

    bbox_2d: tuple[float, float, float, float]
    label: str


@dataclasses.dataclass(frozen=True)
class Record:
    """One training or evaluation example.

    `images` are paths relative to the data root (or, in prepared shards, keys into
    `image_bytes`). A video is a list of frame paths; a multi-view set is a list of images.
    """

    id: str
    kind: Kind
    question: str
    images: tuple[str, ...]
    data_type: DataType
    question_type: str | None = None  # one of QUESTION_TYPES for spatial / cold-start records
    options: tuple[str, ...] | None = None  # "A. ..." strings for multiple choice, else None
    answer: str | None = None  # option letter or number (spatial); the <answer> text (cold start)
    boxes: tuple[Box, ...] = ()  # grounding targets
    solution: str | None = None  # cold start: "<think>...</think><answer>...</answer>"
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. synthesis provenance

    @property
    def is_multiple_choice(self) -> bool:
        return self.question_type in MULTIPLE_CHOICE_TYPES
