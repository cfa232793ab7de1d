"""The programs a stage runs, compiled for a mesh from abstract parameters and optimizer state
(nothing is allocated): the SFT step, or GRPO's sampler prefill and decode loop, scoring pass and
update. Each comes back as a `Program`: its per-device memory from XLA's analysis, plus the
buffers that stay resident on the devices while it runs without being its arguments (GRPO: the
reference model and the optimizer state during sampling, ...).

The GRPO scoring and update jits are `train.grpo.grpo_jits`, the ones `make_grpo_step` runs
(make_grpo_step itself copies the reference state on the devices, so it is not called here).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
from flax import nnx

from ladder_jax.generate import sampler
from ladder_jax.models.qwen25_vl.api import abstract_model
from ladder_jax.models.qwen25_vl.config import ModelConfig
from ladder_jax.parallel.sharding import replicated, state_shardings
from ladder_jax.plan import hlo
from ladder_jax.plan.shapes import BatchShape, abstract_batch, per_device_bytes
from ladder_jax.train import grpo_rollout, optim
from ladder_jax.train.grpo import grpo_jits
from ladder_jax.train.sft import make_train_step


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program of a stage. Bytes are per device. `error` is set (and the sizes are 0)
    when the compiler refused it, e.g. for exceeding the device memory."""

    name: str
    arguments: int = 0  # every buffer passed in, also those the compiled program does not read (see compile_program)
    temporaries: int = 0
    outputs: int = 0  # outputs not aliased to (donated) arguments
    resident: int = 0  # live on the device during the program but not its argument
    collectives: dict = dataclasses.field(default_factory=dict)  # kind -> bytes per device per run
    compile_s: float = 0.0
    error: str = ""

    @property
    def total(self) -> int:
        return self.arguments + self.temporaries + self.outputs + self.resident


def _with_shardings(abstract, shardings):
    """ShapeDtypeStructs carrying `shardings`; an nnx Variable keeps its type with such a value."""
    def one(x, s):
        if isinstance(x, nnx.Variable):
            value = x.get_value()
            return x.replace(jax.ShapeDtypeStruct(value.shape, value.dtype, sharding=s))
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)
    return jax.tree.map(one, abstract, shardings, is_leaf=lambda x: isinstance(x, nnx.Variable))


def abstract_state(model_cfg: ModelConfig, mesh):
    """(graphdef, State of ShapeDtypeStructs on their shardings)."""
    graphdef, abstract = abstract_model(model_cfg)
    return graphdef, _with_shardings(abstract, state_shardings(abstract, mesh))


def abstract_opt_state(tx, state, mesh):
    abstract = jax.eval_shape(tx.init, state)
    return _with_shardings(abstract, optim.opt_state_shardings(abstract, mesh))


def _rng(mesh):
    key = jax.eval_shape(lambda: jax.random.key(0))
    return jax.ShapeDtypeStruct(key.shape, key.dtype, sharding=replicated(mesh))


def compile_program(name: str, traced_fn, *, inputs=(), resident: int = 0, loop_trips: int = 1):
    """(Program, compiled or None) for `traced_fn()` (a jax Traced); a compile that the target refuses
    (out of memory) becomes a Program with its error.

    `inputs`: the abstract arrays passed to the program. jit drops arguments its function does not
    read from the executable (GRPO's scoring reads the reference but not the policy passed beside
    it; decoding reads no vision weights), so XLA's argument size leaves them out, yet a run holds
    them on the devices: the Program's arguments are the larger of XLA's figure (with its layout
    padding) and the bytes of `inputs`."""
    start = time.perf_counter()
    # The executable is never run here: keep it out of a persistent compilation cache (a TPU
    # topology's could not be read back by this host's client, which warns and recompiles).
    cache_was = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        compiled = traced_fn().lower().compile()
    except Exception as e:  # noqa: BLE001 (XlaRuntimeError and friends: the compiler's message is the point)
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "RESOURCE_EXHAUSTED" not in message and "exceed" not in message.lower():
            raise
        return Program(name, resident=resident, compile_s=time.perf_counter() - start, error=message[:300]), None
    finally:
        jax.config.update("jax_enable_compilation_cache", cache_was)
    seconds = time.perf_counter() - start
    m = compiled.memory_analysis()
    outputs = max(m.output_size_in_bytes - m.alias_size_in_bytes, 0)
    arguments = max(m.argument_size_in_bytes, per_device_bytes(inputs))
    return Program(name, arguments, m.temp_size_in_bytes, outputs, resident,
                   hlo.collective_bytes(compiled.as_text(), unknown_trips=loop_trips), seconds), compiled


def sft_programs(model_cfg: ModelConfig, mesh, plan, shape: BatchShape, compiler_options=None) -> list[Program]:
    """The SFT step (`sft.make_train_step`) on the longest batch."""
    graphdef, state = abstract_state(model_cfg, mesh)
    ts = make_train_step(graphdef, state, plan.optim, mesh, plan.step, compiler_options)
    opt = abstract_opt_state(ts.tx, state, mesh)
    batch = abstract_batch(shape, model_cfg, ts.batch_shardings, labels=True)
    program, _ = compile_program("sft step", lambda: ts.step.trace(state, opt, batch, _rng(mesh)),
                                 inputs=(state, opt, batch))
    return [program]


def grpo_programs(model_cfg: ModelConfig, mesh, plan, shape: BatchShape, compiler_options=None) -> list[Program]:
    """GRPO's prefill and decode (sampler), scoring (reference log-probs) and update (`grpo.grpo_jits`,
    what `make_grpo_step` runs), each with the policy, its optimizer state, the reference policy and
    the prompt batch resident throughout."""
    cfg = plan.grpo
    graphdef, state = abstract_state(model_cfg, mesh)
    ref_state = state  # same shapes and shardings (make_grpo_step copies the policy onto them)
    jits = grpo_jits(graphdef, state, plan.optim, mesh, cfg, compiler_options, shape.rows)
    opt = abstract_opt_state(jits.tx, state, mesh)
    prompts = abstract_batch(shape, model_cfg, jits.batch, labels=False)
    rows, width = shape.rows * cfg.group_size, cfg.max_new_tokens
    rows1, rows2 = jits.rollout.advantages, jits.rollout.completions
    sizes = {"state": per_device_bytes(state), "opt": per_device_bytes(opt), "ref": per_device_bytes(ref_state),
             "prompts": per_device_bytes(prompts)}
    besides = lambda *taken: sum(v for k, v in sizes.items() if k not in taken)
    out = []
    with jax.set_mesh(mesh):
        prefill, compiled = compile_program(
            "grpo prefill", lambda: sampler._prefill.trace(graphdef, state, prompts, num_samples=cfg.group_size,
                                                         max_new_tokens=cfg.max_new_tokens),
            inputs=(state, prompts), resident=besides("state", "prompts"))
        out.append(prefill)
        if compiled is not None:
            abstract_out = jax.eval_shape(lambda s, p: sampler._prefill(
                graphdef, s, p, num_samples=cfg.group_size, max_new_tokens=cfg.max_new_tokens), state, prompts)
            logits, cache = _with_shardings(abstract_out, compiled.output_shardings)
            scalar = jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated(mesh))
            end_ids = jax.ShapeDtypeStruct((2,), jnp.int32, sharding=replicated(mesh))  # GRPO stops at both end tokens
            penalty = jax.ShapeDtypeStruct((), jnp.float32, sharding=replicated(mesh))  # off in GRPO: no `seen` table
            out.append(compile_program(
                "grpo decode", lambda: sampler._decode.trace(
                    graphdef, state, cache, logits, _rng(mesh), end_ids, scalar, penalty, None,
                    max_new_tokens=cfg.max_new_tokens,
                    temperature=float(cfg.temperature), top_k=int(cfg.top_k), top_p=float(cfg.top_p),
                    gather_weights=cfg.gather_decode_weights),
                inputs=(state, cache, logits), resident=besides("state"), loop_trips=cfg.max_new_tokens - 1)[0])
        else:
            out.append(Program("grpo decode", error="not compiled: the prefill does not fit"))
    completions = jax.ShapeDtypeStruct((rows, width), jnp.int32, sharding=rows2)
    mask = jax.ShapeDtypeStruct((rows, width), jnp.bool_, sharding=rows2)
    out.append(compile_program("grpo scoring", lambda: jits.logps.trace(state, ref_state, prompts, completions, mask),
                               inputs=(state, ref_state, prompts, completions, mask),
                               resident=besides("state", "ref", "prompts"))[0])
    logp = jax.ShapeDtypeStruct((rows, width), jnp.float32, sharding=rows2)
    rollout = grpo_rollout.Rollout(completions, mask, jax.ShapeDtypeStruct((rows,), jnp.float32, sharding=rows1),
                                   logp, logp)
    out.append(compile_program("grpo update", lambda: jits.update.trace(state, opt, prompts, rollout),
                               inputs=(state, opt, prompts, rollout), resident=besides("state", "opt", "prompts"))[0])
    return out
