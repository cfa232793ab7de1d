"""The curriculum runner: stage 1 → stage 2 → [cold start] → stage 3, one config for all.

Each stage trains in WORKDIR/<stage>/ with `loop.train` (which resumes from the stage's latest
checkpoint) and ends by writing its params to WORKDIR/<stage>/final. The next stage starts from
those params with a fresh optimizer and learning-rate schedule. Started again, a run skips every
stage whose `final` exists, so an interrupted curriculum continues where it stopped. The whole
config is checked before any compute (`stages.check_*`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import jax

from ladder_jax.models.qwen25_vl.checkpoint import save_params
from ladder_jax.parallel import distributed
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import stage_inputs, stages
from ladder_jax.train.loop import LoopConfig, train
from ladder_jax.train.optim import OptimConfig
from ladder_jax.train.sft import StepConfig, make_train_step

log = logging.getLogger(__name__)


@dataclasses.dataclass
class StageOutcome:
    name: str
    status: str  # "trained" | "skipped: finished" | "skipped: 0 steps" | "preempted"
    final: Path | None
    last_metrics: dict


def initialize(cfg, coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """jax.distributed: explicit for local multi-process runs, from the environment when
    config.distributed == "auto" (TPU pod, slurm); nothing for a single process."""
    if num_processes:
        distributed.initialize(coordinator, num_processes, process_id)
    elif cfg.distributed == "auto":
        distributed.initialize()


def run(cfg, coordinator: str | None = None, num_processes: int | None = None,
        process_id: int | None = None) -> list[StageOutcome]:
    stages.check_static(cfg)
    initialize(cfg, coordinator, num_processes, process_id)
    sizes = stages.check_devices(cfg, jax.device_count(), jax.process_count())
    records, image_root, kinds = stage_inputs.read_records(cfg)
    stages.check_data(cfg, kinds)
    mesh = make_mesh(*sizes)
    processor = stage_inputs.build_processor(cfg, records)
    workdir, outcomes, previous = Path(cfg.workdir), [], None
    for name in cfg.order:
        s, final = cfg.stages[name], workdir / name / "final"
        if s.steps == 0:
            outcomes.append(StageOutcome(name, "skipped: 0 steps", None, {}))
        elif (final / "params").exists():
            log.info("%s: finished earlier (%s), skipped", name, final)
            outcomes.append(StageOutcome(name, "skipped: finished", final, {}))
            previous = final
        else:
            start = previous if s.init == "previous" else None
            model_cfg, graphdef, state = (stage_inputs.load_final(cfg, start, mesh) if start else
                                          stage_inputs.load_model_source(cfg, processor, mesh))
            log.info("%s: %d steps from %s", name, s.steps, start or f"config.model ({cfg.model.init})")
            data = stage_inputs.stage_batches(cfg, name, records, image_root, processor)
            result = train_stage(cfg, name, model_cfg, graphdef, state, data, processor, mesh, workdir / name)
            if result.preempted:
                outcomes.append(StageOutcome(name, "preempted", None, result.last_metrics))
                return outcomes
            save_params(final, model_cfg, result.state)
            outcomes.append(StageOutcome(name, "trained", final, result.last_metrics))
            previous = final
    return outcomes


def _optim(s, updates_per_step: int = 1) -> OptimConfig:
    """The stage's optimizer; its schedule counts optimizer updates (GRPO: updates_per_batch per step)."""
    return OptimConfig(learning_rate=s.learning_rate, total_steps=s.steps * updates_per_step, warmup_ratio=s.warmup_ratio,
                       end_lr_ratio=s.end_lr_ratio, weight_decay=s.weight_decay, max_grad_norm=s.max_grad_norm,
                       freeze_vision=s.freeze_vision, freeze_merger=s.freeze_merger)


def make_stage_step(cfg, name: str, graphdef, state, processor, mesh):
    """The jitted step of a stage: SFT for stages 1, 2 and cold start, GRPO for stage 3 (its
    reference policy is the stage's starting params, copied because the step donates `state`)."""
    s, options = cfg.stages[name], cfg.compiler_options.to_dict() or None
    if name != "stage3":
        return make_train_step(graphdef, state, _optim(s), mesh, StepConfig(s.micro_batches, s.loss_chunk), options)
    from ladder_jax.train.grpo import GRPOConfig, make_grpo_step  # noqa: PLC0415 (optional until it lands)
    ref_state = jax.tree.map(lambda x: x.copy(), state)
    return make_grpo_step(graphdef, state, ref_state, _optim(s, s.grpo.updates_per_batch), mesh,
                          GRPOConfig(**s.grpo.to_dict()), processor.tokenizer, options)


def train_stage(cfg, name: str, model_cfg, graphdef, state, data, processor, mesh, stage_dir: Path):
    s = cfg.stages[name]
    step = make_stage_step(cfg, name, graphdef, state, processor, mesh)
    loop_cfg = LoopConfig(workdir=str(stage_dir), total_steps=s.steps, batch_size=s.batch_size,
                          log_every=s.log_every, checkpoint_every=s.checkpoint_every,
                          keep_checkpoints=s.keep_checkpoints, max_nonfinite=s.max_nonfinite, seed=cfg.seed,
                          tensorboard=s.tensorboard, progress=s.progress and jax.process_index() == 0)
    return train(step, state, data, loop_cfg, model_cfg, pad_id=processor.ids["pad"])
