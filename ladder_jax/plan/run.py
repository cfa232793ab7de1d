"""The plan of a curriculum config on its target: checks, then every enabled stage's programs
compiled for the target (see programs.py), as a `Plan` that `report.py` prints.

TPU targets need libtpu (`pip install "ladder-jax[tpu]"`), which lets this CPU host compile for a
TPU topology; without it the plan runs the checks alone and says how to install it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from pathlib import Path

import jax

from ladder_jax.models.qwen25_vl import checkpoint
from ladder_jax.models.qwen25_vl import config as config_lib
from ladder_jax.models.qwen25_vl import flops as flops_lib
from ladder_jax.parallel.mesh import make_mesh, resolve_sizes, MeshError
from ladder_jax.plan import checks, programs, targets
from ladder_jax.plan.shapes import BatchShape, longest
from ladder_jax.train import optim, stages
from ladder_jax.train.grpo import GRPOStep

MFU = 0.40  # the utilisation step times are estimated at
INSTALL_TPU = 'pip install "ladder-jax[tpu]"  (jax[tpu] at our jax version: it pins a matching libtpu)'


@dataclasses.dataclass
class StageReport:
    name: str
    kind: str  # "sft" | "grpo"
    shape: BatchShape
    group_size: int
    new_tokens: int
    steps: int
    tokens: int  # padded tokens per step (GRPO: prompts and completions)
    flops: float  # per step, flops.py's formula
    programs: list = dataclasses.field(default_factory=list)
    steps_per_epoch: int | None = None
    same_as: str = ""  # an earlier stage whose programs stand for this one's (same shapes and settings)

    def step_seconds(self, target: targets.Target, devices: int) -> float | None:
        return self.flops / (devices * target.peak_flops * MFU) if target.peak_flops else None

    def worst(self) -> programs.Program | None:
        return max(self.programs, key=lambda p: (bool(p.error), p.total), default=None)


@dataclasses.dataclass
class Plan:
    target: targets.Target
    devices: int
    mesh: tuple
    model_note: str
    problems: list
    stages: list
    compiled: bool
    note: str = ""
    min_headroom: float = 0.10
    remat: str = "full"
    skipped: list = dataclasses.field(default_factory=list)  # stages of config.order with steps=0


def tpu_compiler_available() -> bool:
    """libtpu is installed (its presence alone: nothing is initialised)."""
    try:
        return importlib.util.find_spec("libtpu") is not None
    except (ImportError, ValueError):
        return False


def model_config(cfg, model_preset: str = "") -> tuple[config_lib.ModelConfig, str]:
    """(the model config the stages train, where it came from), without loading weights. A params
    checkpoint or HF folder that is not on this machine falls back to `model_preset`, or to the 3b
    / 7b preset its path names."""
    m = cfg.model
    execution = dict(dtype=m.dtype, param_dtype=m.param_dtype, remat=m.remat, attention=m.attention)
    if m.init == "preset":
        model = config_lib.preset(m.preset, **execution)
        if cfg.tokenizer.source == "train":
            model = model.replace(text=dataclasses.replace(model.text, vocab_size=cfg.tokenizer.vocab_size))
        return model, f"preset {m.preset!r}"
    path = Path(m.path)
    if m.init == "params" and (path / "model_config.json").exists():
        return checkpoint.read_config(path, **execution), f"{path}/model_config.json"
    if m.init == "hf" and (path / "config.json").exists():
        import json  # noqa: PLC0415
        return config_lib.from_hf_dict(json.loads((path / "config.json").read_text()), **execution), f"{path}/config.json"
    name = model_preset or next((s for s in ("7b", "3b") if re.search(rf"(?<![0-9]){s}", m.path.lower())), "")
    if not name:
        raise stages.CurriculumConfigError(f"config.model.path={m.path!r} is not here and names no size; pass "
                                           f"--model-preset 3b|7b to plan with that architecture")
    return config_lib.preset(name, **execution), f"preset {name!r} ({m.path} is not here)"


def tpu_devices(topology: str) -> list:
    """The devices of a TPU topology (e.g. "v5e:2x2") to compile for on this host: no TPU needed."""
    from jax.experimental import topologies  # noqa: PLC0415

    # libtpu takes a machine-wide lock for the TPU it drives; compiling drives none, so several
    # plans (and test processes) may compile at once. Without this a second process fails with
    # "Internal error when accessing libtpu multi-process lockfile".
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    return list(topologies.get_topology_desc(platform="tpu", topology_name=topology).devices)


def _devices(target: targets.Target) -> list:
    if target.platform == "tpu":
        return tpu_devices(target.topology)
    cpus = jax.devices("cpu")
    if target.platform == "host":
        return jax.devices()
    if len(cpus) < target.chips:
        raise targets.TargetError(f"{target.name} needs {target.chips} CPU devices to stand in for its GPUs, this "
                                  f"process has {len(cpus)}: run `ladder-jax plan` (it sets jax_num_cpu_devices) or set "
                                  f"XLA_FLAGS=--xla_force_host_platform_device_count={target.chips}")
    return cpus[:target.chips]


def _steps_per_epoch(cfg, plans) -> dict[str, int]:
    """Global batches per epoch of each stage, from the release at config.data.root (if it is here)."""
    root = Path(cfg.data.root) if cfg.data.root else None
    if root is None or not root.is_dir():
        return {}
    from ladder_jax.data.examples import STAGE_KINDS  # noqa: PLC0415
    from ladder_jax.train.stage_inputs import read_records  # noqa: PLC0415
    _, _, kinds = read_records(cfg)
    return {p.name: sum(kinds.get(k, 0) for k in STAGE_KINDS[p.name]) // p.batch_size for p in plans}


def stage_report(p, model: config_lib.ModelConfig) -> StageReport:
    s = longest(p.pipeline, model)
    if p.grpo is None:
        return StageReport(p.name, "sft", s, 1, 0, p.steps, s.rows * s.length,
                           flops_lib.train(model, s.rows, s.length, s.patches))
    g = p.grpo
    batch = {"input_ids": jax.ShapeDtypeStruct((s.rows, s.length), "int32"),
             "pixel_values": jax.ShapeDtypeStruct((s.rows, s.image_patches, 1), "float32"),
             "pixel_values_videos": jax.ShapeDtypeStruct((s.rows, s.video_patches, 1), "float32")}
    step = GRPOStep(None, None, None, None, {}, None, g)  # only its FLOP formula is used
    return StageReport(p.name, "grpo", s, g.group_size, g.max_new_tokens, p.steps,
                       s.rows * s.length + s.rows * g.group_size * g.max_new_tokens, step.flops(model, batch, {}))


def build(cfg, target_name: str = "", *, check_paths: bool = True, compile_programs: bool = True,
          model_preset: str = "", min_headroom: float = 0.10, log=print) -> Plan:
    """The plan of `cfg` (see module doc); raises CurriculumConfigError for a config that fails
    its static checks."""
    plans = stages.check_static(cfg)
    target = targets.get(target_name or cfg.get("target", ""))
    model, model_note = model_config(cfg, model_preset)
    count = target.chips or jax.device_count()
    try:
        sizes = resolve_sizes((cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor), count)
    except MeshError:
        sizes = None
    found = checks.problems(cfg, plans, target, count, model, check_paths)
    reports = [stage_report(p, model) for p in plans]
    for r, n in _steps_per_epoch(cfg, plans).items() if check_paths else ():
        next(x for x in reports if x.name == r).steps_per_epoch = n
    plan = Plan(target, count, sizes, model_note, found, reports, compiled=False, min_headroom=min_headroom,
                remat=model.remat, skipped=[n for n in cfg.order if n not in stages.enabled(cfg)])
    if not compile_programs:
        plan.note = "not compiled: --no-compile"
        return plan
    if target.platform == "tpu" and not tpu_compiler_available():
        plan.note = f"not compiled: compiling for {target.name} needs libtpu; install it with {INSTALL_TPU}"
        return plan
    if found or sizes is None:
        plan.note = "not compiled: fix the problems above first"
        return plan
    mesh = make_mesh(*sizes, devices=_devices(target))
    if target.platform == "gpu" and model.attention == "cudnn":  # cuDNN's kernel does not lower on the CPU
        model = model.replace(attention="xla")
        plan.note = "GPU target compiled on CPU devices with attention='xla' (cuDNN does not lower on a CPU): estimates"
    options = cfg.compiler_options.to_dict() or None
    done = {}
    for p, r in zip(plans, reports):
        key = (r.shape, p.step, p.grpo, optim.frozen_parts(p.optim))
        if key not in done:
            log(f"plan: compiling {p.name} for {target.name} ({'GRPO: prefill, decode, scoring, update' if p.grpo else 'SFT step'}) ...")
            build_programs = programs.grpo_programs if p.grpo else programs.sft_programs
            done[key] = p.name, build_programs(model, mesh, p, r.shape, options if target.platform != "tpu" else None)
        first, r.programs = done[key]
        r.same_as = "" if first == p.name else first
    plan.compiled = True
    return plan
