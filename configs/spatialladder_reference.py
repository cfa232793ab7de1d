"""The SpatialLadder reference curriculum for Qwen2.5-VL-3B / 7B (SPEC section 3), shared by
qwen25vl_3b_spatialladder.py and qwen25vl_7b_spatialladder.py, and the hardware variants they select
with `configs/<file>.py:<variant>`.

Every variant keeps the reference effective batch of 16 rows, so the mesh's data axes
(data x fsdp) are at most 16 and divide it: parameters and optimizer state shard over `fsdp`.
"""

from ladder_jax.train.stages import base_config, grpo_stage, sft_stage

# name -> (mesh sizes, attention kernel, jax.distributed from the environment?)
VARIANTS = {
    "gpu-8xh100": (dict(data=1, fsdp=8, tensor=1), "cudnn", "none"),  # one node; slurm multi-node adds distributed=auto
    "tpu-v5p-32": (dict(data=1, fsdp=16, tensor=1), "splash", "auto"),  # 16 chips, 4 hosts
    "tpu-v5e-16": (dict(data=1, fsdp=16, tensor=1), "splash", "auto"),  # v5litepod-16: 16 chips of 16 GiB
}

# SpatialLadder-26k: 5,928 grounding rows, ~20,680 spatial rows; one epoch at batch 16 per SFT stage.
STAGE1_STEPS, STAGE2_STEPS, GRPO_STEPS = 371, 1293, 2600


def reference_config(size: str, variant: str):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use configs/<file>.py:<variant> with one of {sorted(VARIANTS)}")
    mesh, attention, distributed = VARIANTS[variant]
    cfg = base_config(f"runs/qwen25vl_{size}_spatialladder")
    cfg.distributed = distributed
    cfg.target = variant  # ladder_jax/plan/targets.py: `ladder-jax plan` compiles for it
    cfg.mesh.update(mesh)
    # Start from an imported checkpoint (`ladder-jax import-hf Qwen/Qwen2.5-VL-{3B,7B}-Instruct DIR`).
    cfg.model.update(init="params", path=f"checkpoints/qwen25vl_{size}_instruct", dtype="bfloat16",
                     param_dtype="float32", remat="full", attention=attention)
    cfg.data.root = "data/SpatialLadder-26k"
    sft = dict(batch_size=16, learning_rate=1e-5, warmup_ratio=0.1, checkpoint_every=200)
    cfg.stages.stage1 = sft_stage(steps=STAGE1_STEPS, **sft)
    cfg.stages.stage2 = sft_stage(steps=STAGE2_STEPS, **sft)
    # The release's cold-start file is unpublished: enable with --config.stages.cold_start.steps=N.
    cfg.stages.cold_start = sft_stage(steps=0, **sft)
    cfg.stages.stage3 = grpo_stage(steps=GRPO_STEPS, batch_size=16, checkpoint_every=100)
    return cfg
