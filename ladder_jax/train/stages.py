"""The curriculum's config schema: the defaults every config file starts from, and the checks
that run before any compute (each error names the field and says how to fix it).

A curriculum config is a ConfigDict:

    workdir, order (stage names, run in this order), seed, distributed ("none" | "auto")
    mesh:       data, fsdp, tensor              (one of them may be -1: the rest of the devices)
    model:      init ("preset" | "params" | "hf"), preset, path, dtype, param_dtype, remat, attention
    tokenizer:  source ("model": the files beside model.path | "train": a demo BPE on the data), vocab_size
    data:       root (a release-layout folder: SpatialLadder-26k or toy world), image_root ("" = root/images)
    compiler_options: XLA options for the train step (e.g. a fast CPU compile for demos)
    stages:     stage1, stage2, cold_start (sft_stage()) and stage3 (grpo_stage())

A stage starts from the previous stage's final params (`init="previous"`) or from the model
source (`init="model"`); the first stage that runs always starts from the model source.
"""

from __future__ import annotations

import math

import ml_collections

from ladder_jax.data.examples import STAGE_KINDS
from ladder_jax.models.qwen25_vl.config import ConfigError, preset
from ladder_jax.train.grpo_loss import AGGREGATIONS, KL_ESTIMATORS

STAGES = ("stage1", "stage2", "cold_start", "stage3")
MODEL_INITS = ("preset", "params", "hf")


class CurriculumConfigError(ValueError):
    """A curriculum config that cannot run; raised before any compute."""


def _buckets() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        lengths=(256, 512, 1024, 2048, 4096), image_patches=(256, 512, 1024, 2048, 4096),
        image_items=(1, 2, 4, 8), video_patches=(512, 1024, 2048, 4096), video_items=(1,)))


def sft_stage(**overrides) -> ml_collections.ConfigDict:
    """An SFT stage with the SPEC section 3 reference values (lr 1e-5, cosine, warmup 0.1, batch 16)."""
    stage = ml_collections.ConfigDict(dict(
        steps=0, init="previous", batch_size=16, micro_batches=1, learning_rate=1e-5, warmup_ratio=0.1,
        end_lr_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, freeze_vision=False, freeze_merger=False,
        answer_only_loss=True, loss_chunk=0, num_workers=0, min_pixels=16 * 28 * 28, max_pixels=128 * 28 * 28,
        video_min_pixels=16 * 28 * 28, video_max_pixels=128 * 28 * 28, num_frames=0, buckets=_buckets(),
        log_every=10, checkpoint_every=500, keep_checkpoints=3, max_nonfinite=5, tensorboard=True, progress=True))
    return _update(stage, overrides)


def grpo_stage(**overrides) -> ml_collections.ConfigDict:
    """Stage 3 with the SPEC reference GRPO values (G 4, beta 0.01, clip 0.2, lr 1e-6, T 1.0, 1024 tokens)."""
    stage = sft_stage(learning_rate=1e-6, warmup_ratio=0.0)
    stage.grpo = ml_collections.ConfigDict(dict(
        group_size=4, beta=0.01, clip_eps=0.2, kl="k3", aggregation="sequence_mean", temperature=1.0, top_k=0,
        top_p=1.0, max_new_tokens=1024, updates_per_batch=1, micro_batches=1, format_weight=1.0,
        accuracy_weight=1.0, length_penalty_weight=0.0))
    return _update(stage, overrides)


def _update(node: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
    for key, value in overrides.items():
        if key not in node:
            raise CurriculumConfigError(f"unknown stage setting {key!r}; stages have {', '.join(sorted(node))}")
        if isinstance(value, dict):
            _update(node[key], value)
        else:
            node[key] = value
    return node


def base_config(workdir: str) -> ml_collections.ConfigDict:
    """Every field a curriculum config has, with the stages at their reference values and 0 steps."""
    return ml_collections.ConfigDict(dict(
        workdir=workdir, order=STAGES, seed=0, distributed="none",
        mesh=dict(data=-1, fsdp=1, tensor=1),
        model=dict(init="preset", preset="tiny", path="", dtype="float32", param_dtype="float32", remat="none",
                   attention="xla"),
        tokenizer=dict(source="model", vocab_size=1024),
        data=dict(root="", image_root=""),
        compiler_options={},
        stages=dict(stage1=sft_stage(), stage2=sft_stage(), cold_start=sft_stage(), stage3=grpo_stage())))


def enabled(cfg) -> list[str]:
    """The stages of `cfg.order` that train (steps > 0), in order."""
    return [name for name in cfg.order if cfg.stages[name].steps > 0]


def check_static(cfg) -> None:
    """Everything that needs neither devices nor data: structure, names, ranges."""
    _check_fields(cfg)
    _check_model(cfg)
    for name in enabled(cfg):
        _check_stage(name, cfg.stages[name])
    if "stage3" in enabled(cfg):
        _check_grpo(cfg.stages.stage3.grpo)


def _fail(message: str) -> None:
    raise CurriculumConfigError(message)


def _check_fields(cfg) -> None:
    reference = base_config("")
    extra = sorted(set(cfg.keys()) - set(reference.keys()))
    if extra:
        _fail(f"unknown config key(s) {extra}; a curriculum config has {', '.join(sorted(reference))}")
    unknown = [n for n in cfg.order if n not in STAGES]
    if unknown:
        _fail(f"config.order names unknown stage(s) {unknown}; choose from {STAGES}")
    if len(set(cfg.order)) != len(cfg.order):
        _fail(f"config.order {tuple(cfg.order)} lists a stage twice")
    missing = [n for n in cfg.order if n not in cfg.stages]
    if missing:
        _fail(f"config.order lists {missing} but config.stages has no entry for them; add "
              f"config.stages.{missing[0]} = sft_stage(...) / grpo_stage(...) or drop it from config.order")
    for name in cfg.stages:
        want = grpo_stage() if name == "stage3" else sft_stage()
        extra = sorted(set(cfg.stages[name].keys()) - set(want.keys()))
        if name not in STAGES or extra:
            _fail(f"config.stages.{name}: unknown stage or setting(s) {extra}; stages are {STAGES}, "
                  f"settings {', '.join(sorted(want))}")
    negative = [n for n in cfg.order if cfg.stages[n].steps < 0]
    if negative:
        _fail(f"config.stages.{negative[0]}: steps must be >= 0 (0 skips the stage), got {cfg.stages[negative[0]].steps}")
    if cfg.distributed not in ("none", "auto"):
        _fail(f"config.distributed must be 'none' or 'auto' (TPU pod / slurm), got {cfg.distributed!r}; "
              f"a local multi-process run passes --coordinator/--num-processes/--process-id instead")
    if not cfg.workdir:
        _fail("config.workdir is empty; set --config.workdir=PATH")


def _check_model(cfg) -> None:
    m = cfg.model
    if m.init not in MODEL_INITS:
        _fail(f"config.model.init must be one of {MODEL_INITS}, got {m.init!r}")
    if m.init == "preset":
        try:
            preset(m.preset, dtype=m.dtype, param_dtype=m.param_dtype, remat=m.remat, attention=m.attention)
        except ConfigError as e:
            _fail(f"config.model: {e}")
    elif not m.path:
        _fail(f"config.model.init={m.init!r} needs config.model.path (a {'HF folder' if m.init == 'hf' else 'params checkpoint'})")
    if cfg.tokenizer.source not in ("model", "train"):
        _fail(f"config.tokenizer.source must be 'model' or 'train', got {cfg.tokenizer.source!r}")
    if cfg.tokenizer.source == "model" and m.init == "preset":
        _fail("a random preset model has no tokenizer files; set config.tokenizer.source='train' "
              "(a demo tokenizer trained on the data) or start from config.model.path")


def _check_stage(name: str, s) -> None:
    checks = [
        (s.init in ("previous", "model"), f"init must be 'previous' or 'model', got {s.init!r}"),
        (s.steps >= 0 and s.batch_size >= 1 and s.micro_batches >= 1,
         "steps must be >= 0, batch_size and micro_batches >= 1"),
        (s.learning_rate > 0 and 0 <= s.warmup_ratio <= 1, "learning_rate must be > 0 and warmup_ratio in [0, 1]"),
        (s.num_workers >= 0 and s.loss_chunk >= 0 and s.num_frames >= 0, "num_workers, loss_chunk, num_frames must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            _fail(f"config.stages.{name}: {message}")


def _check_grpo(g) -> None:
    checks = [
        (g.group_size >= 2, f"group_size must be >= 2 (advantages compare samples of a group), got {g.group_size}"),
        (g.beta >= 0, f"beta must be >= 0, got {g.beta}"),
        (0 < g.clip_eps < 1, f"clip_eps must be in (0, 1), got {g.clip_eps}"),
        (g.temperature > 0, f"temperature must be > 0 (sampling), got {g.temperature}"),
        (0 < g.top_p <= 1 and g.top_k >= 0, f"need 0 < top_p <= 1 and top_k >= 0, got {g.top_p}, {g.top_k}"),
        (g.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {g.max_new_tokens}"),
        (g.updates_per_batch >= 1 and g.micro_batches >= 1, "updates_per_batch and micro_batches must be >= 1"),
        (g.kl in KL_ESTIMATORS, f"kl must be one of {KL_ESTIMATORS}, got {g.kl!r}"),
        (g.aggregation in AGGREGATIONS, f"aggregation must be one of {AGGREGATIONS}, got {g.aggregation!r}"),
        (min(g.format_weight, g.accuracy_weight, g.length_penalty_weight) >= 0, "reward weights must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            _fail(f"config.stages.stage3.grpo: {message}")


def check_devices(cfg, device_count: int, process_count: int) -> tuple[int, int, int]:
    """The mesh sizes (data, fsdp, tensor) with -1 resolved; every batch must divide over data x fsdp."""
    sizes = [cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor]
    if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
        _fail(f"config.mesh {sizes}: sizes must be >= 1, with at most one -1 (the rest of the devices)")
    known = math.prod(s for s in sizes if s != -1)
    if device_count % known or (-1 not in sizes and known != device_count):
        _fail(f"config.mesh (data, fsdp, tensor) = {tuple(sizes)} does not divide the {device_count} devices; "
              f"set config.mesh sizes whose product is {device_count} (or one of them to -1)")
    if -1 in sizes:
        sizes[sizes.index(-1)] = device_count // known
    rows = sizes[0] * sizes[1]
    for name in enabled(cfg):
        s = cfg.stages[name]
        if s.batch_size % (rows * s.micro_batches) or s.batch_size % process_count:
            _fail(f"config.stages.{name}.batch_size={s.batch_size} must split into micro_batches={s.micro_batches} "
                  f"that each divide over the data axes data x fsdp = {rows} (and over {process_count} processes); "
                  f"use a multiple of {math.lcm(rows * s.micro_batches, process_count)}")
    return tuple(sizes)


def check_data(cfg, kinds: dict[str, int]) -> None:
    """Every enabled stage has records of the kinds it trains on (`kinds`: record count per kind)."""
    for name in enabled(cfg):
        if not any(kinds.get(k, 0) for k in STAGE_KINDS[name]):
            _fail(f"config.stages.{name} has no data: {cfg.data.root} holds no records of kind "
                  f"{' / '.join(STAGE_KINDS[name])} (found {kinds or 'none'}); point config.data.root at a release "
                  f"that has them or set --config.stages.{name}.steps=0")
