"""`ladder-jax train`: run a curriculum config.

    ladder-jax train --config configs/toy_demo.py [--config.a.b=value ...]
        [--coordinator 127.0.0.1:PORT --num-processes N --process-id I]

`--config FILE.py:VARIANT` passes VARIANT to the file's get_config (e.g. tpu-v5p-32). On TPU pods
and under slurm set --config.distributed=auto instead of the three process flags.
"""

from __future__ import annotations

import argparse
import json
import sys

INTERRUPTED = 3  # the status after a stop signal (saved); launch/slurm_gpu.sbatch requeues on it

def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    del verb
    from ladder_jax import config_files  # noqa: PLC0415

    config_files.add_arguments(parser)
    parser.add_argument("--coordinator", help="local multi-process run: the coordinator's HOST:PORT")
    parser.add_argument("--num-processes", type=int, help="local multi-process run: how many processes")
    parser.add_argument("--process-id", type=int, help="local multi-process run: this process's index")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the config, print it and its plan (`ladder-jax plan`), train nothing")
    from ladder_jax.plan.cli import add_plan_arguments  # noqa: PLC0415

    add_plan_arguments(parser)


def main(verb: str, args: argparse.Namespace) -> int:
    del verb
    from ladder_jax import config_files, log_setup  # noqa: PLC0415 (keeps `ladder-jax --help` fast)
    from ladder_jax.plan.targets import TargetError  # noqa: PLC0415
    from ladder_jax.train import curriculum, stages  # noqa: PLC0415

    log_setup.setup()
    try:
        cfg = config_files.load(args.config, getattr(args, "overrides", []))
        if args.dry_run:
            from ladder_jax.plan import cli as plan_cli  # noqa: PLC0415

            stages.check_static(cfg)
            print(cfg)
            return plan_cli.run(cfg, args)
        outcomes = curriculum.run(cfg, args.coordinator, args.num_processes, args.process_id)
    except (config_files.ConfigFileError, stages.CurriculumConfigError, TargetError) as e:
        print(f"ladder-jax train: bad config: {e}", file=sys.stderr)
        return 2
    for o in outcomes:
        print(json.dumps({"stage": o.name, "status": o.status, "final": str(o.final) if o.final else None,
                          **{k: o.last_metrics[k] for k in ("loss", "lr") if k in o.last_metrics}}))
    if any(o.status == "preempted" for o in outcomes):
        print("ladder-jax train: interrupted; run the same command again to resume", file=sys.stderr)
        return INTERRUPTED
    return 0


if __name__ == "__main__":  # `python -m ladder_jax.train.cli train --config ...`, as `ladder-jax train ...`
    _parser = argparse.ArgumentParser(prog="ladder-jax train", description=__doc__.splitlines()[0])
    configure("train", _parser)
    if sys.argv[1:2] != ["train"]:
        _parser.error("the first argument must be the verb `train`")
    sys.exit(main("train", _parser.parse_args(sys.argv[2:])))
