"""Qwen2.5-VL-7B on SpatialLadder-26k with the SPEC reference settings.

    ladder-jax train --config configs/qwen25vl_7b_spatialladder.py:gpu-8xh100
    ladder-jax train --config configs/qwen25vl_7b_spatialladder.py:tpu-v5p-32
    ladder-jax train --config configs/qwen25vl_7b_spatialladder.py:tpu-v5e-32   # 32 v5e chips: 7B does not fit 16
    ladder-jax train --config configs/qwen25vl_7b_spatialladder.py:gpu-8xh100-grpo16   # 16 prompts per GRPO update
"""

from spatialladder_reference import reference_config


def get_config(variant: str = "gpu-8xh100"):
    return reference_config("7b", variant)
