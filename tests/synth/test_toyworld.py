"""The engine on toy-world scene folders: facts agree with the toy world's exact geometry, corrupted
depth degrades them gracefully, and `ladder-jax synth` output reads back as a valid release."""

import argparse

import pytest

from ladder_jax.data.spld import read_release
from ladder_jax.synth import cli
from tests.synth.toyworld_accuracy import make_scenes, measure


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return make_scenes(tmp_path_factory.mktemp("toyworld"), 16, seed=3)


@pytest.fixture(scope="module")
def exact(folders):
    return measure(folders)[0]


def test_exact_depth_meets_the_bar(exact):
    assert exact["n_qualitative"] > 700 and exact["n_quantitative"] > 25
    assert exact["qualitative"] >= 0.99
    assert exact["quantitative"] >= 0.95


def test_corrupted_depth_degrades_gracefully(folders, exact):
    noisy = measure(folders[:8], {"noise": 0.01, "bleed": 1})[0]
    scaled = measure(folders[:8], {"scale": 1.2})[0]
    assert noisy["qualitative"] >= 0.95 and scaled["qualitative"] >= 0.95
    assert scaled["quantitative"] < 0.3  # a 20% scale error moves every length by 20%: it shows


def test_synth_output_on_toyworld_reads_as_a_valid_release(folders, tmp_path):
    parser = argparse.ArgumentParser()
    cli.configure("synth", parser)
    assert cli.main("synth", parser.parse_args(["--scenes", str(folders[0].parent), "--out", str(tmp_path)])) == 0
    records, report = read_release(tmp_path)
    assert report.rejections == [] and report.num_accepted == len(records) > 100
    assert {r.kind for r in records} == {"spatial", "grounding"}


def test_synth_records_train_through_stage_2_unchanged(folders, tmp_path):
    """Synthesized records go through the stage-2 pipeline and SFT steps with no conversion."""
    import jax
    import numpy as np

    from ladder_jax.data.pipeline import Pipeline, PipelineConfig
    from ladder_jax.data.processor import Processor
    from ladder_jax.models.qwen25_vl.inputs import TRAIN_KEYS
    from ladder_jax.data.tokenizer import default_corpus, special_token_ids, train_tokenizer
    from ladder_jax.models.qwen25_vl.api import init_state
    from ladder_jax.models.qwen25_vl.config import for_tokenizer, preset
    from ladder_jax.parallel.mesh import make_mesh
    from ladder_jax.train.optim import OptimConfig
    from ladder_jax.train.sft import make_train_step
    from tests.train.tiny import FAST_COMPILE

    parser = argparse.ArgumentParser()
    cli.configure("synth", parser)
    cli.main("synth", parser.parse_args(["--scenes", str(folders[0].parent), "--out", str(tmp_path)]))
    records, _ = read_release(tmp_path)
    tokenizer = train_tokenizer(default_corpus() + [r.question for r in records[:200]], vocab_size=600)
    cfg = for_tokenizer(preset("tiny"), special_token_ids(tokenizer), len(tokenizer))
    pipeline = Pipeline(records, Processor(tokenizer), PipelineConfig("stage2", global_batch_size=4, seed=0),
                        data_root=tmp_path / "images", shard_index=0, shard_count=1)
    mesh = make_mesh(devices=jax.devices()[:1])
    graphdef, state = init_state(cfg, mesh)
    step = make_train_step(graphdef, state, OptimConfig(learning_rate=1e-3, total_steps=4), mesh,
                           compiler_options=FAST_COMPILE)
    opt_state = step.init_opt_state(state)
    iterator = iter(pipeline)
    losses = []
    for _ in range(2):
        batch = {k: v for k, v in next(iterator).items() if k in TRAIN_KEYS}
        state, opt_state, metrics = step.step(state, opt_state, batch, jax.random.key(0))
        losses.append(float(metrics["loss"]))
    assert np.isfinite(losses).all() and iterator.report.num_rejected == 0
