"""Test-wide settings: 8 fake CPU devices so sharded and single-device runs share one process."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The test extra installs libtpu (for `plan`'s TPU compiles); with it, JAX would probe for a TPU at
# backend start. The tests run on CPU devices; a TPU topology is still available to `plan`.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
