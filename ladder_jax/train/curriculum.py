"""The curriculum runner: stage 1 → stage 2 → [cold start] → stage 3, one config for all.

Each stage trains in WORKDIR/<stage>/ with `loop.train` (which resumes from the stage's latest
checkpoint) and ends by writing its params to WORKDIR/<stage>/final, with the tokenizer, chat
template and preprocessor config at the stage's pixel bounds (a self-contained checkpoint). The next stage starts from
those params with a fresh optimizer and learning-rate schedule. Started again, a run skips every
stage whose `final` exists, so an interrupted curriculum continues where it stopped. The whole
config is checked before any compute (`stages.check_*`) and written, resolved, to WORKDIR/config.json.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from ladder_jax import config_files
from ladder_jax.data import pipeline
from ladder_jax.models.qwen25_vl.checkpoint import read_config, save_params
from ladder_jax.parallel import distributed
from ladder_jax.paths import as_path
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import stage_inputs, stages
from ladder_jax.train.loop import train
from ladder_jax.train.sft import make_train_step

log = logging.getLogger(__name__)
CONFIG_FILE = "config.json"


@dataclasses.dataclass
class StageOutcome:
    name: str
    status: str  # "trained" | "skipped: finished" | "skipped: 0 steps" | "preempted"
    final: Path | None
    last_metrics: dict
    seconds: float = 0.0  # spent training it in this call


def run(cfg, coordinator: str | None = None, num_processes: int | None = None,
        process_id: int | None = None) -> list[StageOutcome]:
    plans = {p.name: p for p in stages.check_static(cfg)}
    distributed.start(cfg.distributed, coordinator, num_processes, process_id)  # before any device use
    sizes = stages.check_devices(cfg, jax.device_count(), jax.process_count())
    records, image_root, kinds = stage_inputs.read_records(cfg)
    stages.check_data(cfg, kinds)
    workdir = as_path(cfg.workdir)  # gs://bucket/run stays a bucket path
    if jax.process_index() == 0:
        record_config(cfg, workdir / CONFIG_FILE)
    mesh = make_mesh(*sizes)
    processor = stage_inputs.build_processor(cfg, records)
    outcomes, previous = [], None
    for name in cfg.order:
        final = workdir / name / "final"
        if name not in plans:
            outcomes.append(StageOutcome(name, "skipped: 0 steps", None, {}))
        elif (final / "params").exists() and not _set_aside_if_damaged(final):
            log.info("%s: finished earlier (%s), skipped", name, final)
            outcomes.append(StageOutcome(name, "skipped: finished", final, {}))
            previous = final
        else:
            p, start, began = plans[name], previous if plans[name].init == "previous" else None, time.perf_counter()
            model_cfg, graphdef, state = (stage_inputs.load_final(cfg, start, mesh) if start else
                                          stage_inputs.load_model_source(cfg, processor, mesh))
            log.info("%s: %d steps from %s", name, p.steps, start or f"config.model ({cfg.model.init})")
            data = stage_inputs.stage_batches(p, records, image_root, processor, whole_batch_everywhere(p, mesh))
            step = make_stage_step(p, graphdef, state, processor, mesh, cfg.compiler_options.to_dict() or None)
            loop_cfg = dataclasses.replace(p.loop, progress=p.loop.progress and jax.process_index() == 0)
            result = train(step, state, data, loop_cfg, model_cfg, pad_id=processor.ids["pad"])
            if result.preempted:
                outcomes.append(StageOutcome(name, "preempted", None, result.last_metrics, time.perf_counter() - began))
                return outcomes
            save_params(final, model_cfg, result.state, processor=pipeline.stage_processor(processor, p.pipeline))
            outcomes.append(StageOutcome(name, "trained", final, result.last_metrics, time.perf_counter() - began))
            previous = final
    return outcomes


def _set_aside_if_damaged(final: Path) -> bool:
    """A stage `final/` whose model_config.json or parameter metadata cannot be read is not finished:
    it is moved to `final.damaged[-N]` (kept) and the stage finishes again from its own checkpoints."""
    try:
        read_config(final)
        with ocp.StandardCheckpointer() as ckptr:
            if not getattr(ckptr.metadata(final / "params"), "item_metadata", None):
                raise ValueError(f"{final / 'params'} has no readable parameter metadata")
        return False
    except Exception as e:  # noqa: BLE001 — whatever cannot be read means the stage is not finished
        why = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    aside = final.with_name("final.damaged")
    n = 1
    while aside.exists():
        aside, n = final.with_name(f"final.damaged-{n}"), n + 1
    if jax.process_index() == 0:
        final.rename(aside)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"set aside {final}")
    log.warning("%s is damaged (%s); moved it to %s and finishing the stage again from its checkpoints", final, why, aside)
    return True


def record_config(cfg, path: Path) -> None:
    """The resolved config of the run, written into its work directory at the start (reloadable
    with `--config WORKDIR/config.json`). A work directory started with another config is refused:
    resuming it would mix two runs."""
    if path.exists():
        before = config_files.load(path).to_dict()
        now = json.loads(json.dumps(cfg.copy_and_resolve_references().to_dict()))
        changed = sorted(_differences(json.loads(json.dumps(before)), now))
        if changed:
            raise stages.CurriculumConfigError(
                f"{path.parent} holds a run started with another config (differs in {', '.join(changed)}); "
                f"use another workdir, or resume it as it was with --config {path}")
    config_files.write_resolved(cfg, path)


def _differences(a, b, prefix: str = "config") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{prefix}.{k}")]
    return [] if a == b else [prefix]


def make_stage_step(p: stages.StagePlan, graphdef, state, processor, mesh, compiler_options: dict | None = None):
    """The jitted step of a stage: SFT for stages 1, 2 and cold start, GRPO for stage 3 (its
    reference policy is the stage's starting params, copied because the step donates `state`)."""
    if p.grpo is None:
        return make_train_step(graphdef, state, p.optim, mesh, p.step, compiler_options)
    from ladder_jax.train.grpo import make_grpo_step  # noqa: PLC0415

    ref_state = jax.tree.map(lambda x: x.copy(), state)
    return make_grpo_step(graphdef, state, ref_state, p.optim, mesh, p.grpo, processor.tokenizer, compiler_options,
                          prompts=p.batch_size)


def whole_batch_everywhere(p: stages.StagePlan, mesh) -> bool:
    """A GRPO batch too small to divide over the data axes is replicated: every process reads all of it."""
    from ladder_jax.train.grpo import replicated_rows  # noqa: PLC0415

    return p.grpo is not None and replicated_rows(mesh, p.batch_size)
