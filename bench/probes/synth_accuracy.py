"""Measurement (not a test): synthesis answers against exact geometry, clean and with corrupted depth.

    PYTHONPATH=. python bench/probes/synth_accuracy.py analytic [--scenes 20]
        analytic rooms: the depth error level → accuracy table of the report
    PYTHONPATH=. python bench/probes/synth_accuracy.py toyworld [--scenes 60]
        toy-world scenes: agreement per predicate with exact depth, then the same error table

The scoring is the tests' own harness (tests/synth/accuracy.py, tests/synth/toyworld_accuracy.py),
so the report's numbers and the tests' bars measure the same thing.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import tempfile

import numpy as np

from tests.synth import accuracy, toyworld_accuracy

LEVELS = [("exact", {}), ("scale x0.9", {"scale": 0.9}), ("scale x1.2", {"scale": 1.2}),
          ("noise 0.5%", {"noise": 0.005}), ("noise 1%", {"noise": 0.01}), ("noise 2%", {"noise": 0.02}),
          ("noise 5%", {"noise": 0.05}), ("bleed 1px", {"bleed": 1}), ("bleed 2px", {"bleed": 2}),
          ("scale x1.1 + noise 1% + bleed 1px", {"scale": 1.1, "noise": 0.01, "bleed": 1})]


def error_table(measure) -> str:
    """One row per depth error level; `measure(corruption)` returns the harness's summary."""
    rows = ["| depth error | qualitative acc | n | lengths within 10% | n |", "|---|---|---|---|---|"]
    for name, corruption in LEVELS:
        r = measure(corruption)
        rows.append(f"| {name} | {r['qualitative']:.3f} | {r['n_qualitative']} | {r['quantitative']:.3f} "
                    f"| {r['n_quantitative']} |")
    return "\n".join(rows)


def per_predicate(scored) -> str:
    rows = collections.defaultdict(list)
    for predicate, _, ok in scored:
        rows[predicate].append(ok)
    return "\n".join(["| predicate | agreement | n |", "|---|---|---|"]
                     + [f"| {p} | {np.mean(v):.3f} | {len(v)} |" for p, v in sorted(rows.items())])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("world", choices=("analytic", "toyworld"))
    p.add_argument("--scenes", type=int, default=None, help="default: 20 analytic rooms, 60 toy-world scenes")
    args = p.parse_args()
    if args.world == "analytic":
        print(error_table(lambda corruption: accuracy.measure(args.scenes or 20, **corruption)))
        return
    n = args.scenes or 60
    with tempfile.TemporaryDirectory() as tmp:
        folders = toyworld_accuracy.make_scenes(pathlib.Path(tmp), n)
        summary, scored = toyworld_accuracy.measure(folders)
        print(f"{n} toy-world scenes, exact depth: {summary}\n\n{per_predicate(scored)}\n")
        print(error_table(lambda corruption: toyworld_accuracy.measure(folders, corruption)[0]))


if __name__ == "__main__":
    main()
