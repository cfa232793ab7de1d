"""What `distributed.initialize()` hands jax.distributed under slurm, and what JAX then makes of it
(its own cluster detection, run for real on a simulated slurm environment): with one task per node
every process drives its node's 8 GPUs; with 8 tasks per node each drives one. Also slurm's task
count notation, and that every process agrees to stop when any got the signal (one process here)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ladder_jax.parallel.distributed import any_process, slurm_local_device_ids, tasks_per_node

ROOT = Path(__file__).resolve().parents[2]

# Node 1 (of node[001-002]) of a 2-node job, one task per node, 8 GPUs each, inside `srun`.
SLURM_2x1 = {"SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "node[001-002]", "SLURM_NTASKS": "2",
             "SLURM_PROCID": "1", "SLURM_LOCALID": "0", "SLURM_NODEID": "1", "SLURM_STEP_TASKS_PER_NODE": "1(x2)",
             "SLURM_TASKS_PER_NODE": "1(x2)", "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7", "SLURM_GPUS_ON_NODE": "8"}

# Runs our initialize() with jax.distributed.initialize replaced by a recorder, then JAX's own
# resolution of the recorded arguments (what jax.distributed would use), without starting anything.
PROBE = r'''
import json, os, jax
from jax._src import clusters
from ladder_jax.parallel import distributed
seen = {}
jax.distributed.initialize = lambda **kw: seen.update(kw)
distributed.initialize()
resolved = clusters.ClusterEnv.auto_detect_unset_distributed_params(
    seen["coordinator_address"], seen["num_processes"], seen["process_id"], seen["local_device_ids"], None, 300)
print(json.dumps({"passed": seen, "resolved": list(resolved)}))
'''


def probe(env: dict) -> dict:
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("SLURM_", "CUDA_VISIBLE"))}
    done = subprocess.run([sys.executable, "-c", PROBE], env=base | env | {"PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"},
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_task_per_node_drives_all_eight_gpus():
    out = probe(SLURM_2x1)
    assert out["passed"]["local_device_ids"] == list(range(8))
    coordinator, processes, index, devices = out["resolved"]
    port = 4242 % 2**12 + 65535 - 2**12 + 1
    assert (coordinator, processes, index, devices) == (f"node001:{port}", 2, 1, list(range(8)))


def test_without_our_ids_jax_would_show_one_gpu():
    """The failure the launch script had: JAX's slurm default for a one-task node is [SLURM_LOCALID]."""
    from jax._src import clusters  # noqa: PLC0415
    mp = pytest.MonkeyPatch()
    for k, v in SLURM_2x1.items():
        mp.setenv(k, v)
    try:
        resolved = clusters.ClusterEnv.auto_detect_unset_distributed_params(None, None, None, None, None, 300)
    finally:
        mp.undo()
    assert resolved[3] == [0]


def test_eight_tasks_per_node_keep_one_gpu_each():
    env = SLURM_2x1 | {"SLURM_NTASKS": "16", "SLURM_PROCID": "13", "SLURM_LOCALID": "5",
                       "SLURM_STEP_TASKS_PER_NODE": "8(x2)", "SLURM_TASKS_PER_NODE": "8(x2)"}
    out = probe(env)
    assert out["passed"]["local_device_ids"] is None
    assert out["resolved"][1:] == [16, 13, [5]]


def test_outside_slurm_nothing_is_chosen():
    assert slurm_local_device_ids({"CUDA_VISIBLE_DEVICES": "0,1"}) is None
    assert probe({})["passed"]["local_device_ids"] is None


@pytest.mark.parametrize("env, want", [
    (SLURM_2x1, list(range(8))),
    (SLURM_2x1 | {"CUDA_VISIBLE_DEVICES": "4,5"}, [0, 1]),  # a shared node: ids count the visible GPUs
    ({k: v for k, v in SLURM_2x1.items() if k != "CUDA_VISIBLE_DEVICES"}, list(range(8))),  # SLURM_GPUS_ON_NODE
    ({k: v for k, v in SLURM_2x1.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_GPUS_ON_NODE")}, None),
    (SLURM_2x1 | {"SLURM_STEP_TASKS_PER_NODE": "2,1", "SLURM_NODEID": "0"}, None),  # node 0 runs two tasks
    (SLURM_2x1 | {"SLURM_STEP_TASKS_PER_NODE": "2,1", "SLURM_NODEID": "1"}, list(range(8))),
    ({k: v for k, v in SLURM_2x1.items() if k != "SLURM_LOCALID"}, None),  # not all of JAX's slurm variables
])
def test_slurm_local_device_ids(env, want):
    assert slurm_local_device_ids(env) == want


@pytest.mark.parametrize("spec, want", [("1", [1]), ("1(x2)", [1, 1]), ("2(x3),1", [2, 2, 2, 1]),
                                        ("8,4(x2),1", [8, 4, 4, 1])])
def test_tasks_per_node(spec, want):
    assert tasks_per_node(spec) == want


def test_any_process_with_one_process_is_the_flag():
    assert any_process(True) is True and any_process(False) is False
