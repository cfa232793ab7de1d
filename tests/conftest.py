"""Test-wide settings: 8 fake CPU devices so sharded and single-device runs share one process."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
