"""Benchmark scoring (SPEC.md section 4): answer extraction, MRA, VSI-Bench / SPBench / CV-Bench tables.

Scores are fractions in [0, 1]; the Markdown table prints them as percentages like the paper.
The GRPO accuracy reward (ladder_jax/train/rewards.py) shares `mean_relative_accuracy`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# The VSI-Bench thresholds exactly as its evaluator builds them (θ = 0.9 is 0.8999999999999999).
MRA_THRESHOLDS = tuple(float(t) for t in np.linspace(0.50, 0.95, 10))
MRA_TOLERANCES = tuple(1.0 - t for t in MRA_THRESHOLDS)

# Question types scored with MRA; every other type is multiple choice (incl. route_planning, CV-Bench).
NUMERIC_QUESTION_TYPES = frozenset(
    {
        "object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation",
        "object size", "room size", "object count", "absolute distance",
    }
)
_DIFFICULTY = re.compile(r"_(easy|medium|hard)$")
_FIRST_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_FIRST_NUMBER = re.compile(r"\d+(?:\.\d+)?|\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_OPTION = re.compile(r"^[A-D]\.?$")


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


def extract_answer(text: str) -> str:
    """The first <answer>…</answer> content, else the whole output, stripped."""
    match = _FIRST_ANSWER.search(text)
    return (match.group(1) if match else text).strip()


def option_letter(text: str) -> str:
    """Multiple-choice normal form: drop "Answer:", take the first token; "B", "B." and "(B)" → "b".

    A first token that is not an option letter leaves the whole lowercased text, which then only
    matches a ground truth with the same text. Parentheses are removed for CV-Bench's "(A)" style.
    """
    text = text.replace("Answer:", "").strip()
    tokens = text.split()
    token = tokens[0].removeprefix("(").removesuffix(")") if tokens else ""
    if _OPTION.match(token):
        return token[0].lower()
    return text.lower()


def first_number(text: str) -> float | None:
    """The first number `\\d+(\\.\\d+)?` or number word (zero … twenty) in `text`, else None."""
    match = _FIRST_NUMBER.search(text)
    if match is None:
        return None
    if match.group(1):
        return float(_NUMBER_WORDS.index(match.group(1).lower()))
    return float(match.group(0))


def score_item(prediction: str, ground_truth: str, question_type: str) -> float:
    """One item's score: MRA for numeric question types, else option-letter exact match (0 or 1)."""
    answer = extract_answer(prediction)
    if question_type in NUMERIC_QUESTION_TYPES:
        value = first_number(answer)
        return 0.0 if value is None else mean_relative_accuracy(value, float(ground_truth))
    return float(option_letter(answer) == option_letter(ground_truth))


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def aggregate_vsi(items: Iterable[Mapping]) -> dict[str, float]:
    """VSI-Bench (and SPBench) summary from items with "question_type" and "score".

    Task score = mean over its items; `_easy` / `_medium` / `_hard` variants form one task scored
    as the mean of the variant means. overall = mean of task scores; NQ / MCQ = mean over numeric /
    multiple-choice items. Every key also holds the per-task and per-variant scores.
    """
    by_type: dict[str, list[float]] = defaultdict(list)
    for item in items:
        by_type[item["question_type"]].append(float(item["score"]))
    variants: dict[str, list[float]] = defaultdict(list)
    for question_type, scores in by_type.items():
        variants[_DIFFICULTY.sub("", question_type)].append(_mean(scores))
    tasks = {task: _mean(means) for task, means in sorted(variants.items())}
    numeric = [s for t, scores in by_type.items() if t in NUMERIC_QUESTION_TYPES for s in scores]
    choice = [s for t, scores in by_type.items() if t not in NUMERIC_QUESTION_TYPES for s in scores]
    summary = {"overall": _mean(list(tasks.values())), "NQ": _mean(numeric), "MCQ": _mean(choice)}
    return summary | tasks | {t: _mean(s) for t, s in sorted(by_type.items()) if t not in tasks}


def aggregate_cvbench(items: Iterable[Mapping]) -> dict[str, float]:
    """CV-Bench summary from items with "source" (ADE20K, COCO, Omni3D) and "score".

    2D = mean(acc_ADE20K, acc_COCO), 3D = acc_Omni3D, avg = mean(2D, 3D).
    """
    by_source: dict[str, list[float]] = defaultdict(list)
    for item in items:
        by_source[item["source"]].append(float(item["score"]))
    sources = {source: _mean(scores) for source, scores in sorted(by_source.items())}
    two_d = _mean([sources[s] for s in ("ADE20K", "COCO") if s in sources])
    three_d = sources.get("Omni3D", math.nan)
    return {"2D": two_d, "3D": three_d, "avg": _mean([two_d, three_d])} | sources


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
