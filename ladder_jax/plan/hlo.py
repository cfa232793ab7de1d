"""Bytes moved by collectives in a compiled program, read from its HLO text.

Per device, per run of the program: every all-gather, reduce-scatter, all-reduce, all-to-all and
collective-permute, counted inside loops as many times as the loop runs. A loop's trip count is
read from its condition (the constant its counter is compared with, loops counting from 0 as
scans do); a loop whose condition compares with no constant (a decode loop that may stop early) counts
`unknown_trips` times. Sizes: an all-gather counts what it gathers (its result), a reduce-scatter
what it reduces (its result times the group size), an all-reduce, all-to-all or permute its
result; an async `-start` its largest buffer (its `-done` is not counted again).
"""

from __future__ import annotations

import functools
import math
import re

KINDS = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
ITEMSIZE = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4, "u32": 4, "f32": 4,
            "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16, "s4": 0.5, "u4": 0.5}
_HEADER = re.compile(r"^(ENTRY )?%(\S+) \(.*\{\s*$")
_ARRAY = re.compile(r"\b([a-z]+[0-9]*(?:e[0-9]m[0-9]\w*)?)\[([0-9,]*)\]")
_OP = re.compile(r"^\s*(?:ROOT )?%\S+ = (.*?) (" + "|".join(KINDS) + r")(-start)?\(")
_CALLS = re.compile(r"\b(calls|body|true_computation|false_computation)=%([\w.\-]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_CONDITION = re.compile(r"\bcondition=%([\w.\-]+)")
_CONSTANT = re.compile(r"^\s*%(\S+) = s(?:32|64)\[\]\S* constant\((\d+)\)")


def array_bytes(type_text: str) -> list[float]:
    """Bytes of each array in an HLO type (`bf16[8,128]{1,0}` or a tuple of them)."""
    out = []
    for dtype, dims in _ARRAY.findall(type_text):
        size = ITEMSIZE.get(dtype, 1 if dtype.startswith("f8") else None)
        if size is not None:
            out.append(size * math.prod(int(d) for d in dims.split(",") if d))
    return out


def group_size(line: str) -> int:
    """Devices in one replica group of a collective (1 when the line does not say)."""
    if m := re.search(r"replica_groups=\{\{([0-9,]*)\}", line):
        return len(m.group(1).split(","))
    if m := re.search(r"replica_groups=\[(\d+),(\d+)\]", line):
        return int(m.group(2))
    if m := re.search(r"replica_groups=mesh\[([^\]]*)\] \{([^}]*)\}", line):
        sizes = dict(re.findall(r"'(\w+)'=(\d+)", m.group(1)))
        return math.prod(int(sizes.get(a, 1)) for a in re.findall(r"'(\w+)'", m.group(2)))
    return 1


def _computations(text: str) -> tuple[dict[str, list[str]], str | None]:
    comps, entry, current = {}, None, None
    for line in text.splitlines():
        if current is None:
            if m := _HEADER.match(line):
                current = m.group(2)
                comps[current] = []
                if m.group(1):
                    entry = current
        elif line.strip() == "}":
            current = None
        else:
            comps[current].append(line)
    return comps, entry


def collective_bytes(text: str, unknown_trips: int = 1) -> dict[str, float]:
    """{kind: bytes} moved per device by one run of the program whose HLO text is `text`."""
    comps, entry = _computations(text)

    def trips(condition: str) -> int:
        lines = comps.get(condition, ())
        constants = dict(m.groups() for line in lines if (m := _CONSTANT.match(line)))
        root = next((line for line in lines if line.lstrip().startswith("ROOT ")), "")
        bound = [constants[n] for n in re.findall(r"%([\w.\-]+)", root.partition("=")[2]) if n in constants]
        return int(bound[0]) if bound else unknown_trips

    @functools.lru_cache(maxsize=None)
    def total(name: str) -> tuple[tuple[str, float], ...]:
        acc = dict.fromkeys(KINDS, 0.0)
        for line in comps.get(name, ()):
            if m := _OP.match(line):
                sizes = array_bytes(m.group(1))
                kind = m.group(2)
                if m.group(3):
                    moved = max(sizes, default=0)
                else:
                    moved = sum(sizes) * (group_size(line) if kind == "reduce-scatter" else 1)
                acc[kind] += moved
            callees = [(c, 1) for _, c in _CALLS.findall(line) if c in comps]
            if (cond := _CONDITION.search(line)) and callees:
                callees = [(c, trips(cond.group(1)) if key == "body" else 1)
                           for (key, _), (c, _) in zip(_CALLS.findall(line), callees)]
            for callee, times in callees:
                for kind, value in total(callee):
                    acc[kind] += times * value
            if b := _BRANCHES.search(line):  # a conditional runs one branch: count the largest
                branches = [dict(total(c.strip().lstrip("%"))) for c in b.group(1).split(",")]
                best = max(branches, key=lambda d: sum(d.values()), default={})
                for kind, value in best.items():
                    acc[kind] += value
        return tuple(acc.items())

    if entry is None:
        return {}
    return {k: v for k, v in total(entry) if v}
