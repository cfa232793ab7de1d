import math

import pytest

from ladder_jax.eval.metrics import (
    MRA_THRESHOLDS,
    aggregate_cvbench,
    aggregate_vsi,
    answer_block,
    markdown_table,
    mean_relative_accuracy,
    score_item,
    task_table,
    vsi_choice,
    vsi_number,
)


def test_thresholds_are_vsi_benchs():
    assert len(MRA_THRESHOLDS) == 10 and MRA_THRESHOLDS[0] == 0.5 and MRA_THRESHOLDS[-1] == 0.95
    assert MRA_THRESHOLDS[8] == 0.8999999999999999  # np.linspace, not 0.9


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>x</think><answer> B </answer><answer>C</answer>", "B"),  # the first block
        ("no tags, B", "no tags, B"),
        ("<answer>\n3.5\n</answer>", "3.5"),
        ("<answer>unclosed", "None"),
    ],
)
def test_answer_block(text, expected):
    assert answer_block(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [("B", "B"), ("B.", "B"), ("Answer: C", "C"), ("(A)", "(A)"), ("D. lamp", "D"), ("E", "E"), ("b", "b"),
     ("The answer is B", "The answer is B"), ("", ""), ("\nA", "A"), (" A", "A")],
)
def test_vsi_choice(text, expected):
    assert vsi_choice(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [("about 3.5 meters", 3.5), ("12 chairs, not 13", 12.0), ("three chairs", 3.0), ("Twenty", 20.0),
     ("none", None), ("2.", 2.0), (".5", 5.0), ("someone", None), ("-4", 4.0), ("a chair", 1.0), ("ninety", 90.0)],
)
def test_vsi_number(text, expected):
    assert vsi_number(text) == expected


@pytest.mark.parametrize(
    "prediction, truth, question_type, expected",
    [
        ("<answer>B</answer>", "B", "object_rel_distance", 1.0),
        ("<answer>Answer: B.</answer>", "B", "route_planning", 0.0),  # " B." splits to "" first: "b." != "b"
        ("<answer>Answer:B.</answer>", "B", "route_planning", 1.0),  # route planning is MC
        ("<answer>b.</answer>", "B", "route_planning", 0.0),  # "b." is no option token; "b." != "b"
        ("<answer>A</answer>", "B", "obj_appearance_order", 0.0),
        ("<answer>2 meters</answer>", "2.0", "object_abs_distance", 1.0),
        ("<answer>3</answer>", "2", "object_counting", 0.1),  # e = 0.5
        ("<answer>7.5</answer>", "10", "room_size_estimation", 0.6),  # e = 0.25 ≤ 0.25 … 0.5
        ("<answer>five</answer>", "4", "object_counting", 0.6),  # e = 0.25
        ("<answer>no idea</answer>", "4", "object_counting", 0.0),
        ("<answer>1e309</answer>", "1", "object_size_estimation", 1.0),  # \d+(\.\d+)? reads "1", stops at "e"
    ],
)
def test_score_item(prediction, truth, question_type, expected):
    assert score_item(prediction, truth, question_type, think=True) == expected


def test_mra_edges():
    assert mean_relative_accuracy(math.nan, 1.0) == 0.0 and mean_relative_accuracy(math.inf, 1.0) == 0.0
    assert mean_relative_accuracy(0.0, 0.0) == 1.0 and mean_relative_accuracy(1e-9, 0.0) == 0.0
    assert mean_relative_accuracy(100.0, 100.0) == 1.0 and mean_relative_accuracy(201.0, 100.0) == 0.0


def test_aggregate_vsi():
    items = [
        {"question_type": "object_counting", "score": 1.0},
        {"question_type": "object_counting", "score": 0.5},  # task 0.75
        {"question_type": "room_size_estimation", "score": 0.2},  # task 0.2
        {"question_type": "object_rel_direction_easy", "score": 1.0},
        {"question_type": "object_rel_direction_easy", "score": 1.0},  # easy 1.0
        {"question_type": "object_rel_direction_medium", "score": 0.0},  # medium 0.0
        {"question_type": "object_rel_direction_hard", "score": 1.0},
        {"question_type": "object_rel_direction_hard", "score": 0.0},  # hard 0.5 → direction 0.5
        {"question_type": "route_planning", "score": 0.0},  # task 0.0
    ]
    summary = aggregate_vsi(items)
    assert summary["object_counting"] == 0.75 and summary["room_size_estimation"] == 0.2
    assert summary["object_rel_direction"] == 0.5 and summary["object_rel_direction_hard"] == 0.5
    assert summary["overall"] == pytest.approx((0.75 + 0.2 + 0.5 + 0.0) / 4)  # 0.3625
    assert summary["NQ"] == pytest.approx((0.75 + 0.2) / 2)  # numeric tasks
    assert summary["MCQ"] == pytest.approx((0.5 + 0.0) / 2)  # multiple-choice tasks
    assert summary["NQ_items"] == pytest.approx((1.0 + 0.5 + 0.2) / 3)  # numeric items
    assert summary["MCQ_items"] == pytest.approx(3.0 / 6)  # six multiple-choice items, three right


def test_aggregate_cvbench():
    items = [{"source": "ADE20K", "score": s} for s in (1, 1, 0, 1)]  # 0.75
    items += [{"source": "COCO", "score": s} for s in (1, 0)]  # 0.5
    items += [{"source": "Omni3D", "score": s} for s in (1, 1, 1, 0, 0)]  # 0.6
    summary = aggregate_cvbench(items)
    assert summary["2D"] == pytest.approx(0.625) and summary["3D"] == pytest.approx(0.6)
    assert summary["avg"] == pytest.approx(0.6125) and summary["COCO"] == 0.5
    only_2d = aggregate_cvbench([i for i in items if i["source"] != "Omni3D"])
    assert only_2d["avg"] == pytest.approx(0.625) and math.isnan(only_2d["3D"])  # eval_spld: mean of those present


def test_markdown_table_in_the_papers_layout():
    results = {"SpatialLadder-3B": {"VSI-Bench": {"NQ": 0.508, "MCQ": 0.405, "overall": 0.457}}}
    table = markdown_table(results, ["VSI-Bench", "SPBench-SI"])
    assert table.splitlines() == [
        "| model | VSI-Bench (NQ / MCQ / Avg) | SPBench-SI (NQ / MCQ / Avg) |",
        "|---|---|---|",
        "| SpatialLadder-3B | 50.8 / 40.5 / 45.7 | – / – / – |",
    ]
    assert task_table({"overall": 0.5, "route_planning": 0.25}).splitlines()[2:] == [
        "| overall | 50.0 |", "| route_planning | 25.0 |"
    ]
