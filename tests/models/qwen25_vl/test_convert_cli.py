"""`import-hf` then `export-hf` through an Orbax checkpoint is bit-for-bit, tokenizer files included;
bad input is refused in one line (exit 2) before any work; output folders are complete or absent
and never replaced without --overwrite."""

import json
import shutil

import numpy as np
import pytest

from ladder_jax.cli import main
from ladder_jax.data.tokenizer import default_corpus, train_tokenizer
from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
from ladder_jax.models.safetensors_io import INDEX, SINGLE, SafetensorsFolder


@pytest.fixture(scope="module")
def src(hf_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("src") / "hf"
    shutil.copytree(hf_dir, folder)
    train_tokenizer(default_corpus()[:50], vocab_size=300).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def ckpt(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "ckpt"
    assert main(["import-hf", str(src), str(out), "--mesh", "2,2,2"]) == 0
    return out


def _same_tensors(a, b):
    a, b = SafetensorsFolder(a), SafetensorsFolder(b)
    assert a.keys() == b.keys()
    for key in a.keys():
        assert np.asarray(a.get(key)).tobytes() == np.asarray(b.get(key)).tobytes(), key


def _refused(capsys, verb, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ladder-jax {verb}: ") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err


def test_import_then_export_round_trip(src, ckpt, tmp_path, capsys):
    assert main(["export-hf", str(ckpt), str(tmp_path / "out"), "--max-shard-gb", "0.0002"]) == 0
    assert "exported" in capsys.readouterr().out
    _same_tensors(src, tmp_path / "out")
    assert (tmp_path / "out" / INDEX).exists()
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left behind


def test_an_imported_checkpoint_is_self_contained(src, ckpt, tmp_path, rng):
    """The tokenizer files sit beside model_config.json: the checkpoint alone loads as a model and
    a processor (what eval and the next stage read); a checkpoint of the earlier layout (files in
    hf_files/) reads and exports the same."""
    from ladder_jax.data.preprocessor_config import save_preprocess_config
    from ladder_jax.data.processor import Processor
    from ladder_jax.data.vision_preprocess import PreprocessConfig
    from ladder_jax.models.qwen25_vl.config import preset
    from tests.models.qwen25_vl.reference import batch_inputs, build_sample

    assert (ckpt / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()
    assert not (ckpt / "hf_files").exists()
    cfg = preset("tiny")
    inputs = batch_inputs(cfg, [build_sample(cfg, rng, [("text", 3), ("image", (4, 6)), ("text", 5)])])
    np.testing.assert_array_equal(VisionLanguageModel.from_pretrained(ckpt)(**inputs),
                                  VisionLanguageModel.from_pretrained(src)(**inputs))
    legacy = tmp_path / "legacy"
    shutil.copytree(ckpt, legacy)
    (legacy / "hf_files").mkdir()
    for f in list(legacy.iterdir()):
        if f.is_file() and f.name != "model_config.json":
            f.rename(legacy / "hf_files" / f.name)
    save_preprocess_config(PreprocessConfig(max_pixels=12345 * 4), str(legacy / "hf_files"))
    processor = Processor.from_pretrained(str(legacy))
    text = "<|im_start|>user\nWhere is the chair?<|im_end|>\n"
    want = train_tokenizer(default_corpus()[:50], vocab_size=300)(text)["input_ids"]
    assert processor.tokenizer(text)["input_ids"] == want and processor.vision.max_pixels == 12345 * 4
    assert main(["export-hf", str(legacy), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()
    assert Processor.from_pretrained(str(tmp_path / "out")).vision == processor.vision


def test_export_over_an_earlier_export_needs_overwrite_and_leaves_no_stale_shard(src, ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export-hf", str(ckpt), str(out), "--max-shard-gb", "0.0002"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["export-hf", str(ckpt), str(out)]) == 2
    _refused(capsys, "export-hf", str(out), "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (out / "notes.txt").write_text("mine")
    assert main(["export-hf", str(ckpt), str(out), "--overwrite"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert SINGLE in names and INDEX not in names and not [n for n in names if n.startswith("model-")]
    assert "notes.txt" not in names  # --overwrite replaces the folder, it does not merge into it
    _same_tensors(src, out)


def test_import_over_an_earlier_checkpoint_needs_overwrite(src, ckpt, tmp_path, capsys):
    dst = tmp_path / "ckpt"
    shutil.copytree(ckpt, dst)
    assert main(["import-hf", str(src), str(dst)]) == 2
    _refused(capsys, "import-hf", "not empty", "--overwrite")
    assert main(["import-hf", str(src), str(dst), "--overwrite", "--param-dtype", "bfloat16"]) == 0
    assert json.loads((dst / "model_config.json").read_text())["param_dtype"] == "bfloat16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_a_failed_export_leaves_the_old_folder_whole(ckpt, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert main(["export-hf", str(ckpt), str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(self, out_dir, **kw):
        (out_dir / SINGLE).write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(VisionLanguageModel, "save_pretrained", crash)
    capsys.readouterr()
    assert main(["export-hf", str(ckpt), str(out), "--overwrite"]) == 1  # one line, not a traceback
    assert "RuntimeError: disk full" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _hf_copy(hf_dir, tmp_path, edit):
    dst = tmp_path / "hf"
    shutil.copytree(hf_dir, dst)
    edit(dst)
    return dst


def _set_config(folder, **text):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["text_config"].update(text)
    (folder / "config.json").write_text(json.dumps(cfg))


def _shard_and_drop_one(folder):
    VisionLanguageModel.from_pretrained(folder).save_pretrained(folder / "sharded", max_shard_bytes=200_000)
    (folder / SINGLE).unlink()
    for p in (folder / "sharded").iterdir():
        p.replace(folder / p.name)
    shards = sorted(set(json.loads((folder / INDEX).read_text())["weight_map"].values()))
    (folder / shards[1]).unlink()


@pytest.mark.parametrize("edit, needles", [
    (lambda d: _set_config(d, rms_norm_eps=-1), ["text.rms_norm_eps must be a finite number > 0, got -1"]),
    (lambda d: _set_config(d, num_attention_heads=0), ["text.num_attention_heads must be an integer > 0"]),
    (lambda d: (d / "config.json").write_text("{not json"), ["config.json: not valid JSON"]),
    (lambda d: (d / SINGLE).write_bytes((d / SINGLE).read_bytes()[:-3]), [SINGLE, "truncated", "re-download"]),
    (lambda d: (d / SINGLE).write_bytes(b""), [SINGLE, "truncated (0 bytes"]),
    (_shard_and_drop_one, [INDEX, "-of-0000", "is listed in the index but missing"]),
    (lambda d: shutil.rmtree(d), ["is not a folder on disk", "never downloads"]),
])
def test_import_refuses_bad_input_in_one_line(edit, needles, hf_dir, tmp_path, capsys):
    src = _hf_copy(hf_dir, tmp_path, edit)
    assert main(["import-hf", str(src), str(tmp_path / "ckpt")]) == 2
    _refused(capsys, "import-hf", *needles)
    assert not (tmp_path / "ckpt").exists() and not list(tmp_path.glob(".ckpt.partial*"))


def _largest_data_file(ckpt):
    return max((p for p in (ckpt / "params").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("edit, needles", [
    (lambda c: (c / "model_config.json").write_text('{"hf_config": [}'), ["model_config.json: not valid JSON"]),
    (lambda c: (c / "model_config.json").write_text('{"dtype": "float32"}'), ["no hf_config object"]),
    (lambda c: shutil.rmtree(c / "params"), ["params is missing: the checkpoint was never completed"]),
    (lambda c: _largest_data_file(c).write_bytes(b"0123456789"), ["params cannot be restored"]),
    (lambda c: (c / "params" / "_METADATA").write_text("{"), ["params cannot be restored"]),
])
def test_export_refuses_a_damaged_checkpoint_in_one_line(edit, needles, ckpt, tmp_path, capsys):
    bad = tmp_path / "ckpt"
    shutil.copytree(ckpt, bad)
    edit(bad)
    assert main(["export-hf", str(bad), str(tmp_path / "out")]) == 2
    _refused(capsys, "export-hf", *needles)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial*"))


@pytest.mark.parametrize("args, needles", [
    (["--max-shard-gb", "0"], ["--max-shard-gb must be a finite number > 0"]),
    (["--max-shard-gb", "nan"], ["--max-shard-gb must be a finite number > 0, got nan"]),
    (["--mesh", "3,1,1"], ["does not divide the 8 devices"]),
])
def test_export_refuses_bad_settings_before_any_work(args, needles, ckpt, tmp_path, capsys):
    assert main(["export-hf", str(ckpt), str(tmp_path / "out"), *args]) == 2
    _refused(capsys, "export-hf", *needles)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("verb_args", [["export-hf", "--param-dtype", "int8"], ["export-hf", "--param-dtype", "float64"],
                                       ["import-hf", "--mesh", "two,1,1"]])
def test_bad_flag_values_are_argument_errors(verb_args, tmp_path, capsys):
    verb, *flags = verb_args
    with pytest.raises(SystemExit) as exit_:
        main([verb, str(tmp_path / "a"), str(tmp_path / "b"), *flags])
    assert exit_.value.code == 2 and f"ladder-jax {verb}: error: argument" in capsys.readouterr().err


@pytest.mark.parametrize("verb, same", [("export-hf", lambda c, t: (c, c)), ("import-hf", lambda c, t: (c, c.parent))])
def test_an_output_that_holds_the_input_is_refused_even_with_overwrite(verb, same, tmp_path, capsys):
    src, dst = same(tmp_path / "x" / "in", tmp_path)
    src.mkdir(parents=True)
    (src / "f").write_text("keep")
    assert main([verb, str(src), str(dst), "--overwrite"]) == 2
    _refused(capsys, verb, "holds the input")
    assert (src / "f").read_text() == "keep"


def test_links_are_followed_for_the_output_and_for_the_input_check(ckpt, tmp_path, capsys):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "old.txt").write_text("old")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert main(["export-hf", str(ckpt), str(tmp_path / "link"), "--overwrite"]) == 2  # not an earlier export
    _refused(capsys, "export-hf", "has no config.json")
    (tmp_path / "real" / "config.json").write_text("{}")
    assert main(["export-hf", str(ckpt), str(tmp_path / "link"), "--overwrite"]) == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / SINGLE).exists()
    assert not (tmp_path / "real" / "old.txt").exists()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert main(["export-hf", str(tmp_path / "alias"), str(tmp_path / "real"), "--overwrite"]) == 2
    _refused(capsys, "export-hf", "holds the input")


def test_smoke_runs(capsys):
    assert main(["smoke", "--new-tokens", "2"]) == 0
    assert "finite=True" in capsys.readouterr().out
