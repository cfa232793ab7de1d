"""`ladder-jax eval`: score a Hugging Face Qwen2.5-VL folder on a benchmark read from local files.

Writes summary.json / summary.md (the paper's NQ / MCQ / Avg layout and a per-task table),
predictions.jsonl (id, raw output, parsed answer, score per question) and skipped.json to --out,
whole or not at all (an existing non-empty --out needs --overwrite). --model must be a folder on
disk: nothing is ever downloaded.

Parameters shard over --mesh (the training table) and each batch's prompts over its data axes.
Several processes (--coordinator/--num-processes/--process-id, or --distributed auto on a pod or
under slurm) each read and generate their share of the items. Finished items are kept in a staging
folder beside --out (`resume`), so the same command run again continues an interrupted run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ladder_jax.atomic_output import OutputError, build_beside, check_output
from ladder_jax.eval.benchmarks import BENCHMARKS, PROMPT_STYLES, VSI_FRAMES
from ladder_jax.eval.decoding import DECODINGS, MAX_NEW_TOKENS
from ladder_jax.eval.media import EVAL_MAX_PIXELS, EVAL_MIN_PIXELS
from ladder_jax.eval.metrics import PROTOCOLS
from ladder_jax.parallel.mesh import mesh_arg


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path,
                        help="Hugging Face Qwen2.5-VL folder (weights + tokenizer)")
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    parser.add_argument("--data", required=True, type=Path,
                        help="the benchmark's parquet file or its folder (toyworld: a split folder such as OUT/eval)")
    parser.add_argument("--media-dir", type=Path, default=None,
                        help="where videos / frames live (default: beside the parquet; SPBench: its images/ "
                             "subfolder if present)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the result files")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing non-empty --out (the old one is kept until the new one is complete) "
                             "and start an unfinished run over")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N questions in file order")
    parser.add_argument("--think", action="store_true", help="stage-3 reasoning prompt, 1024 new tokens")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="prompts generated together, over all processes (with several: a multiple of data x fsdp)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 1024 with --think, else 128")
    parser.add_argument("--num-frames", type=int, default=VSI_FRAMES, help="frames sampled per VSI-Bench video")
    parser.add_argument("--min-pixels", type=int, default=EVAL_MIN_PIXELS,
                        help="lower pixel bound of every image and video frame (the reference: 16*28*28)")
    parser.add_argument("--max-pixels", type=int, default=EVAL_MAX_PIXELS,
                        help="upper pixel bound of every image and frame, and the size a VSI-Bench frame is first "
                             "resized to (the reference: 512*28*28)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="spatialladder",
                        help="answer scoring: the paper's evaluator (eval_spld), or thinking-in-space's official "
                             "VSI-Bench scorer")
    parser.add_argument("--prompt-style", choices=PROMPT_STYLES, default="reference",
                        help="reference: the evaluator's templates, no system message; training: the stage prompts")
    parser.add_argument("--decoding", choices=DECODINGS, default="reference",
                        help="reference: the checkpoint's generation_config.json (end tokens, repetition penalty), "
                             "greedy; greedy: plain greedy to the model config's end token")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="parameters and compute dtype (bfloat16: half the memory, as the model was trained)")
    parser.add_argument("--mesh", default="-1,1,1", type=mesh_arg,
                        help="data,fsdp,tensor sizes (one may be -1: the rest of the devices); parameters shard as in "
                             "training, each batch's prompts over data x fsdp")
    parser.add_argument("--distributed", choices=("none", "auto"), default="none",
                        help="auto: join the processes of a TPU pod or slurm job (found from the environment)")
    parser.add_argument("--coordinator", help="local multi-process run: the coordinator's HOST:PORT")
    parser.add_argument("--num-processes", type=int, help="local multi-process run: how many processes")
    parser.add_argument("--process-id", type=int, help="local multi-process run: this process's index")


MARKER = "summary.json"  # how eval knows its own earlier --out (--overwrite replaces only those)
# What decides the answers besides the paths: an unfinished --out continues only with the same.
# (--batch-size, --mesh and the process count may change between runs.)
SETTINGS = ("benchmark", "limit", "think", "num_frames", "min_pixels", "max_pixels", "protocol", "prompt_style",
            "decoding", "dtype")


class EvalInputError(ValueError):
    pass


class NothingScored(EvalInputError):
    """Every question was skipped (or there were none): there is no score to report."""


def main(verb: str, args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (EvalInputError, OutputError) as e:
        print(f"ladder-jax eval: {' '.join(str(e).split())}", file=sys.stderr)  # one line, whatever the loaders wrote
        return 2


def _run(args: argparse.Namespace) -> int:
    import jax

    from ladder_jax.data.processor import Processor
    from ladder_jax.eval.benchmarks import read_benchmark
    from ladder_jax.eval.decoding import decoding_for
    from ladder_jax.eval.resume import ResumeError, Staging
    from ladder_jax.eval.runner import eval_processor, evaluate
    from ladder_jax.eval.schedule import ScheduleError
    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
    from ladder_jax.parallel import distributed
    from ladder_jax.parallel.mesh import MeshError, make_mesh

    if args.num_frames < 2 or args.num_frames % 2 or args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise EvalInputError("--num-frames must be even and >= 2; --batch-size and --limit must be >= 1")
    if not 28 * 28 <= args.min_pixels <= args.max_pixels:
        raise EvalInputError(f"need 784 <= --min-pixels <= --max-pixels; got {args.min_pixels}, {args.max_pixels}")
    if args.protocol == "official" and args.benchmark == "cvbench":
        raise EvalInputError("--protocol official is thinking-in-space's VSI-Bench scorer; CV-Bench has only "
                             "--protocol spatialladder")
    inputs = (args.model, args.data) + ((args.media_dir,) if args.media_dir else ())
    check_output(args.out, args.overwrite, MARKER, inputs)
    if not args.model.is_dir():  # before the tokenizer loader, which would take a missing path for a hub name
        raise EvalInputError(f"--model {args.model} is not a folder on disk (eval reads a local Hugging Face folder "
                             "and never downloads; fetch it first, e.g. `hf download ORG/NAME --local-dir DIR`)")
    try:
        items, report = read_benchmark(args.benchmark, args.data, think=args.think, media_dir=args.media_dir,
                                       num_frames=args.num_frames, prompt_style=args.prompt_style,
                                       target_pixels=args.max_pixels)
    except (ValueError, OSError) as e:  # what the readers raise for a file they cannot use
        raise EvalInputError(f"--data {args.data}: {e}") from None
    if not items:
        raise NothingScored(f"--data {args.data}: no question to score ({report.num_rejected} skipped; "
                            f"{_reasons(report)})")
    try:
        distributed.start(args.distributed, args.coordinator, args.num_processes, args.process_id)
    except ValueError as e:
        raise EvalInputError(f"--coordinator/--num-processes/--process-id: {e}") from None
    try:
        mesh = make_mesh(*args.mesh)
    except MeshError as e:
        raise EvalInputError(f"--mesh: {e}") from None
    lead = jax.process_index() == 0  # prints and writes
    if lead:
        print(report.summary())
    try:
        model = VisionLanguageModel.from_pretrained(args.model, mesh=mesh, dtype=args.dtype, param_dtype=args.dtype)
        processor = eval_processor(Processor.from_pretrained(str(args.model)), args.min_pixels, args.max_pixels)
        decoding = decoding_for(args.model, model.config.eos_token_id, args.decoding)
    except (ValueError, OSError) as e:  # bad config, weights or tokenizer files (ConfigError etc. are ValueErrors)
        raise EvalInputError(f"--model {args.model}: {e}") from None
    try:
        staging = Staging.open(args.out, _settings(args), overwrite=args.overwrite)
        result = evaluate(model, processor, items, benchmark=args.benchmark, batch_size=args.batch_size,
                          max_new_tokens=args.max_new_tokens, think=args.think, limit=args.limit, report=report,
                          protocol=args.protocol, decoding=decoding, staging=staging)
    except (ResumeError, ScheduleError) as e:
        raise EvalInputError(str(e)) from None
    if not result.predictions:
        staging.remove()
        raise NothingScored(f"every question was skipped ({result.summary['num_skipped']}; {_reasons(report)})")
    if lead:
        with build_beside(args.out, overwrite=args.overwrite, marker=MARKER, inputs=inputs) as out:
            result.write(out)
        staging.remove()
        print((args.out / "summary.md").read_text())
        print(f"{result.summary['num_scored']} scored, {result.summary['num_skipped']} skipped; "
              f"files in {args.out}")
    return 0


def _settings(args: argparse.Namespace) -> dict:
    """The resume settings of this command (`resume`): its paths resolved, max_new_tokens as used."""
    paths = {name: str(getattr(args, name).resolve()) if getattr(args, name) else None
             for name in ("model", "data", "media_dir")}
    return paths | {name: getattr(args, name) for name in SETTINGS} | {
        "max_new_tokens": args.max_new_tokens or MAX_NEW_TOKENS[args.think]}


def _reasons(report) -> str:
    counts = report.counts()
    return ", ".join(f"{n} {why}" for why, n in counts.items()) or "none read"
