"""The TPU option for full-sequence attention: Pallas splash attention with segment ids.

Masks become segment ids, so nothing O(L^2) is materialised: text uses a causal mask with
segment = attention_mask (padding only meets padding, and never has an empty row because a
position always sees itself), the vision tower a full mask with segment = frame or window id.
GQA runs the MQA kernel once per KV head over its group of query heads. Off TPU the kernel runs in
Pallas interpret mode, which is how the tests check it against the XLA path on CPU. The kernel is
not auto-partitionable, so under a mesh it runs inside shard_map: batch over (data, fsdp), KV
heads over tensor when they divide.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as sm
from jax.sharding import PartitionSpec as P

_BLOCKS = (512, 256, 128)


class SplashShapeError(ValueError):
    pass


@contextlib.contextmanager
def _host_context():
    from jax._src import config as jax_config  # noqa: PLC0415
    prev = jax_config.device_context.swap_local(None)
    try:
        with jax.sharding.use_abstract_mesh(jax.sharding.AbstractMesh((), ())), \
                jax.default_device(jax.local_devices(backend="cpu")[0]):
            yield
    finally:
        jax_config.device_context.set_local(prev)


@functools.lru_cache(maxsize=None)
def _kernel(group: int, length: int, causal: bool, interpret: bool):
    block = next((b for b in _BLOCKS if length % b == 0), None)
    if block is None:
        raise SplashShapeError(f"splash attention needs sequence lengths that are multiples of 128, got {length}: "
                               "choose length / patch buckets that are, or use attention='xla'")
    one = sm.CausalMask((length, length)) if causal else sm.FullMask((length, length))
    sizes = dict(block_q=block, block_kv=block, block_kv_compute=block, block_q_dkv=block, block_kv_dkv=block,
                 block_kv_dkv_compute=block, block_q_dq=block, block_kv_dq=block)
    # The kernel is cached across traces: its mask tables must be concrete, not tracers of the
    # trace that happened to build it first.
    # Built on this host's CPU, outside any mesh: the tables are constants, also when the program is
    # compiled for devices this host cannot run (a TPU topology in `ladder-jax plan`).
    with jax.ensure_compile_time_eval(), _host_context():
        return sk.make_splash_mqa(sm.MultiHeadMask([one] * group), head_shards=1, q_seq_shards=1,
                                  block_sizes=sk.BlockSizes(**sizes), interpret=interpret)


def _platform() -> str:
    """The platform compiled for: the mesh's (a TPU topology compiled on a CPU host) or the default backend's."""
    device = getattr(jax.sharding.get_abstract_mesh(), "abstract_device", None)
    return device.platform if device is not None else jax.default_backend()


def _local(q, k, v, segments, causal: bool):
    """q (B, T, N, H), k/v (B, T, K, H), segments (B, T) -> (B, T, N, H), on one shard."""
    b, t, n, h = q.shape
    kv_heads = k.shape[2]
    kernel = _kernel(n // kv_heads, t, causal, _platform() != "tpu")
    qg = q.reshape(b, t, kv_heads, n // kv_heads, h).transpose(0, 2, 3, 1, 4) * (h ** -0.5)
    kg, vg = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)

    def one(qh, kh, vh, seg):  # (group, T, H), (T, H), (T, H), (T,)
        return kernel(qh, kh, vh, segment_ids=sk.SegmentIds(q=seg, kv=seg))

    per_head = jax.vmap(one, in_axes=(0, 0, 0, None))
    out = jax.vmap(per_head)(qg, kg, vg, segments.astype(jnp.int32))  # (B, K, group, T, H)
    return out.transpose(0, 3, 1, 2, 4).reshape(b, t, n, h).astype(q.dtype)


def splash_attention(q, k, v, segments, causal: bool):
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return _local(q, k, v, segments, causal)
    batch_axes = tuple(a for a in ("data", "fsdp") if mesh.shape.get(a, 1) > 1)
    ways = 1
    for a in batch_axes:
        ways *= mesh.shape[a]
    batch = batch_axes if batch_axes and q.shape[0] % ways == 0 else None
    tensor = mesh.shape.get("tensor", 1)
    heads = "tensor" if tensor > 1 and k.shape[2] % tensor == 0 else None
    spec = P(batch, None, heads, None)
    fn = jax.shard_map(functools.partial(_local, causal=causal), mesh=mesh,
                       in_specs=(spec, spec, spec, P(batch, None)), out_specs=spec, check_vma=False)
    return fn(q, k, v, segments)
