"""Progress bars that a command turns on for the library code it calls.

Library loops (reading or writing every tensor of a checkpoint) wrap their iterables in
`track(...)`: a plain pass-through unless the command runs inside `bars()` (import-hf, export-hf),
when it is a tqdm bar on stderr if stderr is a terminal (process 0 only). Library users, logs
redirected to a file and captured test output see no bars.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys

_ENABLED = contextvars.ContextVar("ladder_jax_progress_bars", default=False)


@contextlib.contextmanager
def bars(enabled: bool = True):
    token = _ENABLED.set(enabled)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def track(iterable, desc: str, unit: str = "tensor", total: int | None = None):
    if not _ENABLED.get():
        return iterable
    import jax  # noqa: PLC0415
    from tqdm.auto import tqdm  # noqa: PLC0415

    if jax.process_index() != 0:
        return iterable
    stream = sys.stderr
    return tqdm(iterable, desc=desc, unit=unit, total=total, dynamic_ncols=True, file=stream,
                disable=not stream.isatty())
