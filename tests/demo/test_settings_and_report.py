"""The demo's settings overrides, its config, and the report's tables (no training here: the
end-to-end run is tests/notebooks/test_quickstart.py)."""

import json
import math

import pytest

from ladder_jax.demo import report
from ladder_jax.demo.run import settings_from
from ladder_jax.demo.settings import DEFAULT, QUICK, baseline_config, curriculum_config, vision_config
from ladder_jax.train import stages


def test_overrides_are_typed_and_checked():
    s = settings_from(True, ["scenes=12", "eval_fraction=0.25"])
    assert (s.name, s.scenes, s.eval_fraction, s.stage1_steps) == ("quick", 12, 0.25, QUICK.stage1_steps)
    assert settings_from(False, []) == DEFAULT
    assert settings_from(False, ["fast_compile=true"]).fast_compile
    assert not settings_from(True, ["fast_compile=0"]).fast_compile
    for bad in (["scenes"], ["scene=3"], ["name=x"], ["scenes=many"], ["fast_compile=maybe"], ["size=100"]):
        with pytest.raises(SystemExit, match="--set"):
            settings_from(True, bad)


def test_the_curriculum_and_the_baseline_pass_the_config_checks():
    for s in (QUICK, DEFAULT):
        cfg = curriculum_config(s, "/tmp/w", "/tmp/d")
        stages.check_static(cfg)
        assert stages.enabled(cfg) == ["stage1", "stage2", "cold_start", "stage3"]
        assert cfg.stages.stage3.grpo.max_new_tokens == s.reasoning_tokens
        base = baseline_config(s, "/tmp/b", "/tmp/d")
        assert stages.enabled(base) == ["stage3"] and base.stages.stage3.steps == cfg.stages.stage3.steps
    assert QUICK.stage1_steps < DEFAULT.stage1_steps and QUICK.scenes < DEFAULT.scenes


def test_images_are_processed_at_the_rendered_size():
    big = curriculum_config(DEFAULT.replace(size=224), "/tmp/w", "/tmp/d").stages.stage2
    assert (big.min_pixels, big.max_pixels, big.video_max_pixels) == (224 * 224, 224 * 224, 112 * 112)
    assert vision_config(4).max_pixels == 112 * 112
    with pytest.raises(ValueError, match="multiple of 56"):
        vision_config(4, 140)


def _scores(iou, overall, reward):
    return {"grounding": {"box_iou": iou}, "direct": {"overall": overall, "numeric_mra": overall,
                                                      "choice_accuracy": math.nan, "tasks": {"room size": overall}},
            "reasoning": {"format_reward": reward, "accuracy_reward": 0.0, "reward": reward}}


def test_tables_show_every_model_and_missing_values_as_dashes():
    models = {"untrained": _scores(0.0, 0.0, 0.0), "stage2": _scores(0.25, 0.5, 1.0)}
    table = report.terminal_table(models)
    lines = table.splitlines()
    assert lines[0].startswith("model") and lines[2].startswith("untrained") and lines[3].startswith("stage2")
    assert "0.250" in lines[3] and "–" in lines[3]
    assert report.per_type(models, "direct") == {"untrained": {"room size": 0.0}, "stage2": {"room size": 0.5}}


def test_report_json_is_standard_json(tmp_path):
    data = {"settings": {"name": "quick"}, "models": {"m": _scores(math.nan, math.inf, 0.5)},
            "data": {"scenes": {"train": 9, "eval": 1}}, "model": {"parameters": 2_000_000},
            "seconds": {"total": 60.0}, "training": {"stage1": {"steps": 2, "first": 6.0, "last": 5.0, "seconds": 3.0}},
            "hf_export": {"folder": "x", "check": {"status": "skipped: torch is not installed"}}, "plots": {}}
    json_path, md_path = report.write(data, tmp_path)
    loaded = json.loads(json_path.read_text())
    assert loaded["models"]["m"]["grounding"]["box_iou"] is None and loaded["models"]["m"]["direct"]["overall"] is None
    assert "skipped: torch is not installed" in md_path.read_text()
