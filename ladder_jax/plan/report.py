"""The plan as text: a memory table per program against the device memory, each stage's shape,
tokens, FLOPs, estimated step and wall time, collective traffic; then the verdict and, for a stage
that does not fit, the knobs that would help."""

from __future__ import annotations

from ladder_jax.plan.run import MFU, Plan, StageReport

GIB = float(1 << 30)


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}"


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def headroom(plan: Plan, total: int) -> float | None:
    hbm = plan.target.hbm_bytes
    return (hbm - total) / hbm if hbm else None


def failing(plan: Plan) -> list[tuple[StageReport, str]]:
    """(stage, why) for each stage that does not fit or keeps less than plan.min_headroom free."""
    out = []
    for r in plan.stages:
        for p in r.programs:
            room = headroom(plan, p.total)
            if p.error:
                out.append((r, f"{p.name} does not compile: {p.error}"))
            elif room is not None and room < plan.min_headroom:
                out.append((r, f"{p.name} needs {_gib(p.total)} GiB per device of {_gib(plan.target.hbm_bytes)}: "
                               f"{room:.0%} free, below the {plan.min_headroom:.0%} required"))
    return out


def knobs(plan: Plan, r: StageReport) -> str:
    where = f"--config.stages.{r.name}"
    micro = f"{where}.grpo.micro_batches" if r.kind == "grpo" else f"{where}.micro_batches"
    lines = [f"{micro}=N (split each batch; needs batch_size divisible by N x data x fsdp)"]
    if plan.remat != "full":
        lines.append("--config.model.remat=full (recompute each layer in the backward pass)")
    lines.append(f"{where}.buckets.lengths=(...) (cap the sequence length: longer examples are skipped)")
    if r.kind == "sft":
        lines.append(f"{where}.loss_chunk=512 (logits in chunks of 512 positions)")
    else:
        lines.append(f"{where}.grpo.max_new_tokens / grpo.group_size (completion length, rollouts per prompt)")
        lines.append(f"{where}.grpo.gather_decode_weights=False (decode on the sharded weights: less memory, "
                     "a gather of them every token)")
    lines += ["--config.mesh.fsdp / --config.mesh.tensor (tensor splits heads and MLP: activations shrink too)",
              "--config.target=<a larger slice> (more devices or more memory each)"]
    return "\n".join("      " + line for line in lines)


def render(plan: Plan) -> str:
    t = plan.target
    out = [f"target {t.name}: {plan.devices} x {t.platform}"
           + (f" ({t.topology})" if t.topology else "") + (f", {_gib(t.hbm_bytes)} GiB each" if t.hbm_bytes else "")
           + (f", {t.peak_flops / 1e12:.0f} TFLOP/s bf16 peak" if t.peak_flops else "")
           + f"; mesh (data, fsdp, tensor) = {plan.mesh}; model: {plan.model_note}"]
    if t.note:
        out.append(f"note: {t.note}")
    for problem in plan.problems:
        out.append(f"PROBLEM: {problem}")
    header = f"{'stage':<11}{'program':<15}{'args':>8}{'temps':>8}{'outputs':>8}{'resident':>9}{'total':>8}{'HBM':>8}{'free':>7}  GiB per device"
    if plan.compiled:
        out += ["", header]
        for r in plan.stages:
            for p in r.programs:
                room = headroom(plan, p.total)
                if p.error:
                    out.append(f"{r.name:<11}{p.name:<15}  DOES NOT FIT: {p.error}")
                    continue
                out.append(f"{r.name:<11}{p.name:<15}{_gib(p.arguments):>8}{_gib(p.temporaries):>8}{_gib(p.outputs):>8}"
                           f"{_gib(p.resident):>9}{_gib(p.total):>8}{_gib(t.hbm_bytes) if t.hbm_bytes else 'n/a':>8}"
                           f"{f'{room:.0%}' if room is not None else 'n/a':>7}")
    out.append("")
    for r in plan.stages:
        s = r.shape
        secs = r.step_seconds(t, plan.devices)
        shape = (f"{s.rows} prompts x {r.group_size} completions of {r.new_tokens} tokens, prompts {s.length} tokens"
                 if r.kind == "grpo" else f"{s.rows} rows x {s.length} tokens")
        out.append(f"{r.name} ({r.kind}): longest batch {shape}, {s.image_items} images / {s.image_patches} patches, "
                   f"{s.video_items} videos / {s.video_patches} patches per row")
        per_epoch = f"{r.steps_per_epoch}" if r.steps_per_epoch is not None else "n/a (data.root not here)"
        out.append(f"    tokens/step {r.tokens:,}  FLOPs/step {r.flops:.3g}  est. step {_time(secs)} at {MFU:.0%} MFU  "
                   f"steps {r.steps} (per epoch {per_epoch})  stage wall time {_time(secs * r.steps if secs else None)}")
        if r.same_as:
            out.append(f"    compiles as {r.same_as} does (same shapes and settings; only the schedule's constants differ)")
            continue
        for p in r.programs:
            if p.error:
                continue
            if p.collectives:
                moved = ", ".join(f"{k} {v / GIB:.2f}" for k, v in sorted(p.collectives.items()))
                out.append(f"    {p.name}: collectives GiB per device per run: {moved}  (compiled in {p.compile_s:.0f} s)")
            elif p.compile_s:
                out.append(f"    {p.name}: no collectives  (compiled in {p.compile_s:.0f} s)")
    for name in plan.skipped:
        out.append(f"{name}: not planned (steps=0: it does not run; --config.stages.{name}.steps=N enables it)")
    if plan.note:
        out += ["", plan.note]
    fails = failing(plan)
    if fails:
        out.append("")
        for r in plan.stages:
            whys = [why for s, why in fails if s is r]
            if not whys:
                continue
            out += [f"DOES NOT FIT: {r.name}: {why}" for why in whys]
            out.append(f"    knobs that help:\n{knobs(plan, r)}")
    elif plan.compiled and not plan.problems:
        out += ["", f"OK: every stage fits {t.name} with at least {plan.min_headroom:.0%} of device memory free"]
    return "\n".join(out)


def exit_code(plan: Plan) -> int:
    """0: fits (or checks passed and nothing could be compiled); 1: problems or a stage that does not fit."""
    return 1 if plan.problems or failing(plan) else 0
