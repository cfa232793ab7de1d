"""The chat messages and targets of each SpatialLadder stage (SPEC.md section 3).

The strings are those of the released training scripts, character for character, because the
released checkpoints were trained on them. Stage 1 and 2 (and cold start) carry the explicit system
message "You are a helpful assistant" (no full stop); stage 3 has none, so the chat template
inserts Qwen's default "You are a helpful assistant.".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ladder_jax.data.schema import Box, Record

Stage = Literal["stage1", "stage2", "cold_start", "stage3"]
STAGES: tuple[Stage, ...] = ("stage1", "stage2", "cold_start", "stage3")

SFT_SYSTEM_PROMPT = "You are a helpful assistant"

GROUNDING_PROMPT = (
    "Question: {question}\n"
    "Please carefully observe the image first to identify the object(s) referred to in the question. "
    "Note that each object type appears only once in the image. "
    "Please provide the 2D bounding box coordinates and labels of the related objects in JSON format. "
)
DIRECT_MC_SUFFIX = "Please answer with the option's letter from the given choices directly."
DIRECT_NUMERIC_SUFFIX = "Please answer the question using a numerical value (e.g., 42 or 3.1) directly."
REASONING_PROMPT = (
    "Question: {question} \n"
    "Please Think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. \n"
)
REASONING_MC_SUFFIX = (
    "Please provide your detailed reasoning between the <think> </think> tags, "
    "and then answer the question with the option's letter from the given choices (e.g., A, B, etc.) "
    "within the <answer> </answer> tags."
)
REASONING_NUMERIC_SUFFIX = (
    "Please provide your detailed reasoning between the <think> </think> tags, "
    "and then answer the question with a numerical value (e.g., 42 or 3.1) within the <answer> </answer> tags."
)


def grounding_prompt(question: str) -> str:
    """Stage 1 user text."""
    return GROUNDING_PROMPT.format(question=question)


def direct_answer_prompt(question: str, options: Sequence[str] | None, multiple_choice: bool) -> str:
    """Stage 2 user text: the options follow the question with no separator, as released."""
    if options:
        question += "Options:\n" + "\n".join(options)
    suffix = DIRECT_MC_SUFFIX if multiple_choice else DIRECT_NUMERIC_SUFFIX
    return f"Question: {question}\n\n{suffix}"


def reasoning_prompt(question: str, options: Sequence[str] | None, multiple_choice: bool) -> str:
    """Stage 3 and cold-start user text: the options sit inside the question, before the instructions.
    Every "<image>" is removed from the question first, as the reference's stage 3 does."""
    question = question.replace("<image>", "")
    if options:
        question += "\nOptions:\n" + "\n".join(options)
    suffix = REASONING_MC_SUFFIX if multiple_choice else REASONING_NUMERIC_SUFFIX
    return REASONING_PROMPT.format(question=question) + suffix


def rescale_boxes(
    boxes: Sequence[Box], image_hw: tuple[int, int], resized_hw: tuple[int, int]
) -> np.ndarray:
    """(n, 4) int64 xyxy boxes moved from the original image to the resized grid.

    Each coordinate is scaled by resized/original along its axis, rounded half to even (Python's
    `round`, as the reference does) and clamped to [0, W-1] / [0, H-1].
    """
    (height, width), (new_h, new_w) = image_hw, resized_hw
    xyxy = np.asarray([box.bbox_2d for box in boxes], dtype=np.float64).reshape(-1, 4)
    scale = np.asarray([new_w / width, new_h / height] * 2)
    upper = np.asarray([new_w - 1, new_h - 1] * 2)
    return np.clip(np.round(xyxy * scale), 0, upper).astype(np.int64)


def grounding_target(boxes: Sequence[Box], image_hw: tuple[int, int], resized_hw: tuple[int, int]) -> str:
    """Stage 1 answer: a ```json fenced list of {"bbox_2d", "label"} on the resized grid.

    One object per line, tab-indented, the layout of Qwen2.5-VL's own grounding answers. The
    release double-encodes this list as a JSON string; we encode it once, so the model learns JSON.
    """
    rescaled = rescale_boxes(boxes, image_hw, resized_hw)
    lines = [json.dumps({"bbox_2d": xyxy.tolist(), "label": box.label}) for xyxy, box in zip(rescaled, boxes)]
    return "```json\n[\n\t" + ",\n\t".join(lines) + "\n]\n```"


def _vision_items(record: Record) -> list[dict[str, str]]:
    if record.data_type == "video":
        return [{"type": "video"}]
    return [{"type": "image"} for _ in record.images]


def _user_content(record: Record, stage: Stage, text: str) -> list[dict[str, str]]:
    """Images or video, then the text; stage 3 puts a video after the text, as the reference's GRPO
    trainer builds its video prompts."""
    vision, words = _vision_items(record), [{"type": "text", "text": text}]
    return words + vision if stage == "stage3" and record.data_type == "video" else vision + words


def _require(record: Record, stage: Stage, field: str, ok: bool) -> None:
    if not ok:
        raise ValueError(f"record {record.id!r} ({record.kind}) cannot be used in {stage}: missing or invalid {field}")


def _user_text(
    record: Record, stage: Stage, image_hw: tuple[int, int] | None, resized_hw: tuple[int, int] | None
) -> tuple[str, str]:
    if stage == "stage1":
        _require(record, stage, "boxes", record.kind == "grounding" and bool(record.boxes))
        _require(record, stage, "image_hw/resized_hw", image_hw is not None and resized_hw is not None)
        return grounding_prompt(record.question), grounding_target(record.boxes, image_hw, resized_hw)
    if stage == "cold_start" and record.prompt is not None:  # the release's rows: prompt and solution verbatim
        _require(record, stage, "solution", bool(record.solution))
        return record.prompt, record.solution
    _require(record, stage, "question_type/answer", record.question_type is not None and record.answer is not None)
    if stage == "stage2":
        return direct_answer_prompt(record.question, record.options, record.is_multiple_choice), record.answer
    text = record.prompt or reasoning_prompt(record.question, record.options, record.is_multiple_choice)
    if stage == "cold_start":
        _require(record, stage, "solution", bool(record.solution))
        return text, record.solution
    return text, record.answer


def build_messages(
    record: Record,
    stage: Stage,
    *,
    image_hw: tuple[int, int] | None = None,
    resized_hw: tuple[int, int] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """(chat messages without the answer, target text) for `record` at `stage`.

    Stage 1 needs the original and resized (height, width) of its image to place the boxes. The
    target is the assistant text for SFT stages and the ground-truth answer for stage 3 (rewards).
    A cold-start record with a `prompt` (the release's form) is asked with that prompt verbatim, in
    the cold-start stage and in stage 3 (which also needs its question type and answer); one
    without is asked the stage-3 prompt of its question.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    text, target = _user_text(record, stage, image_hw, resized_hw)
    user = {"role": "user", "content": _user_content(record, stage, text)}
    if stage == "stage3":
        return [user], target
    system = {"role": "system", "content": [{"type": "text", "text": SFT_SYSTEM_PROMPT}]}
    return [system, user], target
