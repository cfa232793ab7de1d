"""`import-hf` then `export-hf` through an Orbax checkpoint is bit-for-bit, tokenizer files included."""

import shutil

import numpy as np

from ladder_jax.cli import main
from ladder_jax.data.tokenizer import default_corpus, train_tokenizer
from ladder_jax.models.safetensors_io import SafetensorsFolder


def test_import_then_export_round_trip(hf_dir, tmp_path, capsys):
    src = tmp_path / "hf"
    shutil.copytree(hf_dir, src)
    train_tokenizer(default_corpus()[:50], vocab_size=300).save_pretrained(src)
    assert main(["import-hf", str(src), str(tmp_path / "ckpt"), "--mesh", "2,2,2"]) == 0
    assert main(["export-hf", str(tmp_path / "ckpt"), str(tmp_path / "out"), "--max-shard-gb", "0.0002"]) == 0
    assert "imported" in capsys.readouterr().out
    a, b = SafetensorsFolder(src), SafetensorsFolder(tmp_path / "out")
    assert a.keys() == b.keys()
    for key in a.keys():
        assert np.asarray(a.get(key)).tobytes() == np.asarray(b.get(key)).tobytes(), key
    assert (tmp_path / "out" / "model.safetensors.index.json").exists()
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()


def test_smoke_runs(capsys):
    assert main(["smoke", "--new-tokens", "2"]) == 0
    assert "finite=True" in capsys.readouterr().out
