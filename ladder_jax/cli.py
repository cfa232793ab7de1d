"""`ladder-jax <verb>`: one entry point; each verb lives in the module that does the work.

A verb module exposes `configure(parser)` and `main(args) -> int`; it is imported only when its
verb runs, so `ladder-jax --help` stays fast. Whatever a verb raises is printed as one line,
`ladder-jax VERB: <what went wrong>`, exit 2 for bad input (ValueError, OSError) and 1 otherwise;
`--debug` (any verb) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

VERBS: dict[str, tuple[str, str]] = {
    "demo": ("ladder_jax.demo.run", "the whole recipe on a CPU: toy world -> stages 1, 2, cold start, 3 -> report + HF export"),
    "import-hf": ("ladder_jax.models.qwen25_vl.convert_cli", "import a Hugging Face folder into an Orbax checkpoint"),
    "export-hf": ("ladder_jax.models.qwen25_vl.convert_cli", "export an Orbax checkpoint to a Hugging Face folder"),
    "prepare": ("ladder_jax.data.prepare", "validate the release and write ArrayRecord shards with embedded images"),
    "synth": ("ladder_jax.synth.cli", "metric spatial QA from RGB-D scene folders or photos"),
    "toyworld": ("ladder_jax.data.toyworld.cli", "write a procedural toy-world data set (release layout + RGB-D scene folders)"),
    "plan": ("ladder_jax.plan.cli", "compile every stage of a config for its target hardware: memory, FLOPs, time, fit"),
    "train": ("ladder_jax.train.cli", "run the curriculum (stage 1 -> stage 2 -> cold start -> GRPO) of a config file"),
    "eval": ("ladder_jax.eval.cli", "score a Hugging Face Qwen2.5-VL folder on VSI-Bench, SPBench, CV-Bench or toy-world splits"),
    "smoke": ("ladder_jax.smoke", "build a tiny Qwen2.5-VL and answer a question about a random image"),
}


def verb_module(verb: str):
    """(the verb's module, its argument parser with the common --debug flag)."""
    module = importlib.import_module(VERBS[verb][0])
    parser = argparse.ArgumentParser(prog=f"ladder-jax {verb}", description=VERBS[verb][1])
    module.configure(verb, parser)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    return module, parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="ladder-jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, (_, help_text) in VERBS.items():
        sub.add_parser(verb, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in VERBS:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    verb = argv[0]
    from ladder_jax import log_setup  # noqa: PLC0415

    log_setup.setup()  # our INFO lines, whatever grain / orbax did to the root logger
    module, verb_parser = verb_module(verb)
    args = verb_parser.parse_args(argv[1:])
    try:
        return int(module.main(verb, args) or 0)
    except Exception as e:  # noqa: BLE001 — the one place that turns any failure into a readable line
        if args.debug:
            raise
        bad_input = isinstance(e, (ValueError, OSError))
        detail = str(e).strip().splitlines()[0] if str(e).strip() else "(no message)"
        print(f"ladder-jax {verb}: {type(e).__name__}: {detail}"
              f"{'' if bad_input else ' (an internal error: please report it)'}; run again with --debug for the traceback",
              file=sys.stderr)
        return 2 if bad_input else 1


if __name__ == "__main__":
    sys.exit(main())
