"""A tally of what a data step kept and what it rejected, and why.

Every reader and writer in `ladder_jax.data` skips bad input instead of dying mid-run; this is
where each skip is recorded so that nothing is dropped silently. `reason` is a short fixed
phrase (it is what the counts group by); `detail` holds the specifics (a path, a value).
"""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path
from typing import Any

from ladder_jax.atomic_output import write_atomic


@dataclasses.dataclass(frozen=True)
class Rejection:
    source: str  # file the input came from (a JSONL file, a shard, an image)
    line: int | None  # 1-based line number in `source`, where it has lines
    record_id: str | None  # None when the input was too broken to carry an id
    reason: str
    detail: str = ""


@dataclasses.dataclass
class Report:
    accepted: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # per source
    rejections: list[Rejection] = dataclasses.field(default_factory=list)

    def accept(self, source: str, n: int = 1) -> None:
        self.accepted[source] += n

    def reject(self, source: str, line: int | None, record_id: str | None, reason: str, detail: str = "") -> None:
        self.rejections.append(Rejection(source, line, record_id, reason, detail))

    def retract(self, source: str, record_id: str, reason: str, detail: str = "", line: int | None = None) -> None:
        """Reject a record that a later step found bad after `source` had accepted it."""
        if self.accepted[source] < 1:
            raise ValueError(f"cannot retract {record_id!r}: nothing was accepted from {source}")
        self.accepted[source] -= 1
        self.reject(source, line, record_id, reason, detail)

    @property
    def num_accepted(self) -> int:
        return sum(self.accepted.values())

    @property
    def num_rejected(self) -> int:
        return len(self.rejections)

    @property
    def total(self) -> int:
        return self.num_accepted + self.num_rejected

    def counts(self) -> dict[str, int]:
        """Rejections per reason, most frequent first."""
        return dict(collections.Counter(r.reason for r in self.rejections).most_common())

    def merge(self, other: Report) -> Report:
        self.accepted.update(other.accepted)
        self.rejections.extend(other.rejections)
        return self

    def summary(self, max_examples: int = 3) -> str:
        lines = [f"{self.total} inputs: {self.num_accepted} accepted, {self.num_rejected} rejected"]
        for reason, n in self.counts().items():
            lines.append(f"  {n:6d}  {reason}")
            for r in [r for r in self.rejections if r.reason == reason][:max_examples]:
                where = f"{r.source}:{r.line}" if r.line is not None else r.source
                lines.append(f"          e.g. {where} id={r.record_id} {r.detail}".rstrip())
        return _printable("\n".join(lines))

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": dict(sorted(self.accepted.items())),
            "num_accepted": self.num_accepted,
            "num_rejected": self.num_rejected,
            "rejected_by_reason": self.counts(),
            "rejections": [dataclasses.asdict(r) for r in self.rejections],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Report:
        return cls(collections.Counter(d["accepted"]), [Rejection(**r) for r in d["rejections"]])

    def write(self, path: Path) -> None:
        """Complete or absent, even when a rejected input holds text UTF-8 cannot encode."""
        write_atomic(path, _printable(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n").encode())


def _printable(text: str) -> str:
    """`text` with each lone surrogate (from a bad input) as its JSON escape, "\\ud800".

    Only surrogates cannot be encoded in UTF-8, and in JSON the escape reads back as the same
    string, so a report keeps the offending id exactly and prints on any terminal.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
