"""The demo's report: report.json (everything), report.md (tables + plots) and the terminal table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

HEADLINE = (  # (column, path into a model's evaluation)
    ("box IoU", ("grounding", "box_iou")),
    ("box IoU, other rooms' pictures", ("grounding", "box_iou_other_pictures")),
    ("objects named", ("grounding", "named")),
    ("direct overall", ("direct", "overall")),
    ("direct, other rooms' pictures", ("direct", "overall_other_pictures")),
    ("direct NQ (MRA)", ("direct", "numeric_mra")),
    ("direct MCQ (acc)", ("direct", "choice_accuracy")),
    ("reasoning format", ("reasoning", "format_reward")),
    ("reasoning accuracy", ("reasoning", "accuracy_reward")),
    ("reasoning reward", ("reasoning", "reward")),
)


REASONING_STAGES = ("cold_start", "stage3")  # a model trained in either is asked to reason, as the paper asks
REASONING_MODELS = REASONING_STAGES + ("stage3_only",)  # the demo's models trained to reason


def asked_as(name: str) -> str:
    """The prompt the paper asks a model with: reasoning for one trained to reason, else direct."""
    return "reasoning" if name in REASONING_MODELS else "direct"


def get(evaluation: Mapping[str, Any], path: tuple[str, ...]):
    for key in path:
        evaluation = evaluation.get(key, {}) if isinstance(evaluation, Mapping) else {}
    return evaluation if isinstance(evaluation, (int, float)) else None


def fmt(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def headline_rows(models: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Per model: the overall score as the paper asks it (and which prompt), then the HEADLINE columns."""
    return [[name, f"{fmt(get(e, (asked_as(name), 'overall')))} ({asked_as(name)})"]
            + [fmt(get(e, path)) for _, path in HEADLINE] for name, e in models.items()]


HEADER = ["model", "as the paper asks"] + [column for column, _ in HEADLINE]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def terminal_table(models: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [HEADER] + headline_rows(models)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def per_type(models: Mapping[str, Mapping[str, Any]], part: str) -> dict[str, dict[str, float]]:
    """{model: {question type: score}} of the `direct` or `reasoning` evaluation."""
    return {name: dict(e.get(part, {}).get("tasks", {})) for name, e in models.items()}


def markdown(report: Mapping[str, Any]) -> str:
    models, demo = report["models"], report["config"]["demo"]
    lines = [f"# ladder_jax demo ({demo['name']})", "",
             f"Toy world: {report['data']['scenes']['train']} training rooms, {report['data']['scenes']['eval']} "
             f"held out; `demo` preset ({report['model']['parameters'] / 1e6:.2f}M parameters), trained from random "
             f"init on this machine in {report['seconds']['total'] / 60:.1f} min.", "",
             "Held-out scores (greedy). As the paper asks: the overall score of the reasoning prompt for a model "
             "trained to reason (cold start, stage 3), of the direct prompt otherwise. Box IoU: stage-1 grounding "
             "(a box counts only under the asked label; objects named: the share of asked objects the answer gives a box for). Direct: the stage-2 prompt, accuracy on "
             "multiple choice, MRA on numbers; beside it the same questions asked about other held-out rooms' "
             "pictures (a model that reads the picture scores lower there). Reasoning: the stage-3 prompt, GRPO's format and accuracy rewards.", ""]
    lines += markdown_table(HEADER, headline_rows(models))
    lines += ["", "## Direct answers per question type", ""]
    table = per_type(models, "direct")
    types = sorted({t for scores in table.values() for t in scores})
    lines += markdown_table(["question type"] + list(table),
                             [[t] + [fmt(table[m].get(t)) for m in table] for t in types])
    lines += vision_lines(report.get("vision_pretrain"))
    lines += ["", "## Training", ""]
    lines += markdown_table(["run / stage", "steps", "first logged", "last logged", "minutes"],
                             [[name, str(t["steps"]), fmt(t["first"]), fmt(t["last"]), f"{t['seconds'] / 60:.1f}"]
                              for name, t in report["training"].items()])
    lines += ["", "SFT rows are the training loss; stage-3 rows the mean rollout reward.", ""]
    lines += ["## Exported Hugging Face folder", "", f"`{report['hf_export']['folder']}`: "
              + hf_sentence(report["hf_export"]["check"]), ""]
    lines += [f"![{name}]({file})" for name, file in report["plots"].items()]
    return "\n".join(lines) + "\n"


def vision_lines(pretrain: Mapping[str, Any] | None) -> list[str]:
    """Stage 0 (demo/vision_pretrain.py): what the tower says about held-out rooms' cells, before and after."""
    if not pretrain:
        return []
    before, after = pretrain["held_out_before"] or {}, pretrain["held_out_after"] or {}
    rows, cols = pretrain["cells"]
    lines = ["", "## Stage 0: the vision tower (a departure: the stand-in for a pretrained encoder)", "",
             f"{pretrain['steps']} steps of {pretrain['batch_size']} rooms ({pretrain['rooms']} training rooms); each of "
             f"a picture's {rows}×{cols} image tokens asked which object covers its cell and where the cell is. "
             f"Held-out rooms ({pretrain['held_out_rooms']}), shares predicted; the tower then stays frozen:", ""]
    names = (("cells", "cells (object or background)"), ("object_cells", "cells an object covers"),
             ("row", "row"), ("col", "column"))
    return lines + markdown_table(["", "random init", "after stage 0"],
                                  [[label, fmt(before.get(key)), fmt(after.get(key))] for key, label in names])


def hf_sentence(check: Mapping[str, Any]) -> str:
    if "agree" not in check:
        return check["status"]
    return (f"loaded in transformers (PyTorch); greedy answers equal ours on {check['agree']} of {check['items']} "
            f"held-out questions.")


def finite(value):
    """`value` with every NaN / inf float replaced by None, so the JSON is standard."""
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write(report: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(finite(report), indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
