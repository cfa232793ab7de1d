"""The whole curriculum on a CPU in minutes: the `tiny` preset (random init, a demo tokenizer
trained on the data) on toy-world rooms. Generate the data first:

    ladder-jax toyworld --out runs/toyworld --scenes 200 --size 112 --views 2 --video-frames 4
    ladder-jax train --config configs/toy_demo.py

Images are 112x112 (64 patches, 16 tokens); video frames are shrunk to 56x56 so a 4-frame
video is 32 patches. Stage 3 (GRPO) is off until enabled: --config.stages.stage3.steps=N.
"""

from ladder_jax.train.stages import base_config, grpo_stage, sft_stage

IMAGE_PIXELS, FRAME_PIXELS = 112 * 112, 56 * 56


def get_config():
    cfg = base_config("runs/toy_demo")
    cfg.model.update(init="preset", preset="tiny")
    cfg.tokenizer.update(source="train", vocab_size=1024)
    cfg.data.root = "runs/toyworld"
    # XLA's cheapest CPU compile: a third of the default compile time for a model this small.
    cfg.compiler_options = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    toy = dict(batch_size=8, learning_rate=2e-3, warmup_ratio=0.1, weight_decay=0.01, log_every=10,
               checkpoint_every=100, min_pixels=IMAGE_PIXELS, max_pixels=IMAGE_PIXELS,
               video_min_pixels=FRAME_PIXELS, video_max_pixels=FRAME_PIXELS, num_frames=4,
               buckets=dict(lengths=(128, 256, 512), image_patches=(64, 128, 256, 512),
                            video_patches=(32, 64, 128)))
    cfg.stages.stage1 = sft_stage(steps=150, **toy)
    cfg.stages.stage2 = sft_stage(steps=300, **toy)
    cfg.stages.cold_start = sft_stage(steps=30, **toy)
    cfg.stages.stage3 = grpo_stage(steps=0, **dict(toy, learning_rate=1e-4),
                                   grpo=dict(group_size=4, max_new_tokens=64))
    return cfg
