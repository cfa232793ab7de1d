"""The SpatialLadder reference curriculum for Qwen2.5-VL-3B / 7B (SPEC section 3), shared by
qwen25vl_3b_spatialladder.py and qwen25vl_7b_spatialladder.py, and the hardware variants they select
with `configs/<file>.py:<variant>`.

Every variant keeps the reference effective batch of 16 rows, so the mesh's data axes
(data x fsdp) are at most 16 and divide it: parameters and optimizer state shard over `fsdp`.
SFT stages train with the reference's loss: labels on the whole sequence but pads and vision pads,
each sample's token mean, then the batch mean. Stage 3 runs the reference's batch, 1 prompt x
G 4 completions per update, for 2,600 updates (`run_spld_stage1_2_cs_stage3.sh`): a batch that
small is replicated over the mesh (every device works on the whole batch). Append `-grpo16`
to a variant (`...:gpu-8xh100-grpo16`) for our larger GRPO batch: 16 prompts x G 4 per update,
sharded over the mesh, for the same 2,600 updates (16x the prompts; not the reference's run).
"""

from ladder_jax.train.stages import base_config, grpo_stage, sft_stage

# name -> (mesh sizes, attention kernel, jax.distributed from the environment?)
VARIANTS = {
    "gpu-8xh100": (dict(data=1, fsdp=8, tensor=1), "cudnn", "none"),  # one node; slurm multi-node adds distributed=auto
    "tpu-v5p-32": (dict(data=1, fsdp=16, tensor=1), "splash", "auto"),  # 16 chips, 4 hosts
    "tpu-v5e-16": (dict(data=1, fsdp=16, tensor=1), "splash", "auto"),  # v5litepod-16: 16 chips of 16 GiB
}

# What a model size needs on a variant beyond its mesh to fit with 10% of device memory free at the
# longest batch its stages can produce (`ladder-jax plan`, docs/plan_table.md), as stage settings.
# 7B on v5e-16 (16 GiB chips): SFT rows up to 2,048 tokens. At 4,096 its stage-2 step needs 14.98 of
# 15.75 GiB (a tensor axis with micro-batches needs more: 16.2; logits in chunks saves 0.2); at
# 2,048, 12.7 GiB. SpatialLadder-26k rows are ~1-1.3k tokens: the patch buckets hold at most 1,024
# vision tokens a row (8 views, or 16 frames, at 128 tokens per image or frame pair), so only a row
# with over ~1,000 text tokens is skipped (the pipeline counts it under "tokens").
SFT_LENGTHS_2048 = dict(buckets=dict(lengths=(256, 512, 1024, 2048)))
FITS = {("7b", "tpu-v5e-16"): dict(sft=SFT_LENGTHS_2048)}

# SpatialLadder-26k: 5,928 grounding rows, ~20,680 spatial rows; one epoch at batch 16 per SFT stage.
STAGE1_STEPS, STAGE2_STEPS, GRPO_STEPS = 371, 1293, 2600
# GRPO prompts per update: the reference's (2 GPUs x 2 completions = 1 prompt x G 4) and our larger one.
GRPO_PROMPTS = {"": 1, "-grpo16": 16}
# The reference's SFT loss (SPEC section 3); <|video_pad|> stays unlabelled (label_video_pads=False,
# a listed departure: the reference's processor left it labelled).
REFERENCE_SFT_LOSS = dict(answer_only_loss=False, loss_average="sample")


def reference_config(size: str, variant: str):
    suffix = "-grpo16" if variant.endswith("-grpo16") else ""
    hardware = variant.removesuffix(suffix)
    if hardware not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use configs/<file>.py:<variant> with one of {sorted(VARIANTS)}"
                         f", optionally followed by -grpo16 (16 prompts per GRPO update)")
    mesh, attention, distributed = VARIANTS[hardware]
    fit = FITS.get((size, hardware), {})
    cfg = base_config(f"runs/qwen25vl_{size}_spatialladder")
    cfg.distributed = distributed
    cfg.target = hardware  # ladder_jax/plan/targets.py: `ladder-jax plan` compiles for it
    cfg.mesh.update(mesh)
    # Start from an imported checkpoint (`ladder-jax import-hf Qwen/Qwen2.5-VL-{3B,7B}-Instruct DIR`).
    cfg.model.update(init="params", path=f"checkpoints/qwen25vl_{size}_instruct", dtype="bfloat16",
                     param_dtype="float32", remat="full", attention=attention)
    cfg.data.root = "data/SpatialLadder-26k"
    sft = dict(batch_size=16, learning_rate=1e-5, warmup_ratio=0.1, checkpoint_every=200, **REFERENCE_SFT_LOSS,
               **fit.get("sft", {}))
    cfg.stages.stage1 = sft_stage(steps=STAGE1_STEPS, **sft)
    cfg.stages.stage2 = sft_stage(steps=STAGE2_STEPS, **sft)
    # The release's cold-start file is unpublished: enable with --config.stages.cold_start.steps=N.
    cfg.stages.cold_start = sft_stage(steps=0, **sft)
    cfg.stages.stage3 = grpo_stage(steps=GRPO_STEPS, batch_size=GRPO_PROMPTS[suffix], checkpoint_every=100,
                                   **fit.get("grpo", {}))
    return cfg
