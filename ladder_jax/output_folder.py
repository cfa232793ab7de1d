"""Output folders of CLI verbs: never replaced by accident, and complete or absent.

An existing non-empty target is refused unless the user passed --overwrite. The new folder is built
beside the target (`.NAME.partial`, same file system) and renamed into place only when complete; with
--overwrite the old folder stays whole until then. A crash leaves the old folder (or, between the two
final renames, `.NAME.old` beside an absent target), never a mix of the two.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


class OutputExistsError(FileExistsError):
    pass


def check_target(target: str | os.PathLike, overwrite: bool, inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """The absolute target, if writing it is allowed; call before any work so that a refusal is cheap.
    `inputs` are what the verb reads: replacing a folder that holds one would delete it mid-run."""
    target = Path(target).resolve()  # through links: replace the folder a link names, not the link
    if target.exists() and not target.is_dir():
        raise OutputExistsError(f"{target} is a file, not a folder; choose another output path")
    for src in inputs:
        src = Path(src).resolve()
        if src == target or target in src.parents:
            raise OutputExistsError(f"{target} holds the input {src}; write the output somewhere else")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise OutputExistsError(f"{target} exists and is not empty; pass --overwrite to replace it (the old "
                                "folder is kept until the new one is complete) or choose another folder")
    return target


@contextlib.contextmanager
def staged(target: str | os.PathLike, overwrite: bool, inputs: tuple[str | os.PathLike, ...] = ()) -> Iterator[Path]:
    """Yields an empty folder beside `target` to write into; on success it becomes `target`,
    on an exception it is removed and `target` is untouched."""
    target = check_target(target, overwrite, inputs)
    partial, old = (target.with_name(f".{target.name}.{suffix}") for suffix in ("partial", "old"))
    shutil.rmtree(partial, ignore_errors=True)  # left by a crashed earlier run of this verb
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.rename(target, old)
    os.rename(partial, target)
    shutil.rmtree(old, ignore_errors=True)
