"""`ladder-jax demo --ablations [--seeds N]`: the paper's ablation (SPEC.md section 4) on the toy world.

Each variant is the demo's curriculum with stages left out, trained with N seeds (config.seed,
+1, ...: the model's initialisation, the data order and the rollouts' sampling):

    full        stage 1 -> stage 2 -> cold start -> stage 3
    no_stage1   stage 2 -> cold start -> stage 3
    no_stage2   stage 1 -> cold start -> stage 3
    no_stage3   stage 1 -> stage 2 (the paper's stage 3 is the cold start and GRPO together)

Every model is asked the held-out questions of one toy world, both ways (demo/evaluate.py); its
score "as the paper asks" is the reasoning prompt's for a model trained to reason (cold start or
stage 3), the direct prompt's otherwise. The full ladder's intermediate models are scored too.

    OUT/toyworld, OUT/tokenizer      one toy world (config.seed) and one demo BPE for every run
    OUT/seed<S>/<variant>/           each variant's curriculum; the stages a variant begins with in
                                     common with the full ladder are links to the full ladder's, not
                                     trained again (no_stage3 trains nothing)
    OUT/evals/seed<S>-<variant>-<stage>.json   each model's scores, computed once
    OUT/ablations.json, ablations.md, ablations.png

Started again with the same --out, it resumes: finished stages and scores are kept. The demo's
stage-3-only baseline and Hugging Face export are not part of it (`ladder-jax demo` has them).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ladder_jax.demo import report as report_lib

log = logging.getLogger("ladder_jax.demo")
VARIANTS = {
    "full": ("stage1", "stage2", "cold_start", "stage3"),
    "no_stage1": ("stage2", "cold_start", "stage3"),
    "no_stage2": ("stage1", "cold_start", "stage3"),
    "no_stage3": ("stage1", "stage2"),
}
PAPER_POINTS_LOST = {"no_stage1": 1.8, "no_stage2": 9.4, "no_stage3": 2.1}  # SPEC.md section 4, overall points
METRICS = (  # (column, path into a model's scores); "asked" is added per row
    ("direct overall", ("direct", "overall")),
    ("direct, other rooms' pictures", ("direct", "overall_other_pictures")),
    ("reasoning overall", ("reasoning", "overall")),
    ("reasoning format", ("reasoning", "format_reward")),
    ("box IoU", ("grounding", "box_iou")),
    ("box IoU, other rooms' pictures", ("grounding", "box_iou_other_pictures")),
    ("objects named", ("grounding", "named")),
)


def seeds_of(cfg, count: int) -> list[int]:
    return [cfg.seed + i for i in range(count)]


def variant_config(cfg, out: Path, variant: str, seed: int):
    """The curriculum of `variant` for `seed`: the demo's stages in the variant's order, in
    OUT/seed<S>/<variant>, reading the shared toy world."""
    v = cfg.copy_and_resolve_references()
    v.order, v.seed = VARIANTS[variant], seed
    v.workdir, v.data.root = str(out / f"seed{seed}" / variant), str(out / "toyworld")
    return v


def trained(cfg, variant: str) -> tuple[str, ...]:
    """The stages of `variant` that train under `cfg` (steps > 0), in order."""
    return tuple(s for s in VARIANTS[variant] if cfg.stages[s].steps > 0)


def shared_stages(cfg, variant: str) -> tuple[str, ...]:
    """The stages `variant` begins with in common with the full ladder: the same stages from the
    same start, so the same models; they are linked, not trained again."""
    own, full = trained(cfg, variant), trained(cfg, "full")
    n = 0
    while n < min(len(own), len(full)) and own[n] == full[n]:
        n += 1
    return own[:n] if variant != "full" else ()


def rows(cfg) -> dict[str, tuple[str, str]]:
    """{row: (variant, stage whose final model it scores)}: the full ladder after each of its
    stages, then each ablation's final model."""
    out = {stage: ("full", stage) for stage in trained(cfg, "full")[:-1]}
    for variant in VARIANTS:
        if trained(cfg, variant):
            out[variant] = (variant, trained(cfg, variant)[-1])
    return out


def trained_up_to(cfg, variant: str, stage: str) -> tuple[str, ...]:
    """The stages behind the model `variant` has after `stage`."""
    own = trained(cfg, variant)
    return own[: own.index(stage) + 1]


def asked_as(cfg, variant: str, stage: str) -> str:
    """"reasoning" for a model trained to reason (a cold start or stage 3 up to `stage`), else "direct"."""
    done = trained_up_to(cfg, variant, stage)
    return "reasoning" if any(s in report_lib.REASONING_STAGES for s in done) else "direct"


def link(target: Path, link_path: Path) -> None:
    """`link_path` -> `target` as a relative symbolic link; an existing link to it is kept."""
    if link_path.is_symlink() and link_path.resolve() == target.resolve():
        return
    if link_path.exists() or link_path.is_symlink():
        raise FileExistsError(f"{link_path} exists and is not a link to {target}: that variant was trained on its "
                              f"own; use another --out")
    link_path.parent.mkdir(parents=True, exist_ok=True)
    link_path.symlink_to(os.path.relpath(target, link_path.parent))


def run(cfg, out: Path, seeds: int) -> dict[str, Any]:
    """Trains and scores every variant for every seed; writes and returns the ablation report."""
    from ladder_jax.demo import run as demo  # noqa: PLC0415 (the demo's pieces; it imports this module lazily)
    from ladder_jax.train.curriculum import record_config  # noqa: PLC0415
    from ladder_jax.train.stages import check_static  # noqa: PLC0415

    if seeds < 1:
        raise demo.DemoConfigError(f"--seeds {seeds}: the ablation needs at least one seed (the issue asks for 3)")
    demo.check(cfg)
    for variant in VARIANTS:
        check_static(variant_config(cfg, out, variant, cfg.seed))
    record_config(cfg, out / "config.json")
    with demo.compile_cache(out / "xla_cache"):
        return _run(cfg, out, seeds_of(cfg, seeds))


def _run(cfg, out: Path, seeds: list[int]) -> dict[str, Any]:
    import jax  # noqa: PLC0415

    from ladder_jax.demo import run as demo  # noqa: PLC0415
    from ladder_jax.demo import vision_pretrain  # noqa: PLC0415
    from ladder_jax.parallel.mesh import make_mesh  # noqa: PLC0415
    from ladder_jax.train import curriculum, stage_inputs, stages  # noqa: PLC0415

    phases = demo.Phases(out / "timings.json")
    world = cfg.copy_and_resolve_references()
    world.workdir, world.data.root = str(out), str(out / "toyworld")  # OUT/tokenizer: the shared BPE
    demo.prepare_world(world, phases)
    records, _, _ = stage_inputs.read_records(world)
    processor = stage_inputs.stage_processor(world, records)
    mesh = make_mesh(*stages.check_devices(cfg, jax.device_count(), jax.process_count()))
    evaluate = demo.Evaluations(demo.held_out(world, processor, records), out / "evals", mesh, phases)
    table = rows(cfg)
    scores: dict[str, dict[int, dict]] = {row: {} for row in table}
    tower_processor = stage_inputs.stage_processor(world, records, "stage1")
    for seed in seeds:
        seeded = cfg.copy_and_resolve_references()
        seeded.seed, seeded.data.root = seed, str(out / "toyworld")
        seeded = vision_pretrain.prepared(seeded, out / f"seed{seed}" / "vision_pretrain", tower_processor, mesh, phases)
        for variant in VARIANTS:
            vcfg = variant_config(seeded, out, variant, seed)
            workdir = Path(vcfg.workdir)
            link(out / stage_inputs.TOKENIZER_DIR, workdir / stage_inputs.TOKENIZER_DIR)
            for stage in shared_stages(cfg, variant):
                link(out / f"seed{seed}" / "full" / stage, workdir / stage)
            log.info("ablation: seed %d, %s (%s)", seed, variant, " -> ".join(trained(cfg, variant)) or "nothing")
            for o in curriculum.run(vcfg):
                if o.status == "preempted":
                    raise demo.Interrupted(f"interrupted in seed {seed} {variant} {o.name} (saved); run the same "
                                           f"command again to resume")
                if o.status == "trained":
                    phases.add(f"train seed{seed} {variant} {o.name}", o.seconds)
        for row, (variant, stage) in table.items():
            final = (out / f"seed{seed}" / variant / stage / "final").resolve()
            name = "-".join(final.relative_to(out.resolve()).parts[:-1])  # a linked stage: its own model's name
            scores[row][seed] = evaluate(name, lambda f=final: stage_inputs.load_final(cfg, f, mesh))
    report = summarize(cfg, scores, evaluate.held.position_blind)
    report["seconds"] = dict(phases.seconds, total=sum(phases.seconds.values()))
    write(report, out)
    return report


def _stats(values: list[float]) -> dict[str, Any]:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "seeds": []}
    a = np.asarray(values, float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "min": float(a.min()),
            "max": float(a.max()), "seeds": [float(v) for v in a]}


def summarize(cfg, scores: dict[str, dict[int, dict]], position_blind: float) -> dict[str, Any]:
    """Per row: what it trains, how it is asked, and each metric's mean / std / min / max over seeds;
    then the issue's claims, each with the numbers that decide it."""
    table = rows(cfg)
    out_rows = {}
    for row, (variant, stage) in table.items():
        part = asked_as(cfg, variant, stage)
        by_seed = scores[row]
        out_rows[row] = {
            "variant": variant, "stage": stage, "asked": part,
            "trains": list(trained_up_to(cfg, variant, stage)),
            "score": _stats([report_lib.get(e, (part, "overall")) for e in by_seed.values()]),
            "reasoning_accuracy": _stats([report_lib.get(e, ("reasoning", "accuracy_reward")) for e in by_seed.values()]),
            **{column: _stats([report_lib.get(e, path) for e in by_seed.values()]) for column, path in METRICS},
        }
    full = out_rows.get("full", {}).get("score", {}).get("mean")
    for variant in PAPER_POINTS_LOST:  # 100 x (full - variant) on the means
        if variant in out_rows:
            mean = out_rows[variant]["score"]["mean"]
            out_rows[variant]["points_lost"] = None if full is None or mean is None else 100 * (full - mean)
    return {"seeds": sorted({s for by_seed in scores.values() for s in by_seed}), "rows": out_rows,
            "position_blind_iou": position_blind, "claims": claims(out_rows, position_blind),
            "paper_points_lost": PAPER_POINTS_LOST}


def claims(r: dict[str, dict], position_blind: float) -> list[dict[str, Any]]:
    """The issue's goals, each decided on the seeds' means (a missing score decides nothing: None)
    and counted per seed."""
    f = report_lib.fmt

    def mean(row, key="score"):
        return r[row][key]["mean"] if row in r else None

    def above(a, b, key="score"):  # a's mean above b's: True / False, None when either is missing
        return None if mean(a, key) is None or mean(b, key) is None else mean(a, key) > mean(b, key)

    def per_seed(a, b, key="score"):  # seeds where row a is above row b
        return sum(x > y for x, y in zip(r[a][key]["seeds"], r[b][key]["seeds"])) if a in r and b in r else 0

    n, out = len(r["full"]["score"]["seeds"]) if "full" in r else 0, []

    def claim(text: str, holds: bool | None, detail: str) -> None:
        out.append({"claim": text, "holds": holds, "detail": detail})

    others = [row for row in r if row != "full" and mean(row) is not None]
    if "full" in r and others:
        best = max(others, key=mean)
        claim("the full ladder's final model scores highest of all models", above("full", best),
              f"full {f(mean('full'))}; next {best} {f(mean(best))}"
              + (f"; full above stage 2 in {per_seed('full', 'stage2')} of {n} seeds" if "stage2" in r else ""))
    if "cold_start" in r and "full" in r:
        key = "reasoning_accuracy"
        claim("stage 3 raises reasoning accuracy over its cold-start start", above("full", "cold_start", key),
              f"accuracy reward {f(mean('cold_start', key))} -> {f(mean('full', key))}; higher in "
              f"{per_seed('full', 'cold_start', key)} of {n} seeds")
    ablations = [v for v in PAPER_POINTS_LOST if v in r]
    if "full" in r and ablations:
        verdicts = [above("full", v) for v in ablations]
        claim("every ablation ends below the full ladder", None if None in verdicts else all(verdicts),
              "; ".join(f"{v} {f(mean(v))} (below in {per_seed('full', v)} of {n} seeds)" for v in ablations))
        lost = {v: r[v]["points_lost"] for v in ablations}
        if set(lost) == set(PAPER_POINTS_LOST) and None not in lost.values():
            claim("without stage 2 loses most; without stage 1 and without stage 3 lose less (the paper's order)",
                  lost["no_stage2"] > max(lost["no_stage1"], lost["no_stage3"]),
                  ", ".join(f"{v} loses {lost[v]:+.1f} points (paper {PAPER_POINTS_LOST[v]:.1f})" for v in lost))
    looks = [(row, own, other) for row, own, other in (
        ("stage1", "box IoU", "box IoU, other rooms' pictures"),
        ("stage2", "direct overall", "direct, other rooms' pictures")) if row in r]
    if looks:  # not the issue's: without it a model answering from the words alone could meet the others
        pairs = [(mean(row, own), mean(row, other)) for row, own, other in looks]
        claim("the models read the pictures: stage 1's box IoU and stage 2's direct score fall when each "
              "question is asked about another room's picture",
              None if any(None in pair for pair in pairs) else all(a > b for a, b in pairs),
              "; ".join(f"{row} {f(a)} with its own pictures, {f(b)} with others'"
                        for (row, _, _), (a, b) in zip(looks, pairs)))
    if "stage1" in r:
        iou, named = mean("stage1", "box IoU"), mean("stage1", "objects named")
        claim("stage 1's box IoU is at least twice the position-blind reference, with most asked objects named",
              None if iou is None else iou >= 2 * position_blind and (named or 0) > 0.5,
              f"IoU {f(iou)} vs position-blind {f(position_blind)}; named {f(named)}")
    return out


def _cell(stats: dict) -> str:
    if stats["mean"] is None:
        return "–"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}" if len(stats["seeds"]) > 1 else f"{stats['mean']:.3f}"


def markdown(report: dict[str, Any]) -> str:
    r, seeds = report["rows"], report["seeds"]
    lines = [f"# Toy-world ablations ({len(seeds)} seed{'s' * (len(seeds) != 1)}: {', '.join(map(str, seeds))})", "",
             "Held-out toy rooms, greedy. Score: the benchmark's overall (accuracy on multiple choice, MRA on "
             "numbers), asked as the paper asks: the reasoning prompt for a model trained to reason, the direct "
             "prompt otherwise. Mean ± sample std over seeds; points lost = 100 × (full − variant), beside the "
             "paper's (SPEC.md section 4, Qwen2.5-VL-3B on the real benchmarks).", ""]
    header = ["model", "trains", "asked", "score", "points lost", "paper: points lost"] + [c for c, _ in METRICS]
    body = []
    for row, x in r.items():
        lost = "–" if x.get("points_lost") is None else f"{x['points_lost']:+.1f}"
        paper = f"{PAPER_POINTS_LOST[row]:.1f}" if row in PAPER_POINTS_LOST else "–"
        body.append([row, " → ".join(x["trains"]), x["asked"], _cell(x["score"]), lost, paper]
                    + [_cell(x[c]) for c, _ in METRICS])
    lines += report_lib.markdown_table(header, body)
    lines += ["", f"Position-blind box IoU (each asked label's mean training box): {report['position_blind_iou']:.3f}.",
              "no_stage3 is the full ladder's stage-2 model (the same stages from the same start).", "", "## Claims",
              ""]
    verdict = {True: "holds", False: "does not hold", None: "undecided (a score is missing)"}
    lines += [f"- **{verdict[c['holds']]}**: {c['claim']} ({c['detail']})" for c in report["claims"]]
    if "seconds" in report:
        lines += ["", f"Wall time of the training and scoring here: {report['seconds']['total'] / 60:.1f} min."]
    lines += ["", "![ablations](ablations.png)"]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out: Path) -> None:
    from ladder_jax import atomic_output  # noqa: PLC0415
    from ladder_jax.demo import plots  # noqa: PLC0415

    plots.ablation_bars(report, out / "ablations.png")
    atomic_output.write_atomic(out / "ablations.json", (json.dumps(report_lib.finite(report), indent=1) + "\n").encode())
    atomic_output.write_atomic(out / "ablations.md", markdown(report).encode())
