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
