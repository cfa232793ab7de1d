"""`ladder-jax plan`: compile every stage of a config for its target hardware and print whether it fits.

    ladder-jax plan --config configs/qwen25vl_3b_spatialladder.py:tpu-v5e-16 [--config.x=y ...]

The target is config.target (a config variant names its hardware; --target overrides). TPU
targets compile for their topology through libtpu (`pip install "ladder-jax[tpu]"`); GPU targets
compile on as many CPU devices as they have (memory estimates). Exit status 1 when a stage does
not fit with --min-headroom of the device memory free or a check fails; 2 for a bad config.
"""

from __future__ import annotations

import argparse
import sys


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    del verb
    from ladder_jax import config_files  # noqa: PLC0415

    config_files.add_arguments(parser)
    add_plan_arguments(parser)


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default="", help="the hardware to plan for (default: config.target)")
    parser.add_argument("--model-preset", default="", choices=("", "3b", "7b"),
                        help="architecture to plan with when config.model.path is not on this machine")
    parser.add_argument("--skip-paths", action="store_true", help="do not require data.root / model.path to exist here")
    parser.add_argument("--no-compile", action="store_true", help="run the checks only")
    parser.add_argument("--min-headroom", type=float, default=0.10, help="share of device memory that must stay free")


def prepare_devices(target_name: str, cfg) -> None:
    """Before JAX starts a backend: as many CPU devices as a GPU target has."""
    from ladder_jax.plan import targets  # noqa: PLC0415

    target = targets.get(target_name or cfg.get("target", ""))
    if target.platform == "gpu":
        import jax  # noqa: PLC0415
        try:
            jax.config.update("jax_num_cpu_devices", max(target.chips, 1))
        except RuntimeError:  # a backend already started (tests): _devices says what is missing
            pass


def run(cfg, args) -> int:
    from ladder_jax.plan import report, run as plan_run  # noqa: PLC0415

    prepare_devices(args.target, cfg)
    plan = plan_run.build(cfg, args.target, check_paths=not args.skip_paths, compile_programs=not args.no_compile,
                          model_preset=args.model_preset, min_headroom=args.min_headroom,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
    print(report.render(plan))
    return report.exit_code(plan)


def main(verb: str, args: argparse.Namespace) -> int:
    from ladder_jax import config_files  # noqa: PLC0415
    from ladder_jax.plan import targets  # noqa: PLC0415
    from ladder_jax.train import stages  # noqa: PLC0415

    try:
        cfg = config_files.load(args.config, getattr(args, "overrides", []))
        return run(cfg, args)
    except (config_files.ConfigFileError, stages.CurriculumConfigError, targets.TargetError) as e:
        print(f"ladder-jax {verb}: bad config: {e}", file=sys.stderr)
        return 2
