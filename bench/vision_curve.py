"""The vision tower's cost against the number of frames: one video of T frames of 224x224 (16x16
patches, 4 attention windows a frame) for T = 1, 4, 16, 32, forward only, ours and transformers'
tower alternating. Linear cost means time(T) / time(1) ~ T.

    python bench/vision_curve.py [--frames 1 4 16 32] [--repeats 3]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import common
from model_forward_backward import CFG

GRID_HW = (16, 16)


def run(frames=(1, 4, 16, 32), repeats: int = 3, models=None) -> list[dict]:
    import torch  # noqa: PLC0415

    torch.set_grad_enabled(False)
    common.header("vision tower vs frames")
    hf, ours = models or common.both_models(CFG)
    tower = jax.jit(lambda state, px, grid: nnx.merge(ours.graphdef, state).visual(px, grid))
    rng = np.random.default_rng(0)
    out = []
    for t in frames:
        grid = np.array([[t, *GRID_HW]], np.int64)
        pixels = rng.standard_normal((int(np.prod(grid)), CFG.vision.patch_dim)).astype(np.float32)
        jpx, jgrid = jnp.asarray(pixels), jnp.asarray(grid, jnp.int32)
        tpx, tgrid = torch.from_numpy(pixels), torch.from_numpy(grid)
        m = common.interleaved(lambda: tower(ours.state, jpx, jgrid).block_until_ready(),
                               lambda: hf.model.visual(tpx, grid_thw=tgrid), repeats)
        out.append({"frames": t, "ours_s": m.ours, "theirs_s": m.theirs, **m.quiet()})
        print(f"  {t:3d} frames: ours {m.ours * 1e3:8.1f} ms  transformers {m.theirs * 1e3:8.1f} ms", flush=True)
    return out


def report(rows: list[dict]) -> None:
    base = rows[0]
    print(f"{'frames':>6} {'ours ms':>9} {'x 1 frame':>9} {'torch ms':>9} {'x 1 frame':>9}  machine")
    for r in rows:
        print(f"{r['frames']:6d} {r['ours_s'] * 1e3:9.1f} {r['ours_s'] / base['ours_s']:9.1f} "
              f"{r['theirs_s'] * 1e3:9.1f} {r['theirs_s'] / base['theirs_s']:9.1f}  "
              f"{common.quiet_text(r)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, nargs="+", default=[1, 4, 16, 32])
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    report(run(tuple(a.frames), a.repeats))


if __name__ == "__main__":
    main()
