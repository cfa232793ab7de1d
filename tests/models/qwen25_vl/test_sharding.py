"""On 8 fake CPU devices a (2, 2, 2) mesh gives the 1-device logits, with parameters sharded by the rules."""

import jax
import numpy as np
from flax import nnx
from jax.sharding import PartitionSpec as P

from ladder_jax import VisionLanguageModel
from ladder_jax.parallel.mesh import make_mesh
from tests.models.qwen25_vl.reference import batch_inputs, build_sample


def test_sharded_forward_equals_single_device(hf_dir, tiny_cfg, rng):
    assert jax.device_count() == 8
    single = VisionLanguageModel.from_pretrained(hf_dir, mesh=make_mesh(devices=jax.devices()[:1]))
    sharded = VisionLanguageModel.from_pretrained(hf_dir, mesh=make_mesh(data=2, fsdp=2, tensor=2))
    layouts = [[("text", 3), ("image", (4, 6)), ("text", 4)], [("text", 2), ("video", (2, 4, 4)), ("text", 5)],
               [("text", 13)], [("text", 1), ("image", (4, 4)), ("text", 8)]]
    lengths = [len(build_sample(tiny_cfg, np.random.default_rng(0), p)[0]) for p in layouts]
    samples = [build_sample(tiny_cfg, rng, p, pad_right=max(lengths) - n) for p, n in zip(layouts, lengths)]
    inputs = batch_inputs(tiny_cfg, samples)
    np.testing.assert_allclose(sharded(**inputs), single(**inputs), atol=1e-5, rtol=0)

    specs = {"/".join(map(str, p)): v.get_value().sharding.spec for p, v in nnx.to_flat_state(sharded.state)}
    assert specs["decoder/layers/mlp/gate_proj/kernel"] == P(None, "fsdp", "tensor")
    assert specs["decoder/layers/o_proj/kernel"] == P(None, "tensor", "fsdp")
    assert specs["embed_tokens"] == P("tensor", "fsdp")
    assert specs["visual/blocks/qkv/kernel"] == P(None, "fsdp", "tensor")
    assert specs["decoder/norm/weight"] == P(None)
    gate = dict(nnx.to_flat_state(sharded.state))[("decoder", "layers", "mlp", "gate_proj", "kernel")].get_value()
    assert gate.addressable_shards[0].data.shape == (2, 32, 64)  # (layers, 64/2 fsdp, 128/2 tensor)
