"""The model config's own `validate` refuses a value outside its meaning, naming the field, for
every source of a config (presets, Python, HF config.json)."""

import dataclasses

import pytest

from ladder_jax.models.qwen25_vl.config import ConfigError, from_hf_dict, preset, to_hf_dict


@pytest.mark.parametrize("part, field, value, message", [
    ("text", "rms_norm_eps", -1, "text.rms_norm_eps must be a finite number > 0, got -1"),
    ("text", "rms_norm_eps", 0.0, "text.rms_norm_eps"),
    ("text", "rms_norm_eps", float("nan"), "text.rms_norm_eps"),
    ("vision", "rms_norm_eps", -1e-6, "vision.rms_norm_eps"),
    ("text", "rope_theta", 0.0, "text.rope_theta must be a finite number > 0"),
    ("vision", "rope_theta", float("inf"), "vision.rope_theta"),
    ("text", "num_hidden_layers", 0, "text.num_hidden_layers must be an integer > 0, got 0"),
    ("text", "vocab_size", -512, "text.vocab_size"),
    ("text", "intermediate_size", 12.5, "text.intermediate_size must be an integer > 0, got 12.5"),
    ("vision", "patch_size", 0, "vision.patch_size"),
    ("vision", "depth", True, "vision.depth must be an integer > 0, got True"),
    ("text", "tie_word_embeddings", "yes", "text.tie_word_embeddings"),
])
def test_a_field_outside_its_meaning_is_refused_by_name(part, field, value, message):
    cfg = preset("tiny")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        cfg.replace(**{part: dataclasses.replace(getattr(cfg, part), **{field: value})})


@pytest.mark.parametrize("field, value", [("image_token_id", 512), ("eos_token_id", -1), ("pad_token_id", "5")])
def test_a_token_id_outside_the_vocabulary_is_refused(field, value):
    with pytest.raises(ConfigError, match=f"{field} must be a token id in \\[0, text.vocab_size=512\\)"):
        preset("tiny").replace(**{field: value})


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["text_config"].update(rms_norm_eps=-1), "text.rms_norm_eps"),
    (lambda d: d["text_config"]["rope_parameters"].update(rope_theta="1e6"), "text.rope_theta must be a number, got '1e6'"),
    (lambda d: d["text_config"]["rope_parameters"].update(rope_theta=-10000), "text.rope_theta must be a finite number > 0"),
    (lambda d: d["text_config"]["rope_parameters"].update(mrope_section=7), "text.mrope_section must be a list"),
    (lambda d: d["vision_config"].update(hidden_size=0), "vision.hidden_size"),
    (lambda d: d.update(vision_config=[1, 2]), "vision_config must be an object"),
    (lambda d: d.update(eos_token_id=[]), "eos_token_id must be a token id"),
])
def test_a_bad_hf_config_json_names_the_field(edit, message):
    d = to_hf_dict(preset("tiny"))
    edit(d)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        from_hf_dict(d)


def test_every_preset_is_valid():
    for name in ("tiny", "demo", "3b", "7b"):
        assert from_hf_dict(to_hf_dict(preset(name))).text == preset(name).text
