"""`ladder-jax demo`: the whole recipe on a CPU, from nothing to a report.

    toy world → demo tokenizer → `demo`-preset Qwen2.5-VL (random init)
      → stage 1 (grounding) → stage 2 (spatial QA) → cold start → stage 3 (GRPO)
      + the baseline: stage 3 alone from the same random init
    each model scored on held-out rooms (demo/evaluate.py) → report.json, report.md, PNG plots,
    Orbax checkpoints per stage, an exported Hugging Face folder checked in transformers.

Started again with the same --out, finished stages, evaluations and the data are reused (a
different size or setting for an existing --out is refused rather than mixed in).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from ladder_jax.demo import plots
from ladder_jax.demo import report as report_lib
from ladder_jax.demo.settings import SIZES, DemoSettings, baseline_config, curriculum_config, vision_config

log = logging.getLogger("ladder_jax.demo")
MODELS = ("untrained", "stage1", "stage2", "cold_start", "stage3", "stage3_only")


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="output folder (data, checkpoints, report, HF export)")
    parser.add_argument("--quick", action="store_true", help="the under-10-minute version")
    parser.add_argument("--no-baseline", action="store_true", help="skip the stage-3-only comparison run")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a DemoSettings field, e.g. --set scenes=50 --set stage1_steps=20")


def settings_from(quick: bool, overrides: list[str]) -> DemoSettings:
    """The chosen size with `FIELD=VALUE` overrides, typed like the field; unknown fields fail."""
    s = SIZES["quick" if quick else "default"]
    fields = {f.name: f for f in dataclasses.fields(DemoSettings)}
    changes = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in fields or key == "name":
            raise SystemExit(f"--set {item!r}: expected FIELD=VALUE with FIELD one of "
                             f"{', '.join(k for k in fields if k != 'name')}")
        kind = type(getattr(s, key))
        try:
            changes[key] = _parse(kind, value)
        except ValueError:
            raise SystemExit(f"--set {item!r}: {key} takes a {kind.__name__}") from None
    s = s.replace(**changes)
    try:
        vision_config(s.video_frames, s.size)
    except ValueError as e:
        raise SystemExit(f"--set: {e}") from None
    return s


def _parse(kind: type, value: str):
    if kind is not bool:
        return kind(value)
    if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(value)
    return value.lower() in ("true", "1")


def main(verb: str, args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = settings_from(args.quick, args.set)
    result = run(settings, Path(args.out), baseline=not args.no_baseline)
    print("\n" + report_lib.terminal_table(result["models"]))
    print(f"\nreport: {Path(args.out) / 'report.md'}  (json, plots and the HF folder beside it)")
    print("HF export: " + report_lib.hf_sentence(result["hf_export"]["check"]))
    return 0


class Phases:
    """Wall time per phase, kept in OUT/timings.json so a resumed run still reports every phase."""

    def __init__(self, path: Path):
        self.path = path
        self.seconds = json.loads(path.read_text()) if path.exists() else {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        self.path.write_text(json.dumps(self.seconds, indent=1))
        return out


def _check_settings(out: Path, settings: DemoSettings) -> None:
    path = out / "demo_settings.json"
    mine = dataclasses.asdict(settings)
    if path.exists():
        theirs = json.loads(path.read_text())
        if theirs != mine:
            changed = sorted(k for k in mine if theirs.get(k) != mine[k])
            raise SystemExit(f"{out} holds a demo run with other settings ({', '.join(changed)}); "
                             f"use another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=1))


@contextlib.contextmanager
def compile_cache(directory: Path):
    """XLA's persistent compilation cache in `directory` while the demo runs: the baseline's GRPO
    step is the ladder's program, and a second run compiles nothing. Restored afterwards."""
    import jax  # noqa: PLC0415

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    before = {name: getattr(jax.config, name) for name in names}
    for name, value in zip(names, (str(directory), 1.0, 0)):
        jax.config.update(name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            jax.config.update(name, value)


def run(settings: DemoSettings, out: Path, baseline: bool = True) -> dict[str, Any]:
    """Everything the module docstring lists; returns the report (also written to OUT)."""
    _check_settings(out, settings)
    with compile_cache(out / "xla_cache"):
        return _run(settings, out, baseline)


def _run(settings: DemoSettings, out: Path, baseline: bool) -> dict[str, Any]:
    import jax  # noqa: PLC0415 (keep `ladder-jax --help` fast)

    from ladder_jax.data.processor import Processor  # noqa: PLC0415
    from ladder_jax.data.toyworld.generate import generate  # noqa: PLC0415
    from ladder_jax.demo import hf_check  # noqa: PLC0415
    from ladder_jax.demo.evaluate import HeldOut  # noqa: PLC0415
    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel  # noqa: PLC0415
    from ladder_jax.parallel.mesh import make_mesh  # noqa: PLC0415
    from ladder_jax.train import curriculum, stage_inputs, stages  # noqa: PLC0415

    phases, data = Phases(out / "timings.json"), out / "toyworld"
    if not (data / "toyworld_summary.json").exists():
        log.info("generating %d toy-world rooms in %s", settings.scenes, data)
        phases.run("data", lambda: generate(
            data, settings.scenes, settings.seed, size=settings.size, views=settings.views,
            video_frames=settings.video_frames, eval_fraction=settings.eval_fraction,
            grounding_per_scene=settings.grounding_per_scene, progress=True))
    ladder = curriculum_config(settings, str(out / "ladder"), str(data))
    records, _, _ = stage_inputs.read_records(ladder)
    processor = Processor(stage_inputs.build_processor(ladder, records).tokenizer,
                          vision_config(settings.video_frames, settings.size))
    mesh = make_mesh(*stages.check_devices(ladder, jax.device_count(), jax.process_count()))
    weights = (ladder.stages.stage3.grpo.format_weight, ladder.stages.stage3.grpo.accuracy_weight)
    held = HeldOut(data / "eval", processor, settings.grounding_items, settings.spatial_items,
                   settings.reasoning_tokens, weights)
    evals_dir = out / "evals"
    evals_dir.mkdir(exist_ok=True)

    def evaluate(name: str, load: Callable[[], tuple]) -> dict:
        path = evals_dir / f"{name}.json"
        if not path.exists():
            model = VisionLanguageModel(*load(), mesh)
            log.info("evaluating %s on %d grounding + 2 x %d spatial held-out questions", name,
                     len(held.grounding), len(held.direct))
            path.write_text(json.dumps(report_lib.finite(phases.run(f"eval {name}", lambda: held(model, name)))))
        return json.loads(path.read_text())

    models = {"untrained": evaluate("untrained", lambda: stage_inputs.load_model_source(ladder, processor, mesh))}
    runs = [(name, ladder, name) for name in stages.enabled(ladder)]  # (label, config, stage)
    if baseline and ladder.stages.stage3.steps:
        runs.append(("stage3_only", baseline_config(settings, str(out / "stage3_only"), str(data)), "stage3"))
    for label, cfg, stage in runs:
        upto = cfg.copy_and_resolve_references()
        upto.order = tuple(cfg.order[:list(cfg.order).index(stage) + 1])
        final = Path(cfg.workdir) / stage / "final"
        if not (final / "params").exists():
            phases.run(f"train {label}", lambda: curriculum.run(upto))
        models[label] = evaluate(label, lambda: stage_inputs.load_final(cfg, final, mesh))

    last = next(name for name in reversed(MODELS[:-1]) if name in models)
    folder = out / "hf_model"
    final_model = (VisionLanguageModel(*stage_inputs.load_final(ladder, out / "ladder" / last / "final", mesh), mesh)
                   if last != "untrained" else None)
    check: dict[str, Any] = {"status": "skipped: no stage trained"}
    if final_model is not None:
        phases.run("export", lambda: hf_check.export(final_model, processor, folder))
        check = phases.run("transformers check", lambda: hf_check.compare_with_transformers(
            folder, final_model, held.reasoning[:settings.hf_check_items], settings.reasoning_tokens))
        log.info("exported %s to %s; transformers: %s", last, folder, check["status"])

    report = _report(settings, out, data, models, runs, phases, {"folder": str(folder), "model": last, "check": check},
                     final_model if final_model is not None else
                     VisionLanguageModel(*stage_inputs.load_model_source(ladder, processor, mesh), mesh))
    report_lib.write(report, out)
    return report


def _training(runs, metrics_jsonl) -> dict[str, dict]:
    """Per trained stage: steps, the first and last logged loss (stage 3: mean rollout reward), time."""
    out = {}
    for label, cfg, stage in runs:
        rows = metrics_jsonl(Path(cfg.workdir) / stage / "metrics.jsonl")
        key = "reward_total" if stage == "stage3" else "loss"
        out[label] = {"steps": cfg.stages[stage].steps, "first": rows[0][key] if rows else None,
                      "last": rows[-1][key] if rows else None, "rows": rows}
    return out


def _report(settings, out: Path, data: Path, models, runs, phases: Phases, hf_export: dict, model) -> dict[str, Any]:
    import jax  # noqa: PLC0415

    from ladder_jax.train.telemetry import read_jsonl  # noqa: PLC0415

    training = _training(runs, read_jsonl)
    for label, t in training.items():
        t["seconds"] = phases.seconds.get(f"train {label}", 0.0)
    sft = {k: t.pop("rows") for k, t in list(training.items()) if k not in ("stage3", "stage3_only")}
    grpo = {k: t.pop("rows") for k, t in list(training.items()) if k in ("stage3", "stage3_only")}
    plot_files = {}
    if sft:
        plot_files["loss curves"] = plots.loss_curves(sft, out / "loss_curves.png").name
    if grpo:
        plot_files["stage-3 reward"] = plots.reward_curves(grpo, out / "reward_curves.png").name
    plot_files["direct answers per type"] = plots.score_bars(
        report_lib.per_type(models, "direct"), out / "direct_per_type.png", "held-out direct answers per question type").name
    plot_files["headline"] = plots.score_bars(
        {m: {c: report_lib.get(e, p) for c, p in report_lib.HEADLINE} for m, e in models.items()},
        out / "headline.png", "held-out scores per model").name
    summary = json.loads((data / "toyworld_summary.json").read_text())
    return {
        "settings": dataclasses.asdict(settings),
        "data": {"root": str(data), "scenes": summary["scenes"], "counts": summary["counts"]},
        "model": {"preset": "demo", "parameters": int(sum(x.size for x in jax.tree.leaves(model.state)))},
        "models": models, "training": training, "hf_export": hf_export, "plots": plot_files,
        "seconds": dict(phases.seconds, total=sum(phases.seconds.values())),
        "checkpoints": {label: str(Path(cfg.workdir) / stage) for label, cfg, stage in runs},
    }
