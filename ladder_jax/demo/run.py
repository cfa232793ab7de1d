"""`ladder-jax demo`: the curriculum runner on configs/toy_demo.py, plus the report.

    toy world (config.demo) → demo tokenizer → `demo`-preset Qwen2.5-VL (random init)
      → stage 0: its vision tower pretrained on the toy world's scene folders (demo/vision_pretrain.py)
      → `curriculum.run`: stage 1 (grounding) → stage 2 (spatial QA) → cold start → stage 3 (GRPO)
      + the baseline: stage 3 alone from the same random init (config.demo.baseline)
    each model scored on held-out rooms (demo/evaluate.py) → report.json, report.md, PNG plots,
    Orbax checkpoints per stage, an exported Hugging Face folder checked in transformers.

OUT holds the resolved config (config.json). Started again with the same --out, finished stages,
evaluations and the data are reused; another config for an existing --out is refused rather than
mixed in.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable

import ml_collections

from ladder_jax import atomic_output, config_files, log_setup
from ladder_jax.demo import plots
from ladder_jax.demo import report as report_lib

log = logging.getLogger("ladder_jax.demo")
MODELS = ("untrained", "stage1", "stage2", "cold_start", "stage3", "stage3_only")
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "toy_demo.py"


class DemoConfigError(ValueError):
    """A demo setting that cannot run; raised before any compute."""


class Interrupted(RuntimeError):
    """Training stopped on a signal (SIGTERM) after saving; the same command resumes it."""


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="output folder (data, checkpoints, report, HF export)")
    parser.add_argument("--quick", action="store_true", help="the under-10-minute version (configs/toy_demo.py:quick)")
    parser.add_argument("--ablations", action="store_true",
                        help="the paper's ablation instead: the full ladder, and without stage 1, 2 or 3, per seed "
                             "(OUT/ablations.md)")
    parser.add_argument("--seeds", type=int, default=None, help="with --ablations: seeds per variant (default 3)")
    config_files.add_arguments(parser, default=str(CONFIG))


def demo_config(out: Path, quick: bool = False, overrides: list[str] = (),
                config: str | Path = CONFIG) -> ml_collections.ConfigDict:
    """The demo's config: `config` (`:quick` with `quick`) writing into OUT (the ladder in OUT/ladder,
    the toy world in OUT/toyworld), then `overrides`. `run` checks it whole before anything runs."""
    if not Path(str(config).partition(":")[0]).exists():
        raise DemoConfigError(f"demo config {config} not found: the demo reads configs/toy_demo.py of a checkout "
                              f"(`pip install -e .` from the repository), or pass --config FILE")
    cfg = config_files.load(f"{config}:quick" if quick and ":" not in str(config) else config)
    cfg.workdir, cfg.data.root = str(out / "ladder"), str(out / "toyworld")
    for item in overrides:
        config_files.apply_override(cfg, item)
    return cfg


def check(cfg) -> None:
    """Every setting of the demo and of its two curricula (the ladder and the baseline)."""
    from ladder_jax.data.toyworld.cold_start import COLD_START_SHARES, REASONING_STYLES  # noqa: PLC0415 (fast `--help`)
    from ladder_jax.train import stages  # noqa: PLC0415

    if "demo" not in cfg:
        raise DemoConfigError("the config has no `demo` section (toy-world and evaluation sizes); start from "
                              "configs/toy_demo.py")
    if cfg.demo.size % 56:
        raise DemoConfigError(f"config.demo.size={cfg.demo.size}: the demo renders square images whose side is a "
                              f"multiple of 56 (28 for Qwen's patch merging, halved for video frames), e.g. 112 or 224")
    if cfg.demo.get("reasoning") not in REASONING_STYLES:
        raise DemoConfigError(f"config.demo.reasoning={cfg.demo.get('reasoning')!r}: the toy world's cold-start "
                              f"solutions are one of {REASONING_STYLES}")
    if cfg.demo.get("cold_start", "one") not in COLD_START_SHARES:
        raise DemoConfigError(f"config.demo.cold_start={cfg.demo.get('cold_start')!r}: the toy world writes cold-start "
                              f"records for one of {COLD_START_SHARES} (spatial questions per room and data type)")
    v = cfg.demo.get("vision_pretrain")
    if v is None or not (v.steps >= 0 and v.batch_size >= 1 and v.learning_rate > 0):
        raise DemoConfigError(f"config.demo.vision_pretrain={v}: needs steps >= 0 (0: no stage 0, the tower starts "
                              f"random), batch_size >= 1 and learning_rate > 0")
    stages.check_static(cfg)
    stages.check_static(baseline(cfg))


def baseline(cfg) -> ml_collections.ConfigDict:
    """Stage 3 alone from the same random init, in OUT/stage3_only: what the ladder is compared against."""
    base = cfg.copy_and_resolve_references()
    base.order, base.workdir = ("stage3",), str(Path(cfg.workdir).parent / "stage3_only")
    return base


def main(verb: str, args) -> int:
    from ladder_jax.train.stages import CurriculumConfigError  # noqa: PLC0415

    log_setup.setup()
    out = Path(args.out)
    try:
        if args.seeds is not None and not args.ablations:
            raise DemoConfigError("--seeds counts the ablation's seeds; add --ablations")
        cfg = demo_config(out, args.quick, args.overrides, args.config)
        if args.ablations:
            from ladder_jax.demo import ablations  # noqa: PLC0415

            result = ablations.run(cfg, out, 3 if args.seeds is None else args.seeds)
            print("\n" + ablations.markdown(result))
            print(f"report: {out / 'ablations.md'}  (json and plot beside it)")
            return 0
        result = run(cfg, out)
    except (config_files.ConfigFileError, CurriculumConfigError, DemoConfigError) as e:
        print(f"ladder-jax demo: bad config: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"ladder-jax demo: {e}", file=sys.stderr)
        return 3
    print("\n" + report_lib.terminal_table(result["models"]))
    print(f"\nreport: {out / 'report.md'}  (json, plots and the HF folder beside it)")
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
        self.add(name, time.perf_counter() - start)
        return out

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.path.write_text(json.dumps(self.seconds, indent=1))


@contextlib.contextmanager
def compile_cache(directory: Path):
    """XLA's persistent compilation cache in `directory` while the demo runs: the baseline's GRPO
    step is the ladder's program, and a second run compiles nothing. Restored afterwards. A cache the
    user already configured (JAX_COMPILATION_CACHE_DIR, jax_compilation_cache_dir) is kept as it is:
    then `ladder-jax train` resuming the demo's run reads the programs the demo compiled."""
    import jax  # noqa: PLC0415

    if jax.config.jax_compilation_cache_dir:
        yield
        return
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


def run(cfg, out: Path) -> dict[str, Any]:
    """Everything the module docstring lists; returns the report (also written to OUT)."""
    from ladder_jax.train.curriculum import record_config  # noqa: PLC0415

    check(cfg)
    record_config(cfg, out / "config.json")
    with compile_cache(out / "xla_cache"):
        return _run(cfg, out)


def prepare_world(cfg, phases: Phases) -> Path:
    """The toy world config.demo describes, in config.data.root: generated once (with config.seed),
    then reused. One made with other cold-start records (reasoning style or share) is refused, not mixed in."""
    from ladder_jax.data.toyworld.generate import SUMMARY_FILE, generate  # noqa: PLC0415

    d, data = cfg.demo, Path(cfg.data.root)
    if not (data / SUMMARY_FILE).exists():
        log.info("generating %d toy-world rooms in %s", d.scenes, data)
        phases.run("data", lambda: generate(
            data, d.scenes, cfg.seed, size=d.size, views=d.views, video_frames=d.video_frames,
            eval_fraction=d.eval_fraction, grounding_per_scene=d.grounding_per_scene, reasoning=d.reasoning,
            cold_start=d.get("cold_start", "one"), progress=True))
    summary = json.loads((data / SUMMARY_FILE).read_text())
    for key, default in (("reasoning", "worked"), ("cold_start", "one")):
        made, asked = summary.get(key, default), d.get(key, default)
        if made != asked:
            raise DemoConfigError(f"{data} holds a toy world whose cold-start records were made with {key}={made!r}, "
                                  f"the config asks for {asked!r} (config.demo.{key}); use another --out")
    return data


def held_out(cfg, processor, records):
    """The held-out questions every model of a run is asked (`demo.evaluate.HeldOut`), with the
    position-blind box IoU of the training boxes as the grounding reference."""
    from ladder_jax.demo.evaluate import HeldOut  # noqa: PLC0415

    d, grpo = cfg.demo, cfg.stages.stage3.grpo
    return HeldOut(Path(cfg.data.root) / "eval", processor, d.grounding_items, d.spatial_items, grpo.max_new_tokens,
                   (grpo.format_weight, grpo.accuracy_weight), train_records=records)


class Evaluations:
    """Held-out scores per model name, each computed once and kept in DIRECTORY/<name>.json, so a
    resumed run reads what it scored before."""

    def __init__(self, held, directory: Path, mesh, phases: Phases):
        self.held, self.directory, self.mesh, self.phases = held, directory, mesh, phases
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str, load: Callable[[], tuple]) -> dict:
        from ladder_jax.models.qwen25_vl.api import VisionLanguageModel  # noqa: PLC0415

        path = self.directory / f"{name}.json"
        if not path.exists():
            model = VisionLanguageModel(*load(), self.mesh)
            log.info("evaluating %s on %d grounding + 2 x %d spatial held-out questions", name,
                     len(self.held.grounding), len(self.held.direct))
            scores = report_lib.finite(self.phases.run(f"eval {name}", lambda: self.held(model, name)))
            atomic_output.write_atomic(path, json.dumps(scores).encode())
        return json.loads(path.read_text())


def _run(cfg, out: Path) -> dict[str, Any]:
    import jax  # noqa: PLC0415 (keep `ladder-jax --help` fast)

    from ladder_jax.demo import hf_check, vision_pretrain  # noqa: PLC0415
    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel  # noqa: PLC0415
    from ladder_jax.parallel.mesh import make_mesh  # noqa: PLC0415
    from ladder_jax.train import curriculum, stage_inputs, stages  # noqa: PLC0415

    d, phases, data = cfg.demo, Phases(out / "timings.json"), Path(cfg.data.root)
    prepare_world(cfg, phases)
    records, _, _ = stage_inputs.read_records(cfg)
    processor = stage_inputs.stage_processor(cfg, records)  # held-out questions as stage 2 trains on them
    mesh = make_mesh(*stages.check_devices(cfg, jax.device_count(), jax.process_count()))
    cfg = vision_pretrain.prepared(cfg, out / "vision_pretrain", stage_inputs.stage_processor(cfg, records, "stage1"),
                                   mesh, phases)
    grpo = cfg.stages.stage3.grpo
    evaluate = Evaluations(held_out(cfg, processor, records), out / "evals", mesh, phases)
    held = evaluate.held

    base = baseline(cfg) if d.baseline and cfg.stages.stage3.steps else None
    runs = [(name, cfg, name) for name in stages.enabled(cfg)]  # (label, config, stage)
    runs += [("stage3_only", base, "stage3")] if base else []
    for run_cfg in [cfg] + ([base] if base else []):
        for o in curriculum.run(run_cfg):
            if o.status == "preempted":
                raise Interrupted(f"interrupted in {o.name} (saved); run the same command again to resume")
            if o.status == "trained":
                phases.add(f"train {'stage3_only' if run_cfg is base else o.name}", o.seconds)
    models = {"untrained": evaluate("untrained", lambda: stage_inputs.load_model_source(cfg, processor, mesh))}
    for label, run_cfg, stage in runs:
        models[label] = evaluate(label, lambda: stage_inputs.load_final(run_cfg, Path(run_cfg.workdir) / stage / "final",
                                                                        mesh))

    last = next(name for name in reversed(MODELS[:-1]) if name in models)
    folder = out / "hf_model"
    final_model = (VisionLanguageModel(*stage_inputs.load_final(cfg, Path(cfg.workdir) / last / "final", mesh), mesh)
                   if last != "untrained" else None)
    check_result: dict[str, Any] = {"status": "skipped: no stage trained"}
    if final_model is not None:
        phases.run("export", lambda: hf_check.export(final_model, processor, folder))
        check_result = phases.run("transformers check", lambda: hf_check.compare_with_transformers(
            folder, final_model, held.reasoning[:d.hf_check_items], grpo.max_new_tokens))
        log.info("exported %s to %s; transformers: %s", last, folder, check_result["status"])

    report = _report(cfg, out, data, models, runs, phases, {"folder": str(folder), "model": last, "check": check_result},
                     final_model if final_model is not None else
                     VisionLanguageModel(*stage_inputs.load_model_source(cfg, processor, mesh), mesh))
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


def _report(cfg, out: Path, data: Path, models, runs, phases: Phases, hf_export: dict, model) -> dict[str, Any]:
    import jax  # noqa: PLC0415

    from ladder_jax.demo import vision_pretrain  # noqa: PLC0415
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
        "config": cfg.copy_and_resolve_references().to_dict(),
        "data": {"root": str(data), "scenes": summary["scenes"], "counts": summary["counts"]},
        "model": {"preset": "demo", "parameters": int(sum(x.size for x in jax.tree.leaves(model.state)))},
        "vision_pretrain": vision_pretrain.report_of(cfg),
        "models": models, "training": training, "hf_export": hf_export, "plots": plot_files,
        "seconds": dict(phases.seconds, total=sum(phases.seconds.values())),
        "checkpoints": {label: str(Path(cfg.workdir) / stage) for label, cfg, stage in runs},
    }
