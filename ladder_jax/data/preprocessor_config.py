"""Read and write the preprocessing half of a Hugging Face Qwen2.5-VL folder.

preprocessor_config.json holds the image settings (min/max pixels, patch sizes, mean/std);
video_preprocessor_config.json, when present, the video pixel bounds and frame sampling.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from ladder_jax.data.vision_preprocess import PreprocessConfig

PREPROCESSOR_CONFIG = "preprocessor_config.json"
VIDEO_PREPROCESSOR_CONFIG = "video_preprocessor_config.json"
_SHARED_KEYS = ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std")
# Steps we implement exactly one way; a folder asking for anything else is refused, not ignored.
_FIXED_STEPS = {"do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "resample": 3}


def _pixel_bounds(config: dict[str, Any]) -> dict[str, int]:
    size = config.get("size") or {}
    bounds = {
        "min_pixels": config.get("min_pixels", size.get("shortest_edge")),
        "max_pixels": config.get("max_pixels", size.get("longest_edge")),
    }
    return {key: int(value) for key, value in bounds.items() if value is not None}


def _check_fixed_steps(config: dict[str, Any], file: str) -> None:
    for key, expected in _FIXED_STEPS.items():
        if key in config and not math.isclose(float(config[key]), float(expected)):
            raise ValueError(f"{file}: {key}={config[key]!r} is not supported (only {expected!r})")


def load_preprocess_config(path: str, **overrides: Any) -> PreprocessConfig:
    """PreprocessConfig from a HF folder's preprocessor_config.json (+ video_preprocessor_config.json).

    Without a video config, videos use the image pixel bounds, as transformers does when it builds
    the video processor from preprocessor_config.json.
    """
    image_file = os.path.join(path, PREPROCESSOR_CONFIG)
    with open(image_file) as f:
        image = json.load(f)
    _check_fixed_steps(image, image_file)
    fields = {key: image[key] for key in _SHARED_KEYS if key in image} | _pixel_bounds(image)
    video_file = os.path.join(path, VIDEO_PREPROCESSOR_CONFIG)
    video = {}
    if os.path.exists(video_file):
        with open(video_file) as f:
            video = json.load(f)
        _check_fixed_steps(video, video_file)
    video_bounds = _pixel_bounds(video) or _pixel_bounds(image)
    fields |= {f"video_{key}": value for key, value in video_bounds.items()}
    fields |= {key: video[key] for key in ("num_frames", "frame_rate") if video.get(key) is not None}
    for key in ("image_mean", "image_std"):
        if key in fields:
            fields[key] = tuple(fields[key])
    return PreprocessConfig(**(fields | overrides))


def save_preprocess_config(config: PreprocessConfig, path: str) -> None:
    """Write preprocessor_config.json and video_preprocessor_config.json in the HF layout."""
    shared = {key: getattr(config, key) for key in _SHARED_KEYS} | _FIXED_STEPS | {"do_convert_rgb": True}
    image = shared | {
        "min_pixels": config.min_pixels,
        "max_pixels": config.max_pixels,
        "size": {"shortest_edge": config.min_pixels, "longest_edge": config.max_pixels},
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2_5_VLProcessor",
    }
    video = shared | {
        "min_pixels": config.video_min_pixels,
        "max_pixels": config.video_max_pixels,
        "size": {"shortest_edge": config.video_min_pixels, "longest_edge": config.video_max_pixels},
        "num_frames": config.num_frames or None,  # null: every frame (transformers: no frame sampling)
        "frame_rate": config.frame_rate,
        "video_processor_type": "Qwen2VLVideoProcessor",
        "processor_class": "Qwen2_5_VLProcessor",
    }
    for name, content in ((PREPROCESSOR_CONFIG, image), (VIDEO_PREPROCESSOR_CONFIG, video)):
        with open(os.path.join(path, name), "w") as f:
            json.dump(content, f, indent=2)
