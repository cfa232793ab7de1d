"""`ladder-jax eval` refuses bad input in one line on stderr (exit 2) before loading anything: a
--model that is not on disk is never looked up on a hub, and an existing --out needs --overwrite."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import transformers

from ladder_jax.cli import main
from tests.eval import bench_files as bf


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer loader was called")
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)


def _eval(tmp_path, model, *extra):
    return main(["eval", "--model", str(model), "--benchmark", "toyworld", "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out"), *extra])


def _refused(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("ladder-jax eval: ") and "\n" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-VL-3B-Instruct", "org/name", "missing-folder"])
def test_a_model_not_on_disk_is_an_error_not_a_download(model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _eval(tmp_path, model) == 2
    _refused(capsys, f"--model {model} is not a folder on disk", "never downloads")


@pytest.mark.parametrize("files, needle", [
    ({}, "has no config.json"),
    ({"config.json": '{"model_type": "qwen2_5_vl", "vocab_size": 0}'}, "lacks the field 'hidden_size'"),
    ({"config.json": "[1, 2"}, "config.json: not valid JSON"),
])
def test_a_bad_model_folder_is_refused_by_name(files, needle, tmp_path, capsys):
    (tmp_path / "model").mkdir()
    for name, text in files.items():
        (tmp_path / "model" / name).write_text(text)
    bf.write_vsi(tmp_path / "data")
    assert main(["eval", "--model", str(tmp_path / "model"), "--benchmark", "vsi", "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out")]) == 2
    _refused(capsys, f"--model {tmp_path / 'model'}", needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("rows", [0, 3])
def test_an_empty_or_fully_refused_set_exits_non_zero_naming_why(rows, tmp_path, capsys):
    """Nothing to score: exit 2 before any model is loaded, with the count and the reasons."""
    (tmp_path / "model").mkdir()
    bad = [{"id": str(i), "dataset": "scannet", "scene_name": "s", "question_type": "object_counting",
            "question": "How many?", "options": None, "ground_truth": "-1"} for i in range(rows)]
    columns = ("id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth")
    (tmp_path / "data").mkdir()
    table = pa.Table.from_pylist(bad) if bad else pa.table({c: pa.array([], pa.string()) for c in columns})
    pq.write_table(table, tmp_path / "data" / "test-00000-of-00001.parquet")
    assert main(["eval", "--model", str(tmp_path / "model"), "--benchmark", "vsi", "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no question to score" in err and not (tmp_path / "out").exists()
    if rows:
        assert "(3 skipped; 3 ground_truth: negative numeric truth" in err


def test_an_existing_out_needs_overwrite(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").write_text("{}")
    assert _eval(tmp_path, tmp_path / "model") == 2
    _refused(capsys, "--overwrite")
    assert (tmp_path / "out" / "summary.json").read_text() == "{}"


@pytest.mark.parametrize("extra, needle", [(["--num-frames", "3"], "--num-frames must be even"),
                                           (["--batch-size", "0"], "--batch-size and --limit must be >= 1"),
                                           (["--min-pixels", "9000", "--max-pixels", "8000"], "--min-pixels"),
                                           (["--benchmark", "cvbench", "--protocol", "official"], "CV-Bench has only")])
def test_bad_settings_are_refused(extra, needle, tmp_path, capsys):
    assert _eval(tmp_path, tmp_path, *extra) == 2
    _refused(capsys, needle)


def test_an_out_that_holds_an_input_is_refused_even_with_overwrite(tmp_path, capsys):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "frame.png").write_bytes(b"keep")
    assert main(["eval", "--model", str(tmp_path), "--benchmark", "toyworld", "--data", str(tmp_path / "data"),
                 "--media-dir", str(tmp_path / "media"), "--out", str(tmp_path / "media"), "--overwrite"]) == 2
    _refused(capsys, "holds the input")
    assert (tmp_path / "media" / "frame.png").read_bytes() == b"keep"


def test_a_mesh_that_does_not_fit_the_devices_is_refused(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    bf.write_vsi(tmp_path / "data")
    assert main(["eval", "--model", str(tmp_path / "model"), "--benchmark", "vsi", "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out"), "--mesh", "3,1,1"]) == 2
    _refused(capsys, "--mesh: (data, fsdp, tensor) = (3, 1, 1) does not divide the 8 devices")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.resume").exists()
