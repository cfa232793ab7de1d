"""A corrupt latest checkpoint falls back to the previous good step (moved aside, never deleted);
the resumed run then reproduces the uninterrupted losses."""

import logging

import pytest

from ladder_jax.train.loop import TrainConfigError
from ladder_jax.train.telemetry import read_jsonl
from tests.train.tiny import reference_losses, run, tiny_step


def _truncate_data(step_dir):
    files = sorted((p for p in (step_dir / "train").rglob("*") if p.is_file() and p.stat().st_size > 64),
                   key=lambda p: -p.stat().st_size)
    files[0].write_bytes(files[0].read_bytes()[:32])  # the largest array file, cut short


def _bad_meta(step_dir):
    (step_dir / "meta" / "metadata").write_text("{not json")


@pytest.mark.parametrize("corrupt", [_truncate_data, _bad_meta])
def test_corrupt_latest_checkpoint_falls_back_and_resumes_exactly(tmp_path, caplog, monkeypatch, corrupt):
    monkeypatch.setattr(logging.getLogger("ladder_jax"), "propagate", True)  # log_setup keeps ours off the root
    ts = tiny_step()[1]
    run(tmp_path, 4, ts, checkpoint_every=2)  # checkpoints at steps 2 and 4
    corrupt(tmp_path / "checkpoints" / "4")
    with caplog.at_level(logging.WARNING, logger="ladder_jax.train.loop"):
        result = run(tmp_path, 6, ts, checkpoint_every=2)
    assert result.step == 6
    assert any("step 4" in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "checkpoints" / "corrupt" / "4").is_dir()  # kept for inspection
    losses = {r["step"]: r["loss"] for r in read_jsonl(tmp_path / "metrics.jsonl") if "loss" in r}
    assert [losses[s] for s in range(3, 7)] == pytest.approx(reference_losses(6)[2:], rel=1e-5)


def test_every_checkpoint_corrupt_is_an_error_not_a_fresh_start(tmp_path):
    ts = tiny_step()[1]
    run(tmp_path, 2, ts, checkpoint_every=2)
    _bad_meta(tmp_path / "checkpoints" / "2")
    with pytest.raises(TrainConfigError, match="every checkpoint .* is unreadable.*step 2"):
        run(tmp_path, 4, ts, checkpoint_every=2)
