"""Multi-host start-up (JAX's own multi-controller runtime) and global batches from per-host data.

Every process runs the same program; each feeds only its own rows. On TPU pods and under slurm
`initialize()` finds the cluster from the environment; a local multi-process run names the
coordinator, the process count and its id. CPU processes exchange data with gloo collectives.

Under slurm a process drives every GPU of its node when its node runs one task (launch/slurm_gpu.sbatch:
`--ntasks-per-node=1`). JAX's own slurm detection would restrict each process to the GPU numbered
by its SLURM_LOCALID (one process per GPU), so an 8-GPU node would show one device; `initialize`
names the node's GPUs itself then (`slurm_local_device_ids`). With several tasks per node JAX's
one-GPU-per-process default stands.

Each process pads its rows to the smallest buckets that fit them, so the processes first agree on
one padded shape per array (`agreed_shapes`) before their rows become one global array.

On CPU (gloo) a jitted function must not hold two collectives that do not depend on each other:
XLA:CPU orders collectives only by when they start, so across processes two independent ones can
interleave and the processes abort ("Received data size doesn't match expected size"). The SFT
step makes its gradients depend on the token count's all-reduce for this reason
(`sft.accumulate_grads`). GRPO's update reduces its loss sums and statistics (KL, clip fraction,
...) as one stacked all-reduce, then the max ratio deviation, and ties its gradients to both
(`grpo_update.policy_loss`); tests/train/test_grpo_multiprocess.py runs it on two processes. GPU
and TPU collectives run in program order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils

log = logging.getLogger(__name__)
SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_ids=None) -> None:
    """Calls `jax.distributed.initialize` before anything touches a device.

    Without arguments the cluster is detected (TPU pod metadata, slurm, ...); under slurm with one
    task on this node, all of the node's GPUs are this process's (`slurm_local_device_ids`). For
    local runs pass all of coordinator_address ("127.0.0.1:PORT"), num_processes and process_id."""
    explicit = (coordinator_address, num_processes, process_id)
    if any(x is not None for x in explicit) and any(x is None for x in explicit):
        raise ValueError("a local multi-process run needs coordinator_address, num_processes and process_id together")
    if local_device_ids is None and coordinator_address is None:
        local_device_ids = slurm_local_device_ids(os.environ)
        if local_device_ids is not None:
            log.info("slurm: one task on this node; it drives GPUs %s", local_device_ids)
    # Only the CPU backend reads this; without it CPU processes cannot run cross-process collectives.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, local_device_ids=local_device_ids)


def start(mode: str = "none", coordinator_address: str | None = None, num_processes: int | None = None,
          process_id: int | None = None) -> None:
    """Joins a multi-process run as a verb's flags ask: explicit for a local run (`num_processes`
    given), from the environment for `mode` "auto" (TPU pod, slurm); nothing for one process."""
    if num_processes:
        initialize(coordinator_address, num_processes, process_id)
    elif mode == "auto":
        initialize()


def tasks_per_node(spec: str) -> list[int]:
    """Slurm's compressed per-node task counts ("2(x3),1" -> [2, 2, 2, 1])."""
    counts = []
    for part in spec.split(","):
        count, _, repeat = part.partition("(x")
        counts += [int(count)] * (int(repeat.rstrip(")")) if repeat else 1)
    return counts


def slurm_local_device_ids(env: Mapping[str, str]) -> list[int] | None:
    """The GPUs a slurm task should drive: all of its node's ([0, n)) when the job step runs one
    task on this node; None (JAX's default) outside slurm, with several tasks on the node, or when
    the node's GPU count is unknown (no CUDA_VISIBLE_DEVICES / SLURM_GPUS_ON_NODE).

    The ids count the GPUs CUDA shows the process (slurm's CUDA_VISIBLE_DEVICES renumbers them
    from 0), which is what jax.distributed's local_device_ids mean."""
    if not all(name in env for name in SLURM_VARIABLES):
        return None
    spec = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE")
    if not spec:
        return None
    counts = tasks_per_node(spec)
    node = int(env.get("SLURM_NODEID", "0"))
    if node >= len(counts) or counts[node] != 1:
        return None
    visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    gpus = len(visible) or int(env.get("SLURM_GPUS_ON_NODE") or 0)
    if not gpus:
        log.warning("slurm: one task on this node but its GPU count is unknown (no CUDA_VISIBLE_DEVICES or "
                    "SLURM_GPUS_ON_NODE); jax.distributed will show this process one GPU")
        return None
    return list(range(gpus))


def agreed_shapes(local: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The elementwise maximum of every process's `local` shapes (same keys and ranks everywhere).

    A global array needs one shape, but each process buckets only its own rows. Buckets are
    monotone, so max over processes of bucket(own rows) = bucket(all rows): the shapes one process
    drawing the whole global batch would pick, hence the same losses. With one process the gather
    is a local copy."""
    keys = sorted(local)
    flat = np.asarray([size for key in keys for size in local[key]], np.int32)
    top = np.max(multihost_utils.process_allgather(flat), axis=0)
    out, start = {}, 0
    for key in keys:
        out[key] = tuple(int(n) for n in top[start:start + len(local[key])])
        start += len(local[key])
    return out


def global_batch(local: dict, shardings: dict) -> dict:
    """Process-local rows -> global jax.Arrays (batch-leading, sharded by `shardings`).

    Process i holds rows [i·b, (i+1)·b) of the global batch of process_count·b rows, in the order of
    the mesh's devices; with one process this is a plain device_put of the whole batch. Every
    process must pass the same shapes (see `agreed_shapes`)."""
    return {k: jax.make_array_from_process_local_data(shardings[k], np.asarray(v)) for k, v in local.items()}


def any_process(flag: bool) -> bool:
    """True on every process when `flag` is true on any (a stop signal reaches each host at its own
    moment; the processes must still stop after the same step). One small gather with several
    processes; none with one."""
    if jax.process_count() == 1:
        return bool(flag)
    return bool(np.max(multihost_utils.process_allgather(np.int32(bool(flag)))))


def first_problem(problem: str | None) -> str | None:
    """`problem` where this process has one; where only another process has one, a line saying so;
    None where no process has any. Every process calls it at the same point, so that a refusal on
    one host stops all of them instead of leaving the others waiting in the next collective."""
    if not any_process(problem is not None):
        return None
    return problem or "another process stopped here (its own message says why)"


def same_everywhere(value: int) -> bool:
    """True on every process when every process passed the same `value` (an int64)."""
    if jax.process_count() == 1:
        return True
    return bool(np.all(multihost_utils.process_allgather(np.int64(value)) == value))


def barrier(name: str) -> None:
    """Every process waits here for the others (none with one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def local_rows(array: jax.Array) -> np.ndarray:
    """This process's rows of a batch-leading global array: those it fed to `global_batch`, in
    order (the whole array where the rows are replicated)."""
    shards = {s.index[0].start or 0: s.data for s in array.addressable_shards}
    return np.concatenate([np.asarray(shards[start]) for start in sorted(shards)])


def process_rows(global_rows: int) -> slice:
    """The rows of a global batch that this process feeds (for data sources read in full on every host)."""
    n, i = jax.process_count(), jax.process_index()
    if global_rows % n:
        raise ValueError(f"global batch {global_rows} does not divide over {n} processes")
    per = global_rows // n
    return slice(i * per, (i + 1) * per)
