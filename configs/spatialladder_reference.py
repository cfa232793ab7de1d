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
    "tpu-v5p-32": (dict(data=1, fsdp=16, tensor=1), "splash", "auto"),  # 16 chips of 95 GiB, 4 hosts
    "tpu-v5e-16": (dict(data=1, fsdp=16, tensor=1), "splash", "auto"),  # v5litepod-16: 16 chips of 16 GiB, 4 hosts
    "tpu-v5e-32": (dict(data=1, fsdp=16, tensor=2), "splash", "auto"),  # v5litepod-32: 32 chips of 16 GiB, 8 hosts
}
# The hardware each size ships on: every stage of each (and of its -grpo16) fits with 10% of device
# memory free at the longest batch its buckets allow (`ladder-jax plan`).
SIZES = {"3b": ("gpu-8xh100", "tpu-v5p-32", "tpu-v5e-16"), "7b": ("gpu-8xh100", "tpu-v5p-32", "tpu-v5e-32")}
NOT_SHIPPED = {
    ("7b", "tpu-v5e-16"): "7B does not fit 16 v5e chips: its GRPO update needs 16.3 GiB of a chip's 15.75 (14.8, 6% "
                          "free, with prompts capped at 2,048 tokens; with 16 prompts per update it does not "
                          "compile); use tpu-v5e-32",
    ("3b", "tpu-v5e-32"): "3B fits 16 v5e chips: use tpu-v5e-16",
}
# Stage settings a variant needs to fit (keyed like NOT_SHIPPED, the variant with its suffix).
# 16 GRPO prompts on v5e chips: prompts up to 2,048 tokens (at 4,096 the update needs 15.7 GiB of
# 15.75 for 3B on v5e-16, 17.3 for 7B on v5e-32). Stage-3 prompts are ~1-1.3k tokens: the patch
# buckets hold at most 1,024 vision tokens a row (8 views, or 16 frames, at 128 tokens per image or
# frame pair) and the text is ~300 tokens, so only a prompt with over ~1,000 text tokens is skipped
# (the pipeline counts it under "tokens").
# On gpu-8xh100 the plan compiles on CPU devices with XLA attention in place of cuDNN's, which holds
# each layer's attention scores: its figures are upper bounds, and these settings keep them 10% under
# 80 GiB. 7B SFT (stage 2, 8 images + a video per row) 2 micro-batches of one row per GPU (77.9 GiB
# in one); 16 GRPO prompts: scoring and update 2 micro-batches of one prompt x G per GPU (3B update
# 71.8 GiB in one, 7B scoring 84.9 and update 121.7), and for 7B prompts up to 2,048 tokens as on v5e
# (its update needs 79.3 GiB at 4,096 in 2 micro-batches, and 16 prompts split no further over 8 GPUs).
# A run on H100s that has the memory can set --config.stages.<stage>.micro_batches=1
# (--config.stages.stage3.grpo.micro_batches=1): the same result.
LENGTHS_2048 = dict(buckets=dict(lengths=(256, 512, 1024, 2048)))
MICRO_2 = dict(micro_batches=2)
FITS = {("3b", "tpu-v5e-16-grpo16"): dict(grpo=LENGTHS_2048), ("7b", "tpu-v5e-32-grpo16"): dict(grpo=LENGTHS_2048),
        ("3b", "gpu-8xh100-grpo16"): dict(grpo=dict(grpo=MICRO_2)),
        ("7b", "gpu-8xh100"): dict(sft=MICRO_2),
        ("7b", "gpu-8xh100-grpo16"): dict(sft=MICRO_2, grpo=dict(grpo=MICRO_2, **LENGTHS_2048))}

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
    if (size, hardware) in NOT_SHIPPED:
        raise ValueError(f"variant {variant!r} of the {size.upper()} config: {NOT_SHIPPED[size, hardware]}")
    if hardware not in SIZES[size]:
        raise ValueError(f"unknown variant {variant!r}; use configs/<file>.py:<variant> with one of {list(SIZES[size])}"
                         f", optionally followed by -grpo16 (16 prompts per GRPO update)")
    mesh, attention, distributed = VARIANTS[hardware]
    fit = FITS.get((size, variant), {})
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
