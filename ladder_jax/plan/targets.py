"""The hardware a config variant names (`config.target`): chips, memory per chip, peak FLOP/s, and
how `plan` compiles for it.

TPU targets compile for their real topology through libtpu (no TPU needed); GPU targets compile
on as many CPU devices as the target has (an estimate: not a GPU compile); "host" is the devices
of this machine (the demo's CPU runs).
"""

from __future__ import annotations

import dataclasses

GIB = 1 << 30


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    platform: str  # "tpu" | "gpu" | "host"
    chips: int  # devices the mesh spans (0 for "host": whatever this machine has)
    hbm_bytes: int  # memory per device
    peak_flops: float  # dense bf16 FLOP/s per device
    topology: str = ""  # libtpu topology name (TPU targets)
    hosts: int = 1  # processes of a run (the batch must also split over them)
    note: str = ""


TARGETS = {t.name: t for t in (
    # v5p: 95 GiB HBM2e, 459 TFLOP/s bf16 per chip; "v5p-32" counts TensorCores (2 per chip): 16 chips, 4 hosts.
    Target("tpu-v5p-32", "tpu", 16, 95 * GIB, 459e12, topology="v5p:2x2x4", hosts=4),
    Target("tpu-v5p-8", "tpu", 4, 95 * GIB, 459e12, topology="v5p:2x2x1", hosts=1),
    # v5e (v5litepod-16): 16 GiB per chip, of which XLA may use 15.75 GiB; 197 TFLOP/s bf16; 4 hosts.
    Target("tpu-v5e-16", "tpu", 16, int(15.75 * GIB), 197e12, topology="v5e:4x4", hosts=4),
    Target("tpu-v5e-32", "tpu", 32, int(15.75 * GIB), 197e12, topology="v5e:4x8", hosts=8),
    Target("tpu-v5e-4", "tpu", 4, int(15.75 * GIB), 197e12, topology="v5e:2x2", hosts=1),
    # v6e (Trillium): 32 GiB, 918 TFLOP/s bf16.
    Target("tpu-v6e-16", "tpu", 16, 32 * GIB, 918e12, topology="v6e:4x4", hosts=4),
    # H100 SXM: 80 GB HBM3 (79.6 GiB; set XLA_PYTHON_CLIENT_MEM_FRACTION near 0.95 to let XLA use it), 989 TFLOP/s dense bf16.
    Target("gpu-8xh100", "gpu", 8, int(79.6 * GIB), 989e12, note="compiled on 8 CPU devices: memory is an estimate"),
    Target("host", "host", 0, 0, 0.0, note="this machine's devices"),
)}


class TargetError(ValueError):
    pass


def get(name: str) -> Target:
    """The target named `name` ("" means "host")."""
    name = name or "host"
    if name not in TARGETS:
        raise TargetError(f"unknown target {name!r}; set config.target to one of {', '.join(sorted(TARGETS))}")
    return TARGETS[name]
