"""ladder_jax: the SpatialLadder recipe on a JAX/Flax Qwen2.5-VL."""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy so that `import ladder_jax` (the CLI, data tools) does not pay for JAX start-up.
    if name == "VisionLanguageModel":
        from ladder_jax.models.qwen25_vl.api import VisionLanguageModel

        return VisionLanguageModel
    if name == "Processor":
        from ladder_jax.data.processor import Processor

        return Processor
    raise AttributeError(f"module 'ladder_jax' has no attribute {name!r}")
