"""The demo's PNG figures: loss curves, GRPO reward curves, per-question-type scores per model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the headless backend)


def loss_curves(curves: Mapping[str, Sequence[Mapping[str, float]]], path: Path) -> Path:
    """One panel per SFT stage: training loss against step (the metrics.jsonl rows)."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for ax, (stage, rows) in zip(axes[0], curves.items()):
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], color="tab:blue")
        ax.set(title=stage, xlabel="step", ylabel="loss", yscale="log")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def reward_curves(curves: Mapping[str, Sequence[Mapping[str, float]]], path: Path) -> Path:
    """Stage 3's mean rollout reward (total, and its format and accuracy parts) per run."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, part in zip(axes, ("total", "format", "accuracy")):
        for run, rows in curves.items():
            ax.plot([r["step"] for r in rows], [r[f"reward_{part}"] for r in rows], marker=".", label=run)
        ax.set(title=f"rollout reward: {part}", xlabel="GRPO step")
        ax.grid(alpha=0.3)
    axes[0].legend()
    return _save(fig, path)


def score_bars(scores: Mapping[str, Mapping[str, Any]], path: Path, title: str) -> Path:
    """Grouped bars: one group per task (question type or headline metric), one bar per model."""
    models = list(scores)
    tasks = sorted({t for s in scores.values() for t in s})
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 2.0 + 0.25 * len(tasks) * len(models))), 3.8))
    for i, model in enumerate(models):
        xs = [j + (i - (len(models) - 1) / 2) * width for j in range(len(tasks))]
        ax.bar(xs, [scores[model].get(t) or 0.0 for t in tasks], width, label=model)
    ax.set_xticks(range(len(tasks)), tasks, rotation=20, ha="right")
    ax.set(title=title, ylabel="score (accuracy / MRA / IoU)", ylim=(0, 1))
    ax.legend(fontsize=8, ncol=min(len(models), 3))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def ablation_bars(report: Mapping[str, Any], path: Path) -> Path:
    """Left: each model's score as the paper asks (mean over seeds, one dot per seed, ± std).
    Right: points each ablation loses against the full ladder, ours beside the paper's."""
    rows, paper = report["rows"], report["paper_points_lost"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    names = list(rows)
    means = [rows[n]["score"]["mean"] or 0.0 for n in names]
    left.bar(range(len(names)), means, yerr=[rows[n]["score"]["std"] or 0.0 for n in names], capsize=3,
             color=["tab:green" if n == "full" else "tab:blue" if n in paper else "tab:gray" for n in names])
    for i, n in enumerate(names):
        left.plot([i] * len(rows[n]["score"]["seeds"]), rows[n]["score"]["seeds"], "k.", ms=4)
    left.set_xticks(range(len(names)), names, rotation=20, ha="right")
    left.set(title="held-out score, asked as the paper asks", ylabel="overall (acc / MRA)")
    left.grid(axis="y", alpha=0.3)
    variants = [v for v in paper if v in rows]
    ours = [rows[v]["points_lost"] or 0.0 for v in variants]
    xs = range(len(variants))
    right.bar([x - 0.2 for x in xs], ours, 0.4, label="toy world (ours)")
    right.bar([x + 0.2 for x in xs], [paper[v] for v in variants], 0.4, label="paper (3B, real benchmarks)")
    right.axhline(0, color="k", lw=0.8)
    right.set_xticks(list(xs), variants)
    right.set(title="points lost against the full ladder", ylabel="points")
    right.legend(fontsize=8)
    right.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
