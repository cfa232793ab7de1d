"""The demo's two sizes and the curriculum config they train with.

`QUICK` finishes in under 10 minutes and `DEFAULT` in under 45 on a 2-core CPU (measured with
`ladder-jax demo`, see the README). Both train the `demo` preset (random init, a BPE trained on the
toy world's text) through stage 1 → stage 2 → cold start → stage 3 on 112×112 toy-world rooms, and
a baseline that runs stage 3 alone from the same random init for as many steps.
`configs/toy_demo.py` is `curriculum_config(DEFAULT, ...)`, so `ladder-jax train` runs the same
curriculum the demo does.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from ladder_jax.data.vision_preprocess import PreprocessConfig
from ladder_jax.train.stages import base_config, grpo_stage, sft_stage


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    name: str
    scenes: int  # toy-world rooms; `eval_fraction` of them are held out
    stage1_steps: int
    stage2_steps: int
    cold_start_steps: int
    stage3_steps: int
    grounding_items: int  # held-out stage-1 questions scored by box IoU
    spatial_items: int  # held-out stage-2 questions, asked directly and with reasoning
    hf_check_items: int  # held-out questions answered by the exported folder in transformers
    eval_fraction: float = 0.1
    size: int = 112
    views: int = 2
    video_frames: int = 4
    grounding_per_scene: int = 4
    batch_size: int = 8
    group_size: int = 4
    reasoning_tokens: int = 96  # stage 3's completion budget and the reasoning eval's (solutions: <= 78 tokens)
    fast_compile: bool = False  # XLA's cheapest CPU compile for the train steps: pays off for short runs only
    seed: int = 0

    def replace(self, **changes) -> "DemoSettings":
        return dataclasses.replace(self, **changes)


QUICK = DemoSettings("quick", scenes=300, stage1_steps=100, stage2_steps=120, cold_start_steps=60, stage3_steps=4,
                     grounding_items=32, spatial_items=64, hf_check_items=16, fast_compile=True)
DEFAULT = DemoSettings("default", scenes=800, stage1_steps=3000, stage2_steps=700, cold_start_steps=600,
                       stage3_steps=50, grounding_items=120, spatial_items=240, hf_check_items=32)
# Stage 1 gets most of the default's minutes: the model boxes and names objects early but reads
# which ones the question asks for late. Share of asked held-out objects its answer boxes (stage 1
# alone, bench/probes/grounding_probe.py): 0.10 after 600 steps, 0.31 after 1,800 at rate 2e-3, 0.82
# after 4,000 at 5e-3 (box IoU 0.006, 0.037, 0.052: where it puts the boxes it learns far more
# slowly). Reasoning format after stage 3: 0.000 with 250 cold-start and 30 GRPO steps, 0.083 with
# 600 and 50. Measured end to end on a quiet 2-core CPU: 36.5 min (stage 1 12.2, stage 2 2.6, cold
# start 7.3, stage 3 6.3, the stage-3-only baseline 5.6, evaluations 1.7, data 0.4).
SIZES = {s.name: s for s in (QUICK, DEFAULT)}


def vision_config(num_frames: int, size: int = 112) -> PreprocessConfig:
    """The preprocessing every stage and every evaluation uses: images at the rendered size×size
    (112: 64 patches, 16 tokens), video frames at half that side (4 tokens a frame at 112)."""
    if size % 56:
        raise ValueError(f"size={size}: the demo renders square images whose side is a multiple of 56 "
                         f"(28 for Qwen's patch merging, halved for video frames), e.g. 112 or 224")
    image, frame = size * size, (size // 2) ** 2
    return PreprocessConfig(min_pixels=image, max_pixels=image, video_min_pixels=frame, video_max_pixels=frame,
                        num_frames=num_frames)


def curriculum_config(s: DemoSettings, workdir: str, data_root: str) -> ml_collections.ConfigDict:
    """The ladder: every stage from the previous one's final params, on one CPU device."""
    cfg = base_config(workdir)
    cfg.seed = s.seed
    cfg.model.update(init="preset", preset="demo")
    cfg.tokenizer.update(source="train", vocab_size=1024)
    cfg.data.root = data_root
    if s.fast_compile:  # about a third of the default compile time, but each stage-1 step 0.50 s instead of 0.22
        cfg.compiler_options = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    vision = vision_config(s.video_frames, s.size)
    toy = dict(batch_size=s.batch_size, learning_rate=2e-3, warmup_ratio=0.1, weight_decay=0.01, log_every=10,
               checkpoint_every=200, min_pixels=vision.min_pixels, max_pixels=vision.max_pixels,
               video_min_pixels=vision.video_min_pixels, video_max_pixels=vision.video_max_pixels,
               num_frames=s.video_frames,
               buckets=dict(lengths=(128, 256, 512), image_patches=(64, 128, 256, 512),
                            video_patches=(32, 64, 128)))
    cfg.stages.stage1 = sft_stage(steps=s.stage1_steps, **dict(toy, learning_rate=5e-3))
    cfg.stages.stage2 = sft_stage(steps=s.stage2_steps, **toy)
    cfg.stages.cold_start = sft_stage(steps=s.cold_start_steps, **toy)
    cfg.stages.stage3 = grpo_stage(steps=s.stage3_steps, **dict(toy, learning_rate=1e-4, log_every=2),
                                   grpo=dict(group_size=s.group_size, max_new_tokens=s.reasoning_tokens, beta=0.01))
    return cfg


def baseline_config(s: DemoSettings, workdir: str, data_root: str) -> ml_collections.ConfigDict:
    """Stage 3 alone from the same random init: what the ladder is compared against."""
    cfg = curriculum_config(s, workdir, data_root)
    cfg.order = ("stage3",)
    return cfg
