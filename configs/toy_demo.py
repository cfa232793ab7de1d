"""The demo's curriculum: the `demo` preset (random init, a BPE trained on the toy world's text)
through stage 1 → stage 2 → cold start → stage 3 on 112×112 toy-world rooms. Two sizes:

    ladder-jax demo                       # :default, 30 minutes measured on a quiet 2-core CPU
    ladder-jax demo --quick               # :quick, 6.5 minutes there
    ladder-jax demo --config.demo.scenes=2000 --config.stages.stage1.steps=4000

The demo first pretrains the vision tower on the toy world's scene folders (stage 0,
`demo.vision_pretrain`: ladder_jax/demo/vision_pretrain.py, a named departure) and every stage keeps
it frozen. The same curriculum trains with `ladder-jax train` on a toy world made beforehand, without
stage 0 (the random tower, frozen):

    ladder-jax toyworld --out runs/toyworld --num-scenes 800 --size 112 --views 2 --video-frames 4
    ladder-jax train --config configs/toy_demo.py

`demo` holds what only the demo reads: the toy world it generates (scenes, size, views, frames,
grounding questions per room, held-out share) and how many held-out questions it scores. Images
are processed at the rendered size (112: 64 patches, 16 tokens) and video frames at half that side
(a 4-frame video is 32 patches): every stage's pixel bounds follow `demo.size` and its frame count
`demo.video_frames`, so an override of either changes them all.
"""

from ml_collections import config_dict

from ladder_jax.train.stages import base_config, grpo_stage, sft_stage

SIZES = {
    # rooms, stage 1 / 2 / cold start / 3 steps, held-out grounding / spatial / transformers-check questions
    "quick": dict(scenes=300, steps=(100, 120, 60, 4), items=(32, 64, 16), fast_compile=True, vision_steps=300),
    "default": dict(scenes=800, steps=(2400, 700, 600, 50), items=(120, 240, 32), fast_compile=False, vision_steps=600),
}
# Stage 1 gets most of the default's minutes: the model boxes and names objects early but reads
# which ones the question asks for late. Share of asked held-out objects its answer boxes (stage 1
# alone, bench/probes/grounding_probe.py): 0.10 after 600 steps, 0.31 after 1,800 at rate 2e-3, 0.82
# after 4,000 at 5e-3 (box IoU 0.006, 0.037, 0.052: where it puts the boxes it learns far more
# slowly). Reasoning format after stage 3: 0.000 with 250 cold-start and 30 GRPO steps, 0.083 with
# 600 and 50. Measured end to end on a quiet 2-core CPU: 36.5 min (stage 1 12.2, stage 2 2.6, cold
# start 7.3, stage 3 6.3, the stage-3-only baseline 5.6, evaluations 1.7, data 0.4).
# Cold-start style (config.demo.reasoning), 2026-12-06, one run each, held-out reasoning overall: from
# one stage-2 model (direct 0.416), worked 0.335 after the cold start and 0.384 after stage 3; short
# 0.280 and 0.315 (with the worked world's tokenizer, which splits "side", "apart", "covers" into
# letters). A whole default run with short (its own tokenizer): stage 2 0.439, cold start 0.400
# (format 1.000), stage 3 0.398, in 34.7 min. Stage 3 from the worked cold start, 100 steps: 0.370 at
# temperature 1.0, 0.396 at 0.7. No setting put the final model above stage 2 in one run; the
# ablation runner's seeds (`demo --ablations`) decide, not single runs.
# 2026-12-06 (later; appearance order now asked in 52% of videos, held-out types taken in turn, the
# direct score also asked about other rooms' pictures): the old default (3000 stage-1 steps, worked)
# took 49.5 min on this machine (stage 1 19.3, cold start 13.0, stage 3 5.3), over the 45-minute budget;
# 2400 steps and the short style took 38.1 (stage 1 15.3, cold start 8.6, stage 3 4.2): stage 2 0.401
# direct, cold start 0.282 and stage 3 0.384 reasoning (stage 3 raised accuracy 0.283 -> 0.385). No model
# reads the picture yet: stage 2 scores 0.415 with other rooms' pictures (bench/probes/picture_use.py).
# With layers.dense and xla_attention (no transposing fusions in the backward pass) the same default took
# 33.9 min (stage 1 12.5: median step 0.298 s against 0.371; cold start 6.9, stage 3 4.2): stage 2 0.426
# direct (0.426 with other rooms' pictures), stage 3 0.383 reasoning (cold start 0.363 accuracy -> 0.385).
# 2026-12-07, with stage 0 (vision_pretrain, the tower frozen after it) and stage 1 on the reference loss:
# 30.3 min (stage 0 1.6, stage 1 11.0, cold start 5.5, stage 3 3.2). Stage 1: box IoU 0.102 (0.103 with
# other rooms' pictures; position-blind 0.068), 50% of asked objects named; stage 2 0.453 direct (0.444
# with other pictures); stage 3 0.375 reasoning (cold start 0.340 accuracy -> 0.378). Stage 1 alone on a
# stage-0 tower trained by a scratch script (600 of the rooms, the JPEG pictures): IoU 0.143 (0.112 with
# other pictures), 85% named (the same tower, data order seed 1: IoU 0.070, 0.064 with other pictures,
# 77% named); on the demo's tower with data order seed 1: IoU 0.140 but 0.142 with other
# pictures, 91% named (per-label boxes beat the per-label mean box without looking). Whether stage 1
# names and looks turns on the tower and the data order alike: seeds decide (`demo --ablations`).


def get_config(size: str = "default"):
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; use configs/toy_demo.py:<size> with one of {sorted(SIZES)}")
    s = SIZES[size]
    cfg = base_config("runs/toy_demo")
    cfg.model.update(init="preset", preset="demo")
    cfg.tokenizer.update(source="train", vocab_size=1024)
    cfg.data.root = "runs/toyworld"
    if s["fast_compile"]:  # about a third of the default compile time, but each stage-1 step 0.50 s instead of 0.22
        cfg.compiler_options = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    grounding, spatial, hf_check = s["items"]
    cfg.demo = dict(name=size, scenes=s["scenes"], eval_fraction=0.1, size=config_dict.FieldReference(112), views=2,
                    video_frames=config_dict.FieldReference(4), grounding_per_scene=4, grounding_items=grounding,
                    spatial_items=spatial, hf_check_items=hf_check, baseline=True, reasoning="short",
                    cold_start="one",
                    vision_pretrain=dict(steps=s["vision_steps"], batch_size=16, learning_rate=1e-3))
    def toy(**changes):
        # Fresh references per stage and field: setting one stage's field must not move another's.
        side, frames = cfg.demo.get_ref("size"), cfg.demo.get_ref("video_frames")
        # The tower and merger stay as stage 0 (demo/vision_pretrain.py) left them: trained on by the
        # language-model loss, the demo's tower collapses to one vector per picture.
        return dict(batch_size=8, learning_rate=2e-3, warmup_ratio=0.1, weight_decay=0.01, log_every=10,
                    freeze_vision=True, freeze_merger=True,
                    checkpoint_every=200, min_pixels=side * side, max_pixels=side * side,
                    video_min_pixels=(side // 2) ** 2, video_max_pixels=(side // 2) ** 2, num_frames=frames + 0,
                    buckets=dict(lengths=(128, 256, 512), image_patches=(64, 128, 256, 512),
                                 video_patches=(32, 64, 128))) | changes

    stage1, stage2, cold_start, stage3 = s["steps"]
    # Stage 1 with the reference's loss (the whole sequence, each sample's token mean): trained on the
    # question's words too, the model copies the asked labels into its answer (README: departures).
    cfg.stages.stage1 = sft_stage(steps=stage1, **toy(learning_rate=5e-3, answer_only_loss=False, loss_average="sample"))
    cfg.stages.stage2 = sft_stage(steps=stage2, **toy())
    cfg.stages.cold_start = sft_stage(steps=cold_start, **toy())
    # 96 tokens: stage 3's completion budget and the reasoning evaluation's (solutions: <= 78 tokens).
    cfg.stages.stage3 = grpo_stage(steps=stage3, **toy(learning_rate=1e-4, log_every=2),
                                   grpo=dict(group_size=4, max_new_tokens=96, beta=0.01))
    return cfg
