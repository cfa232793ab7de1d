"""The one table that maps logical axis names onto the mesh (data, fsdp, tensor).

Parameters name their axes where they are created (`layers.param`); activations use the
`batch` name. A mesh axis is dropped for a dimension it does not divide (a tiny model's 2 KV
heads on a 4-way tensor axis stay replicated), so every preset runs on every mesh.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

RULES: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("batch", ("data", "fsdp")),
    ("layers", None),
    ("vocab", ("tensor",)),
    ("embed", ("fsdp",)),
    ("mlp", ("tensor",)),
    ("mlp2", None),
    ("heads", ("tensor",)),
    ("kv_heads", ("tensor",)),
    ("qkv", ("tensor",)),
    ("patch", None),
    ("norm", None),
)
_RULES = dict(RULES)


def spec_for(shape, axes, mesh, without: tuple[str, ...] = ()) -> PartitionSpec:
    """PartitionSpec for an array of `shape` whose dimensions carry logical `axes`; mesh axes in
    `without` are left out (the array is replicated over them)."""
    if len(shape) != len(axes):
        raise ValueError(f"shape {shape} has {len(shape)} dims but logical axes {axes} name {len(axes)}")
    out, used = [], set()
    for dim, name in zip(shape, axes):
        if name not in _RULES:
            raise KeyError(f"logical axis {name!r} has no rule in ladder_jax/parallel/sharding.py RULES")
        mesh_axes = [a for a in (_RULES[name] or ()) if a not in used and a not in without and mesh.shape.get(a, 1) > 1]
        size = 1
        for a in mesh_axes:
            size *= mesh.shape[a]
        if not mesh_axes or dim % size:
            out.append(None)
            continue
        used.update(mesh_axes)
        out.append(tuple(mesh_axes) if len(mesh_axes) > 1 else mesh_axes[0])
    return PartitionSpec(*out)


def _is_var(x):
    return isinstance(x, nnx.Variable)


def state_shardings(state, mesh):
    """NamedShardings for an nnx State (abstract or concrete) whose Params carry `axes` metadata."""
    def one(v):
        value = v.get_value() if hasattr(v, "get_value") else v.value
        return NamedSharding(mesh, spec_for(value.shape, v.get_metadata()["axes"], mesh))
    return jax.tree.map(one, state, is_leaf=_is_var)


def gathered_for_decode(state, dtype, parts):
    """Inside a jit: the parameters under the top-level names `parts` (the ones a decode step
    reads on every token) cast to the compute `dtype` (floating ones) and gathered over the data
    axes (data, fsdp), still split over `tensor`, under the jit's mesh; the rest unchanged. A decode loop
    that reads these once per step would otherwise all-gather its FSDP-sharded float32 weights
    every token (a 3B rollout of 1,024 tokens on 16 chips: ~15 TB per chip). Exact: the model
    casts every parameter to `dtype` where it uses it."""
    mesh = jax.sharding.get_abstract_mesh()

    def one(path, v):
        x, axes = v.get_value(), v.get_metadata()["axes"]
        if getattr(path[0], "key", None) not in parts:
            return v
        if mesh.empty:
            return v.replace(value=x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x)
        if jnp.issubdtype(x.dtype, jnp.floating):
            # Cast on the shards, pinned there: left to propagation, XLA gathers float32 and casts after.
            x = jax.lax.with_sharding_constraint(x.astype(dtype), spec_for(x.shape, axes, mesh))
        return v.replace(value=jax.lax.with_sharding_constraint(x, spec_for(x.shape, axes, mesh, without=("data", "fsdp"))))
    return jax.tree_util.tree_map_with_path(one, state, is_leaf=_is_var)


def batch_sharding(mesh, ndim: int) -> NamedSharding:
    """Leading (batch) dimension over data x fsdp, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(("data", "fsdp"), *([None] * (ndim - 1))))


def constrain_batch(x):
    """`x` with its leading (batch) dimension over the data axes of the mesh jit runs under
    (`jax.sharding.use_abstract_mesh` / `jax.set_mesh`) and its other dimensions replicated; `x`
    unchanged without such a mesh or when the data axes do not divide the batch. Anchors FSDP's
    activations: left to propagation, XLA may carry the weights' `embed` sharding into the
    activations and replicate the batch instead (XLA:CPU does where no splash shard_map pins the
    batch: a 3B SFT step on 8 devices then held all 16 rows' logits on every device, 87 GiB)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or not x.ndim:
        return x
    axis = spec_for(x.shape[:1], ("batch",), mesh)[0]
    if axis is None:
        return x
    return jax.lax.with_sharding_constraint(x, PartitionSpec(axis, *([None] * (x.ndim - 1))))


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())
