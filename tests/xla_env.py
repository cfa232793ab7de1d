"""The XLA flags every test process runs with, the pytest process and the CLI / multi-process
children alike (a child compiled with other flags could round differently from the run it is compared
with): N fake CPU devices, and XLA:CPU's cheap compile (no expensive LLVM passes, backend optimization
level 0). The tests' programs are tiny and compile-bound: on an empty compilation cache the cheap
compile took the suite from 32.8 to 25.9 minutes on a 2-core machine; running them slower costs little."""

FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def xla_flags(devices: int) -> str:
    return f"--xla_force_host_platform_device_count={devices} {FAST_COMPILE}"
