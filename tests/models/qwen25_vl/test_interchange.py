"""HF -> ours -> HF is bit-for-bit; the export loads in transformers; bad folders fail by key."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2_5_VLForConditionalGeneration

from ladder_jax import VisionLanguageModel
from ladder_jax.models.qwen25_vl.config import ConfigError
from ladder_jax.models.safetensors_io import CheckpointFormatError, SafetensorsFolder
from tests.models.qwen25_vl.reference import batch_inputs, build_sample, hf_logits, hf_model


def _tensors(folder):
    f = SafetensorsFolder(folder)
    return {k: np.asarray(f.get(k)) for k in f.keys()}


def _assert_bitwise_equal(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert a[key].tobytes() == b[key].tobytes(), key


def test_round_trip_is_bitwise_and_loads_in_transformers(tiny_cfg, hf_tiny, hf_dir, ours, tmp_path, rng):
    out = ours.save_pretrained(tmp_path / "export", max_shard_bytes=200_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1  # really sharded
    _assert_bitwise_equal(_tensors(hf_dir), _tensors(out))

    reloaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(out).eval()
    inputs = batch_inputs(tiny_cfg, [build_sample(tiny_cfg, rng, [("text", 3), ("image", (4, 6)), ("text", 5)])])
    np.testing.assert_array_equal(hf_logits(reloaded, inputs), hf_logits(hf_tiny, inputs))
    np.testing.assert_allclose(ours(**inputs), hf_logits(reloaded, inputs), atol=1e-4, rtol=0)


def test_untied_bf16_round_trip(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(text=tiny_cfg.text.__class__(**{**tiny_cfg.text.__dict__, "tie_word_embeddings": False}))
    hf = hf_model(cfg, seed=3).to(torch.bfloat16)
    hf.save_pretrained(tmp_path / "src")
    assert "lm_head.weight" in _tensors(tmp_path / "src")
    ours = VisionLanguageModel.from_pretrained(tmp_path / "src", param_dtype="bfloat16")
    ours.save_pretrained(tmp_path / "out")
    _assert_bitwise_equal(_tensors(tmp_path / "src"), _tensors(tmp_path / "out"))


def _corrupt(hf_dir, tmp_path, edit):
    dst = tmp_path / "bad"
    shutil.copytree(hf_dir, dst)
    tensors = load_file(dst / "model.safetensors")
    edit(tensors)
    save_file(tensors, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.pop("model.layers.1.mlp.up_proj.weight"), "missing tensor 'model.layers.1.mlp.up_proj.weight'"),
    (lambda t: t.__setitem__("visual.blocks.0.attn.qkv.bias", torch.zeros(7)), "'visual.blocks.0.attn.qkv.bias' has shape (7,)"),
    (lambda t: t.__setitem__("model.layers.9.mlp.up_proj.weight", torch.zeros(2, 2)), "unexpected tensor 'model.layers.9.mlp.up_proj.weight'"),
])
def test_bad_checkpoint_names_the_key(edit, message, hf_dir, tmp_path):
    with pytest.raises(CheckpointFormatError) as err:
        VisionLanguageModel.from_pretrained(_corrupt(hf_dir, tmp_path, edit))
    assert message in str(err.value)


@pytest.mark.parametrize("patch, message", [
    ({"text_config": {"use_sliding_window": True}}, "use_sliding_window"),
    ({"text_config": {"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}}}, "yarn"),
    ({"text_config": {"rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 2, 2]}}}, "mrope_section"),
    ({"model_type": "llava"}, "model_type"),
])
def test_unsupported_config_fails_before_loading(patch, message, hf_dir, tmp_path):
    dst = tmp_path / "cfg"
    shutil.copytree(hf_dir, dst)
    hf = json.loads((dst / "config.json").read_text())
    for key, value in patch.items():
        hf[key] = {**hf[key], **value} if isinstance(value, dict) else value
    (dst / "config.json").write_text(json.dumps(hf))
    with pytest.raises(ConfigError, match=message):
        VisionLanguageModel.from_pretrained(dst)


def test_flat_hub_config_layout_reads_the_same(hf_dir, tiny_cfg):
    from ladder_jax.models.qwen25_vl.config import from_hf_dict
    nested = json.loads((hf_dir / "config.json").read_text())
    text = nested.pop("text_config")
    flat = {**text, **nested}  # the hub layout: text fields at top level, model_type qwen2_5_vl
    flat["rope_scaling"] = {"type": "mrope", "mrope_section": list(tiny_cfg.text.mrope_section)}
    flat["rope_theta"] = flat.pop("rope_parameters")["rope_theta"]
    assert from_hf_dict(flat) == from_hf_dict(json.loads((hf_dir / "config.json").read_text()))


def test_from_pretrained_never_takes_a_missing_path_for_a_hub_name(tmp_path):
    for name in ("Qwen/Qwen2.5-VL-3B-Instruct", str(tmp_path / "nowhere")):
        with pytest.raises(FileNotFoundError, match="is not a folder on disk .* never downloads"):
            VisionLanguageModel.from_pretrained(name)


@pytest.mark.parametrize("dtype", ["int8", "float64", "float8_e4m3fn"])
def test_an_export_dtype_that_cannot_hold_weights_is_refused(dtype, ours, tmp_path):
    with pytest.raises(ConfigError, match="export dtype must be one of"):
        ours.save_pretrained(tmp_path / "out", dtype=dtype)
    assert not (tmp_path / "out").exists()


def test_a_float16_export_refuses_weights_beyond_its_range(ours, tmp_path):
    import jax

    big = VisionLanguageModel(ours.config, ours.graphdef, jax.tree.map(lambda x: x * 1e6, ours.state), ours.mesh)
    with pytest.raises(ConfigError, match="beyond the range of float16"):
        big.save_pretrained(tmp_path / "out", dtype="float16")
    assert not (tmp_path / "out").exists()
    ours.save_pretrained(tmp_path / "ok", dtype="float16")  # the tiny model's weights fit
    assert _tensors(tmp_path / "ok")["model.norm.weight"].dtype == np.float16


def test_saving_again_into_a_folder_replaces_the_earlier_shards(ours, hf_dir, tmp_path):
    ours.save_pretrained(tmp_path, max_shard_bytes=200_000)
    ours.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("model*")) == ["model.safetensors"]
    _assert_bitwise_equal(_tensors(hf_dir), _tensors(tmp_path))


@pytest.mark.parametrize("value, param_dtype, message", [
    (float("nan"), "float32", "tensor 'model.layers.1.mlp.down_proj.weight' holds NaN or inf as float32"),
    (float("-inf"), "bfloat16", "holds NaN or inf as bfloat16"),
    (1e6, "float16", "holds NaN or inf as float16 (damaged weights, or values beyond the range"),
])
def test_non_finite_weights_are_refused_by_name(value, param_dtype, message, hf_dir, tmp_path):
    bad = _corrupt(hf_dir, tmp_path, lambda t: t["model.layers.1.mlp.down_proj.weight"].view(-1).__setitem__(3, value))
    with pytest.raises(CheckpointFormatError, match=message.replace("(", r"\(")):
        VisionLanguageModel.from_pretrained(bad, param_dtype=param_dtype)


def test_an_export_of_poisoned_weights_is_refused(ours, tmp_path):
    import jax

    nan = VisionLanguageModel(ours.config, ours.graphdef, jax.tree.map(lambda x: x * float("nan"), ours.state), ours.mesh)
    with pytest.raises(CheckpointFormatError, match="holds NaN or inf: these weights are poisoned"):
        nan.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_export_config_carries_the_published_keys_beside_the_nested_ones(tiny_cfg, ours, tmp_path):
    """transformers 4.5x reads the flat keys and text_config.rope_scaling (4.57: same logits as 5.x,
    see the user-path note); 5.x the nested rope_parameters; our reader gets the same config back."""
    from ladder_jax.models.qwen25_vl.config import from_hf_dict

    hf = json.loads((ours.save_pretrained(tmp_path / "export", dtype="bfloat16") / "config.json").read_text())
    t = tiny_cfg.text
    mrope = {"type": "mrope", "rope_type": "default", "mrope_section": list(t.mrope_section)}
    for where in (hf, hf["text_config"]):
        assert where["rope_scaling"] == mrope and where["rope_theta"] == t.rope_theta
        assert where["torch_dtype"] == where["dtype"] == "bfloat16"
    assert hf["text_config"]["rope_parameters"]["mrope_section"] == list(t.mrope_section)
    assert (hf["hidden_size"], hf["num_hidden_layers"], hf["num_key_value_heads"], hf["vocab_size"]) == (
        t.hidden_size, t.num_hidden_layers, t.num_key_value_heads, t.vocab_size)
    assert hf["vision_config"]["in_chans"] == 3 and hf["vision_config"]["spatial_patch_size"] == tiny_cfg.vision.patch_size
    assert from_hf_dict(hf, dtype="float32", param_dtype="float32") == tiny_cfg
