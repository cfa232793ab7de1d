"""Output folders that are complete or absent: build beside the old one, swap in when complete.

Every verb that writes a folder goes through `build_beside`, so a crash, a refused input or a run
that produced nothing never costs the previous result:

    with build_beside(out, overwrite=args.overwrite, marker="dataset_info.json", inputs=[data]) as tmp:
        ...  # write everything into tmp; raise to give up
    # `out` now holds exactly what was written into tmp

The rules, checked on entry before anything is written:
- `out` may be missing or an empty folder. A non-empty folder is refused unless `overwrite`, and
  even then only when it holds `marker`, the file by which the verb recognises its own earlier
  output: `--overwrite` with a mistyped `--out ~` must not replace a home folder.
- `out` may not be, or contain, one of `inputs`: replacing it would delete what is being read.

The new result is written into a hidden folder next to `out` (same filesystem, so the renames are
atomic). If the block raises, that folder is deleted and `out` is left as it was. On success the
old `out` is renamed aside, the new folder renamed to `out`, and the old one deleted; only a crash
between those two renames leaves `out` missing, with the previous result in `.NAME.old-*` beside it.
A run killed outright (SIGKILL) leaves its `.NAME.partial-*` folder behind; `out` is untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Iterator


class OutputError(Exception):
    """The output folder cannot be used as asked; the message says why and what to do instead."""


@contextlib.contextmanager
def build_beside(
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    marker: str,
    inputs: Iterable[str | os.PathLike] = (),
) -> Iterator[Path]:
    """Yield an empty temporary folder beside `out` that becomes `out` when the block completes.

    Raises `OutputError` on entry when `out` may not be written (see the module docstring).
    """
    out = Path(out).resolve()  # a symlinked `out` swaps its target, beside the target
    check_output(out, overwrite, marker, inputs)
    tag = uuid.uuid4().hex[:8]
    new = out.parent / f".{out.name}.partial-{tag}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        new.mkdir()  # unlike tempfile.mkdtemp, honours the umask: `out` gets the usual permissions
    except OSError as e:
        raise OutputError(f"cannot create a folder beside {out} ({e.strerror}); choose a writable location") from e
    try:
        yield new
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.old-{tag}"
        out.rename(old)
        new.rename(out)
        shutil.rmtree(old)
    else:
        new.rename(out)


def check_output(out: str | os.PathLike, overwrite: bool, marker: str, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Raises `OutputError` if `out` may not be written (the module docstring's rules); `build_beside`
    checks on entry, and a verb calls this before its expensive work so that a refusal is cheap."""
    out = Path(out).resolve()
    if out.parent == out:
        raise OutputError(f"{out} is a filesystem root; choose a folder inside it")
    for given in inputs:
        source = Path(given).resolve()
        if source == out or out in source.parents:
            raise OutputError(f"the output {out} holds the input {source}; choose an output folder outside it")
    if out.exists() and not out.is_dir():
        raise OutputError(f"the output {out} exists and is not a folder; choose a folder path")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise OutputError(f"the output {out} is not empty; pass --overwrite to replace it "
                          f"(the new result is built beside it and swapped in when complete) or choose a new folder")
    if not (out / marker).is_file():
        raise OutputError(f"the output {out} is not empty and has no {marker}, so it is not an earlier output of "
                          f"this command; --overwrite replaces only those: choose a new or empty folder")


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write one file complete or not at all: a temporary name beside it, renamed over it at the end."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
