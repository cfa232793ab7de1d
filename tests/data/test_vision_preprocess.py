import numpy as np
import pytest
from PIL import Image
from transformers import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

from ladder_jax.data.vision_preprocess import (
    PreprocessConfig,
    preprocess_images,
    preprocess_video,
    preprocess_videos,
    sample_frame_indices,
    smart_resize,
)

TRAIN = (16 * 28 * 28, 128 * 28 * 28)
HF_DEFAULT = (56 * 56, 28 * 28 * 1280)


def random_image(height, width, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)


def reference(images, min_pixels, max_pixels):
    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)(images, return_tensors="np")


def test_smart_resize_hand_computed():
    # 968x1296 at max 100352: beta = sqrt(968*1296/100352) = 3.5357; floor(968/beta/28)=9, floor(1296/beta/28)=13
    assert smart_resize(968, 1296, 28, *TRAIN) == (252, 364)
    # 1x1 grows by sqrt(3136) = 56 → ceil(56/28)*28 = 56 on each side
    assert smart_resize(1, 1, 28, *HF_DEFAULT) == (56, 56)
    # already a multiple of 28 and inside the bounds: unchanged
    assert smart_resize(224, 336, 28, *TRAIN) == (224, 336)


def test_smart_resize_matches_transformers_on_a_grid_of_sizes():
    sizes = [(h, w) for h in (1, 5, 27, 28, 37, 100, 333, 968, 1296, 2999) for w in (1, 13, 29, 199, 640, 997, 3000)]
    for height, width in sizes:
        if max(height, width) / min(height, width) > 200:
            continue
        for bounds in (TRAIN, HF_DEFAULT, (28 * 28, 28 * 28 * 4)):
            assert smart_resize(height, width, 28, *bounds) == hf_smart_resize(height, width, 28, *bounds)


def test_smart_resize_rejects_extreme_aspect_and_empty_images():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2010)
    with pytest.raises(ValueError, match="positive"):
        smart_resize(0, 10)


@pytest.mark.parametrize("size", [(1, 1), (37, 997), (968, 1296), (20, 3000), (997, 37), (5, 900), (333, 333)])
@pytest.mark.parametrize("bounds", [TRAIN, HF_DEFAULT, (28 * 28, 28 * 28 * 4)])
def test_pixels_match_transformers(size, bounds):
    image = random_image(*size, seed=size[0] * 7 + size[1])
    ours = preprocess_images([image], PreprocessConfig(min_pixels=bounds[0], max_pixels=bounds[1]))
    ref = reference(image, *bounds)
    np.testing.assert_array_equal(ours["image_grid_thw"], ref["image_grid_thw"])
    assert ours["pixel_values"].dtype == np.float32
    assert ours["pixel_values"].shape == ref["pixel_values"].shape
    assert np.abs(ours["pixel_values"] - ref["pixel_values"]).max() <= 1e-5


@pytest.mark.parametrize("mode", ["RGBA", "L"])
def test_non_rgb_modes_match_transformers(mode):
    image = random_image(61, 83, mode, seed=3)
    ours = preprocess_images([image], PreprocessConfig(*TRAIN))
    ref = reference(image, *TRAIN)
    assert np.abs(ours["pixel_values"] - ref["pixel_values"]).max() <= 1e-5


def test_several_images_concatenate_in_order():
    images = [random_image(50, 400, seed=1), random_image(968, 1296, seed=2), random_image(300, 30, seed=4)]
    ours = preprocess_images(images, PreprocessConfig(*TRAIN))
    ref = reference(images, *TRAIN)
    np.testing.assert_array_equal(ours["image_grid_thw"], ref["image_grid_thw"])
    assert np.abs(ours["pixel_values"] - ref["pixel_values"]).max() <= 1e-5


def video_config(**kwargs):
    return PreprocessConfig(*TRAIN, video_min_pixels=TRAIN[0], video_max_pixels=TRAIN[1], **kwargs)


def test_video_of_repeated_frames_equals_one_image_per_temporal_patch():
    a, b = random_image(120, 160, seed=5), random_image(120, 160, seed=6)
    ours = preprocess_video([a, a, b, b], video_config(num_frames=4))
    ref = [reference(frame, *TRAIN) for frame in (a, b)]
    np.testing.assert_array_equal(ours["video_grid_thw"], [[2, *ref[0]["image_grid_thw"][0, 1:]]])
    expected = np.concatenate([r["pixel_values"] for r in ref])
    assert np.abs(ours["pixel_values_videos"] - expected).max() <= 1e-5


def test_video_temporal_slots_hold_consecutive_frames():
    a, b = random_image(90, 200, seed=7), random_image(90, 200, seed=8)
    ours = preprocess_video([a, b], video_config(num_frames=2))["pixel_values_videos"].reshape(-1, 3, 2, 14, 14)
    ref_a, ref_b = (reference(f, *TRAIN)["pixel_values"].reshape(-1, 3, 2, 14, 14) for f in (a, b))
    assert np.abs(ours[:, :, 0] - ref_a[:, :, 0]).max() <= 1e-5
    assert np.abs(ours[:, :, 1] - ref_b[:, :, 0]).max() <= 1e-5


def test_frame_sampling_keeps_every_frame_or_takes_floor_linspace():
    np.testing.assert_array_equal(sample_frame_indices(7, 0), np.arange(7))  # the reference: every frame
    np.testing.assert_array_equal(sample_frame_indices(3, 8), [0, 1, 2])
    # ⌊linspace(0, 9, 4)⌋ = ⌊0, 3, 6, 9⌋: the first and the last frame are taken
    np.testing.assert_array_equal(sample_frame_indices(10, 4), [0, 3, 6, 9])
    # linspace(0, 31, 8) = 0, 4.43, 8.86, 13.29, 17.71, 22.14, 26.57, 31
    np.testing.assert_array_equal(sample_frame_indices(32, 8), [0, 4, 8, 13, 17, 22, 26, 31])
    for total in range(1, 40):
        for n in range(0, 42, 2):
            got = sample_frame_indices(total, n)
            want = list(range(total)) if n == 0 or n >= total else [int(i * (total - 1) / (n - 1)) for i in range(n)]
            assert got.tolist() == want or np.allclose(got, want, atol=1), (total, n)
            assert got[0] == 0 and got[-1] == total - 1 and np.all(np.diff(got) > 0)


def test_every_listed_frame_is_kept_padded_to_even_at_two_fps():
    frames = [random_image(56, 56, seed=s) for s in range(7)]
    out = preprocess_video(frames, video_config(num_frames=0, frame_rate=2.0))
    # 7 frames → padded to 8 with the last frame → 4 temporal patches; 56² grows ×2 to 112² → 8 × 8
    # patches; 2 fps → 1 s per temporal grid
    assert out["video_grid_thw"].tolist() == [[4, 8, 8]]
    np.testing.assert_allclose(out["second_per_grid_ts"], [1.0])
    slots = out["pixel_values_videos"].reshape(4, 64, 3, 2, 14, 14)  # (grid t, patches, c, temporal slot, p, p)
    np.testing.assert_array_equal(slots[3, :, :, 0], slots[3, :, :, 1])  # the pad repeats frame 7
    assert np.abs(slots[2, :, :, 0] - slots[2, :, :, 1]).max() > 0.1  # frames 5 and 6 differ
    assert PreprocessConfig().num_frames == 0


def test_video_sampling_grid_and_seconds_per_grid():
    frames = [random_image(100, 100, seed=s) for s in range(8)]
    out = preprocess_video(frames, video_config(num_frames=4, frame_rate=2.0))
    # 4 of 8 frames (0, 2, 4, 7) taken at 2 fps → 1 sampled frame per second → 2 s per temporal patch of 2
    assert out["video_grid_thw"][0, 0] == 2
    np.testing.assert_allclose(out["second_per_grid_ts"], [2.0])
    odd = preprocess_video(frames[:3], video_config(num_frames=4))
    assert odd["video_grid_thw"][0, 0] == 2  # the third frame is repeated to fill the temporal patch


def test_video_frames_of_different_sizes_take_the_first_frame_size():
    frames = [random_image(100, 150, seed=1), random_image(50, 300, seed=2)]
    out = preprocess_video(frames, video_config(num_frames=2))
    first = reference(frames[0], *TRAIN)["image_grid_thw"][0]
    np.testing.assert_array_equal(out["video_grid_thw"][0, 1:], first[1:])


def test_several_videos_concatenate():
    clips = [[random_image(60, 60, seed=s) for s in range(4)], [random_image(80, 200, seed=s) for s in range(2)]]
    out = preprocess_videos(clips, video_config(num_frames=4))
    assert out["video_grid_thw"].shape == (2, 3)
    assert out["pixel_values_videos"].shape[0] == out["video_grid_thw"].prod(axis=1).sum()
    assert out["second_per_grid_ts"].shape == (2,)


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="num_frames"):
        PreprocessConfig(num_frames=3)
    with pytest.raises(ValueError, match="num_frames"):
        PreprocessConfig(num_frames=-2)
    with pytest.raises(ValueError, match="min_pixels"):
        PreprocessConfig(min_pixels=10_000, max_pixels=5_000)
