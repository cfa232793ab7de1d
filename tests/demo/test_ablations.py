"""`ladder-jax demo --ablations`: each variant's curriculum (its stages, seed, workdir, which stages
it shares with the full ladder), the claims table on made-up scores, and a tiny end-to-end run over
one seed that trains only what no other variant already trained and resumes without training."""

import json
import os

import pytest

from ladder_jax.demo import ablations
from ladder_jax.demo.run import DemoConfigError, demo_config, main, configure
from ladder_jax.train import stages

TINY = ["--config.demo.scenes=10", "--config.demo.vision_pretrain.steps=2", "--config.demo.eval_fraction=0.2", "--config.stages.stage1.steps=2",
        "--config.stages.stage2.steps=2", "--config.stages.cold_start.steps=1", "--config.stages.stage3.steps=1",
        "--config.demo.grounding_items=2", "--config.demo.spatial_items=2",
        "--config.stages.stage3.grpo.max_new_tokens=8"]


def test_each_variant_is_the_demo_curriculum_without_its_stages(tmp_path):
    cfg = demo_config(tmp_path, quick=True)
    for variant, order in [("full", ["stage1", "stage2", "cold_start", "stage3"]),
                           ("no_stage1", ["stage2", "cold_start", "stage3"]),
                           ("no_stage2", ["stage1", "cold_start", "stage3"]), ("no_stage3", ["stage1", "stage2"])]:
        v = ablations.variant_config(cfg, tmp_path, variant, 7)
        assert stages.enabled(v) == order and v.seed == 7
        assert (v.workdir, v.data.root) == (str(tmp_path / "seed7" / variant), str(tmp_path / "toyworld"))
        for stage in order:  # every stage trains as the demo's does
            assert v.stages[stage].to_dict() == cfg.stages[stage].to_dict()
        stages.check_static(v)
    assert {v: ablations.shared_stages(cfg, v) for v in ablations.VARIANTS} == {
        "full": (), "no_stage1": (), "no_stage2": ("stage1",), "no_stage3": ("stage1", "stage2")}
    assert ablations.rows(cfg) == {"stage1": ("full", "stage1"), "stage2": ("full", "stage2"),
                                   "cold_start": ("full", "cold_start"), "full": ("full", "stage3"),
                                   "no_stage1": ("no_stage1", "stage3"), "no_stage2": ("no_stage2", "stage3"),
                                   "no_stage3": ("no_stage3", "stage2")}
    asked = {row: ablations.asked_as(cfg, *where) for row, where in ablations.rows(cfg).items()}
    assert asked == {"stage1": "direct", "stage2": "direct", "cold_start": "reasoning", "full": "reasoning",
                     "no_stage1": "reasoning", "no_stage2": "reasoning", "no_stage3": "direct"}
    assert ablations.seeds_of(cfg, 3) == [cfg.seed, cfg.seed + 1, cfg.seed + 2]


def test_a_stage_with_no_steps_drops_out_of_every_variant(tmp_path):
    cfg = demo_config(tmp_path, True, ["--config.stages.cold_start.steps=0"])
    assert ablations.trained(cfg, "no_stage2") == ("stage1", "stage3")
    assert ablations.shared_stages(cfg, "no_stage3") == ("stage1", "stage2")
    assert ablations.rows(cfg)["full"] == ("full", "stage3") and "cold_start" not in ablations.rows(cfg)
    assert ablations.asked_as(cfg, "full", "stage3") == "reasoning"


def _scores(direct: float, reasoning: float, accuracy: float = 0.0, iou: float = 0.0, named: float = 0.0,
            looks: bool = True) -> dict:
    """Made-up scores; with `looks`, half of each with other rooms' pictures (else the same: blind)."""
    other = 0.5 if looks else 1.0
    return {"direct": {"overall": direct, "overall_other_pictures": direct * other},
            "reasoning": {"overall": reasoning, "format_reward": 1.0, "accuracy_reward": accuracy},
            "grounding": {"box_iou": iou, "named": named, "box_iou_other_pictures": iou * other}}


def test_the_claims_follow_the_numbers(tmp_path):
    cfg = demo_config(tmp_path, quick=True)
    good = {"stage1": _scores(0.1, 0.0, iou=0.3, named=0.8), "stage2": _scores(0.40, 0.0),
            "cold_start": _scores(0.0, 0.42, 0.40), "full": _scores(0.0, 0.50, 0.48),
            "no_stage1": _scores(0.0, 0.47), "no_stage2": _scores(0.0, 0.30), "no_stage3": _scores(0.40, 0.0)}
    report = ablations.summarize(cfg, {row: {0: s, 1: s} for row, s in good.items()}, position_blind=0.1)
    assert [c["holds"] for c in report["claims"]] == [True] * 6
    assert report["rows"]["no_stage3"]["score"]["mean"] == 0.40  # asked directly: it never learnt to reason
    assert report["rows"]["full"]["score"] == {"mean": 0.5, "std": 0.0, "min": 0.5, "max": 0.5, "seeds": [0.5, 0.5]}
    bad = dict(good, no_stage2=_scores(0.0, 0.46), stage1=_scores(0.1, 0.0, iou=0.15, named=0.8),
               full=_scores(0.0, 0.39, 0.39), stage2=_scores(0.40, 0.0, looks=False))
    report = ablations.summarize(cfg, {row: {0: s} for row, s in bad.items()}, position_blind=0.1)
    assert [c["holds"] for c in report["claims"]] == [False] * 6
    text = ablations.markdown(report)
    assert "| no_stage2 | stage1 → cold_start → stage3 | reasoning | 0.460 | -7.0 | 9.4 |" in text
    assert "**does not hold**: every ablation ends below the full ladder" in text
    missing = {row: {0: s} for row, s in good.items()} | {"no_stage1": {0: _scores(0.0, None)}}
    report = ablations.summarize(cfg, missing, position_blind=0.1)  # e.g. no spatial question scored
    assert [c["holds"] for c in report["claims"]] == [True, True, None, True, True]
    assert "**undecided (a score is missing)**: every ablation ends below" in ablations.markdown(report)


def test_seeds_without_ablations_is_refused_before_any_compute(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    configure("demo", parser)
    assert main("demo", parser.parse_args(["--out", str(tmp_path / "x"), "--seeds", "2"])) == 2
    assert "--seeds counts the ablation's seeds; add --ablations" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(DemoConfigError, match="at least one seed"):
        ablations.run(demo_config(tmp_path, quick=True), tmp_path / "y", 0)


def test_end_to_end_each_model_is_trained_once_and_a_second_start_resumes(tmp_path):
    out = tmp_path / "abl"
    cfg = demo_config(out, True, TINY + ["--config.seed=5"])
    report = ablations.run(cfg, out, 1)
    seeds = [5]
    assert report["seeds"] == seeds
    for seed in seeds:
        root = out / f"seed{seed}"
        assert os.readlink(root / "no_stage2" / "stage1") == os.path.join("..", "full", "stage1")
        assert os.readlink(root / "no_stage3" / "stage2") == os.path.join("..", "full", "stage2")
        assert not (root / "no_stage1" / "stage2").is_symlink()  # from the random init: trained on its own
        for variant, order in ablations.VARIANTS.items():
            written = json.loads((root / variant / "config.json").read_text())
            assert tuple(written["order"]) == order and written["seed"] == seed
            # every variant of a seed starts from that seed's stage-0 tower (and its random language model)
            assert (written["model"]["init"], written["model"]["path"]) == ("params", str(root / "vision_pretrain" / "final"))
            assert (root / variant / "tokenizer").resolve() == (out / "tokenizer").resolve()
    trained = sorted(k for k in json.loads((out / "timings.json").read_text()) if k.startswith("train"))
    assert trained == sorted(f"train seed{s} {v} {stage}" for s in seeds for v, stage in
                             [("full", "stage1"), ("full", "stage2"), ("full", "cold_start"), ("full", "stage3"),
                              ("no_stage1", "stage2"), ("no_stage1", "cold_start"), ("no_stage1", "stage3"),
                              ("no_stage2", "cold_start"), ("no_stage2", "stage3")])
    evals = sorted(p.stem for p in (out / "evals").glob("*.json"))
    assert evals == sorted(f"seed{s}-{m}" for s in seeds for m in
                           ["full-stage1", "full-stage2", "full-cold_start", "full-stage3", "no_stage1-stage3",
                            "no_stage2-stage3"])  # no_stage3 is the full ladder's stage-2 model, scored once
    rows = report["rows"]
    assert rows["no_stage3"]["score"] == rows["stage2"]["score"] and len(rows["full"]["score"]["seeds"]) == 1
    assert (out / "ablations.png").stat().st_size > 0 and "## Claims" in (out / "ablations.md").read_text()

    before = (out / "timings.json").read_text()
    again = ablations.run(demo_config(out, True, TINY + ["--config.seed=5"]), out, 1)
    assert json.loads((out / "timings.json").read_text()).keys() == json.loads(before).keys()
    assert again["rows"] == report["rows"]
