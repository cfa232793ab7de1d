"""The 3B / 7B presets describe the public checkpoints: same parameter count and shapes as
transformers builds from the same config (on the meta device: no memory is allocated)."""

import jax
import pytest
import torch
from flax import nnx
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from ladder_jax.models.qwen25_vl.api import abstract_model
from ladder_jax.models.qwen25_vl.config import preset, to_hf_dict
from ladder_jax.models.qwen25_vl.params import _hf_shape, _path, _rows_by_path


@pytest.mark.parametrize("name, published", [("3b", 3_754_622_976), ("7b", 8_292_166_656)])
def test_preset_matches_transformers_and_the_published_size(name, published):
    cfg = preset(name)
    hf = to_hf_dict(cfg)
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(
            Qwen2_5_VLConfig(**{k: v for k, v in hf.items() if k not in ("architectures", "model_type")}))
    theirs = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if cfg.text.tie_word_embeddings:
        theirs.pop("lm_head.weight")
    _, abstract = abstract_model(cfg)
    ours = {}
    rows = _rows_by_path(cfg)
    for path, var in nnx.to_flat_state(abstract):
        keys, kind, stacked = rows[_path(path)]
        shape = tuple(var.get_value().shape)
        for key in keys:
            ours[key] = _hf_shape(shape[1:] if stacked else shape, kind, cfg)
    assert ours == {k.replace("model.language_model.", "model.").replace("model.visual.", "visual."): v
                    for k, v in theirs.items()}
    assert sum(x.size for x in jax.tree.leaves(abstract)) == published
