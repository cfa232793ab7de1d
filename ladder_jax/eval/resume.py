"""What an unfinished evaluation has done so far, kept beside its output so that a rerun continues.

`ladder-jax eval --out OUT` stages its work in `.OUT.resume/` beside OUT (same filesystem):

- `settings.json`: what decides the answers (model, benchmark, data, decoding, ...), written when
  the staging folder is made; a rerun with other settings is refused, naming the one that differs.
- `items-P-of-N.jsonl`: one line per finished item, appended and flushed after every batch by
  process P of N: the item's predictions.jsonl row, or {"id", "skipped", "detail"} for an item
  whose media could not be used. A last line without its newline (a crash mid-write) is dropped
  and its item generated again.

A rerun of the same command reads every such file and generates only the items not in them; when
nothing is left OUT is written whole (`atomic_output.build_beside`) and the staging folder removed.
`--overwrite` removes it first. Over several processes each appends to its own file and reads all
of them, so OUT must be on a filesystem they share; the processes check that they see the same rows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax

from ladder_jax.atomic_output import write_atomic
from ladder_jax.parallel.distributed import barrier, first_problem, same_everywhere

SETTINGS = "settings.json"


class ResumeError(ValueError):
    """The staging folder cannot be continued as asked; the message says why and what to do."""


def staging_dir(out: str | os.PathLike) -> Path:
    out = Path(out).resolve()
    return out.parent / f".{out.name}.resume"


@dataclasses.dataclass
class Staging:
    folder: Path
    done: dict[str, dict[str, Any]]  # id -> row: the items finished before this run

    @classmethod
    def open(cls, out: str | os.PathLike, settings: Mapping[str, Any], overwrite: bool = False) -> Staging:
        """The staging folder of `out` for a run with `settings` (JSON values): made (emptied first
        when `overwrite`) or continued. Every process calls it; each raises the same ResumeError."""
        folder = staging_dir(out)
        problem = None
        if jax.process_index() == 0:
            try:
                if overwrite and folder.exists():
                    shutil.rmtree(folder)
                folder.mkdir(parents=True, exist_ok=True)
                if not (folder / SETTINGS).exists():
                    write_atomic(folder / SETTINGS, (json.dumps(dict(settings), indent=1) + "\n").encode())
            except OSError as e:
                problem = f"cannot prepare {folder} ({e.strerror or e}); choose a writable --out"
        done: dict[str, dict] = {}
        if (problem := first_problem(problem)) is None:  # process 0 has prepared the folder
            try:
                _check_settings(folder, settings)
                done = read_rows(folder)
            except ResumeError as e:
                problem = str(e)
        if (problem := first_problem(problem)) is None and not same_everywhere(_digest(done)):
            problem = (f"the processes see different unfinished rows in {folder}: --out must be on a filesystem "
                       "that every process shares")
        if problem:
            raise ResumeError(problem)
        staging = cls(folder, done)
        _drop_torn_line(staging.path)
        return staging

    @property
    def path(self) -> Path:
        """This process's file of finished items."""
        return self.folder / f"items-{jax.process_index()}-of-{jax.process_count()}.jsonl"

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Adds finished items' rows, on disk before it returns."""
        if not rows:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
            f.flush()
            os.fsync(f.fileno())

    def gather(self) -> dict[str, dict[str, Any]]:
        """Every process's finished rows by id, once every process has appended its last; on return
        every process has read them (process 0 may remove the folder)."""
        barrier(f"eval: rows written to {self.folder}")
        rows = read_rows(self.folder)
        barrier(f"eval: rows read from {self.folder}")
        return rows

    def remove(self) -> None:
        if jax.process_index() == 0:
            shutil.rmtree(self.folder, ignore_errors=True)


def read_rows(folder: Path) -> dict[str, dict[str, Any]]:
    """The rows of every items file in `folder` by id, a torn last line of each dropped."""
    rows: dict[str, dict] = {}
    for path in sorted(folder.glob("items-*.jsonl")):
        lines = path.read_bytes().split(b"\n")[:-1]  # the piece after the last newline is torn (or empty)
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
                rows[row["id"]] = row
            except (ValueError, TypeError, KeyError) as e:
                raise ResumeError(f"{path}:{number}: not a row of finished items ({type(e).__name__}); pass "
                                  "--overwrite to start over") from None
    return rows


def skip_row(item_id: str, reason: str, detail: str) -> dict[str, str]:
    return {"id": item_id, "skipped": reason, "detail": detail}


def _check_settings(folder: Path, settings: Mapping[str, Any]) -> None:
    try:
        before = json.loads((folder / SETTINGS).read_text())
    except (OSError, ValueError) as e:
        raise ResumeError(f"{folder / SETTINGS} cannot be read ({type(e).__name__}; does every process share "
                          "this filesystem?); pass --overwrite to start over") from None
    now = json.loads(json.dumps(dict(settings)))  # as it reads back (tuples become lists)
    for key in sorted(set(before) | set(now)):
        if before.get(key) != now.get(key):
            raise ResumeError(f"{folder} holds an unfinished run with other settings: --{key.replace('_', '-')} was "
                              f"{before.get(key)!r}, now {now.get(key)!r}; run it with the same settings to finish "
                              "it, or pass --overwrite to start over")


def _digest(rows: Mapping[str, Any]) -> int:
    return zlib.crc32("\n".join(sorted(rows)).encode()) + (len(rows) << 32)


def _drop_torn_line(path: Path) -> None:
    """Cuts `path` after its last newline, so that what is appended next starts a line of its own."""
    if not path.exists():
        return
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
