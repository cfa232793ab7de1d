"""`metrics.score_item` and the aggregates against plain re-statements of the reference scorers
(tests/eval/reference_scorers.py) on thousands of hostile model outputs: 0 disagreements."""

import itertools
import math
import random

import pytest

from ladder_jax.eval import metrics
from tests.eval import reference_scorers as ref

PIECES = [
    "", " ", "  ", "\n", "\t", "\r\n", ".", "..", ",", ":", "Answer:", "Answer: ", "answer:", "The answer is",
    "A", "B", "C", "D", "E", "a", "b", "c", "d", "A.", "b.", "C..", "(A)", "(b)", "[C]", "{D}.", "(A).", "((A))",
    "A)", "(B", "ABC", "A,", "AB", "Ａ", "(E)", "A.B", "option A", "0", "1", "2", "3", "3.5", "3.50", "-3", "+2",
    "1,000", "1e3", "3.5m", "3 m", "3.5 meters", ".5", "5.", "1_000", "٣", "٣.٥", "²", "Ⅻ", "inf", "-inf", "nan",
    "NaN", "1e400", "9" * 400, "zero", "one", "One", "three", "Three", "twenty", "twenty-one", "ninety", "a", "an",
    "An", "none", "None", "someone", "alone", "a_b", "é", "café", "approximately", "about", "chair", "sofa",
    "<think>", "</think>", "<answer>", "</answer>", "<answer>B</answer>", "<answer> 3 </answer>",
    "<answer>\nA\n</answer>", "<answer></answer>", "<ANSWER>", "<answer>two</answer>", "\u200b", "\u00a0", "İ",
]
SEPARATORS = ["", " ", "\n", "  ", "\t"]


def hostile_outputs(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    outputs = {""}
    while len(outputs) < count:
        n = rng.randint(1, 5)
        parts = [rng.choice(PIECES) for _ in range(n)]
        outputs.add("".join(p + rng.choice(SEPARATORS) for p in parts).rstrip(rng.choice(["", " ", "\n"])))
    return sorted(outputs)


OUTPUTS = hostile_outputs(6000)
VSI_MC = [t for t in ref.MCA if t != "object_rel_direction"]


def test_thresholds_restated():
    assert ref.THRESHOLDS == list(metrics.MRA_THRESHOLDS)


@pytest.mark.parametrize("think", [False, True])
def test_spatialladder_vsi_matches_eval_spld(think):
    rng = random.Random(int(think))
    checked = disagreements = credited = 0
    for out in OUTPUTS:
        for qtype, truth in ((rng.choice(VSI_MC), rng.choice("ABCD")), ("route_planning", "a"),
                             (rng.choice(ref.NA), rng.choice(["1", "2", "3", "3.5", "0.5", "10", "1000", "1.0"]))):
            want = ref.eval_spld_vsi(out, truth, qtype, think)
            got = metrics.score_item(out, truth, qtype, benchmark="vsi", protocol="spatialladder", think=think)
            checked += 1
            credited += want > 0
            disagreements += got != want
            assert got == want, (out, truth, qtype, got, want)
    assert checked >= 18000 and disagreements == 0 and credited > 1000


def test_official_vsi_matches_thinking_in_space():
    rng = random.Random(2)
    credited = 0
    for out in OUTPUTS:
        for qtype, truth in ((rng.choice(VSI_MC), rng.choice("ABCD")),
                             (rng.choice(ref.NA), rng.choice(["1", "2", "3", "3.5", "0.5", "10", "1000"]))):
            want = ref.official_vsi(out, truth, qtype)
            for think in (False, True):  # the official scorer never extracts tags
                got = metrics.score_item(out, truth, qtype, protocol="official", think=think)
                assert got == want, (out, truth, qtype, got, want)
            credited += want > 0
    assert credited > 150


@pytest.mark.parametrize("think", [False, True])
def test_cvbench_matches_eval_spld(think):
    rng = random.Random(3)
    credited = 0
    for out in OUTPUTS:
        truth = rng.choice(["(A)", "(B)", "(C)", "(D)", "(E)", "A", "(a)"])
        want = ref.eval_spld_cvbench(out, truth, think)
        got = metrics.score_item(out, truth, "Count", benchmark="cvbench", think=think)
        assert got == want, (out, truth, got, want)
        credited += want > 0
    assert credited > 80


def _random_rows(rng, types):
    rows = []
    for t in types:
        numeric = t in ref.NA
        for _ in range(rng.randint(1, 6)):
            rows.append({"question_type": t, "score": rng.choice([0.0, 0.1, 0.5, 0.9, 1.0]) if numeric
                         else float(rng.random() < 0.4)})
    return rows


def test_aggregation_matches_both_references():
    rng = random.Random(4)
    disagreements = 0
    direction = ["object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard"]
    others = [t for t in VSI_MC if t not in direction] + ref.NA
    for trial in range(3000):
        kept = rng.sample(others, rng.randint(1, len(others)))
        dirs = [d for d in direction if rng.random() < 0.5] if trial % 3 else direction
        rows = _random_rows(rng, kept + dirs)
        ours = metrics.aggregate_vsi(rows)
        want = ref.eval_spld_aggregate(rows)
        for key in ("overall", "MCQ", "NQ"):
            got = ours.get(f"{key}_as_reference", ours[key])
            got = 0 if math.isnan(got) else got  # the reference prints 0 for a kind with no task
            disagreements += not math.isclose(got, want[key], rel_tol=0, abs_tol=1e-12)
        if len(dirs) in (0, 3):  # the official scorer crashes on a partial set of difficulties
            disagreements += not math.isclose(ours["overall"], ref.official_aggregate(rows)["overall"], abs_tol=1e-12)
    assert disagreements == 0


def test_aggregation_is_a_mean_of_tasks_by_hand():
    rows = ([{"question_type": "object_counting", "score": s} for s in (1.0, 0.0, 0.5, 0.5)]  # task 0.5
            + [{"question_type": "room_size_estimation", "score": 0.9}]  # 0.9
            + [{"question_type": "route_planning", "score": s} for s in (1.0, 1.0, 0.0)]  # 2/3
            + [{"question_type": f"object_rel_direction_{d}", "score": s}
               for d, s in (("easy", 1.0), ("medium", 0.0), ("hard", 0.5))])  # 0.5
    out = metrics.aggregate_vsi(rows)
    assert out["NQ"] == pytest.approx(0.7) and out["MCQ"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert out["overall"] == pytest.approx((0.5 + 0.9 + 2 / 3 + 0.5) / 4)
    assert out["NQ_items"] == pytest.approx(2.9 / 5) and out["MCQ_items"] == pytest.approx(3.5 / 6)
    assert out["object_rel_direction"] == 0.5 and out["object_rel_direction_medium"] == 0.0
    assert "overall_as_reference" not in out
    # SPBench-MV as the paper prints it: 3 numeric tasks at 68.2, 2 multiple-choice at 75.0 -> 70.9
    paper = [{"question_type": t, "score": 0.682} for t in ref.NA[:3]] + \
            [{"question_type": t, "score": 0.75} for t in ("object_rel_distance", "obj_appearance_order")]
    rows = paper + [{"question_type": "object_rel_direction_" + d, "score": 0.75} for d in ("easy",)]
    out = metrics.aggregate_vsi(paper)
    assert round(100 * out["overall_as_reference"], 1) != round(100 * out["overall"], 1)  # the 0-scored phantom
    assert round(100 * (3 * 0.682 + 2 * 0.75) / 5, 1) == round(100 * out["overall"], 1) == 70.9
    assert metrics.aggregate_vsi(rows)["MCQ_as_reference"] == pytest.approx((0.75 + 0.75 + 0) / 3)


@pytest.mark.parametrize("prediction, truth, qtype, kwargs, expected", [
    ("(A)", "A", "route_planning", {}, 0.0),  # "(A)" is no VSI option token
    (" A. chair", "A", "route_planning", {}, 0.0),  # the first space-separated token is empty
    ("A. chair", "A", "route_planning", {}, 1.0),
    ("a.", "A", "route_planning", {}, 0.0),  # lower-case letter tokens are not recognised...
    ("a", "A", "route_planning", {}, 1.0),  # ...but the whole text "a" equals "A" ignoring case
    ("a.", "A", "route_planning", {"protocol": "official"}, 1.0),
    ("3.5m", "3", "object_abs_distance", {"protocol": "official"}, 0.0),  # float("3.5m") fails
    ("3.5m", "3.5", "object_abs_distance", {}, 1.0),
    ("-3", "3", "object_counting", {"protocol": "official"}, 0.0),
    ("-3", "3", "object_counting", {}, 1.0),  # the digits, sign dropped
    ("two or three", "3", "object_counting", {}, 0.4),  # "two" comes first in the word list: 2 vs 3
    ("three or two", "3", "object_counting", {}, 0.4),  # the word order, not the text order
    ("there is a chair, 5 in all", "5", "object_counting", {}, 0.0),  # "a" -> 1
    ("<think>4</think><answer>5</answer>", "5", "object_counting", {"think": True}, 1.0),
    ("<think>4</think><answer>5", "5", "object_counting", {"think": True}, 0.0),  # unclosed -> "None"
    ("<think>4</think><answer>5", "5", "object_counting", {"think": False}, 0.6),  # "4" first; 1 - 0.8 < 0.2
    ("(b)", "(B)", "Count", {"benchmark": "cvbench"}, 1.0),
    ("[C].", "(C)", "Depth", {"benchmark": "cvbench"}, 1.0),
    ("C)", "(C)", "Depth", {"benchmark": "cvbench"}, 1.0),
    ("C.)", "(C)", "Depth", {"benchmark": "cvbench"}, 0.0),
    ("0", "0", "object_counting", {}, 1.0),  # a zero truth: exact zero only (the references divide by 0)
    ("1", "0", "object_counting", {}, 0.0),
])
def test_rules_by_hand(prediction, truth, qtype, kwargs, expected):
    assert metrics.score_item(prediction, truth, qtype, **kwargs) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [dict(question_type="object_color"), dict(ground_truth="-2"),
                                 dict(ground_truth="inf"), dict(protocol="lenient"),
                                 dict(benchmark="cvbench", protocol="official"), dict(benchmark="spbench")])
def test_score_item_refuses(bad):
    args = dict(prediction="3", ground_truth="3", question_type="object_counting") | bad
    with pytest.raises(ValueError):
        metrics.score_item(args.pop("prediction"), args.pop("ground_truth"), args.pop("question_type"), **args)


def test_outputs_are_hostile_and_many():
    assert len(OUTPUTS) >= 5000
    assert sum("<answer>" in o and "</answer>" not in o for o in OUTPUTS) > 100
    assert sum(any(c.isdecimal() and not c.isascii() for c in o) for o in OUTPUTS) > 50
    assert len(list(itertools.islice((o for o in OUTPUTS if o.strip() == ""), 3))) == 3
