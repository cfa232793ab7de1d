"""Metric names: flat in metrics.jsonl, grouped (train/, grpo/, eval/) in TensorBoard and in the
optional Weights & Biases run (offline mode, read back from its own record log); a missing wandb
is a clear error only when a project is set."""

import glob
import struct
import sys
from pathlib import Path

import pytest

from ladder_jax.train import telemetry
from ladder_jax.train.telemetry import MetricsWriter, read_jsonl, tag

SFT = {"loss": 2.5, "lr": 1e-3, "grad_norm": 0.7, "tokens_per_s": 100.0, "mfu": None}
GRPO = SFT | {"reward": 0.5, "kl": 0.01, "clip_fraction": 0.0}


@pytest.mark.parametrize("name, group, want", [
    ("loss", "grpo", "train/loss"), ("mfu", "train", "train/mfu"), ("reward", "grpo", "grpo/reward"),
    ("kl", "grpo", "grpo/kl"), ("eval/iou", "grpo", "eval/iou"), ("something", "train", "train/something")])
def test_tag(name, group, want):
    assert tag(name, group) == want


def tensorboard_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TFRecord event files under logdir/tensorboard (tensorboardX's protos)."""
    from tensorboardX.proto.event_pb2 import Event  # noqa: PLC0415
    out = {}
    for path in sorted((logdir / "tensorboard").glob("events.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, round(v.simple_value, 6)))
    return out


def test_jsonl_flat_and_tensorboard_grouped(tmp_path):
    w = MetricsWriter(tmp_path, group="grpo")
    w.write(1, GRPO)
    w.write(2, {"eval/accuracy": 0.25})
    w.close()
    assert read_jsonl(tmp_path / "metrics.jsonl")[0] == {"step": 1, **GRPO}
    scalars = tensorboard_scalars(tmp_path)
    assert scalars == {"train/loss": [(1, 2.5)], "train/lr": [(1, 0.001)], "train/grad_norm": [(1, 0.7)],
                       "train/tokens_per_s": [(1, 100.0)], "grpo/reward": [(1, 0.5)], "grpo/kl": [(1, 0.01)],
                       "grpo/clip_fraction": [(1, 0.0)], "eval/accuracy": [(2, 0.25)]}


def test_a_project_without_wandb_installed_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(telemetry.WandbError, match=r"pip install 'ladder-jax\[wandb\]'"):
        MetricsWriter(tmp_path, tensorboard=False, wandb_project="p")
    MetricsWriter(tmp_path, tensorboard=False).close()  # no project: wandb is never imported


def wandb_records(run_dir: Path) -> list:
    """The records of an offline run's `run-ID.wandb` log (LevelDB-style: 7-byte ':W&B' header, 32 KiB
    blocks of chunks with a 7-byte header: crc32c, length, kind 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb  # noqa: PLC0415
    (path,) = glob.glob(str(run_dir / "run-*.wandb"))
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    pos, records, pending = 7, [], b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (kind == 0 and length == 0):  # block trailer / padding
            pos += left
            continue
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            records.append(pb.Record.FromString(pending))
            pending = b""
    return records


def test_wandb_offline_run_gets_grouped_metrics(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logdir = tmp_path / "myrun" / "stage3"
    w = MetricsWriter(logdir, tensorboard=False, wandb_project="ladder", group="grpo", config={"batch_size": 8})
    w.write(2, GRPO)
    w.write(4, {"loss": 1.5, "reward": 1.0, "eval/accuracy": 0.5})
    w.close()
    (run_dir,) = (logdir / "wandb").glob("offline-run-*")
    records = wandb_records(run_dir)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.project, run.display_name, run.run_group) == ("ladder", "myrun/stage3", "myrun")
    name = lambda item: item.key or "/".join(item.nested_key)  # wandb stores "a/b" as the nested key (a, b)
    history = [{name(i): i.value_json for i in r.history.item if not name(i).startswith("_")} | {"step": r.history.step.num}
               for r in records if r.WhichOneof("record_type") == "history"]
    assert history == [
        {"step": 2, "train/loss": "2.5", "train/lr": "0.001", "train/grad_norm": "0.7", "train/tokens_per_s": "100",
         "grpo/reward": "0.5", "grpo/kl": "0.01", "grpo/clip_fraction": "0"},
        {"step": 4, "train/loss": "1.5", "grpo/reward": "1", "eval/accuracy": "0.5"}]
    # a resumed stage continues the same run
    again = MetricsWriter(logdir, resume_step=4, tensorboard=False, wandb_project="ladder")
    again.close()
    assert {p.name.rsplit("-", 1)[-1] for p in (logdir / "wandb").glob("offline-run-*")} == {run.run_id}
