"""What every benchmark here shares: load average, interleaved timing, random models built once in
both libraries from one config, and image prompts in the processor layout.

Imports nothing from tests/, so `python bench/<script>.py` runs from a checkout with the package
installed (no PYTHONPATH). Timings are medians of runs that alternate ours / theirs, so load from
elsewhere hits both alike; a ratio is flagged UNRELIABLE when the 1-minute load average exceeds
`BUSY` at either end of its measurement.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

BUSY = 1.5


def load() -> float:
    return os.getloadavg()[0]


def interleaved(ours, theirs, repeats: int) -> tuple[float, float]:
    """Median seconds of `ours()` and `theirs()` over `repeats` alternating runs, after one warm-up
    call of each (ours compiles there)."""
    ours()
    theirs()
    times = ([], [])
    for _ in range(repeats):
        for fn, out in zip((ours, theirs), times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def reliable(load_before: float, load_after: float) -> bool:
    return max(load_before, load_after) <= BUSY


def torch_model(cfg, seed: int = 0, train: bool = False):
    """transformers' Qwen2.5-VL with random weights from our config."""
    import torch  # noqa: PLC0415 (the benchmarks' optional side)
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration  # noqa: PLC0415

    from ladder_jax.models.qwen25_vl.config import to_hf_dict  # noqa: PLC0415

    torch.manual_seed(seed)
    hf = {k: v for k, v in to_hf_dict(cfg).items() if k not in ("architectures", "model_type")}
    model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**hf))
    return model.train() if train else model.eval()


def both_models(cfg, seed: int = 0, train: bool = False):
    """(transformers model, our VisionLanguageModel) holding the same random weights."""
    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel  # noqa: PLC0415

    hf = torch_model(cfg, seed, train)
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = VisionLanguageModel.from_pretrained(folder)
    return hf, ours


def image_prompts(cfg, rows: int, text: int, grid_hw: tuple[int, int], seed: int = 0) -> dict:
    """`rows` sequences of equal length: text/2, one image of grid_hw patches, text/2 (processor layout)."""
    rng = np.random.default_rng(seed)
    image_tokens = grid_hw[0] * grid_hw[1] // cfg.vision.merge_unit
    ids = []
    for _ in range(rows):
        image = [cfg.vision_start_token_id] + [cfg.image_token_id] * image_tokens + [cfg.vision_end_token_id]
        ids.append(list(rng.integers(0, 30000, text // 2)) + image + list(rng.integers(0, 30000, text - text // 2)))
    ids = np.asarray(ids, np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "mm_token_type_ids": (ids == cfg.image_token_id).astype(np.int64),
            "pixel_values": rng.standard_normal((rows * grid_hw[0] * grid_hw[1], cfg.vision.patch_dim)).astype(np.float32),
            "image_grid_thw": np.array([(1, *grid_hw)] * rows, np.int64)}


def header(name: str) -> None:
    print(f"\n== {name} (load average {load():.2f}) ==", flush=True)
