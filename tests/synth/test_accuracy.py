"""Answers against exact analytic geometry: clean depth meets the bar, corrupted depth degrades gracefully."""

import pytest

from tests.synth.accuracy import measure


@pytest.fixture(scope="module")
def exact():
    return measure(n_scenes=20)


def test_exact_depth_meets_the_bar(exact):
    # footprint and base gates measure fewer objects (was > 200 lengths before them), all of them right
    assert exact["n_qualitative"] > 1000 and exact["n_quantitative"] > 50
    assert exact["qualitative"] >= 0.99
    assert exact["quantitative"] >= 0.95


def test_corrupted_depth_degrades_gracefully(exact):
    noisy = measure(n_scenes=6, noise=0.02, bleed=1)
    scaled = measure(n_scenes=6, scale=1.2)
    assert noisy["qualitative"] >= 0.95 and scaled["qualitative"] >= 0.95  # relations survive
    assert noisy["quantitative"] < exact["quantitative"]  # lengths pay for it, and are not all lost
    assert scaled["quantitative"] < 0.2  # a 20% scale error moves every length by 20%: not hidden
