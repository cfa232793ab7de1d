import numpy as np
import pytest

from ladder_jax import VisionLanguageModel
from ladder_jax.models.qwen25_vl.config import preset
from tests.models.qwen25_vl.reference import hf_model


@pytest.fixture(scope="session")
def tiny_cfg():
    return preset("tiny")


@pytest.fixture(scope="session")
def hf_tiny(tiny_cfg):
    return hf_model(tiny_cfg)


@pytest.fixture(scope="session")
def hf_dir(hf_tiny, tmp_path_factory):
    d = tmp_path_factory.mktemp("hf_tiny")
    hf_tiny.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def ours(hf_dir):
    return VisionLanguageModel.from_pretrained(hf_dir)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
