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
