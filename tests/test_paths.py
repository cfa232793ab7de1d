"""Remote paths: gs:// stays a bucket path everywhere a run names a folder (workdir, checkpoints,
model.path, data.root), read and written through etils epath on a real filesystem: fsspec's
in-memory filesystem serving the gs:// scheme (epath's gs backend without TensorFlow is fsspec).
Orbax writes arrays through TensorStore, which speaks to GCS itself (and lists steps with
google-cloud-storage), so the arrays' round trip is shown on a file:// URL instead: a whole stage trains with workdir, data.root and model.path given
as file:// URLs."""

import importlib
import json
import os
import shutil
from pathlib import Path

import pytest
from etils import epath
from fsspec.implementations.memory import MemoryFileSystem

from ladder_jax import config_files
from ladder_jax.data.processor import Processor
from ladder_jax.data.tokenizer import default_corpus, train_tokenizer
from ladder_jax.models.qwen25_vl import checkpoint
from ladder_jax.models.qwen25_vl.config import for_tokenizer, preset
from ladder_jax.paths import PathSchemeError, as_path, is_remote
from ladder_jax.train import curriculum, stage_inputs, stages
from ladder_jax.train.telemetry import MetricsWriter

ROOT = Path(__file__).resolve().parents[1]


class _MemoryGCS(MemoryFileSystem):
    """fsspec's in-memory filesystem under the gs:// scheme (its own store, emptied per test)."""

    protocol = ("gs", "gcs")
    root_marker = ""


@pytest.fixture
def gcs(monkeypatch):
    _MemoryGCS.store, _MemoryGCS.pseudo_dirs = {}, [""]
    for name in ("gs", "gcs"):
        monkeypatch.setitem(importlib.import_module("fsspec.registry")._registry, name, _MemoryGCS)
    _MemoryGCS.clear_instance_cache()
    return _MemoryGCS()


def _no_local_scheme_folders(where: Path):
    assert not list(where.glob("gs:*")) and not list(where.glob("file:*"))


def test_urls_keep_their_scheme_and_unknown_schemes_are_refused(tmp_path):
    assert str(as_path("gs://bucket/run") / "stage1") == "gs://bucket/run/stage1"
    assert is_remote("gs://bucket/run") and is_remote(as_path("s3://b/x")) and not is_remote(tmp_path)
    assert as_path(f"file://{tmp_path}/a") == epath.Path(tmp_path / "a") and not is_remote(f"file://{tmp_path}")
    assert as_path(tmp_path / "x") == epath.Path(tmp_path / "x")
    for bad in ("ftp://host/run", "memory://x", "http://example.com/model"):
        with pytest.raises(PathSchemeError, match="scheme is not supported"):
            as_path(bad)


def test_stage_and_checkpoint_folders_stay_in_the_bucket(gcs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config_files.load(ROOT / "configs" / "toy_demo.py", ["--config.workdir=gs://bucket/run"])
    plans = stages.check_static(cfg)
    assert [p.loop.workdir for p in plans][:2] == ["gs://bucket/run/stage1", "gs://bucket/run/stage2"]
    telemetry = MetricsWriter(plans[0].loop.workdir, tensorboard=False)  # the stage's metrics file, in the bucket
    telemetry.write(1, {"loss": 2.5})
    assert gcs.cat("gs://bucket/run/stage1/metrics.jsonl") == b'{"step": 1, "loss": 2.5}\n'
    _no_local_scheme_folders(tmp_path)


def test_a_checkpoint_in_a_bucket_gives_its_config_and_processor(gcs, tmp_path, monkeypatch):
    """What export-hf, eval and the next stage read beside the arrays: model_config.json and the
    tokenizer / processor files, written to and read from gs:// through epath."""
    monkeypatch.chdir(tmp_path)
    processor = Processor(train_tokenizer(default_corpus(), 300))
    cfg = for_tokenizer(preset("tiny"), processor.ids, len(processor.tokenizer))
    processor.save_pretrained(str(tmp_path / "local"))
    remote = as_path("gs://bucket/ckpt")
    remote.mkdir(parents=True)
    (remote / checkpoint.MODEL_CONFIG).write_text(json.dumps({"hf_config": __import__(
        "ladder_jax.models.qwen25_vl.config", fromlist=["to_hf_dict"]).to_hf_dict(cfg), "dtype": "float32"}))
    copied = checkpoint.copy_side_files(tmp_path / "local", remote)
    assert "tokenizer.json" in copied and gcs.exists("gs://bucket/ckpt/tokenizer.json")
    assert checkpoint.is_params_checkpoint("gs://bucket/ckpt")
    assert checkpoint.read_config("gs://bucket/ckpt") == cfg.replace(param_dtype="float32")
    loaded = Processor.from_pretrained("gs://bucket/ckpt")
    assert loaded.ids == processor.ids and loaded.vision == processor.vision
    text = "<|im_start|>user\nWhere is the chair?<|im_end|>\n"
    assert list(loaded.tokenizer(text)["input_ids"]) == list(processor.tokenizer(text)["input_ids"])
    _no_local_scheme_folders(tmp_path)


def test_a_release_in_a_bucket_must_be_prepared(gcs):
    remote = as_path("gs://bucket/release")
    remote.mkdir(parents=True)
    (remote / "spld_spatial_data.jsonl").write_text("{}\n")
    cfg = config_files.load(ROOT / "configs" / "toy_demo.py", ["--config.data.root=gs://bucket/release"])
    with pytest.raises(stages.CurriculumConfigError, match="must be a `ladder-jax prepare` output"):
        stage_inputs.read_records(cfg)


def test_a_stage_trains_with_every_folder_given_as_a_file_url(tmp_path, monkeypatch):
    """workdir, data.root (a prepared set) and model.path (the first run's final/) as file:// URLs:
    the checkpoints and finals land in those folders, the second run starts from the first's final."""
    from ladder_jax.data.prepare import prepare
    from ladder_jax.data.toyworld.generate import generate

    monkeypatch.chdir(tmp_path)
    generate(tmp_path / "world", 2, seed=0, size=112, views=2, video_frames=4, eval_fraction=0.0, workers=1)
    prepare(tmp_path / "world", tmp_path / "prepared", num_shards=2, workers=1)
    common = ["--config.model.preset=tiny", "--config.order=('stage1',)", f"--config.data.root=file://{tmp_path}/prepared"]
    common += [f"--config.stages.stage1.{k}={v}" for k, v in
               dict(steps=1, batch_size=8, checkpoint_every=1, progress=False, tensorboard=False).items()]
    first = config_files.load(ROOT / "configs" / "toy_demo.py", [f"--config.workdir=file://{tmp_path}/run", *common])
    (outcome,) = curriculum.run(first)
    assert outcome.status == "trained" and (tmp_path / "run" / "stage1" / "final" / "params").is_dir()
    assert (tmp_path / "run" / "stage1" / "checkpoints" / "1").is_dir()
    second = config_files.load(ROOT / "configs" / "toy_demo.py", [
        f"--config.workdir=file://{tmp_path}/run2", "--config.model.init=params", "--config.tokenizer.source=model",
        f"--config.model.path=file://{tmp_path}/run/stage1/final", *common])
    (outcome,) = curriculum.run(second)
    assert outcome.status == "trained" and (tmp_path / "run2" / "stage1" / "final" / "tokenizer.json").is_file()
    _no_local_scheme_folders(tmp_path)
    shutil.rmtree(tmp_path / "world")
    assert os.listdir(tmp_path / "run2" / "stage1" / "final")
