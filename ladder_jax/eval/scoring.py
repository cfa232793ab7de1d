"""From raw model outputs to predictions, summaries and tables: a pure function of (items, outputs).

Nothing here touches a model, so the scoring path can be checked on hand-written outputs. The
rules are those of SPEC.md section 4, implemented once in `ladder_jax.eval.metrics`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ladder_jax.eval import metrics
from ladder_jax.eval.benchmarks import Item


def scored_as(benchmark: str) -> str:
    """The scorer's benchmark family: CV-Bench's own rules, else VSI-Bench's (SPBench, toy world)."""
    return "cvbench" if benchmark == "cvbench" else "vsi"


def predictions(items: Sequence[Item], outputs: Mapping[str, str], *, benchmark: str = "vsi",
                protocol: str = "spatialladder") -> list[dict[str, Any]]:
    """One auditable row per item that has an output (by item id), in the order of `items`, scored
    by `metrics.score_item` under `protocol` (thinking-mode extraction when the item was asked to think)."""
    rows, family = [], scored_as(benchmark)
    for item in items:
        if item.id not in outputs:
            continue
        raw = outputs[item.id]
        how = {"benchmark": family, "protocol": protocol, "think": item.think}
        rows.append({
            "id": item.id, "question_type": item.question_type, "group": item.group,
            "ground_truth": item.ground_truth, "raw_output": raw,
            "parsed_answer": metrics.parsed_answer(raw, item.question_type, **how),
            "score": metrics.score_item(raw, item.ground_truth, item.question_type, **how),
        })
    return rows


def task_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per question type: mean score, item count, and whether it is numeric (NQ) or multiple choice."""
    by_type: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        by_type[row["question_type"]].append(row["score"])
    return {
        task: {"score": sum(s) / len(s), "count": len(s),
               "kind": "NQ" if task in metrics.NUMERIC_QUESTION_TYPES else "MCQ"}
        for task, s in sorted(by_type.items())
    }


def summarize(benchmark: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The benchmark's headline numbers: CV-Bench's 2D / 3D / avg by source, else VSI-Bench's
    overall / NQ / MCQ with per-task scores (SPBench and the toy world are scored the VSI way)."""
    if benchmark == "cvbench":
        return metrics.aggregate_cvbench(
            {"source": r["group"], "score": r["score"], "question_type": r["question_type"]} for r in rows)
    return metrics.aggregate_vsi(rows)


def _clean(value: Any) -> Any:
    """NaN (an empty column) as None, so the JSON stays standard."""
    return None if isinstance(value, float) and math.isnan(value) else value


def summary_json(benchmark: str, model: str, rows: Sequence[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    scores = summarize(benchmark, rows)
    return {"benchmark": benchmark, "model": model, "num_scored": len(rows),
            "scores": {k: _clean(v) for k, v in scores.items()}, "tasks": task_scores(rows)} | extra


def _percent(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def markdown(summary: Mapping[str, Any]) -> str:
    """The paper's row (NQ / MCQ / Avg, or CV-Bench's 2D / 3D / Avg), then one row per task."""
    scores, name = summary["scores"], summary["benchmark"]
    nan = {k: math.nan if v is None else v for k, v in scores.items()}
    lines = [f"# {name}: {summary['model']}", ""]
    if name == "cvbench":
        lines += ["| model | 2D | 3D | Avg |", "|---|---|---|---|",
                  f"| {summary['model']} | " + " | ".join(_percent(scores.get(k)) for k in ("2D", "3D", "avg")) + " |"]
    else:
        lines.append(metrics.markdown_table({summary["model"]: {name: nan}}, [name]).rstrip())
    lines += ["", "| task | kind | items | score |", "|---|---|---|---|"]
    for task, t in summary["tasks"].items():
        lines.append(f"| {task} | {t['kind']} | {t['count']} | {_percent(t['score'])} |")
    return "\n".join(lines) + "\n"
