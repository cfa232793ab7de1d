"""Every speed benchmark in one run, printed as one table with the machine's limits beside it.

    python bench/run_all.py [--quick] [--repeats 3] [--skip NAME ...]

Runs: machine limits (fp32 and bf16 matmul GFLOP/s in XLA and torch, memory read GB/s), forward+backward
(fp32, and bf16 compute on both sides),
AdamW train step, greedy decode (batch 4), sampling G = 4, GRPO-shaped sampling (16 prompts x
G 4 x 256 tokens; `--quick` 4 x 4 x 64) and the vision tower's time for 1, 4, 16, 32 frames.
Each ratio is ladder_jax / transformers+torch from interleaved runs (medians); a row during which
other programs used more than 0.2 of a core is marked UNRELIABLE (common.py). About 7 minutes on a
quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import limits  # noqa: E402

BENCHES = ("forward_backward", "train_step", "sampler", "vision_curve")


def limit_column(row: dict, lim: dict) -> str:
    if "flops_per_s" in row:
        bf16 = row.get("dtype") == "bfloat16"
        peak = lim["matmul_bf16_xla" if bf16 else "matmul_xla"]
        return f"{100 * row['flops_per_s'] / 1e9 / peak:.0f}% of XLA {'bf16' if bf16 else 'fp32'} matmul peak"
    if "bound" in row:
        bound = row["bound"](lim["read_gbs"] * 1e9)
        return f"{100 * row['ours'] / bound:.0f}% of read bound {bound:.0f} tok/s"
    return ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller shapes everywhere (a smoke run, not for figures)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip", nargs="*", default=[], choices=BENCHES)
    a = p.parse_args()
    start, load_start = time.perf_counter(), common.load()
    import jax  # noqa: PLC0415
    import torch  # noqa: PLC0415

    print(f"load average at start {load_start:.2f}; {os.cpu_count()} CPUs; jax {jax.__version__} "
          f"({jax.devices()[0].platform}), torch {torch.__version__} ({torch.get_num_threads()} threads)", flush=True)
    lim = limits.measure()
    print(f"limits: {limits.text(lim)}", flush=True)
    rows, curve = [], None
    if "forward_backward" not in a.skip:
        import model_forward_backward  # noqa: PLC0415
        rows.append(model_forward_backward.run(repeats=a.repeats, quick=a.quick))
        rows.append(model_forward_backward.run(repeats=a.repeats, quick=a.quick, dtype="bfloat16"))
    if "train_step" not in a.skip:
        import train_step  # noqa: PLC0415
        rows.append(train_step.run(repeats=a.repeats, quick=a.quick))
    if "sampler" not in a.skip:
        import sampler  # noqa: PLC0415
        rows += sampler.run(repeats=a.repeats, quick=a.quick)
    if "vision_curve" not in a.skip:
        import vision_curve  # noqa: PLC0415
        curve = vision_curve.run((1, 4, 8) if a.quick else (1, 4, 16, 32), a.repeats)

    print(f"\n== results ({'QUICK shapes, ' if a.quick else ''}load average {load_start:.2f} at start, "
          f"{common.load():.2f} at end, {time.perf_counter() - start:.0f} s) ==")
    print(f"limits: {limits.text(lim)}")
    print(f"| benchmark | shape | ladder_jax | transformers + torch | ratio | limit | machine |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['what']} | {r['ours']:.0f} {r['unit']} | {r['theirs']:.0f} {r['unit']} | "
              f"**{r['ours'] / r['theirs']:.2f}x** | {limit_column(r, lim)} | {common.quiet_text(r)} |")
    if curve:
        print("\nvision tower, one video of 224x224 frames (forward):")
        vision_curve.report(curve)


if __name__ == "__main__":
    main()
