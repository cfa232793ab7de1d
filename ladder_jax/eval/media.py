"""The visual input of a benchmark item: where it lives (`Media`) and what it decodes to (`Visual`).

Readers only describe media (paths, bytes); decoding happens when the runner reaches an item, so
reading a benchmark stays cheap and a file that fails to decode costs one item, not the run.
mp4 files are decoded with PyAV; frames are sampled the way Qwen2.5-VL's evaluation code samples
them (`linspace(0, total - 1, n)` rounded), and the sampled frame rate travels with the frames
because the model's temporal positions depend on it.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from typing import Literal

import av
import numpy as np
from PIL import Image

MediaKind = Literal["images", "frames", "video_file"]


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

    @property
    def key(self) -> tuple:
        """Items with equal keys decode to the same Visual; the runner groups them to decode once."""
        return (self.kind, self.paths, self.num_frames, hash(self.blobs))


@dataclasses.dataclass
class Visual:
    """Decoded input: `images` (one per image placeholder) or `video` (frames of one video).
    `fps` is the rate of the given frames for an mp4; None lets the processor assume its default."""

    images: list[Image.Image] | None = None
    video: list[Image.Image] | None = None
    fps: float | None = None


def load(media: Media) -> Visual:
    """Decodes `media`; raises MediaError naming the file when it cannot."""
    if media.kind == "video_file":
        frames, fps = decode_video(media.paths[0], media.num_frames)
        return Visual(video=frames, fps=fps)
    sources = media.paths or [io.BytesIO(blob) for blob in media.blobs]
    images = [_open_image(source, i) for i, source in enumerate(sources)]
    return Visual(video=images) if media.kind == "frames" else Visual(images=images)


def _open_image(source, index: int) -> Image.Image:
    try:
        with Image.open(source) as image:
            return image.convert("RGB")
    except Exception as e:  # PIL reports bad files with many exception types
        name = source if isinstance(source, str) else f"embedded image {index}"
        raise MediaError(f"{name}: cannot decode image: {type(e).__name__}: {e}") from e


def uniform_indices(total: int, num_frames: int) -> np.ndarray:
    """`num_frames` indices spread over [0, total - 1] (Qwen's `linspace(...).round()`), fewer when
    the video is shorter, and an even count because frames pair up into temporal patches."""
    count = min(num_frames, total)
    count = max(2, count - count % 2)
    return np.linspace(0, total - 1, count).round().astype(np.int64)


@functools.lru_cache(maxsize=4)
def decode_video(path: str, num_frames: int) -> tuple[list[Image.Image], float]:
    """(sampled frames, their rate in frames per second) of the mp4 at `path`.

    The rate is num_sampled / total * native_fps, as Qwen computes it. Cached, because many
    questions share a video and the runner visits them together.
    """
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            native_fps = float(stream.average_rate or stream.guessed_rate or 0)
            total = stream.frames or _count_packets(container, stream)
        indices = uniform_indices(total, num_frames) if total else np.zeros(0, np.int64)
        frames, decoded = _decode_at(path, indices)
        if decoded < total:  # the header overstated the length: sample the frames that exist
            total, indices = decoded, uniform_indices(decoded, num_frames) if decoded else indices[:0]
            frames, _ = _decode_at(path, indices)
    except (av.FFmpegError, IndexError, OSError, ValueError) as e:
        raise MediaError(f"{path}: cannot decode video: {type(e).__name__}: {e}") from e
    if not total or native_fps <= 0:
        raise MediaError(f"{path}: no decodable frames or no frame rate")
    return [frames[i] for i in indices.tolist()], len(indices) / total * native_fps


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
