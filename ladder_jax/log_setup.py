"""Our own log lines, visible whatever the libraries did to the root logger.

Importing grain / orbax (absl) puts a handler on the root logger and leaves it at WARNING, so
`logging.basicConfig` does nothing and every `ladder_jax.*` INFO line (the curriculum's stage
messages, the demo's phases) is dropped. `setup()` gives the `ladder_jax` logger a handler and a
level of its own and stops its records from reaching the root's handlers (no line twice).
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(name)s: %(message)s"


def setup(level: int | str = logging.INFO, stream=None) -> logging.Logger:
    """The `ladder_jax` logger at `level`, writing to `stream` (default: sys.stderr at each write).
    Calling it again changes the level and the stream; it never adds a second handler."""
    logger = logging.getLogger("ladder_jax")
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if getattr(h, "ladder_jax_handler", False)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.ladder_jax_handler = True
        handler.setFormatter(logging.Formatter(FORMAT, "%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
    handler.target = stream
    logger.propagate = False
    return logger


class _StderrHandler(logging.StreamHandler):
    """A StreamHandler that looks up sys.stderr at each record (pytest and notebooks swap it)."""

    target = None

    @property
    def stream(self):
        return self.target if self.target is not None else sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it
        pass
