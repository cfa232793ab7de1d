"""The visual input of a benchmark item: where it lives (`Media`) and what it decodes to (`Visual`).

Readers only describe media (paths, bytes); decoding happens when the runner reaches an item, so
reading a benchmark stays cheap and a file that fails to decode costs one item, not the run.

Media are fed as the paper's evaluator (`eval_spld`) feeds them (SPEC.md section 4):
- an mp4 gives `num_frames` frames at `linspace(0, total - 1, n, dtype=int)` (floor; repeats when
  the video is shorter), each LANCZOS-resized to about `target_pixels` keeping its aspect ratio
  (`utils.load_video_frames`; small videos grow), then passed on as a frame list;
- every image and frame is then rounded to multiples of 28 as qwen-vl-utils' `fetch_image` does
  (its default bounds 4·28·28 … 16384·28·28, PIL's default bicubic), and a frame list is padded
  to an even count with its last frame;
- the processor bounds the result (min 16·28·28, max 512·28·28 on every benchmark) and, since a
  frame list carries no rate, assumes 2 frames per second: `second_per_grid_ts` = 1.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from typing import Literal

import av
import numpy as np
from PIL import Image

from ladder_jax.data.vision_preprocess import smart_resize, to_rgb

MediaKind = Literal["images", "frames", "video_file"]

FACTOR = 28
FETCH_MIN_PIXELS, FETCH_MAX_PIXELS = 4 * 28 * 28, 16384 * 28 * 28  # qwen-vl-utils' image defaults
EVAL_MIN_PIXELS, EVAL_MAX_PIXELS = 16 * 28 * 28, 512 * 28 * 28  # eval_spld's run_eval.sh, every benchmark


class MediaError(ValueError):
    """A media file that is missing, unreadable or undecodable."""


@dataclasses.dataclass(frozen=True)
class Media:
    """images: `paths` or encoded `blobs`, one image each. frames: `paths` form one video (a frame
    list, as in the SpatialLadder release). video_file: `paths[0]` is an mp4, `num_frames` are sampled."""

    kind: MediaKind
    paths: tuple[str, ...] = ()
    blobs: tuple[bytes, ...] = dataclasses.field(default=(), repr=False)
    num_frames: int = 32
    target_pixels: int = EVAL_MAX_PIXELS  # an mp4's frames are first resized to about this many pixels
    resize: Literal["reference", "processor"] = "reference"  # "processor": as training feeds images, untouched

    @property
    def key(self) -> tuple:
        """Items with equal keys decode to the same Visual; the runner groups them to decode once."""
        return (self.kind, self.paths, self.num_frames, self.target_pixels, self.resize, hash(self.blobs))


@dataclasses.dataclass
class Visual:
    """Decoded input: `images` (one per image placeholder) or `video` (the frames of one video).
    `all_frames`: the frames are an even count, every one to be used at 2 frames per second (the
    reference); otherwise the processor samples them as in training."""

    images: list[Image.Image] | None = None
    video: list[Image.Image] | None = None
    all_frames: bool = True


def load(media: Media) -> Visual:
    """Decodes `media` and, unless `media.resize` is "processor", applies the reference's resize
    steps; raises MediaError naming the file when it cannot."""
    if media.kind == "video_file":
        frames = [toward_pixels(f, media.target_pixels) for f in decode_video(media.paths[0], media.num_frames)]
        return Visual(video=even_frames([fetch_round(f) for f in frames]))
    sources = media.paths or [io.BytesIO(blob) for blob in media.blobs]
    images = [_open_image(source, i) for i, source in enumerate(sources)]
    if media.resize == "processor":
        return Visual(video=images, all_frames=False) if media.kind == "frames" else Visual(images=images)
    images = [fetch_round(image) for image in images]
    return Visual(video=even_frames(images)) if media.kind == "frames" else Visual(images=images)


def _open_image(source, index: int) -> Image.Image:
    try:
        with Image.open(source) as image:
            return to_rgb(image)
    except Exception as e:  # PIL reports bad files with many exception types
        name = source if isinstance(source, str) else f"embedded image {index}"
        detail = str(e).replace(repr(source), "(embedded bytes)")  # a BytesIO's repr holds its address: not reproducible
        raise MediaError(f"{name}: cannot decode image: {type(e).__name__}: {detail}") from e


def toward_pixels(image: Image.Image, target_pixels: int) -> Image.Image:
    """eval_spld's frame resize: LANCZOS to (int(sqrt(T·r)), int(sqrt(T / r))), r = width / height."""
    ratio = image.width / image.height
    size = (int((target_pixels * ratio) ** 0.5), int((target_pixels / ratio) ** 0.5))
    if min(size) < 1:
        raise MediaError(f"a {image.width}x{image.height} frame cannot be resized to {target_pixels} pixels")
    return image.resize(size, Image.Resampling.LANCZOS)


def fetch_round(image: Image.Image) -> Image.Image:
    """qwen-vl-utils' `fetch_image` with its default bounds: sides rounded to multiples of 28 (PIL's
    default bicubic; an image already that size is kept as it is)."""
    try:
        height, width = smart_resize(image.height, image.width, FACTOR, FETCH_MIN_PIXELS, FETCH_MAX_PIXELS)
    except ValueError as e:  # a degenerate aspect ratio
        raise MediaError(str(e)) from e
    return image.resize((width, height), Image.Resampling.BICUBIC)


def even_frames(frames: list[Image.Image]) -> list[Image.Image]:
    """A frame list padded to an even count with its last frame (qwen-vl-utils' FRAME_FACTOR 2)."""
    return frames + frames[-1:] * (len(frames) % 2)


def uniform_indices(total: int, num_frames: int) -> np.ndarray:
    """eval_spld's frame indices: `np.linspace(0, total - 1, num_frames, dtype=int)`, i.e. floored,
    always `num_frames` of them (a video shorter than that repeats frames)."""
    if total < 1 or num_frames < 1:
        raise ValueError(f"need a frame and a frame count; got total={total}, num_frames={num_frames}")
    return np.floor(np.linspace(0, total - 1, num_frames)).astype(np.int64)


@functools.lru_cache(maxsize=4)
def decode_video(path: str, num_frames: int) -> list[Image.Image]:
    """The `uniform_indices` frames of the mp4 at `path`, as RGB images. Cached, because many
    questions share a video and the runner visits them together."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            total = stream.frames or _count_packets(container, stream)
        if not total:
            raise MediaError(f"{path}: no decodable frames")
        indices = uniform_indices(total, num_frames)
        frames, decoded = _decode_at(path, indices)
        if decoded < total:  # the header overstated the length: sample the frames that exist
            if not decoded:
                raise MediaError(f"{path}: no decodable frames")
            total, indices = decoded, uniform_indices(decoded, num_frames)
            frames, _ = _decode_at(path, indices)
    except (av.FFmpegError, IndexError, OSError, ValueError) as e:
        raise MediaError(f"{path}: cannot decode video: {type(e).__name__}: {e}") from e
    return [frames[i] for i in indices.tolist()]


def _count_packets(container, stream) -> int:
    return sum(1 for packet in container.demux(stream) if packet.size)


def _decode_at(path: str, indices: np.ndarray) -> tuple[dict[int, Image.Image], int]:
    """The frames at `indices` (decode order) and the number of frames decoded: all of the stream
    when it ends before the last index, else up to that index."""
    wanted, frames, count = set(indices.tolist()), {}, 0
    last = max(wanted, default=-1)
    with av.open(path) as container:
        for count, frame in enumerate(container.decode(video=0), 1):
            if count - 1 in wanted:
                frames[count - 1] = frame.to_image()
            if count - 1 >= last:
                return frames, count
    return frames, count
