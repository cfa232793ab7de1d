"""Qwen2.5-VL-3B on SpatialLadder-26k with the SPEC reference settings.

    ladder-jax train --config configs/qwen25vl_3b_spatialladder.py:gpu-8xh100
    ladder-jax train --config configs/qwen25vl_3b_spatialladder.py:tpu-v5p-32
    ladder-jax train --config configs/qwen25vl_3b_spatialladder.py:tpu-v5e-16
    ladder-jax train --config configs/qwen25vl_3b_spatialladder.py:gpu-8xh100-grpo16   # 16 prompts per GRPO update
"""

from spatialladder_reference import reference_config


def get_config(variant: str = "gpu-8xh100"):
    return reference_config("3b", variant)
