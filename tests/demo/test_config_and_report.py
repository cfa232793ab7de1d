"""The demo's config (configs/toy_demo.py through the one override syntax) and the report's tables
(no training here: the end-to-end run is tests/notebooks/test_quickstart.py)."""

import json
import math

import pytest

from ladder_jax import config_files
from ladder_jax.demo import report
from ladder_jax.demo.run import DemoConfigError, baseline, check, configure, demo_config, main
from ladder_jax.train import stages


def test_the_sizes_and_overrides(tmp_path):
    quick, default = demo_config(tmp_path, quick=True), demo_config(tmp_path)
    assert (quick.demo.name, default.demo.name) == ("quick", "default")
    assert quick.stages.stage1.steps < default.stages.stage1.steps and quick.demo.scenes < default.demo.scenes
    assert quick.compiler_options and not default.compiler_options  # the fast compile pays off for short runs only
    cfg = demo_config(tmp_path, True, ["--config.demo.scenes=12", "--config.demo.eval_fraction=0.25",
                                       "--config.demo.baseline=false"])
    assert (cfg.demo.scenes, cfg.demo.eval_fraction, cfg.demo.baseline) == (12, 0.25, False)
    assert (cfg.workdir, cfg.data.root) == (str(tmp_path / "ladder"), str(tmp_path / "toyworld"))
    with pytest.raises(config_files.ConfigFileError, match="did you mean config.demo.scenes"):
        demo_config(tmp_path, True, ["--config.demo.scene=3"])
    with pytest.raises(config_files.ConfigFileError, match="cannot read 'many' as a int"):
        demo_config(tmp_path, True, ["--config.demo.scenes=many"])
    with pytest.raises(DemoConfigError, match="multiple of 56"):
        check(demo_config(tmp_path, True, ["--config.demo.size=100"]))
    with pytest.raises(stages.CurriculumConfigError, match="stage3.grpo: group_size must be >= 2"):
        check(demo_config(tmp_path, True, ["--config.stages.stage3.grpo.group_size=1"]))


def test_the_curriculum_and_the_baseline_pass_the_config_checks(tmp_path):
    for quick in (True, False):
        cfg = demo_config(tmp_path / "out", quick)
        check(cfg)
        assert stages.enabled(cfg) == ["stage1", "stage2", "cold_start", "stage3"]
        base = baseline(cfg)
        assert stages.enabled(base) == ["stage3"] and base.stages.stage3.steps == cfg.stages.stage3.steps
        assert base.workdir == str(tmp_path / "out" / "stage3_only")


def test_images_are_processed_at_the_rendered_size(tmp_path):
    big = demo_config(tmp_path, overrides=["--config.demo.size=224"]).stages.stage2
    assert (big.min_pixels, big.max_pixels, big.video_max_pixels) == (224 * 224, 224 * 224, 112 * 112)
    assert demo_config(tmp_path).stages.stage2.max_pixels == 112 * 112


def test_the_verb_takes_config_overrides_only(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    configure("demo", parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--set", "scenes=3"])
    args = parser.parse_args(["--quick", "--out", str(tmp_path), "--config.demo.size=100"])
    assert main("demo", args) == 2 and "multiple of 56" in capsys.readouterr().err
    assert not (tmp_path / "config.json").exists()  # refused before anything was written


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
    data = {"config": {"demo": {"name": "quick"}}, "models": {"m": _scores(math.nan, math.inf, 0.5)},
            "data": {"scenes": {"train": 9, "eval": 1}}, "model": {"parameters": 2_000_000},
            "seconds": {"total": 60.0}, "training": {"stage1": {"steps": 2, "first": 6.0, "last": 5.0, "seconds": 3.0}},
            "hf_export": {"folder": "x", "check": {"status": "skipped: torch is not installed"}}, "plots": {}}
    json_path, md_path = report.write(data, tmp_path)
    loaded = json.loads(json_path.read_text())
    assert loaded["models"]["m"]["grounding"]["box_iou"] is None and loaded["models"]["m"]["direct"]["overall"] is None
    assert "skipped: torch is not installed" in md_path.read_text()


def test_cold_start_share_is_checked_and_a_world_made_with_another_is_refused(tmp_path):
    from ladder_jax.demo.run import Phases, prepare_world

    with pytest.raises(DemoConfigError, match="cold_start='some'.*one of"):
        check(demo_config(tmp_path, True, ["--config.demo.cold_start=some"]))
    cfg = demo_config(tmp_path, True, ["--config.demo.cold_start=all"])
    world = tmp_path / "toyworld"
    world.mkdir()
    (world / "toyworld_summary.json").write_text(json.dumps({"reasoning": cfg.demo.reasoning, "cold_start": "one"}))
    with pytest.raises(DemoConfigError, match="cold_start='one', the config asks for 'all'"):
        prepare_world(cfg, Phases(tmp_path / "timings.json"))
    cfg.demo.cold_start = "one"
    assert prepare_world(cfg, Phases(tmp_path / "timings.json")) == world


def test_the_demo_keeps_a_compile_cache_the_user_configured(tmp_path):
    import jax

    from ladder_jax.demo.run import compile_cache

    configured = jax.config.jax_compilation_cache_dir
    try:
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))
        with compile_cache(tmp_path / "demo" / "xla_cache"):
            assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")
        jax.config.update("jax_compilation_cache_dir", None)
        with compile_cache(tmp_path / "demo" / "xla_cache"):  # none configured: the demo's own folder
            assert jax.config.jax_compilation_cache_dir == str(tmp_path / "demo" / "xla_cache")
        assert jax.config.jax_compilation_cache_dir is None
    finally:
        jax.config.update("jax_compilation_cache_dir", configured)
