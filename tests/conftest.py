"""Test-wide settings: 8 fake CPU devices so sharded and single-device runs share one process, XLA:CPU's
cheap compile (tests/xla_env.py), and one persistent XLA compilation cache for the session and the
CLI / multi-process subprocesses it starts (many tests compile the same tiny programs through fresh
jit objects or in child processes)."""

import os
import pathlib

from tests.xla_env import xla_flags

os.environ.setdefault("XLA_FLAGS", xla_flags(8))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The test extra installs libtpu (for `plan`'s TPU compiles); with it, JAX would probe for a TPU at
# backend start. The tests run on CPU devices; a TPU topology is still available to `plan`.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Every compiled program is cached, however small or quick to compile (JAX's defaults skip those under
# a second). The cache lives in pytest's own cache folder (`pytest --cache-clear` empties it) unless
# LADDER_JAX_TEST_XLA_CACHE names another; its entries are keyed by the jax/XLA version and flags.
_CACHE = os.environ.get("LADDER_JAX_TEST_XLA_CACHE") or str(pathlib.Path(__file__).parents[1] / ".pytest_cache" / "xla")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 << 30))  # bytes; oldest entries go first


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject's addopts): one worker per core this process may use, at most 4 (each worker
    holds its own JAX runtime, 8 fake devices and its session fixtures' models)."""
    return max(1, min(len(os.sched_getaffinity(0)), 4))


# The longest test files (seconds each on an empty compile cache, 2-core machine, 2026-12-07) start
# first, so no worker is left running one of them alone at the end (`--dist loadfile` hands out files
# in collection order).
LONGEST_FIRST = ("notebooks/test_quickstart.py", "demo/test_ablations.py", "train/test_grpo.py",  # 163, 141, 116
                 "generate/test_sampler.py", "train/test_sft.py", "train/test_plan.py",  # 90, 78, 76
                 "train/test_grpo_multiprocess.py", "test_end_to_end_cli.py", "train/test_curriculum.py")  # 72, 66, 66


def pytest_collection_modifyitems(config, items):
    here = pathlib.Path(__file__).parent
    rank = {str(here / name): i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(str(item.path), len(rank)))  # stable: the rest keep their order
