"""Grounding answers: the JSON boxes in a model's answer and their IoU with the asked boxes.

Host-side Python on purpose: grounding answers are free-form JSON whose structure cannot be parsed
with static shapes. Used by the demo's held-out evaluation; the GRPO reward does not score boxes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np

from ladder_jax.data.schema import Box

_ANSWERS = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_JSON_FENCE = re.compile(r"```json(.*?)```", re.DOTALL)


def parse_boxes(completion: str) -> list[tuple[np.ndarray, str]] | None:
    """The ```json list of {"bbox_2d": [x1, y1, x2, y2], "label": str} in the answer, or None."""
    text = (_ANSWERS.findall(completion) or [completion])[-1]
    fence = _JSON_FENCE.search(text)
    try:
        items = json.loads(fence.group(1) if fence else text)
        boxes = [(np.asarray(item["bbox_2d"], dtype=np.float64), str(item["label"])) for item in items]
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    if any(xyxy.shape != (4,) or not np.isfinite(xyxy).all() for xyxy, _ in boxes):
        return None
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """|a ∩ b| / |a ∪ b| for xyxy boxes; 0 when the union is empty (inverted boxes have no area)."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda box: max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])  # noqa: E731
    intersection = width * height
    union = area(a) + area(b) - intersection
    return float(intersection / union) if union > 0 else 0.0


def best_ious(predicted: Sequence[tuple[np.ndarray, str]], truth: Sequence[Box]) -> list[float | None]:
    """Per ground-truth box, the best IoU with a predicted box of the same label (labels compared
    stripped and lowercased), or None when the prediction names no box with that label."""
    out = []
    for box in truth:
        label = box.label.strip().lower()
        same = [xyxy for xyxy, name in predicted if name.strip().lower() == label]
        out.append(max(box_iou(np.asarray(box.bbox_2d, np.float64), xyxy) for xyxy in same) if same else None)
    return out


def parsed_iou(predicted: Sequence[tuple[np.ndarray, str]] | None, truth: Sequence[Box]) -> float:
    """Mean over ground-truth boxes of `best_ious` (0 for a label the answer does not name); 0 when
    the answer did not parse (None). An empty ground truth scores 1 for an empty prediction and 0
    otherwise."""
    if predicted is None:
        return 0.0
    if not truth:
        return float(not predicted)
    return float(np.mean([iou or 0.0 for iou in best_ious(predicted, truth)]))
