"""Examples/s of the stage-2 pipeline, next to the step rate it must feed.

    PYTHONPATH=. python bench/pipeline.py [--records 500] [--workers 2] [--batch 8] [--model tiny]

Writes a synthetic release (224x224 JPEG frames; single-image, 8-view and 16-frame video rows in
roughly the proportions of SpatialLadder-26k), runs the stage-2 pipeline with its training
settings and times batches after the first (worker start-up is reported apart). Then it times one
jitted forward + backward of a model on one of those batches, and prints both rates and their
ratio: above 1 the pipeline keeps up with that model on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ladder_jax.data.pipeline import Pipeline, PipelineConfig
from ladder_jax.data.processor import Processor
from ladder_jax.data.schema import Record
from ladder_jax.data.tokenizer import default_corpus, special_token_ids, train_tokenizer

MC = ("A. the chair", "B. the table", "C. the lamp", "D. the sofa")


def write_frames(root: Path, count: int, seed: int = 0) -> list[str]:
    """Smooth random 224x224 JPEGs (noise would decode slower than photos do)."""
    rng = np.random.default_rng(seed)
    names = []
    for i in range(count):
        coarse = rng.integers(0, 256, (14, 14, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((224, 224), Image.BILINEAR).save(root / f"{i:04d}.jpg", quality=90)
        names.append(f"{i:04d}.jpg")
    return names


def synthetic_records(root: Path, count: int) -> list[Record]:
    frames = write_frames(root, 160)
    records = []
    for i in range(count):
        kind = ("single_image", "multi_view", "video")[(i % 10 > 2) + (i % 10 > 5)]  # 30 / 30 / 40 %
        n = {"single_image": 1, "multi_view": 8, "video": 16}[kind]
        images = tuple(frames[(7 * i + j) % len(frames)] for j in range(n))
        question = "Which object is closest to the door?" + " Think about the room layout." * (i % 5)
        if i % 2:
            typed = ("object count", None, str(i % 9))
        else:
            typed = ("relative distance", MC, "ABCD"[i % 4])
        records.append(Record(f"bench/{i}", "spatial", question, images, kind, *typed))
    return records


def time_pipeline(pipe: Pipeline, batches: int) -> tuple[float, float, dict]:
    """(start-up seconds to the first batch, examples/s over the next `batches`, that first batch)."""
    start = time.perf_counter()
    with iter(pipe) as it:
        first = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in next(it).items()}
        warm = time.perf_counter()
        n = 0
        for _ in range(batches):
            n += len(next(it)["ids"])
        rate = n / (time.perf_counter() - warm)
        report = it.report
        print(f"  report: {report.num_accepted} used, {report.num_rejected} skipped; shapes {dict(it.batch_shapes)}")
    return warm - start, rate, first


def cpu_cost(pipe: Pipeline, batches: int) -> float:
    """CPU milliseconds per example of decode + process + collate, in this process (no workers).
    Less sensitive than examples/s to other programs sharing the machine."""
    solo = Pipeline(pipe._source._source, pipe.processor, dataclasses.replace(pipe.config, num_workers=0),
                    data_root=pipe.encoder.data_root, shard_index=pipe.shard_index, shard_count=pipe.shard_count)
    with iter(solo) as it:
        next(it)
        start, n = time.process_time(), 0
        for _ in range(batches):
            n += len(next(it)["ids"])
        return (time.process_time() - start) / n * 1e3


def model_config(tokenizer, name: str):
    from ladder_jax.models.qwen25_vl.config import preset

    ids = special_token_ids(tokenizer)
    cfg = preset("tiny")
    text = dataclasses.replace(cfg.text, vocab_size=len(tokenizer))
    vision = cfg.vision
    if name == "small":  # a few M parameters: a less flattering stand-in than the tiny test model
        text = dataclasses.replace(text, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                                   num_attention_heads=4, num_key_value_heads=2, mrope_section=(8, 12, 12))
        vision = dataclasses.replace(vision, depth=4, hidden_size=128, intermediate_size=256, num_heads=4,
                                     out_hidden_size=256)
    return cfg.replace(text=text, vision=vision, image_token_id=ids["image"], video_token_id=ids["video"],
                       vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"],
                       eos_token_id=ids["eos"], pad_token_id=ids["pad"])


def time_step(cfg, batch: dict, repeats: int = 3) -> tuple[float, float]:
    """(compile seconds, seconds per jitted forward + backward) on `batch`."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from ladder_jax.data.collate import model_inputs
    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
    from ladder_jax.parallel.mesh import make_mesh

    model = VisionLanguageModel.from_config(cfg, mesh=make_mesh())

    def loss(state, inputs, labels):
        logits = nnx.merge(model.graphdef, state)(**inputs)[:, :-1]
        target = labels[:, 1:]
        mask = target != -100
        logp = jax.nn.log_softmax(logits)
        picked = jnp.take_along_axis(logp, jnp.where(mask, target, 0)[..., None], axis=-1)[..., 0]
        return -(picked * mask).sum() / jnp.maximum(mask.sum(), 1)

    step = jax.jit(jax.value_and_grad(loss))
    inputs, labels = model_inputs(batch), batch["labels"]
    with jax.set_mesh(model.mesh):
        start = time.perf_counter()
        jax.block_until_ready(step(model.state, inputs, labels))
        compiled = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(repeats):
            jax.block_until_ready(step(model.state, inputs, labels))
    return compiled, (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20, help="batches timed after the first")
    parser.add_argument("--model", choices=("tiny", "small", "none"), default="tiny")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    start = time.perf_counter()
    records = synthetic_records(root, args.records)
    frames = len(list(root.glob("*.jpg")))
    print(f"{len(records)} records, {frames} frames written in {time.perf_counter() - start:.1f} s")
    processor = Processor(train_tokenizer(default_corpus()))
    config = PipelineConfig("stage2", args.batch, num_workers=args.workers, num_epochs=None)
    pipe = Pipeline(records, processor, config, data_root=root, shard_index=0, shard_count=1)
    print(pipe.summary())
    startup, rate, batch = time_pipeline(pipe, args.batches)
    print(f"pipeline: {rate:.1f} examples/s with {args.workers} workers ({startup:.1f} s to the first batch)")
    cost = cpu_cost(pipe, max(2, args.batches // 4))
    print(f"  CPU cost: {cost:.0f} ms per example in one process -> {1e3 / cost:.1f} examples/s per free core; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other programs slow the rate above)")
    if args.model == "none":
        return
    compiled, seconds = time_step(model_config(processor.tokenizer, args.model), batch)
    shape = tuple(batch["input_ids"].shape) + (batch["pixel_values"].shape[1], batch["pixel_values_videos"].shape[1])
    need = len(batch["ids"]) / seconds
    print(f"{args.model} model: forward+backward {seconds * 1e3:.0f} ms on a (B, L, P, Pv) = {shape} batch "
          f"(compile {compiled:.1f} s) -> consumes {need:.1f} examples/s")
    print(f"pipeline / model = {rate / need:.2f}")


if __name__ == "__main__":
    main()
