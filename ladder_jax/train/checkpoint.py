"""Training checkpoints: Orbax CheckpointManager (async) holding params, optimizer state, rng, loop
counters and each process's data-iterator state; restored onto any mesh via abstract targets.
Items of a step: `train` (params + optimizer state, OCDBT), `meta` (loop counters and the rng key
data, JSON), `data` (one JSON per process).

A step directory is written under a temporary name and renamed when every item is committed, so
a save killed half-way leaves the previous checkpoint the latest one. Nothing is pickled: arrays
go to OCDBT/Zarr, the loop counters and iterator states to JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from ladder_jax.paths import as_path, is_remote


class ProcessJsonHandler(ocp.CheckpointHandler):
    """One JSON file per process (`process_{i}-of-{n}.json`): each host's data iterator has its own
    position, and a resumed host must read back its own.

    Grain's own handler (grain.checkpoint.CheckpointHandler) writes the same files but takes the
    live iterator, not a state: unless it is a grain.DatasetIterator (PipelineIterator wraps one and
    adds its skip report) it expects get_state() to return bytes, its restore needs the iterator and
    calls start_prefetch(), and a run whose data keeps no state cannot save through it."""

    def _file(self, directory):
        return as_path(directory) / f"process_{jax.process_index()}-of-{jax.process_count()}.json"

    def save(self, directory, args: "ProcessJsonSave"):
        self._file(directory).write_text(json.dumps(args.item))

    def restore(self, directory, args: "ProcessJsonRestore | None" = None):
        path = self._file(directory)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: the checkpoint was written by a different number of "
                                    f"processes than the {jax.process_count()} running now")
        return json.loads(path.read_text())

    def metadata(self, directory):
        return None

    def finalize(self, directory):
        pass

    def close(self):
        pass


@ocp.args.register_with_handler(ProcessJsonHandler, for_save=True)
@dataclasses.dataclass
class ProcessJsonSave(ocp.args.CheckpointArgs):
    item: Any


@ocp.args.register_with_handler(ProcessJsonHandler, for_restore=True)
@dataclasses.dataclass
class ProcessJsonRestore(ocp.args.CheckpointArgs):
    pass


@dataclasses.dataclass
class Restored:
    step: int
    state: Any
    opt_state: Any
    rng: jax.Array
    meta: dict
    data_state: Any


def abstract_targets(tree, shardings):
    """jax.ShapeDtypeStruct with the target sharding for each array: restore places every shard
    directly where the (possibly different) mesh wants it."""
    def one(sharding, subtree):  # shardings is a prefix: one sharding per nnx Variable
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), subtree)
    return jax.tree.map(one, shardings, tree)


class Checkpointer:
    """Keeps the newest `keep` checkpoints of a run directory; saves are asynchronous."""

    def __init__(self, directory, keep: int = 3, async_save: bool = True):
        self.directory = as_path(directory)  # gs://... stays a bucket path (Orbax writes through epath)
        if not is_remote(self.directory):
            self.directory = self.directory.absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                               create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        """Saved steps, newest first."""
        return sorted(self.manager.all_steps(), reverse=True)

    def quarantine(self, step: int) -> Path:
        """Moves an unreadable step aside to `corrupt/<step>` (kept for inspection, never deleted), so the
        run continues from an earlier step and can save this step number again."""
        self.manager.wait_until_finished()
        target = self.directory / "corrupt" / str(step)
        if jax.process_index() == 0:
            target.parent.mkdir(exist_ok=True)
            if target.exists():
                target = target.with_name(f"{step}.{len(list(target.parent.glob(f'{step}*')))}")
            os.replace(self.directory / str(step), target)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"quarantine checkpoint {step}")
        self.manager.reload()
        return target

    def save(self, step: int, state, opt_state, rng, meta: dict, data_state=None, force: bool = False) -> bool:
        """Starts an async save of everything needed to continue exactly after `step`. The rng key's
        few words travel in the JSON with the loop counters (identical on every host)."""
        meta = {**meta, "rng": np.asarray(jax.random.key_data(rng)).tolist()}
        items = {"train": ocp.args.StandardSave({"params": state, "opt_state": opt_state}),
                 "meta": ocp.args.JsonSave(meta),
                 "data": ProcessJsonSave(data_state)}
        return self.manager.save(step, args=ocp.args.Composite(**items), force=force)

    def restore(self, step: int, state, opt_state, rng, state_shardings, opt_shardings) -> Restored:
        """`state` and `opt_state` may be abstract: only their shapes, dtypes and the given shardings
        are used; `rng` gives the key implementation."""
        target = {"params": abstract_targets(state, state_shardings),
                  "opt_state": abstract_targets(opt_state, opt_shardings)}
        out = self.manager.restore(step, args=ocp.args.Composite(
            train=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore(), data=ProcessJsonRestore()))
        meta = dict(out["meta"])
        key = jax.random.wrap_key_data(np.asarray(meta.pop("rng"), np.uint32), impl=jax.random.key_impl(rng))
        return Restored(step, out["train"]["params"], out["train"]["opt_state"], key, meta, out["data"])

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def reached_preemption(self, step: int) -> bool:
        """Multi-host: True on every host at the same step once any host got a preemption notice."""
        return self.manager.reached_preemption(step)

    def close(self) -> None:
        self.manager.close()


class StopSignal:
    """SIGTERM (a TPU/slurm preemption notice) sets a flag; the loop saves at its next step boundary
    and returns. Saving inside the handler itself could interrupt a step half-way."""

    def __init__(self, signals=(signal.SIGTERM,)):
        self.event = threading.Event()
        self.previous = {}
        self.signals = signals

    def __enter__(self) -> "StopSignal":
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self.previous[s] = signal.signal(s, lambda *_: self.event.set())
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    @property
    def requested(self) -> bool:
        return self.event.is_set()
