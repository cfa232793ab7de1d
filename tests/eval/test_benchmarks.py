"""Benchmark readers on files written in each published format; frame sampling; media decoding."""

import numpy as np
import pytest

from ladder_jax.data import prompts
from ladder_jax.eval import benchmarks, media
from tests.eval import bench_files as bf


def test_vsi_reader_columns_prompts_and_bad_rows(tmp_path):
    bf.write_vsi(tmp_path)
    items, report = benchmarks.read_vsi(tmp_path, num_frames=8)
    assert [i.id for i in items] == ["1", "2", "3", "4"]  # file order
    assert report.num_accepted == bf.VSI_GOOD and report.num_rejected == bf.VSI_BAD
    assert report.counts() == {"scene_name: media file not found": 1, "question: missing, empty or not text": 1,
                               "options: missing or not a list of strings for a multiple-choice question": 1,
                               "ground_truth: not a finite number for a numeric question": 1, "id: duplicate id": 1}
    assert {r.line for r in report.rejections} == {5, 6, 7, 8, 9}
    count, choice = items[0], items[1]
    assert count.media.kind == "video_file" and count.media.paths[0].endswith("scannet/scene0001.mp4")
    assert count.media.num_frames == 8 and count.group == "scannet"
    assert count.prompt == prompts.direct_answer_prompt("How many chairs are there?", None, False)
    assert choice.prompt.endswith(prompts.DIRECT_MC_SUFFIX) and "Options:\nA. chair\nB. table" in choice.prompt
    assert choice.ground_truth == "B" and choice.multiple_choice and not count.multiple_choice
    assert [m["role"] for m in choice.messages()] == ["system", "user"]
    assert choice.messages()[1]["content"][0] == {"type": "video"}


def test_think_prompt_has_no_system_message(tmp_path):
    bf.write_vsi(tmp_path)
    items, _ = benchmarks.read_vsi(tmp_path, think=True)
    question = "Which is closest to the bed?\nOptions:\nA. chair\nB. table\nC. sofa\nD. lamp"
    assert items[1].prompt == prompts.REASONING_PROMPT.format(question=question) + prompts.REASONING_MC_SUFFIX
    assert [m["role"] for m in items[1].messages()] == ["user"]


def test_mp4_frames_are_sampled_uniformly_with_their_rate(tmp_path):
    bf.write_mp4(tmp_path / "clip.mp4", frames=20, fps=10)
    frames, fps = media.decode_video(str(tmp_path / "clip.mp4"), 8)
    assert len(frames) == 8 and fps == pytest.approx(8 / 20 * 10)
    levels = np.array([np.asarray(f, np.float32).mean() for f in frames])
    want = 10 * np.linspace(0, 19, 8).round()  # frame i is grey level 10 * i
    np.testing.assert_allclose(levels, want, atol=6)  # mpeg4 is lossy


def test_uniform_indices_short_videos_and_even_counts():
    np.testing.assert_array_equal(media.uniform_indices(100, 4), [0, 33, 66, 99])
    assert len(media.uniform_indices(7, 32)) == 6  # all but one frame; pairs form temporal patches
    np.testing.assert_array_equal(media.uniform_indices(1, 32), [0, 0])


def test_undecodable_media_raise_media_error(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(media.MediaError, match="bad.mp4"):
        media.load(media.Media("video_file", (str(tmp_path / "bad.mp4"),)))
    with pytest.raises(media.MediaError, match="embedded image 0"):
        media.load(media.Media("images", blobs=(b"nope",)))


@pytest.mark.parametrize("views", [1, 3])
def test_spbench_reader(tmp_path, views):
    path = bf.write_spbench(tmp_path, views)
    items, report = benchmarks.read_spbench(path)
    assert [i.id for i in items] == ["a", "b", "c"]
    assert report.num_accepted == bf.SPBENCH_GOOD and report.num_rejected == bf.SPBENCH_BAD
    assert set(report.counts()) == {"images: media file not found", "question_type: missing, empty or not text"}
    assert len(items[0].media.paths) == views
    assert items[0].media.paths[0].startswith(str(tmp_path / "images" / "scene0100"))
    visual = media.load(items[1].media)
    assert len(visual.images) == views and visual.video is None
    assert sum(c["type"] == "image" for c in items[1].messages()[1]["content"]) == views


def test_cvbench_reader(tmp_path):
    items, report = benchmarks.read_cvbench(bf.write_cvbench(tmp_path))
    assert report.num_accepted == bf.CVBENCH_GOOD and report.counts() == {"image: missing image bytes": 1}
    assert [(i.id, i.question_type, i.group, i.ground_truth) for i in items[:3]] == [
        ("0", "Count", "ADE20K", "(A)"), ("1", "Relation", "COCO", "(B)"), ("2", "Depth", "Omni3D", "(A)")]
    assert items[0].multiple_choice and items[0].prompt.endswith(prompts.DIRECT_MC_SUFFIX)
    assert media.load(items[0].media).images[0].size == (bf.SIZE, bf.SIZE)


def test_toyworld_reader(tmp_path):
    split = bf.write_toyworld(tmp_path)
    items, report = benchmarks.read_toyworld(split)
    assert items and report.num_rejected == 0 and len(items) == report.num_accepted
    kinds = {i.group: i.media.kind for i in items}
    assert kinds == {"single_image": "images", "multi_view": "images", "video": "frames"}
    video = next(i for i in items if i.media.kind == "frames")
    assert len(media.load(video.media).video) == 4


def test_missing_column_names_the_file(tmp_path):
    bf._parquet(tmp_path / "x.parquet", [{"prompt": "q", "answer": "(A)"}])
    with pytest.raises(ValueError, match=r"x.parquet: missing column\(s\) \['image', 'type', 'task', 'source'\]"):
        benchmarks.read_cvbench(tmp_path / "x.parquet")


def test_read_benchmark_finds_files(tmp_path):
    bf.write_vsi(tmp_path / "vsi")
    items, _ = benchmarks.read_benchmark("vsi", tmp_path / "vsi", num_frames=4)
    assert len(items) == bf.VSI_GOOD and items[0].media.num_frames == 4
    with pytest.raises(FileNotFoundError, match="expected one parquet"):
        benchmarks.find_parquet(tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark"):
        benchmarks.read_benchmark("mmlu", tmp_path)
