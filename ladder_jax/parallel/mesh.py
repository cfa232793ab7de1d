"""Device meshes with the axes (data, fsdp, tensor), sized 1 where unused."""

from __future__ import annotations

import argparse
import math

import jax
from jax.sharding import AxisType, Mesh

from ladder_jax.parallel.sharding import MESH_AXES


class MeshError(ValueError):
    pass


def resolve_sizes(sizes, device_count: int) -> tuple[int, int, int]:
    """(data, fsdp, tensor) with a -1 replaced by the rest of the devices; their product must be
    `device_count`."""
    sizes = list(sizes)
    if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise MeshError(f"sizes {tuple(sizes)} must be >= 1, with at most one -1 (the rest of the devices)")
    known = math.prod(s for s in sizes if s != -1)
    if device_count % known or (-1 not in sizes and known != device_count):
        raise MeshError(f"(data, fsdp, tensor) = {tuple(sizes)} does not divide the {device_count} devices; "
                        f"set sizes whose product is {device_count} (or one of them to -1)")
    if -1 in sizes:
        sizes[sizes.index(-1)] = device_count // known
    return tuple(sizes)


def batch_split_error(batch_size: int, micro_batches: int, sizes, process_count: int) -> str | None:
    """Why a global batch cannot split into `micro_batches` micro-batches that each divide over the
    data axes (data x fsdp) and over the processes; None when it can."""
    rows = sizes[0] * sizes[1]
    if micro_batches >= 1 and batch_size % (rows * micro_batches) == 0 and batch_size % process_count == 0:
        return None
    return (f"batch_size={batch_size} must split into micro_batches={micro_batches} that each divide over the data "
            f"axes data x fsdp = {rows} (and over {process_count} processes); use a multiple of "
            f"{math.lcm(rows * max(micro_batches, 1), process_count)}")


def make_mesh(data: int = -1, fsdp: int = 1, tensor: int = 1, devices=None) -> Mesh:
    """A (data, fsdp, tensor) mesh over `devices` (all by default); one size may be -1 (the rest)."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = resolve_sizes((data, fsdp, tensor), len(devices))
    # Auto axes: with_sharding_constraint and GSPMD propagation (JAX 0.10 defaults to Explicit).
    return jax.make_mesh(sizes, MESH_AXES, axis_types=(AxisType.Auto,) * 3, devices=devices)


def mesh_arg(text: str) -> tuple[int, int, int]:
    """A `--mesh` value, "data,fsdp,tensor" sizes (one may be -1: the rest of the devices)."""
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not three comma-separated integers (data,fsdp,tensor)")
    return sizes
