"""One small toy-world data set shared by the data-set tests (built once per session)."""

import pytest

from ladder_jax.data.toyworld import generate

SMALL = dict(size=128, views=4, video_frames=10, eval_fraction=0.25, workers=1)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("toyworld")
    summary = generate(out, 8, 7, **SMALL)
    return out, summary, SMALL
