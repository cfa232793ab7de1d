"""The schema of a curriculum run: its fields, their defaults and every check, each defined once.
The values of a run live in configs/*.py; this module says what a config may hold.

A curriculum config is a ConfigDict:

    workdir, order (stage names, run in this order), seed, distributed ("none" | "auto")
    target:     the hardware the config is sized for (ladder_jax/plan/targets.py; "" = this host)
    mesh:       data, fsdp, tensor              (one of them may be -1: the rest of the devices)
    model:      init ("preset" | "params" | "hf"), preset, path, dtype, param_dtype, remat, attention
    tokenizer:  source ("model": the files beside model.path | "train": a demo BPE on the data), vocab_size
    data:       root (a release-layout folder: SpatialLadder-26k or toy world), image_root ("" = root/images)
    compiler_options: XLA options for the train step (e.g. a fast CPU compile for demos)
    logging:    wandb_project ("" = none; else each stage logs to a Weights & Biases run, extra [wandb])
    stages:     stage1, stage2, cold_start (sft_stage()) and stage3 (grpo_stage())
    demo:       (optional) what `ladder-jax demo` alone reads: see configs/toy_demo.py

A stage holds `steps`, `init` and `batch_size` plus the settings of the components it drives, as
flat fields: the optimizer's (`optim.OptimConfig`), the input pipeline's (`PipelineConfig`), the
step's (`sft.StepConfig`) and the loop's (`loop.LoopConfig`); stage 3 adds `grpo` (`GRPOConfig`).
Their defaults (the SPEC section 3 reference values) and range checks are those dataclasses' own.
`plan(cfg)` builds every enabled stage's typed objects once, which runs all of those checks before
any compute; the curriculum then hands each component its object.

A stage starts from the previous stage's final params (`init="previous"`) or from the model
source (`init="model"`); the first stage that runs always starts from the model source.
"""

from __future__ import annotations

import dataclasses
import difflib

import ml_collections

from ladder_jax.config_files import build, fields_of
from ladder_jax.data.examples import STAGE_KINDS
from ladder_jax.data.pipeline import PipelineConfig
from ladder_jax.models.qwen25_vl.config import ConfigError, check_execution, preset
from ladder_jax.paths import as_path
from ladder_jax.parallel.mesh import MeshError, batch_split_error, resolve_sizes
from ladder_jax.train.grpo import GRPOConfig
from ladder_jax.train.loop import LoopConfig
from ladder_jax.train.optim import OptimConfig
from ladder_jax.train.sft import StepConfig

STAGES = ("stage1", "stage2", "cold_start", "stage3")
MODEL_INITS = ("preset", "params", "hf")
# Each component's fields that the curriculum fills in for the stage it runs (never set in a config).
RUNTIME = {
    OptimConfig: frozenset({"total_steps"}),
    PipelineConfig: frozenset({"stage", "global_batch_size", "mode", "seed", "shuffle", "num_epochs", "drop_remainder"}),
    StepConfig: frozenset(),
    LoopConfig: frozenset({"workdir", "total_steps", "batch_size", "seed", "eval_every", "wandb_project"}),
}
STAGE_OWN = dict(steps=0, init="previous", batch_size=16)  # batch_size: global rows per step (SPEC: 16)
OTHER_VERBS = ("demo",)  # top-level subtrees that another verb reads and the curriculum ignores
GRPO_OPTIM = dict(learning_rate=1e-6, warmup_ratio=0.0, decay="linear")  # SPEC section 3: linear decay, no warmup


class CurriculumConfigError(ValueError):
    """A curriculum config that cannot run; raised before any compute."""


@dataclasses.dataclass(frozen=True)
class StagePlan:
    """One enabled stage as its components take it, built (and so checked) from the config."""

    name: str
    steps: int
    init: str
    batch_size: int
    optim: OptimConfig
    pipeline: PipelineConfig
    step: StepConfig
    loop: LoopConfig
    grpo: GRPOConfig | None


def sft_stage(**overrides) -> ml_collections.ConfigDict:
    """An SFT stage: the components' defaults (SPEC section 3: lr 1e-5, cosine, warmup 0.1, batch 16)."""
    fields = dict(STAGE_OWN)
    for cls, runtime in RUNTIME.items():
        own = fields_of(cls, runtime)
        clash = set(own) & set(fields)
        assert not clash, f"{cls.__name__} fields {clash} clash with another component's in the flat stage"
        fields.update(own)
    return _update(ml_collections.ConfigDict(fields), overrides)


def grpo_stage(**overrides) -> ml_collections.ConfigDict:
    """Stage 3: an SFT stage's settings at GRPO's learning rate, plus `grpo` (GRPOConfig's defaults)."""
    stage = sft_stage(**GRPO_OPTIM)
    stage.grpo = ml_collections.ConfigDict(fields_of(GRPOConfig))
    return _update(stage, overrides)


def _update(node: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
    for key, value in overrides.items():
        if key not in node:
            near = difflib.get_close_matches(key, list(node), n=3)
            raise CurriculumConfigError(f"unknown stage setting {key!r}" + (f"; did you mean {', '.join(near)}?" if near
                                        else f"; stages have {', '.join(sorted(node))}"))
        if isinstance(value, dict):
            _update(node[key], value)
        else:
            node[key] = value
    return node


def base_config(workdir: str) -> ml_collections.ConfigDict:
    """Every field a curriculum config has, with the stages at their reference values and 0 steps."""
    return ml_collections.ConfigDict(dict(
        workdir=workdir, order=STAGES, seed=0, distributed="none", target="",
        mesh=dict(data=-1, fsdp=1, tensor=1),
        model=dict(init="preset", preset="tiny", path="", dtype="float32", param_dtype="float32", remat="none",
                   attention="xla"),
        tokenizer=dict(source="model", vocab_size=1024),
        data=dict(root="", image_root=""),
        compiler_options={},
        logging=dict(wandb_project=""),
        stages=dict(stage1=sft_stage(), stage2=sft_stage(), cold_start=sft_stage(), stage3=grpo_stage())))


def enabled(cfg) -> list[str]:
    """The stages of `cfg.order` that train (steps > 0), in order."""
    return [name for name in cfg.order if cfg.stages[name].steps > 0]


def check_static(cfg) -> list[StagePlan]:
    """Everything that needs neither devices nor data: structure, names, ranges. Returns the plans."""
    _check_fields(cfg)
    _check_model(cfg)
    return plan(cfg)


def _fail(message: str) -> None:
    raise CurriculumConfigError(message)


def _check_fields(cfg) -> None:
    reference = base_config("")
    extra = sorted(set(cfg.keys()) - set(reference.keys()) - set(OTHER_VERBS))
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
    try:
        check_execution(m.dtype, m.param_dtype, m.remat, m.attention)
        if m.init == "preset":
            preset(m.preset, dtype=m.dtype, param_dtype=m.param_dtype, remat=m.remat, attention=m.attention)
    except ConfigError as e:
        _fail(f"config.model: {e}")
    if m.init != "preset" and not m.path:
        _fail(f"config.model.init={m.init!r} needs config.model.path (a {'HF folder' if m.init == 'hf' else 'params checkpoint'})")
    if cfg.tokenizer.source not in ("model", "train"):
        _fail(f"config.tokenizer.source must be 'model' or 'train', got {cfg.tokenizer.source!r}")
    if cfg.tokenizer.source == "model" and m.init == "preset":
        _fail("a random preset model has no tokenizer files; set config.tokenizer.source='train' "
              "(a demo tokenizer trained on the data) or start from config.model.path")


def plan(cfg) -> list[StagePlan]:
    """The typed objects of every enabled stage; a value a component refuses fails here, named."""
    return [_stage_plan(cfg, name) for name in enabled(cfg)]


def _stage_plan(cfg, name: str) -> StagePlan:
    s, where = cfg.stages[name], f"config.stages.{name}"
    if s.init not in ("previous", "model"):
        _fail(f"{where}: init must be 'previous' or 'model', got {s.init!r}")
    if s.batch_size < 1:
        _fail(f"{where}: batch_size must be >= 1, got {s.batch_size}")
    grpo = _built(f"{where}.grpo", GRPOConfig, s.grpo) if name == "stage3" else None
    updates = grpo.updates_per_batch if grpo else 1  # the schedule counts optimizer updates
    return StagePlan(
        name, s.steps, s.init, s.batch_size,
        optim=_built(where, OptimConfig, s, total_steps=s.steps * updates),
        pipeline=_built(where, PipelineConfig, s, stage=name, global_batch_size=s.batch_size, seed=cfg.seed,
                        num_epochs=None),
        step=_built(where, StepConfig, s),
        loop=_built(where, LoopConfig, s, workdir=str(as_path(cfg.workdir) / name), total_steps=s.steps,
                    batch_size=s.batch_size, seed=cfg.seed, wandb_project=cfg.logging.wandb_project),
        grpo=grpo)


def _built(where: str, cls, node, **runtime):
    try:
        return build(cls, node, **runtime)
    except (ValueError, TypeError) as e:
        raise CurriculumConfigError(f"{where}: {e}") from None


def check_devices(cfg, device_count: int, process_count: int) -> tuple[int, int, int]:
    """The mesh sizes (data, fsdp, tensor) with -1 resolved; every batch must divide over data x fsdp,
    except a GRPO batch of fewer prompts than that (the reference's one prompt per update), which
    every device works on whole (`grpo.rows_sharding`)."""
    try:
        sizes = resolve_sizes((cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor), device_count)
    except MeshError as e:
        raise CurriculumConfigError(f"config.mesh: {e}") from None
    for name in enabled(cfg):
        s = cfg.stages[name]
        micro = s.grpo.micro_batches if name == "stage3" else s.micro_batches
        if name == "stage3" and s.batch_size < sizes[0] * sizes[1]:
            if s.batch_size % micro:
                _fail(f"config.stages.{name}.grpo.micro_batches={micro} must divide batch_size={s.batch_size}")
            continue
        error = batch_split_error(s.batch_size, micro, sizes, process_count)
        if error:
            _fail(f"config.stages.{name}.{error}")
    return sizes


def check_data(cfg, kinds: dict[str, int]) -> None:
    """Every enabled stage has records of the kinds it trains on (`kinds`: record count per kind)."""
    for name in enabled(cfg):
        if not any(kinds.get(k, 0) for k in STAGE_KINDS[name]):
            _fail(f"config.stages.{name} has no data: {cfg.data.root} holds no records of kind "
                  f"{' / '.join(STAGE_KINDS[name])} (found {kinds or 'none'}); point config.data.root at a release "
                  f"that has them or set --config.stages.{name}.steps=0")
