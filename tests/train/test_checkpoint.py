"""Orbax checkpoints: round trip onto another mesh, keep-N, and a save killed before its commit."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.parallel.sharding import replicated
from ladder_jax.train.checkpoint import Checkpointer
from tests.train.tiny import fresh_state, tiny_step

KILLED_SAVE = textwrap.dedent("""
    import sys, time
    import jax, jax.numpy as jnp
    from orbax.checkpoint._src.path import atomicity
    from ladder_jax.train.checkpoint import Checkpointer

    ckpt = Checkpointer(sys.argv[1], async_save=True)
    params = {"w": jnp.arange(6.0)}
    ckpt.save(1, params, {}, jax.random.key(1), {"n": 1}, {"position": 1})
    ckpt.wait()

    async def hang(self):  # every item is written; the commit (rename) never happens
        open(sys.argv[2], "w").close()
        time.sleep(600)

    atomicity.AtomicRenameTemporaryPath.finalize = hang
    ckpt.save(2, {"w": jnp.arange(6.0) + 1}, {}, jax.random.key(2), {"n": 2}, {"position": 2})
    time.sleep(600)
""")


def test_round_trip_onto_another_mesh_and_keep_n(tmp_path):
    single, sharded = tiny_step()[1], tiny_step(2, 2, 2)[1]
    state = fresh_state(single)
    opt_state = single.init_opt_state(state)
    ckpt = Checkpointer(tmp_path / "ck", keep=2)
    for step in (1, 2, 3):
        ckpt.save(step, state, opt_state, jax.random.key(step), {"skipped_total": step}, {"position": 10 * step})
    ckpt.wait()
    assert ckpt.manager.all_steps() == [2, 3] and ckpt.latest_step() == 3

    abstract_opt = jax.eval_shape(sharded.tx.init, state)
    r = ckpt.restore(3, state, abstract_opt, jax.random.key(0), sharded.state_shardings, sharded.opt_shardings)
    assert (r.step, r.meta, r.data_state) == (3, {"skipped_total": 3}, {"position": 30})
    np.testing.assert_array_equal(jax.random.key_data(r.rng), jax.random.key_data(jax.random.key(3)))
    assert jax.tree.structure(r.opt_state) == jax.tree.structure(opt_state)
    for a, b in zip(jax.tree.leaves((r.state, r.opt_state)), jax.tree.leaves(jax.device_get((state, opt_state)))):
        np.testing.assert_array_equal(a, b)
    gate = r.state["decoder"]["layers"]["mlp"]["gate_proj"]["kernel"].get_value()
    assert gate.sharding.spec == P(None, "fsdp", "tensor") and gate.sharding.mesh.shape["tensor"] == 2
    ckpt.close()


def test_save_killed_before_commit_leaves_previous_checkpoint(tmp_path):
    directory, marker = tmp_path / "ck", tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(directory), str(marker)], env=os.environ.copy())
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), "the subprocess never reached the second save's commit"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any("tmp" in p.name for p in directory.iterdir())  # the half-done step 2 is still there
    ckpt = Checkpointer(directory)
    assert ckpt.latest_step() == 1
    r = ckpt.restore(1, {"w": jax.ShapeDtypeStruct((6,), np.float32)}, {}, jax.random.key(0),
                     {"w": replicated(make_mesh(devices=jax.devices()[:1]))}, {})
    np.testing.assert_array_equal(r.state["w"], np.arange(6.0))
    assert r.data_state == {"position": 1}
    ckpt.close()
