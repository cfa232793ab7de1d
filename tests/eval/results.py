"""What `ladder-jax eval` writes, computed by the runner on a model in the test process (one
device), and the check that two --out folders hold the same result: the same files, byte for byte,
but for the run's timings in summary.json."""

import json
from pathlib import Path

from ladder_jax.data.processor import Processor
from ladder_jax.eval import benchmarks, runner
from ladder_jax.eval.decoding import decoding_for

TIMINGS = ("seconds", "items_per_second")
FILES = ["predictions.jsonl", "skipped.json", "summary.json", "summary.md"]


def runner_result(model, model_dir: Path, benchmark: str, data: Path, out: Path, *, batch_size: int,
                  max_new_tokens: int, num_frames: int = 32, min_pixels: int = 784, max_pixels: int = 3136,
                  limit: int | None = None) -> Path:
    """`out` holding what `ladder-jax eval --model model_dir` writes with these settings."""
    items, report = benchmarks.read_benchmark(benchmark, data, num_frames=num_frames, target_pixels=max_pixels)
    processor = runner.eval_processor(Processor.from_pretrained(str(model_dir)), min_pixels, max_pixels)
    result = runner.evaluate(model, processor, items, benchmark=benchmark, batch_size=batch_size,
                             max_new_tokens=max_new_tokens, limit=limit, report=report, progress=False,
                             decoding=decoding_for(model_dir, model.config.eos_token_id))
    result.write(out)
    return out


def assert_same_result(got: Path, want: Path) -> None:
    assert sorted(p.name for p in got.iterdir()) == FILES
    for name in FILES:
        if name != "summary.json":
            assert (got / name).read_text() == (want / name).read_text(), name
    a, b = (json.loads((folder / "summary.json").read_text()) for folder in (got, want))
    assert {k: v for k, v in a.items() if k not in TIMINGS} == {k: v for k, v in b.items() if k not in TIMINGS}


def raw_outputs(out: Path) -> list[str]:
    return [json.loads(line)["raw_output"] for line in (out / "predictions.jsonl").read_text().splitlines()]
