"""What every benchmark here shares: load average, interleaved timing, random models built once in
both libraries from one config, and image prompts in the processor layout.

Imports nothing from tests/, so `python bench/<script>.py` runs from a checkout with the package
installed (no PYTHONPATH). Timings are medians of runs that alternate ours / theirs, so load from
elsewhere hits both alike. A ratio is flagged UNRELIABLE when other programs used more than
`OTHERS_MAX` of a core on average while it was measured (the machine's busy CPU time from
/proc/stat less this process's own, steal included): the 1-minute load average cannot say, since a
benchmark that keeps both cores of a 2-core machine busy puts it near 2 by itself. The load average
is still printed beside each row.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time

import numpy as np

OTHERS_MAX = 0.2  # cores used by other programs, on average, above which a ratio is not trusted
QUIET_LOAD = 0.5  # 1-minute load average a row waits for before it starts


def load() -> float:
    return os.getloadavg()[0]


def _cpu_ticks() -> tuple[int, int]:
    """(busy ticks of the whole machine, ticks of this process and its reaped children)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    own = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return user + nice + system + irq + softirq + steal, own


@dataclasses.dataclass(frozen=True)
class Timing:
    ours: float  # median seconds
    theirs: float
    load: tuple[float, float]  # 1-minute load average before and after
    others: float  # cores other programs used on average meanwhile

    def quiet(self) -> dict:
        """The fields a result row carries about the machine's quiet."""
        return {"load": self.load, "others": self.others}


def settle(below: float = QUIET_LOAD, limit_s: float = 300.0) -> None:
    """Waits (at most limit_s) for the 1-minute load average to fall below `below`, so that a row
    does not start on the load the previous row left behind."""
    deadline = time.perf_counter() + limit_s
    while load() >= below and time.perf_counter() < deadline:
        time.sleep(5)


def interleaved(ours, theirs, repeats: int) -> Timing:
    """Median seconds of `ours()` and `theirs()` over `repeats` alternating runs, after one warm-up
    call of each (ours compiles there), and how busy other programs kept the machine meanwhile.
    Starts once the load the previous row left has settled (`settle`)."""
    settle()
    load_before, start, (busy0, own0) = load(), time.perf_counter(), _cpu_ticks()
    ours()
    theirs()
    times = ([], [])
    for _ in range(repeats):
        for fn, out in zip((ours, theirs), times):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    busy1, own1 = _cpu_ticks()
    others = max(0.0, (busy1 - busy0) - (own1 - own0)) / os.sysconf("SC_CLK_TCK") / (time.perf_counter() - start)
    return Timing(statistics.median(times[0]), statistics.median(times[1]), (load_before, load()), others)


def reliable(row: dict) -> bool:
    return row["others"] <= OTHERS_MAX


def quiet_text(row: dict) -> str:
    """'load 0.5->1.8, others 0.03 cores' and UNRELIABLE when other programs were busy."""
    return (f"load {row['load'][0]:.2f}->{row['load'][1]:.2f}, others {row['others']:.2f} cores"
            f"{'' if reliable(row) else ' UNRELIABLE'}")


def torch_model(cfg, seed: int = 0, train: bool = False):
    """transformers' Qwen2.5-VL with random weights from our config."""
    import torch  # noqa: PLC0415 (the benchmarks' optional side)
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration  # noqa: PLC0415

    from ladder_jax.models.qwen25_vl.config import to_hf_dict  # noqa: PLC0415

    torch.manual_seed(seed)
    hf = {k: v for k, v in to_hf_dict(cfg).items() if k not in ("architectures", "model_type")}
    model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**hf))
    return model.train() if train else model.eval()


def both_models(cfg, seed: int = 0, train: bool = False, dtype: str = "float32"):
    """(transformers model, our VisionLanguageModel) holding the same random weights, both computing
    in `dtype` (transformers' weights cast to it; ours stay float32 and are cast per dot)."""
    import torch  # noqa: PLC0415

    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel  # noqa: PLC0415

    hf = torch_model(cfg, seed, train)
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = VisionLanguageModel.from_pretrained(folder, dtype=dtype)
    return hf.to(getattr(torch, dtype)), ours


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
