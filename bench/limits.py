"""The machine's limits, measured the way the benchmarks run: matmul GFLOP/s in XLA and in torch,
fp32 and bf16 (bf16 operands, XLA accumulating and returning fp32 as the model's dots do: on CPUs
with AMX that is the fast path), and memory read GB/s (a large sum; the better of XLA and torch).

    python bench/limits.py
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np


def _best(fn, repeats: int) -> float:
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def matmul_gflops(n: int = 2048, repeats: int = 5, dtype: str = "float32") -> dict:
    import torch  # noqa: PLC0415

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    xa = jnp.asarray(a, dtype)
    mm = jax.jit(lambda x: jnp.dot(x, x, preferred_element_type=jnp.float32))
    ta = torch.from_numpy(a).to(getattr(torch, dtype))
    flops = 2 * n ** 3
    return {"xla": flops / _best(lambda: mm(xa).block_until_ready(), repeats) / 1e9,
            "torch": flops / _best(lambda: torch.mm(ta, ta), repeats) / 1e9}


def memory_read_gbs(mib: int = 512, repeats: int = 5) -> float:
    import torch  # noqa: PLC0415

    a = np.ones(mib * 2 ** 20 // 4, np.float32)
    xa = jnp.asarray(a)
    total = jax.jit(jnp.sum)
    ta = torch.from_numpy(a)
    xla = a.nbytes / _best(lambda: total(xa).block_until_ready(), repeats)
    tor = a.nbytes / _best(lambda: ta.sum(), repeats)
    return max(xla, tor) / 1e9


def measure() -> dict:
    out = {f"matmul_{k}": v for k, v in matmul_gflops().items()}
    out |= {f"matmul_bf16_{k}": v for k, v in matmul_gflops(dtype="bfloat16").items()}
    out["read_gbs"] = memory_read_gbs()
    return out


def text(m: dict) -> str:
    return (f"fp32 matmul XLA {m['matmul_xla']:.0f} GFLOP/s, torch {m['matmul_torch']:.0f}; bf16 matmul XLA "
            f"{m['matmul_bf16_xla']:.0f}, torch {m['matmul_bf16_torch']:.0f}; memory read {m['read_gbs']:.1f} GB/s")


if __name__ == "__main__":
    m = measure()
    print(text(m))
