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
    assert report.counts() == bf.VSI_REASONS
    assert {r.line for r in report.rejections} == set(range(5, 14))
    count, choice = items[0], items[1]
    assert count.media.kind == "video_file" and count.media.paths[0].endswith("scannet/scene0001.mp4")
    assert count.media.num_frames == 8 and count.group == "scannet"
    # eval_spld's default template: "Question: {question}\n" + "\n" + suffix; options as "\nOptions:\n" lines
    assert count.prompt == ("Question: How many chairs are there?\n\n"
                            "Please answer the question using a numerical value (e.g., 42 or 3.1) directly.")
    assert choice.prompt == ("Question: Which is closest to the bed?\nOptions:\nA. chair\nB. table\nC. sofa\n"
                             "D. lamp\n\nPlease answer with the option's letter from the given choices (e.g., A, B, etc.) directly.")
    assert choice.ground_truth == "B" and choice.multiple_choice and not count.multiple_choice
    assert [m["role"] for m in choice.messages()] == ["user"]  # no system message
    assert choice.messages()[0]["content"][0] == {"type": "video"}


def test_think_prompt_is_the_evaluators(tmp_path):
    bf.write_vsi(tmp_path)
    items, _ = benchmarks.read_vsi(tmp_path, think=True)
    assert items[1].prompt.startswith("Question: Which is closest to the bed?\nOptions:\nA. chair\nB. table\n"
                                      "C. sofa\nD. lamp\nPlease think about this question as if you were a human")
    assert items[1].prompt.endswith("reasoning process. \n\nPlease provide your detailed reasoning between the "
                                    "<think> </think> tags, and then answer the question with the option's letter "
                                    "from the given choices (e.g., A, B, etc.) within the <answer> </answer> tags.")
    assert [m["role"] for m in items[1].messages()] == ["user"]


@pytest.mark.parametrize("think", [False, True])
def test_training_prompt_style_keeps_the_stage_prompts(tmp_path, think):
    bf.write_vsi(tmp_path)
    items, _ = benchmarks.read_vsi(tmp_path, think=think, prompt_style="training")
    question = "Which is closest to the bed?"
    options = ["A. chair", "B. table", "C. sofa", "D. lamp"]
    build = prompts.reasoning_prompt if think else prompts.direct_answer_prompt
    assert items[1].prompt == build(question, options, True)
    assert [m["role"] for m in items[1].messages()] == (["user"] if think else ["system", "user"])
    with pytest.raises(ValueError, match="prompt_style"):
        benchmarks.read_vsi(tmp_path, prompt_style="chatty")


def test_mp4_frames_are_sampled_as_the_reference_samples(tmp_path):
    bf.write_mp4(tmp_path / "clip.mp4", frames=20, fps=10)
    frames = media.decode_video(str(tmp_path / "clip.mp4"), 8)
    levels = np.array([np.asarray(f, np.float32).mean() for f in frames])
    want = 10 * np.array([0, 2, 5, 8, 10, 13, 16, 19])  # linspace(0, 19, 8, dtype=int): floored
    np.testing.assert_allclose(levels, want, atol=6)  # mpeg4 is lossy; frame i is grey level 10 * i


def test_uniform_indices_floor_and_repeat_like_linspace_dtype_int():
    for total in (1, 2, 7, 31, 32, 33, 100, 1799):
        for n in (1, 2, 8, 32):
            np.testing.assert_array_equal(media.uniform_indices(total, n), np.linspace(0, total - 1, n, dtype=int))
    np.testing.assert_array_equal(media.uniform_indices(100, 4), [0, 33, 66, 99])
    np.testing.assert_array_equal(media.uniform_indices(3, 4), [0, 0, 1, 2])  # repeats, never fewer


def test_vsi_frames_follow_the_reference_resize_steps(tmp_path):
    """A 56x56 clip: LANCZOS to int(sqrt(401408)) = 633 square, qwen-vl-utils rounds to 644; the
    processor's 512*28*28 bound then takes it to 616 (22 x 28) on each side."""
    bf.write_mp4(tmp_path / "clip.mp4", frames=5, fps=10)
    visual = media.load(media.Media("video_file", (str(tmp_path / "clip.mp4"),), num_frames=32))
    assert len(visual.video) == 32 and {f.size for f in visual.video} == {(644, 644)}
    from ladder_jax.data.vision_preprocess import smart_resize
    assert smart_resize(644, 644, 28, media.EVAL_MIN_PIXELS, media.EVAL_MAX_PIXELS) == (616, 616)
    wide = media.toward_pixels(media.Image.new("RGB", (1296, 968)), media.EVAL_MAX_PIXELS)
    assert wide.size == (int((401408 * 1296 / 968) ** 0.5), int((401408 * 968 / 1296) ** 0.5)) == (733, 547)
    assert media.fetch_round(wide).size == (728, 560)  # 407,680 pixels: over the bound, so the processor
    assert smart_resize(560, 728, 28, media.EVAL_MIN_PIXELS, media.EVAL_MAX_PIXELS) == (532, 700)  # resizes again


def test_images_are_rounded_as_qwen_vl_utils_then_bounded():
    """SPBench's 1296x968 frame: rounded to 1288x980, then the 512*28*28 bound gives 700x532 = 475 tokens."""
    from ladder_jax.data.vision_preprocess import smart_resize
    rounded = media.fetch_round(media.Image.new("RGB", (1296, 968)))
    assert rounded.size == (1288, 980)
    h, w = smart_resize(980, 1288, 28, media.EVAL_MIN_PIXELS, media.EVAL_MAX_PIXELS)
    assert (w, h) == (700, 532) and (h // 28) * (w // 28) == 475
    assert media.even_frames([1, 2, 3]) == [1, 2, 3, 3] and media.even_frames([1, 2]) == [1, 2]


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
    assert sum(c["type"] == "image" for c in items[1].messages()[0]["content"]) == views


def test_cvbench_reader(tmp_path):
    items, report = benchmarks.read_cvbench(bf.write_cvbench(tmp_path))
    assert report.num_accepted == bf.CVBENCH_GOOD and report.counts() == {
        "image: missing image bytes": 1, "answer: multiple-choice truth not among the choices": 1}
    assert [(i.id, i.question_type, i.group, i.ground_truth) for i in items[:3]] == [
        ("0", "Count", "ADE20K", "(A)"), ("1", "Relation", "COCO", "(B)"), ("2", "Depth", "Omni3D", "(A)")]
    assert items[0].prompt.startswith("Question: Which object is closer to the camera?")
    assert items[0].prompt.endswith("\n(B) chair\n\nPlease answer with the option's letter from the given choices "
                                    "directly.")  # CV-Bench's own suffix, no "(e.g., A, B, etc.)"
    assert [m["role"] for m in items[0].messages()] == ["user"]
    assert media.load(items[0].media).images[0].size == (bf.SIZE, bf.SIZE)


def test_cvbench_reads_test_2d_and_test_3d_in_one_run(tmp_path):
    bf.write_cvbench(tmp_path, "test_2d.parquet")
    bf.write_cvbench(tmp_path, "test_3d.parquet")
    items, report = benchmarks.read_benchmark("cvbench", tmp_path)
    assert len(items) == 2 * bf.CVBENCH_GOOD and report.num_rejected == 2 * bf.CVBENCH_BAD
    assert items[0].id == "test_2d/0" and items[-1].id == "test_3d/4"  # idx repeats across the files
    assert {i.source for i in items} == {"test_2d.parquet", "test_3d.parquet"}
    (tmp_path / "test_3d.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="not its partner"):
        benchmarks.read_benchmark("cvbench", tmp_path)


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
    bf._parquet(tmp_path / "vsi" / "test_debiased.parquet", [{"x": 1}])  # the repository's variants beside it
    bf._parquet(tmp_path / "vsi" / "test_pruned.parquet", [{"x": 1}])
    items, _ = benchmarks.read_benchmark("vsi", tmp_path / "vsi", num_frames=4)
    assert len(items) == bf.VSI_GOOD and items[0].media.num_frames == 4
    (tmp_path / "vsi" / "data").mkdir()
    (tmp_path / "vsi" / "test-00000-of-00001.parquet").rename(tmp_path / "vsi" / "data" / "test-00000-of-00001.parquet")
    items, _ = benchmarks.read_benchmark("vsi", tmp_path / "vsi", num_frames=4)  # data/ layout: videos at the root
    assert len(items) == bf.VSI_GOOD
    (tmp_path / "vsi" / "test_pruned.parquet").rename(tmp_path / "vsi" / "test-main.parquet")
    (tmp_path / "vsi" / "data" / "test-00000-of-00001.parquet").unlink()
    assert benchmarks.find_vsi_parquet(tmp_path / "vsi").name == "test-main.parquet"
    (tmp_path / "vsi" / "test-main.parquet").rename(tmp_path / "vsi" / "test_pruned.parquet")
    with pytest.raises(FileNotFoundError, match="no single main VSI-Bench test file"):
        benchmarks.find_vsi_parquet(tmp_path / "vsi")
    with pytest.raises(FileNotFoundError, match="expected one parquet"):
        benchmarks.find_parquet(tmp_path)
    with pytest.raises(ValueError, match="unknown benchmark"):
        benchmarks.read_benchmark("mmlu", tmp_path)


def test_media_paths_that_leave_the_data_folder_are_refused(tmp_path):
    """Absolute names, ../ and a link pointing out of the folder: refused by name, never opened."""
    path = bf.write_spbench(tmp_path / "si", 1)
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(bf.png_bytes(0))
    (tmp_path / "si" / "images" / "scene0100" / "link.jpg").symlink_to(outside)
    table = bf.pq.read_table(path).to_pylist()[:1]
    rows = [table[0] | {"id": f"x{i}", "images": [name]}
            for i, name in enumerate([str(outside), "../../../secret.jpg", "link.jpg", "/etc/hostname"])]
    rows.append(table[0] | {"id": "y", "scene_name": str(tmp_path)})  # an absolute scene folder
    bf._parquet(path, rows)
    items, report = benchmarks.read_spbench(path)
    assert items == [] and report.counts() == {"images: media path outside the data folder": 5}
