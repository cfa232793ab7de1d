"""A tiny curriculum for the plan tests: the tiny preset, buckets of 128, stage 1 and stage 3.

    tiny_plan_config.py:<target>   (tpu-v5e-4 compiles for a v5e 2x2 topology; gpu-8xh100 on 8 CPU devices)
"""

from ladder_jax.train.stages import base_config, grpo_stage, sft_stage


def get_config(target: str = "tpu-v5e-4"):
    cfg = base_config("runs/tiny_plan")
    cfg.target = target
    cfg.mesh.update(data=1, fsdp=-1, tensor=1)
    cfg.tokenizer.source = "train"
    cfg.model.update(attention="splash" if target.startswith("tpu") else "xla", dtype="bfloat16", remat="full")
    small = dict(lengths=(128,), image_patches=(64, 128), image_items=(1, 2), video_patches=(128,), video_items=(1,))
    cfg.stages.stage1 = sft_stage(steps=3, batch_size=8, buckets=small, max_pixels=128 * 14 * 14)
    cfg.stages.stage3 = grpo_stage(steps=2, batch_size=8, buckets=small, max_pixels=128 * 14 * 14,
                                   grpo=dict(group_size=2, max_new_tokens=128))
    return cfg
