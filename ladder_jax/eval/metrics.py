"""Benchmark scoring (SPEC.md section 4): the reference evaluators' answer reading, MRA, and the
VSI-Bench / SPBench / CV-Bench aggregates and tables.

Scores are fractions in [0, 1]; the Markdown table prints them as percentages like the paper.
The GRPO accuracy reward (ladder_jax/train/rewards.py) shares `mean_relative_accuracy`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ladder_jax.data import schema

# The VSI-Bench thresholds exactly as its evaluator builds them (θ = 0.9 is 0.8999999999999999).
MRA_THRESHOLDS = tuple(float(t) for t in np.linspace(0.50, 0.95, 10))
MRA_TOLERANCES = tuple(1.0 - t for t in MRA_THRESHOLDS)

# VSI-Bench's question types (SPBench uses the same), as the reference evaluators list them, and
# the SpatialLadder release's own (the toy world's). Any other type is refused: it is not a task.
VSI_MULTIPLE_CHOICE_TYPES = (
    "object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard", "object_rel_direction",
    "object_rel_distance", "route_planning", "obj_appearance_order",
)
VSI_NUMERIC_TYPES = ("object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation")
NUMERIC_QUESTION_TYPES = frozenset(VSI_NUMERIC_TYPES + schema.NUMERIC_TYPES)
MULTIPLE_CHOICE_QUESTION_TYPES = frozenset(VSI_MULTIPLE_CHOICE_TYPES + schema.MULTIPLE_CHOICE_TYPES)
KNOWN_QUESTION_TYPES = NUMERIC_QUESTION_TYPES | MULTIPLE_CHOICE_QUESTION_TYPES
REL_DIRECTION = "object_rel_direction"
REL_DIRECTION_VARIANTS = tuple(f"{REL_DIRECTION}_{d}" for d in ("easy", "medium", "hard"))

PROTOCOLS = ("spatialladder", "official")
SCORED_BENCHMARKS = ("vsi", "cvbench")

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_VSI_LETTER = re.compile(r"[A-D]\.?")
_CVBENCH_LETTER = re.compile(r"[(\[{]?[A-D][)\]}]?\.?", re.IGNORECASE)
# eval_spld tries these words in THIS order (not by position in the text), then the first number.
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "zero": 0, "a": 1, "an": 1,
}
_WORD_PATTERNS = tuple((re.compile(rf"\b{w}\b"), v) for w, v in _NUMBER_WORDS.items())
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def relative_error(pred: float, target: float) -> float:
    """e = |ŷ − y| / |y| in float64; for y = 0, e = 0 if ŷ = 0 else inf.

    |y| (not y) keeps a negative target from scoring every prediction as exact, and the y = 0 rule
    lets an exact zero count instead of dividing by zero. For y > 0 this is VSI-Bench's formula.
    """
    if target == 0.0:
        return 0.0 if pred == 0.0 else math.inf
    return abs(pred - target) / abs(target)


def mean_relative_accuracy(pred: float, target: float) -> float:
    """MRA = (1/10) Σ_θ 1[e(ŷ, y) ≤ 1 − θ], θ ∈ {0.50, …, 0.95}; 0 when ŷ or y is NaN or ±inf."""
    if not (math.isfinite(pred) and math.isfinite(target)):
        return 0.0
    error = relative_error(pred, target)
    return sum(error <= tolerance for tolerance in MRA_TOLERANCES) / 10


def is_numeric(question_type: str) -> bool:
    """True for MRA-scored types, False for multiple choice; ValueError for a type no benchmark has."""
    if question_type not in KNOWN_QUESTION_TYPES:
        raise ValueError(f"unknown question type {question_type!r}")
    return question_type in NUMERIC_QUESTION_TYPES


def answer_block(text: str) -> str:
    """eval_spld's thinking-mode extraction: the first <answer>…</answer> content, stripped, when the
    text holds "<answer>"; "None" when that tag is never closed; the text itself when it has no tag."""
    if "<answer>" not in text:
        return text
    match = _ANSWER_BLOCK.search(text)
    return match.group(1).strip() if match else "None"


def vsi_choice(text: str) -> str:
    """eval_spld's multiple-choice normal form: drop "Answer:", then the first space-separated token
    (stripped) if it is a letter A-D with an optional full stop (the letter, no stop), else the
    stripped text. Compared with the ground truth case-insensitively."""
    text = text.replace("Answer:", "")
    token = text.split(" ")[0].strip()
    return token.rstrip(".") if _VSI_LETTER.fullmatch(token) else text.strip()


def vsi_number(text: str) -> float | None:
    """eval_spld's numeric reading: the first of its number words (in its fixed order, "a"/"an" = 1)
    found as a whole word in the lowercased text, else the first run of digits (with decimals)."""
    text = text.strip().lower()
    for pattern, value in _WORD_PATTERNS:
        if pattern.search(text):
            return float(value)
    match = _NUMBER.search(text)
    return _to_float(match.group(0)) if match else None


def official_token(text: str) -> str:
    """thinking-in-space's reading: the first space-separated token, trailing full stops removed, stripped."""
    return text.split(" ")[0].rstrip(".").strip()


def cvbench_choice(text: str) -> str:
    """CV-Bench (eval_spld `cvbench.py`): a first token like "(a)", "[B]." or "C" -> the upper-case
    letter; anything else -> the stripped text. Prediction and ground truth are both read this way."""
    token = text.split(" ")[0].strip()
    if _CVBENCH_LETTER.fullmatch(token):
        return "".join(c for c in token.upper() if c in "ABCD")
    return text.strip()


def _to_float(text: str) -> float | None:
    try:
        return float(text)
    except (ValueError, OverflowError):
        return None


def _numeric_truth(ground_truth: str) -> float:
    value = _to_float(str(ground_truth))
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"numeric ground truth must be a finite number >= 0; got {ground_truth!r}")
    return value


def score_item(prediction: str, ground_truth: str, question_type: str, *, benchmark: str = "vsi",
               protocol: str = "spatialladder", think: bool = False) -> float:
    """One item's score in [0, 1] under a reference scorer (SPEC.md section 4).

    protocol "spatialladder" (the paper's evaluator, `eval_spld`): with `think`, `answer_block`
    first; VSI-Bench / SPBench multiple choice = `vsi_choice` equal to the truth ignoring case,
    numeric = MRA of `vsi_number`; CV-Bench = `cvbench_choice` of both sides equal. protocol
    "official" (thinking-in-space's lmms-eval VSI-Bench scorer; never extracts tags): multiple
    choice = `official_token` equal ignoring case, numeric = MRA of float(`official_token`).
    A numeric truth of 0 (where both references divide by zero) scores 1 for an exact 0, else 0.
    """
    if protocol not in PROTOCOLS or benchmark not in SCORED_BENCHMARKS:
        raise ValueError(f"protocol must be one of {PROTOCOLS} and benchmark one of {SCORED_BENCHMARKS}; "
                         f"got {protocol!r}, {benchmark!r}")
    if benchmark == "cvbench":
        if protocol != "spatialladder":
            raise ValueError("CV-Bench has only the spatialladder protocol (thinking-in-space scores VSI-Bench)")
        text = answer_block(prediction) if think else prediction
        return float(cvbench_choice(text) == cvbench_choice(ground_truth))
    numeric = is_numeric(question_type)
    if protocol == "official":
        token = official_token(prediction)
        if not numeric:
            return float(token.lower() == ground_truth.lower())
        value = _to_float(token)
    else:
        text = answer_block(prediction) if think else prediction
        if not numeric:
            return float(vsi_choice(text).lower() == ground_truth.lower())
        value = vsi_number(text)
    truth = _numeric_truth(ground_truth)
    return 0.0 if value is None else mean_relative_accuracy(value, truth)


def parsed_answer(prediction: str, question_type: str, *, benchmark: str = "vsi", protocol: str = "spatialladder",
                  think: bool = False) -> str | float | None:
    """What `score_item` compares with the truth (for predictions.jsonl): a normal-form string or a number."""
    if benchmark == "cvbench":
        return cvbench_choice(answer_block(prediction) if think else prediction)
    if protocol == "official":
        token = official_token(prediction)
        return _to_float(token) if is_numeric(question_type) else token
    text = answer_block(prediction) if think else prediction
    return vsi_number(text) if is_numeric(question_type) else vsi_choice(text)


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def _mean_or_nan(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return _mean(finite)


def vsi_tasks(by_type: Mapping[str, float]) -> dict[str, float]:
    """Task scores from per-question-type means: the three object_rel_direction difficulties are one
    task, the mean of those present, unless the plain type is itself present (then all stay apart,
    as in the reference)."""
    tasks = dict(by_type)
    variants = [t for t in REL_DIRECTION_VARIANTS if t in tasks]
    if variants and REL_DIRECTION not in tasks:
        tasks[REL_DIRECTION] = _mean([tasks.pop(t) for t in variants])
    return tasks


def _task_kind_numeric(task: str) -> bool:
    return task in NUMERIC_QUESTION_TYPES


def aggregate_vsi(items: Iterable[Mapping]) -> dict[str, float]:
    """VSI-Bench (and SPBench, toy world) summary from items with "question_type" and "score".

    overall = mean of task scores (`vsi_tasks`); NQ / MCQ = mean of the numeric / multiple-choice
    TASK scores, as eval_spld's `vsibench_aggregate_results` (NaN when there is none). Extra keys:
    NQ_items / MCQ_items (means over items), every task, and each difficulty variant. Where
    eval_spld itself would print something else (some but not all object_rel_direction
    difficulties, or none, on a VSI-type set: it scores that task 0), overall_as_reference and
    MCQ_as_reference say what it would print.
    """
    scores: dict[str, list[float]] = defaultdict(list)
    for item in items:
        is_numeric(item["question_type"])  # refuses unknown types
        scores[item["question_type"]].append(float(item["score"]))
    by_type = {t: _mean(s) for t, s in sorted(scores.items())}
    tasks = vsi_tasks(by_type)
    numeric = [v for t, v in tasks.items() if _task_kind_numeric(t)]
    choice = [v for t, v in tasks.items() if not _task_kind_numeric(t)]
    summary = {"overall": _mean(list(tasks.values())), "NQ": _mean(numeric), "MCQ": _mean(choice),
               "NQ_items": _mean([v for t, s in scores.items() if t in NUMERIC_QUESTION_TYPES for v in s]),
               "MCQ_items": _mean([v for t, s in scores.items() if t not in NUMERIC_QUESTION_TYPES for v in s])}
    vsi_only = all(t in VSI_NUMERIC_TYPES or t in VSI_MULTIPLE_CHOICE_TYPES for t in by_type)
    present = [t for t in REL_DIRECTION_VARIANTS if t in by_type]
    if vsi_only and REL_DIRECTION not in by_type and len(present) < 3:
        # it pops easy, medium, hard in turn; at the first one missing it scores the task 0, and
        # the difficulties after that one stay as tasks of their own
        popped = list(itertools.takewhile(lambda t: t in by_type, REL_DIRECTION_VARIANTS))
        ref = {t: v for t, v in by_type.items() if t not in popped} | {REL_DIRECTION: 0.0}
        ref_choice = [v for t, v in ref.items() if not _task_kind_numeric(t)]
        summary |= {"overall_as_reference": _mean(list(ref.values())), "MCQ_as_reference": _mean(ref_choice)}
    return summary | dict(sorted(tasks.items())) | {t: v for t, v in by_type.items() if t not in tasks}


def aggregate_cvbench(items: Iterable[Mapping]) -> dict[str, float]:
    """CV-Bench summary from items with "source" (ADE20K, COCO, Omni3D) and "score", as eval_spld:
    2D = mean of the ADE20K and COCO accuracies present, 3D = Omni3D, avg = mean of 2D and 3D
    present; accuracy over items of each source, and over items of each task beside them."""
    by_source: dict[str, list[float]] = defaultdict(list)
    by_task: dict[str, list[float]] = defaultdict(list)
    for item in items:
        by_source[item["source"]].append(float(item["score"]))
        if item.get("question_type"):
            by_task[item["question_type"]].append(float(item["score"]))
    sources = {source: _mean(scores) for source, scores in sorted(by_source.items())}
    two_d = _mean_or_nan([sources.get(s, math.nan) for s in ("ADE20K", "COCO")])
    three_d = sources.get("Omni3D", math.nan)
    return ({"2D": two_d, "3D": three_d, "avg": _mean_or_nan([two_d, three_d])} | sources
            | {f"task {t}": _mean(s) for t, s in sorted(by_task.items())})


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.1f}"


def markdown_table(results: Mapping[str, Mapping[str, Mapping[str, float]]], benchmarks: Sequence[str]) -> str:
    """The paper's layout: one row per model, one "NQ / MCQ / Avg" cell per benchmark (Avg = overall).

    `results[model][benchmark]` is an `aggregate_vsi` summary; a missing benchmark prints "–".
    """
    header = "| model | " + " | ".join(f"{name} (NQ / MCQ / Avg)" for name in benchmarks) + " |"
    lines = [header, "|---" * (len(benchmarks) + 1) + "|"]
    for model, by_benchmark in results.items():
        cells = []
        for name in benchmarks:
            summary = by_benchmark.get(name, {})
            keys = ("NQ", "MCQ", "overall")
            cells.append(" / ".join(_percent(summary.get(key, math.nan)) for key in keys))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def task_table(summary: Mapping[str, float]) -> str:
    """A two-column Markdown table (task, score %) of one aggregate, summary rows first."""
    lines = ["| task | score |", "|---|---|"]
    lines += [f"| {key} | {_percent(value)} |" for key, value in summary.items()]
    return "\n".join(lines) + "\n"
