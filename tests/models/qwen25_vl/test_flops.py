"""The FLOPs formula against the model it describes: its parameter count is the model's matrices,
and its parts add up (training = 3 forward passes; decoding pays attention over the whole cache)."""

import numpy as np
import pytest
from flax import nnx

from ladder_jax.models.qwen25_vl import flops
from ladder_jax.models.qwen25_vl.api import abstract_model
from ladder_jax.models.qwen25_vl.config import preset
from tests.train.tiny import CFG


def test_the_text_parameter_count_is_the_models_matrices():
    _, abstract = abstract_model(CFG)
    flat = {"/".join(map(str, p)): v.get_value() for p, v in nnx.to_flat_state(abstract)}
    matrices = sum(int(np.prod(x.shape)) for k, x in flat.items()
                   if k.startswith("decoder/layers") and k.endswith("kernel")) + flat["embed_tokens"].size
    assert flops.text_params(CFG) == matrices
    assert flops.text_params(preset("3b")) == pytest.approx(3.09e9, rel=0.01)  # Qwen2.5-VL-3B text tower


def test_the_parts_add_up():
    t = CFG.text
    per_key = 4 * t.num_hidden_layers * t.num_attention_heads * t.head_dim
    assert flops.train(CFG, 8, 32, 16) == 3 * flops.forward(CFG, 8, 32, 16) > 6 * flops.text_params(CFG) * 8 * 32
    assert flops.forward(CFG, 8, 32, 0) == 8 * 32 * (2 * flops.text_params(CFG) + per_key * 32)
    assert flops.decode(CFG, 4, 10, 64) - flops.decode(CFG, 4, 10, 32) == 4 * 10 * per_key * 32
    assert flops.vision_forward(CFG, 2, 64) == 2 * flops.vision_forward(CFG, 1, 64) > 0
