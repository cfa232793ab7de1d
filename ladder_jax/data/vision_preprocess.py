"""Qwen2.5-VL pixel preprocessing in NumPy: smart_resize, PIL bicubic resize, CLIP normalization,
and the (N, C·T·P·P) patch layout the vision tower expects.

Images follow `transformers.Qwen2VLImageProcessorPil` step for step (uint8 PIL resize, float64
rescale cast to float32, float32 normalization) so the arrays agree to float rounding. Videos are
frame lists: every listed frame is kept (or, with `num_frames`, that many sampled uniformly),
resized with the same PIL path to one common size and grouped by the temporal patch, an odd
count padded with the last frame, as qwen-vl-utils pads a frame list.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_ASPECT_RATIO = 200


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Resolution and patching settings (the fields of a Qwen2.5-VL preprocessor_config.json).

    Defaults are the released Qwen2.5-VL image settings; SpatialLadder stages override the pixel
    bounds (SPEC section 3). `num_frames` = 0 keeps every frame of a frame list, as qwen-vl-utils and
    the reference do; N > 0 samples N of them (`sample_frame_indices`), a named departure that
    bounds the sequence length. `frame_rate` is the rate at which a record's frame list was taken;
    Qwen assumes 2 frames per second for frame lists, and it only feeds `second_per_grid_ts`
    (temporal patch / rate: 1 second per temporal grid when every frame is kept).
    """

    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    image_mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    image_std: tuple[float, float, float] = OPENAI_CLIP_STD
    video_min_pixels: int = 128 * 28 * 28
    video_max_pixels: int = 768 * 28 * 28
    num_frames: int = 0  # 0: every listed frame (the reference); N > 0: N sampled uniformly
    frame_rate: float = 2.0

    def __post_init__(self):
        if self.min_pixels > self.max_pixels or self.video_min_pixels > self.video_max_pixels:
            raise ValueError(f"min_pixels must not exceed max_pixels: {self}")
        if self.num_frames < 0 or self.num_frames % self.temporal_patch_size:
            raise ValueError(
                f"num_frames={self.num_frames} must be 0 (every frame) or a positive multiple of "
                f"temporal_patch_size={self.temporal_patch_size}"
            )
        if not self.frame_rate > 0:
            raise ValueError(f"frame_rate must be > 0, got {self.frame_rate}")

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """(height, width) rounded to multiples of `factor` with height·width in [min_pixels, max_pixels].

    Same arithmetic as Qwen's reference: round each side; if the area is too large, shrink both
    sides by sqrt(area / max_pixels) and floor; if too small, grow by sqrt(min_pixels / area) and ceil.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"aspect ratio of {height}x{width} exceeds {MAX_ASPECT_RATIO}: {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB view of `image`; transparency is composited onto white, as transformers does."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def resized_size(image: Image.Image, config: PreprocessConfig, video: bool = False) -> tuple[int, int]:
    """(height, width) that `image` is resized to under `config` (image or video pixel bounds)."""
    lo, hi = (config.video_min_pixels, config.video_max_pixels) if video else (config.min_pixels, config.max_pixels)
    return smart_resize(image.height, image.width, config.factor, lo, hi)


def _resize_normalize(image: Image.Image, size: tuple[int, int], config: PreprocessConfig) -> np.ndarray:
    """(3, H, W) float32: bicubic resize on uint8, x/255 in float64 cast to float32, then CLIP norm."""
    height, width = size
    pixels = np.asarray(to_rgb(image).resize((width, height), resample=Image.BICUBIC))
    scaled = (pixels.astype(np.float64) * (1 / 255)).astype(np.float32)
    mean = np.asarray(config.image_mean, dtype=np.float32)
    std = np.asarray(config.image_std, dtype=np.float32)
    return ((scaled - mean) / std).transpose(2, 0, 1)


def patchify(frames: np.ndarray, config: PreprocessConfig) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(T, C, H, W) frames → ((grid_t·grid_h·grid_w, C·tp·P·P) patches, (grid_t, grid_h, grid_w)).

    Rows run over 2×2 merge blocks (grid_t, h/2, w/2, 2, 2) so the merger sees neighbours adjacent;
    a frame count that is not a multiple of the temporal patch repeats the last frame.
    """
    tp, p, m = config.temporal_patch_size, config.patch_size, config.merge_size
    if pad := -frames.shape[0] % tp:
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
    t, c, h, w = frames.shape
    grid = (t // tp, h // p, w // p)
    blocks = frames.reshape(grid[0], tp, c, grid[1] // m, m, p, grid[2] // m, m, p)
    blocks = blocks.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return blocks.reshape(math.prod(grid), c * tp * p * p), grid


def preprocess_images(images: Sequence[Image.Image], config: PreprocessConfig) -> dict[str, np.ndarray]:
    """Images → {"pixel_values": (N, C·tp·P·P) float32, "image_grid_thw": (n_images, 3) int64}."""
    if not images:
        raise ValueError("preprocess_images needs at least one image")
    patches, grids = [], []
    for image in images:
        frame = _resize_normalize(image, resized_size(image, config), config)
        flat, grid = patchify(frame[None], config)
        patches.append(flat)
        grids.append(grid)
    return {"pixel_values": np.concatenate(patches), "image_grid_thw": np.asarray(grids, dtype=np.int64)}


def sample_frame_indices(total: int, num_frames: int) -> np.ndarray:
    """Indices of the frames kept from a list of `total`: all of them when `num_frames` is 0 or at
    least `total`; else ⌊linspace(0, total − 1, num_frames)⌋, the reference evaluator's uniform
    sampling, which takes the first and the last frame."""
    if total <= 0:
        raise ValueError("a video needs at least one frame")
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if num_frames == 0 or num_frames >= total:
        return np.arange(total)
    return np.floor(np.linspace(0, total - 1, num_frames)).astype(np.int64)


def preprocess_video(frames: Sequence[Image.Image], config: PreprocessConfig) -> dict[str, np.ndarray]:
    """One frame list → pixel_values_videos, video_grid_thw (1, 3), second_per_grid_ts (1,).

    Every frame is resized to the size the first frame gets, so a list whose frames differ in size
    still forms one (T, C, H, W) clip. Seconds per temporal grid = temporal_patch / sampled fps,
    sampled fps = frame_rate · kept / listed (2 / 2 = 1 when every frame is kept).
    """
    indices = sample_frame_indices(len(frames), config.num_frames)
    size = resized_size(frames[0], config, video=True)
    clip = np.stack([_resize_normalize(frames[i], size, config) for i in indices])
    patches, grid = patchify(clip, config)
    sampled_fps = config.frame_rate * len(indices) / len(frames)
    return {
        "pixel_values_videos": patches,
        "video_grid_thw": np.asarray([grid], dtype=np.int64),
        "second_per_grid_ts": np.asarray([config.temporal_patch_size / sampled_fps], dtype=np.float32),
    }


def preprocess_videos(videos: Sequence[Sequence[Image.Image]], config: PreprocessConfig) -> dict[str, np.ndarray]:
    """Several frame lists → the per-video arrays of `preprocess_video`, concatenated."""
    if not videos:
        raise ValueError("preprocess_videos needs at least one video")
    parts = [preprocess_video(frames, config) for frames in videos]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
