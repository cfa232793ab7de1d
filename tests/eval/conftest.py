"""The eval tests' shared inputs: a tiny random model saved as a HF folder (as `ladder-jax eval
--model` reads it), that model on one device, and small files of every benchmark."""

import jax
import pytest
import torch

from ladder_jax.data.processor import Processor
from ladder_jax.data.tokenizer import default_corpus, special_token_ids, train_tokenizer
from ladder_jax.data.vision_preprocess import PreprocessConfig
from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
from ladder_jax.models.qwen25_vl.config import for_tokenizer, preset
from ladder_jax.parallel.mesh import make_mesh
from tests.eval import bench_files as bf
from tests.models.qwen25_vl.reference import hf_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """Tokenizer, weights and preprocessor config in one folder, as `ladder-jax eval --model` reads it.
    Text weights are scaled up, attention logits most, so that greedy answers differ from prompt to
    prompt (plain random init repeats one token), which makes the batching checks meaningful."""
    folder = tmp_path_factory.mktemp("model")
    tokenizer = train_tokenizer(default_corpus())
    cfg = for_tokenizer(preset("tiny"), special_token_ids(tokenizer), len(tokenizer))
    model = hf_model(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and "visual" not in name:
                sharp = 50.0 if "q_proj" in name or "k_proj" in name else 10.0
                p.mul_(5.0 if "embed" in name else sharp)
    model.save_pretrained(folder)
    small = PreprocessConfig(min_pixels=28 * 28, max_pixels=56 * 56, video_min_pixels=28 * 28,
                         video_max_pixels=56 * 56, num_frames=4)
    Processor(tokenizer, small).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def model(model_dir):
    return VisionLanguageModel.from_pretrained(model_dir, mesh=make_mesh(devices=jax.devices()[:1]))


@pytest.fixture(scope="session")
def processor(model_dir):
    return Processor.from_pretrained(str(model_dir))


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    bf.write_vsi(root / "vsi")
    return {"vsi": root / "vsi", "spbench-si": bf.write_spbench(root / "si", 1),
            "spbench-mv": bf.write_spbench(root / "mv", 3), "cvbench": bf.write_cvbench(root / "cv"),
            "toyworld": bf.write_toyworld(root / "toyworld")}
