"""An interrupted `ladder-jax eval` continues from its staging folder: finished items are not
generated again, a torn last line is dropped and its item redone, the final files equal an
uninterrupted run's; other settings are refused by name and --overwrite starts over."""

import json

import pytest

from ladder_jax.cli import main
from ladder_jax.eval import runner
from ladder_jax.eval.resume import ResumeError, Staging, read_rows, staging_dir
from tests.eval.results import assert_same_result

SETTINGS = {"model": "/m", "benchmark": "vsi", "max_new_tokens": 4}
ITEMS = 5


def test_rows_survive_a_rerun_and_a_torn_last_line_is_dropped(tmp_path):
    staging = Staging.open(tmp_path / "out", SETTINGS)
    assert staging.folder == tmp_path / ".out.resume" and staging.done == {}
    staging.append([{"id": "a", "score": 1.0}, {"id": "b", "skipped": "media", "detail": "x"}])
    with open(staging.path, "a") as f:
        f.write('{"id": "c", "sco')  # killed mid-write
    again = Staging.open(tmp_path / "out", SETTINGS)
    assert sorted(again.done) == ["a", "b"]
    again.append([{"id": "c", "score": 0.5}])
    assert read_rows(again.folder)["c"] == {"id": "c", "score": 0.5}


def test_other_settings_are_refused_naming_the_field_and_overwrite_starts_over(tmp_path):
    Staging.open(tmp_path / "out", SETTINGS).append([{"id": "a"}])
    with pytest.raises(ResumeError, match="--max-new-tokens was 4, now 8; run it with the same settings"):
        Staging.open(tmp_path / "out", SETTINGS | {"max_new_tokens": 8})
    fresh = Staging.open(tmp_path / "out", SETTINGS | {"max_new_tokens": 8}, overwrite=True)
    assert fresh.done == {} and json.loads((fresh.folder / "settings.json").read_text())["max_new_tokens"] == 8


def test_a_damaged_line_inside_the_file_is_refused_by_place(tmp_path):
    staging = Staging.open(tmp_path / "out", SETTINGS)
    staging.path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ResumeError, match=r"items-0-of-1.jsonl:2: not a row"):
        Staging.open(tmp_path / "out", SETTINGS)


class Interrupted(Exception):
    pass


class CountingGeneration:
    """runner.greedy_texts as it is, counting the prompts it is given; stops the run at call `stop_at`."""

    def __init__(self, stop_at: int = 0):
        self.real, self.stop_at, self.calls, self.prompts = runner.greedy_texts, stop_at, 0, 0

    def __call__(self, model, processor, prompts, *args, **kwargs):
        self.calls += 1
        if self.calls == self.stop_at:
            raise Interrupted
        self.prompts += len(prompts)
        return self.real(model, processor, prompts, *args, **kwargs)


def _eval(monkeypatch, model_dir, data, out, *extra, stop_at: int = 0) -> tuple[int, CountingGeneration]:
    generation = CountingGeneration(stop_at)
    monkeypatch.setattr(runner, "greedy_texts", generation)
    code = main(["eval", "--model", str(model_dir), "--benchmark", "toyworld", "--data", str(data["toyworld"]),
                 "--out", str(out), "--limit", str(ITEMS), "--batch-size", "2", "--max-new-tokens", "2", *extra])
    return code, generation


def test_a_rerun_generates_only_what_is_missing_and_ends_as_an_uninterrupted_run(model_dir, data, tmp_path,
                                                                                    monkeypatch, capsys):
    code, whole = _eval(monkeypatch, model_dir, data, tmp_path / "whole")
    assert code == 0 and whole.prompts == ITEMS

    out = tmp_path / "resumed"
    assert _eval(monkeypatch, model_dir, data, out, stop_at=3)[0] == 1  # after two batches of two
    assert not out.exists()
    (items_file,) = staging_dir(out).glob("items-*.jsonl")
    lines = items_file.read_text().splitlines(keepends=True)
    assert len(lines) == 4
    items_file.write_text("".join(lines[:3]) + lines[3][:len(lines[3]) // 2])  # killed mid-write
    capsys.readouterr()

    assert _eval(monkeypatch, model_dir, data, out, "--max-new-tokens", "3")[0] == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ladder-jax eval: ") and "\n" not in err and "--max-new-tokens was 2, now 3" in err

    code, rest = _eval(monkeypatch, model_dir, data, out)
    assert code == 0 and rest.prompts == 2  # the torn line's item and the fifth
    assert_same_result(out, tmp_path / "whole")
    assert not staging_dir(out).exists()


def test_overwrite_starts_over(model_dir, data, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert _eval(monkeypatch, model_dir, data, out, stop_at=2)[0] == 1
    assert len(read_rows(staging_dir(out))) == 2
    code, fresh = _eval(monkeypatch, model_dir, data, out, "--overwrite")
    assert code == 0 and fresh.prompts == ITEMS and not staging_dir(out).exists()
