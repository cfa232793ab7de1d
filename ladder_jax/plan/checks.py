"""What `plan` checks without compiling: the mesh against the target's devices, that the paths
exist (or are remote URLs), the attention kernel against the platform, and the pixel bounds and
buckets against the model and kernel."""

from __future__ import annotations

import re
from pathlib import Path

from ladder_jax.models.qwen25_vl.config import ModelConfig
from ladder_jax.plan.shapes import longest, patches_per_image
from ladder_jax.plan.targets import Target
from ladder_jax.train import stages

REMOTE = re.compile(r"^[a-z][a-z0-9+.\-]*://")  # gs://, s3://, https://, ...
KERNEL_PLATFORMS = {"splash": ("tpu",), "cudnn": ("gpu",), "xla": ("tpu", "gpu", "host")}


def problems(cfg, plans, target: Target, device_count: int, model: ModelConfig | None, check_paths: bool) -> list[str]:
    """Every problem found, as messages naming the config field to change (empty: all good)."""
    out = []
    try:
        stages.check_devices(cfg, device_count, target.hosts)
    except stages.CurriculumConfigError as e:
        out.append(f"mesh vs {target.name} ({device_count} devices, {target.hosts} hosts): {e}")
    if check_paths:
        out += _paths(cfg)
    kernel = cfg.model.attention
    if target.platform not in KERNEL_PLATFORMS.get(kernel, ()):
        out.append(f"config.model.attention={kernel!r} does not run on {target.platform} ({target.name}); use "
                   f"{' or '.join(repr(k) for k, p in KERNEL_PLATFORMS.items() if target.platform in p)}")
    for p in plans:
        out += _pixels(p, model, kernel)
    return out


def _paths(cfg) -> list[str]:
    wanted = [("config.data.root", cfg.data.root), ("config.data.image_root", cfg.data.image_root)]
    if cfg.model.init != "preset":
        wanted.append(("config.model.path", cfg.model.path))
    return [f"{field}={value!r} does not exist here (nor is it a remote URL such as gs://...)"
            for field, value in wanted if value and not REMOTE.match(value) and not Path(value).exists()]


def _pixels(p, model: ModelConfig | None, kernel: str) -> list[str]:
    where, c, out = f"config.stages.{p.name}", p.pipeline, []
    if model is None:
        return out
    side = model.vision.patch_size * model.vision.spatial_merge_size
    for field in ("min_pixels", "max_pixels", "video_min_pixels", "video_max_pixels"):
        if getattr(c, field) < side * side:
            out.append(f"{where}.{field}={getattr(c, field)} is below one {side}x{side} merge unit ({side * side} pixels)")
    one = patches_per_image(c.max_pixels, model)
    if one > c.buckets.image_patches[-1]:
        out.append(f"{where}.max_pixels={c.max_pixels} makes {one} patches per image, more than the largest image "
                   f"bucket {c.buckets.image_patches[-1]}: every image would be skipped; lower max_pixels or add a bucket")
    if kernel == "splash":
        s = longest(c, model)
        lengths = {"text length": s.length, "image + video patches": s.patches}
        if p.grpo:
            lengths["prompt + completion length"] = s.length + p.grpo.max_new_tokens
        for name, n in lengths.items():
            if n % 128:
                out.append(f"{where}: splash attention needs multiples of 128, but the longest batch has {name} {n}; "
                           f"change buckets{'/grpo.max_new_tokens' if 'completion' in name else ''} or use attention='xla'")
    return out
