import numpy as np
import pytest

from ladder_jax.data.schema import Box
from ladder_jax.eval.grounding import best_ious, box_iou, parse_boxes, parsed_iou

TRUTH = [Box((0, 0, 10, 10), "chair"), Box((20, 20, 30, 30), "table")]


def answer_iou(text: str, truth) -> float:
    """How the demo scores one grounding answer."""
    return parsed_iou(parse_boxes(text), truth)


def test_answer_iou():
    exact = (
        '```json\n[{"bbox_2d": [0, 0, 10, 10], "label": "chair"}, '
        '{"bbox_2d": [20, 20, 30, 30], "label": "Table "}]\n```'
    )
    assert answer_iou(exact, TRUTH) == 1.0
    half = '```json\n[{"bbox_2d": [0, 0, 10, 5], "label": "chair"}, {"bbox_2d": [0, 0, 5, 5], "label": "chair"}]\n```'
    assert answer_iou(half, TRUTH) == pytest.approx((0.5 + 0.0) / 2)  # best chair 50/100; no table
    shifted = '[{"bbox_2d": [5, 0, 15, 10], "label": "chair"}]'  # no fence: the whole answer is JSON
    assert answer_iou(f"<think>x</think><answer>{shifted}</answer>", TRUTH[:1]) == pytest.approx(50 / 150)
    for broken in ("", "```json\n[{]\n```", '[{"bbox_2d": [1, 2, 3], "label": "chair"}]', '[{"label": "chair"}]',
                   '{"bbox_2d": [0, 0, 1, 1]}', '[{"bbox_2d": [0, 0, NaN, 1], "label": "chair"}]'):
        assert parse_boxes(broken) is None and answer_iou(broken, TRUTH) == 0.0
    # Per asked box: None when no predicted box carries its label (the demo's "objects named").
    assert best_ious(parse_boxes(half), TRUTH) == [pytest.approx(0.5), None]
    assert best_ious([], TRUTH) == [None, None]
    assert answer_iou("[]", []) == 1.0 and answer_iou(exact, []) == 0.0


def test_inverted_boxes_have_no_area():
    assert box_iou(np.array([0, 0, 10, 10.0]), np.array([0, 0, 10, 10.0])) == 1.0
    assert box_iou(np.array([10, 10, 0, 0.0]), np.array([10, 10, 0, 0.0])) == 0.0
