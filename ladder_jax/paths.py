"""Paths that may be URLs: `gs://bucket/run` stays a bucket path, never a local folder `gs:/bucket/run`.

`as_path` turns a config or command-line string into an etils `epath.Path` (the path library
Orbax uses): local paths behave like `pathlib.Path`, and gs://, s3://, az:// and hf:// paths reach
their store through epath's backends (tf.io.gfile or fsspec). `file://` URLs are local paths. Any
other `scheme://` is refused by name rather than silently written under the working directory.
"""

from __future__ import annotations

import os
import re

from etils import epath

REMOTE_SCHEMES = ("gs", "s3", "az", "hf")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class PathSchemeError(ValueError):
    """A URL whose scheme no path backend serves."""


def as_path(value: str | os.PathLike) -> epath.Path:
    """`value` as an epath.Path: a URL of a supported store, a file:// URL or a local path."""
    if isinstance(value, epath.Path) and is_remote(value):
        return value
    text = os.fspath(value)
    match = _URL.match(text)
    if match is None:
        return epath.Path(text)
    scheme = match.group(1).lower()
    if scheme == "file":
        return epath.Path(text[len("file://"):] or "/")
    if scheme not in REMOTE_SCHEMES:
        raise PathSchemeError(f"{text}: the {scheme}:// scheme is not supported (use a local path or one of "
                              f"{', '.join(s + '://' for s in REMOTE_SCHEMES)})")
    return epath.Path(text)


def is_remote(path: str | os.PathLike) -> bool:
    """True for a path in an object store (gs://, s3://, ...), where renames are copies and
    local tools (transformers, PIL by file name) cannot open files directly."""
    match = _URL.match(os.fspath(path) if not isinstance(path, epath.Path) else str(path))
    return bool(match) and match.group(1).lower() in REMOTE_SCHEMES
