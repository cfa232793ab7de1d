"""The toy world: procedural RGB-D rooms with exact answers to every SpatialLadder task.

`generate(out_dir, scenes, seed)` writes a data set in the release layout (see `generate.py`);
the pieces (scene sampling, cameras, the ray caster, question builders) are usable on their own.
"""

from ladder_jax.data.toyworld.generate import generate

__all__ = ["generate"]
