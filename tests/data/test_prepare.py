"""prepare → ArrayRecord shards → ShardSource / TFDS: records and image bytes come back exactly,
and the corrupt image is rejected and reported."""

import argparse
import json
import pickle
import sys

import grain
import pytest

from ladder_jax.atomic_output import OutputError
from ladder_jax.data.prepare import configure, main, prepare
from ladder_jax.data.report import Report
from ladder_jax.data.shards import ShardSource, decode_record, encode_record
from ladder_jax.data.spld import read_release
from tests.data.spld_fixture import make_release


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tiny = make_release(tmp_path_factory.mktemp("release"))
    out = tmp_path_factory.mktemp("prepared")
    info, report = prepare(tiny.root, out, num_shards=3, workers=2)
    return tiny, out, info, report


def test_shards_round_trip_records_and_image_bytes(prepared):
    tiny, out, info, _ = prepared
    records, _ = read_release(tiny.root)
    expected = [r for r in records if r.id not in tiny.corrupt]
    source = ShardSource.from_dir(out)
    assert len(source) == len(expected) == info["num_records"]
    for i, record in enumerate(expected):  # release order is kept across shards
        example = source[i]
        assert example.record == record
        assert example.images == tuple((tiny.root / "images" / p).read_bytes() for p in record.images)
    assert [e.record.id for e in source.__getitems__([2, 0])] == [expected[2].id, expected[0].id]


def test_report_lists_every_rejection_and_adds_up(prepared):
    tiny, out, info, report = prepared
    on_disk = Report.from_json(json.loads((out / "report.json").read_text()))
    assert on_disk.to_json() == report.to_json()
    assert report.num_accepted == info["num_records"] == len(tiny.good) - len(tiny.corrupt)
    assert report.total == tiny.lines
    corrupt = [r for r in report.rejections if r.reason == "images: corrupt image"]
    assert [(r.source, r.record_id) for r in corrupt] == [("spld_spatial_data.jsonl", rid) for rid in tiny.corrupt]
    assert "broken.jpg" in corrupt[0].detail
    read_time = {(r.source, r.line, r.record_id, r.reason) for r in report.rejections if r not in corrupt}
    assert read_time == set(tiny.rejected)


def test_dataset_info(prepared):
    tiny, out, info, _ = prepared
    assert json.loads((out / "dataset_info.json").read_text()) == info
    assert info["counts"]["kind"] == {"cold_start": 1, "grounding": 2, "spatial": 5}
    assert info["counts"]["data_type"] == {"multi_view": 2, "single_image": 5, "video": 1}
    assert info["counts"]["question_type"] == {"absolute distance": 1, "object count": 2, "object size": 1,
                                               "relative distance": 1}
    assert [s["file"] for s in info["shards"]] == [f"records-{i:05d}-of-00003.array_record" for i in range(3)]
    assert sum(s["num_records"] for s in info["shards"]) == info["num_records"]
    assert all((out / s["file"]).stat().st_size == s["bytes"] for s in info["shards"])


def test_grain_reads_shards_shuffled_and_after_pickling(prepared):
    _, out, info, _ = prepared
    source = ShardSource.from_dir(out)
    ids = [source[i].record.id for i in range(len(source))]
    shuffled = [e.record.id for e in grain.MapDataset.source(source).seed(3).shuffle()]
    assert sorted(shuffled) == sorted(ids) and shuffled != ids
    again = pickle.loads(pickle.dumps(source))  # what Grain does to send a source to its workers
    assert [again[i].record.id for i in range(len(again))] == ids


def test_shards_are_readable_from_another_place_without_images(prepared, tmp_path):
    tiny, out, _, _ = prepared
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for f in out.iterdir():
        (moved / f.name).write_bytes(f.read_bytes())
    assert ShardSource.from_dir(moved)[0] == ShardSource.from_dir(out)[0]


def test_record_format_rejects_damage(prepared):
    _, out, info, _ = prepared
    record = ShardSource.from_dir(out)[0].record
    data = encode_record(record, [3] * len(record.images))
    assert decode_record(data, info["num_frames"]) == (record, (3,) * len(record.images))
    with pytest.raises(ValueError, match="not a ladder_jax shard record"):
        decode_record(b"PK\x03\x04" + data[4:])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        decode_record(data + b"x")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        decode_record(data[:-1])
    with pytest.raises(ValueError, match="not ids of this set's 3 frames"):
        decode_record(data, 3)
    with pytest.raises(ValueError, match="2 frame ids for 1 paths"):
        encode_record(record, [0, 1])
    for header in (b"[]", b'{"record": {}}', b"{", b'{"record": 1, "frames": [-1]}'):
        with pytest.raises(ValueError):
            decode_record(b"LJR2" + len(header).to_bytes(4, "little") + header)


def test_each_distinct_frame_is_stored_once(prepared):
    tiny, out, info, _ = prepared
    records = [e.record for e in ShardSource.from_dir(out).__getitems__(range(info["num_records"]))]
    distinct = {p for r in records for p in r.images}
    assert info["num_frames"] == len(distinct) < info["image_uses"] == sum(len(r.images) for r in records)
    frames = grain.sources.ArrayRecordDataSource([str(out / s["file"]) for s in info["frame_shards"]])
    stored = sorted(bytes(frames[i]) for i in range(len(frames)))
    assert stored == sorted((tiny.root / "images" / p).read_bytes() for p in distinct)
    assert all((out / s["file"]).stat().st_size == s["bytes"] for s in info["frame_shards"])
    assert sorted(p.name for p in out.glob("frames-*")) == [s["file"] for s in info["frame_shards"]]


def test_a_subset_reads_the_chosen_items_and_records_lists_them_all(prepared):
    _, out, info, _ = prepared
    source = ShardSource.from_dir(out)
    every = [source[i] for i in range(len(source))]
    assert source.records() == [e.record for e in every]
    part = source.subset([4, 1, 1])
    assert len(part) == 3 and [part[i] for i in range(3)] == [every[4], every[1], every[1]]
    assert part.subset([2])[0] == every[1] and part[-1] == every[1]
    with pytest.raises(IndexError):
        part[3]


def test_refuses_to_mix_with_old_shards_then_overwrites(prepared, tmp_path):
    tiny, _, _, _ = prepared
    out = tmp_path / "out"
    prepare(tiny.root, out, num_shards=2, files=["spld_grounding_data.jsonl"])
    with pytest.raises(OutputError, match="--overwrite"):
        prepare(tiny.root, out, num_shards=1, files=["spld_grounding_data.jsonl"])
    info, _ = prepare(tiny.root, out, num_shards=1, files=["spld_grounding_data.jsonl"], overwrite=True)
    assert sorted(p.name for p in out.glob("*.array_record")) == ["frames-00000-of-00001.array_record",
                                                                  "records-00000-of-00001.array_record"]
    assert info["num_records"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left beside it


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    configure("prepare", parser)
    return main("prepare", parser.parse_args([str(a) for a in argv]))


def test_cli_verb(prepared, tmp_path, capsys):
    tiny, _, _, _ = prepared
    argv = ["--data", tiny.root, "--out", tmp_path / "o", "--shards", "2", "--files", "spld_spatial_data.jsonl",
            "--verify", "header", "--tfds"]
    assert run_cli(*argv) == 0
    printed = capsys.readouterr().out
    assert "16 inputs: 4 accepted, 12 rejected" in printed  # PIL's verify() also finds the truncated JPEG
    assert "TFDS dataset:" in printed
    assert run_cli(*argv) == 2
    assert capsys.readouterr().err.startswith("ladder-jax prepare: the output ")
    argv[argv.index("--files") + 1] = "spld_grounding_data.jsonl"
    assert run_cli(*argv, "--overwrite") == 0  # the TFDS build is redone (in the new folder), not reused
    from ladder_jax.data.tfds_builder import TfdsSource

    tfds_dir = tmp_path / "o" / "tfds" / "ladder_records" / "1.0.0"
    assert sorted(TfdsSource(tfds_dir)[i].record.id for i in range(2)) == ["grounding/0", "grounding/1"]
    assert len(TfdsSource(tfds_dir)) == 2


def test_tfds_data_source_reads_the_same_records(prepared, tmp_path):
    from ladder_jax.data.tfds_builder import TfdsSource, build_tfds

    _, out, _, _ = prepared
    dataset_dir = build_tfds(out, tmp_path / "tfds")
    shards = ShardSource.from_dir(out)
    via_tfds = TfdsSource(dataset_dir)
    assert len(via_tfds) == len(shards)
    expected = {shards[i].record.id: shards[i] for i in range(len(shards))}
    assert {via_tfds[i].record.id: via_tfds[i] for i in range(len(via_tfds))} == expected
    assert "tensorflow" not in sys.modules
