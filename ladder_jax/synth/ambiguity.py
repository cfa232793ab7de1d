"""Which objects a question may name: a label that could mean two objects is never used.

Labels are compared by their head noun (last word, lowercased, a plural "s" dropped), so
"chair", "Chairs" and "wooden chair" collide — a cheap stand-in for SpatialVLM's caption
similarity that errs on the side of dropping objects.
"""

from __future__ import annotations

import collections


def label_key(label: str) -> str:
    words = label.lower().split()
    head = words[-1] if words else ""
    return head[:-1] if len(head) > 3 and head.endswith("s") and not head.endswith("ss") else head


def unambiguous_ids(labels: dict[int, str], present: set[int]) -> tuple[set[int], dict[int, str]]:
    """(ids that may be named, {dropped id: reason}); only objects visible in the image count."""
    keys = {i: label_key(labels[i]) for i in present}
    counts = collections.Counter(keys.values())
    dropped = {i: f"label '{labels[i]}' is shared by {counts[keys[i]]} visible objects" for i in present if counts[keys[i]] > 1}
    return set(present) - set(dropped), dropped
