"""Host-side inputs of the device rewards: token → byte table and ground-truth encodings.

The device never converts a prediction to a float. For a numeric ground truth y and each MRA
tolerance c_k the host finds the float64 interval [lo_k, hi_k] of predictions that the reference
accepts (e(ŷ, y) ≤ c_k computed in float64 exactly as ladder_jax.eval.metrics does), widens it to
the real numbers that round into it (the midpoints with the neighbouring doubles, each bound
inclusive iff Python's float() rounds the midpoint itself inside), and writes those bounds as exact
decimals. The device then compares the predicted decimal string digit by digit with them, which
reproduces float() + MRA bit for bit without float64 arithmetic on device.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import transformers

from ladder_jax.data.schema import MULTIPLE_CHOICE_TYPES, NUMERIC_TYPES
from ladder_jax.eval.metrics import MRA_TOLERANCES, relative_error

KIND_CHOICE, KIND_NUMERIC, KIND_NEVER = 0, 1, 2  # KIND_NEVER: the ground truth is not a finite number


class ByteTable(NamedTuple):
    """bytes[v, :length[v]] are the UTF-8 bytes of token v; special tokens have none (skipped)."""

    bytes: np.ndarray  # (vocab, max_token_bytes) uint8
    length: np.ndarray  # (vocab,) int32


class Answers(NamedTuple):
    """Ground truths of a batch for `reward_kernels.score_tokens` (B rows)."""

    kind: np.ndarray  # (B,) int32: KIND_CHOICE / KIND_NUMERIC / KIND_NEVER
    choice: np.ndarray  # (B, A) uint8: cleaned multiple-choice answer (ASCII)
    choice_length: np.ndarray  # (B,) int32
    sign: np.ndarray  # (B, 10, 2) int32: ±1 of the lower / upper bound of tolerance k
    exponent: np.ndarray  # (B, 10, 2) int32: bound = sign · 0.d1d2… · 10^exponent
    digits: np.ndarray  # (B, 10, 2, K) uint8: d1 d2 …, d1 ≠ 0, zero padded
    inclusive: np.ndarray  # (B, 10, 2) bool


def parse_number(text: str) -> float:
    """float(text), NaN when it does not parse (NaN then scores 0 like ±inf)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def _byte_symbols() -> dict[str, int]:
    """Byte-level BPE alphabet: printable Latin-1 bytes are their own symbol, the other 68 bytes
    are chr(256 + k) in increasing byte order."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    others = [b for b in range(256) if b not in set(printable)]
    return {chr(b): b for b in printable} | {chr(256 + k): b for k, b in enumerate(others)}


def byte_table(tokenizer: transformers.PreTrainedTokenizerBase) -> ByteTable:
    """The UTF-8 bytes of every token of a byte-level BPE tokenizer (Qwen2 and ours)."""
    symbols = _byte_symbols()
    special = set(tokenizer.added_tokens_decoder)
    pieces = []
    for token_id, token in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        pieces.append(b"" if token_id in special or token is None else bytes(symbols[ch] for ch in token))
    width = max(1, max(map(len, pieces)))
    table = np.zeros((len(pieces), width), np.uint8)
    for token_id, piece in enumerate(pieces):
        table[token_id, : len(piece)] = np.frombuffer(piece, np.uint8)
    return ByteTable(table, np.array([len(p) for p in pieces], np.int32))


def _key(x: float) -> int:
    """An integer order on floats: key(a) < key(b) ⟺ a < b (−0 and +0 share 0)."""
    bits = struct.unpack("<q", struct.pack("<d", abs(x)))[0]
    return bits if x >= 0 else -bits


def _from_key(key: int) -> float:
    value = struct.unpack("<d", struct.pack("<q", abs(key)))[0]
    return value if key >= 0 else -value


def _extreme(target: float, tolerance: float, direction: int) -> float:
    """The float farthest from y in `direction` with e(x, y) ≤ c (e is monotone on each side of y)."""
    inside, outside = _key(target), _key(direction * math.inf)
    while abs(outside - inside) > 1:
        middle = (inside + outside) // 2
        if relative_error(_from_key(middle), target) <= tolerance:
            inside = middle
        else:
            outside = middle
    return _from_key(inside)


def _decimal(value: Fraction) -> tuple[int, int, str]:
    """A nonzero dyadic rational as (sign, exponent, digits) with value = sign · 0.digits · 10^exponent."""
    sign, value = (1, value) if value > 0 else (-1, -value)
    scale = value.denominator.bit_length() - 1  # the denominator is 2**scale
    text = str(value.numerator * 5**scale)
    digits = text.rstrip("0")
    return sign, len(text) - scale, digits


def _bound(inner: float, direction: int) -> tuple[int, int, str, bool]:
    """The real bound of {x : float(x) ∈ interval} beyond the interval's end `inner`."""
    outer = math.nextafter(inner, direction * math.inf)
    outer_value = Fraction(2**1024) if math.isinf(outer) else Fraction(outer)
    middle = (Fraction(inner) + outer_value) / 2
    sign, exponent, digits = _decimal(middle)
    rounded = float(f"{'-' if sign < 0 else ''}0.{digits}e{exponent}")
    return sign, exponent, digits, rounded == inner


@lru_cache(maxsize=65536)
def numeric_bounds(target: float) -> tuple[tuple[tuple[int, int, str, bool], ...], ...]:
    """For each MRA tolerance: the (lower, upper) real bounds a prediction's decimal value must lie in."""
    return tuple(
        (_bound(_extreme(target, c, -1), -1), _bound(_extreme(target, c, +1), +1)) for c in MRA_TOLERANCES
    )


def _width(needed: int, fixed: int | None, minimum: int, what: str) -> int:
    """`fixed` if given (and enough), else the power of two ≥ needed, at least `minimum`."""
    if fixed is None:
        return max(minimum, 1 << max(needed - 1, 0).bit_length())
    if needed > fixed:
        raise ValueError(f"{what} needs width {needed} > the fixed {fixed}")
    return fixed


def encode_cleaned_answers(
    cleaned: list[str], question_types: list[str], choice_width: int | None = None, digit_width: int | None = None
) -> Answers:
    """Encode ground truths already cleaned by `rewards.clean_answer` for the device.

    Multiple-choice answers must be ASCII after cleaning (option letters are): the device compares
    bytes after ASCII lowercasing, which equals str.lower() equality only against ASCII. The widths
    A and K default to powers of two sized to the batch; fix them to compile once (K = 768 holds
    every float64 bound; y = 0 and subnormal y need over 700 digits, ordinary answers under 64).
    """
    rows, choices, bounds = len(cleaned), [], []
    kind = np.full(rows, KIND_NEVER, np.int32)
    for row, (answer, question_type) in enumerate(zip(cleaned, question_types, strict=True)):
        if question_type in MULTIPLE_CHOICE_TYPES:
            if not answer.isascii():
                raise ValueError(f"multiple-choice answer {answer!r} is not ASCII after cleaning")
            kind[row], choices = KIND_CHOICE, choices + [(row, answer.encode())]
        elif question_type in NUMERIC_TYPES:
            target = parse_number(answer)
            if math.isfinite(target):
                kind[row], bounds = KIND_NUMERIC, bounds + [(row, numeric_bounds(target))]
        else:
            raise ValueError(f"no accuracy reward for question type {question_type!r}")
    width = _width(max((len(text) for _, text in choices), default=1), choice_width, 16, "a multiple-choice answer")
    choice, choice_length = np.zeros((rows, width), np.uint8), np.zeros(rows, np.int32)
    for row, text in choices:
        choice[row, : len(text)], choice_length[row] = np.frombuffer(text, np.uint8), len(text)
    longest = max((len(b[2]) for _, per_k in bounds for pair in per_k for b in pair), default=1)
    sign, exponent = np.ones((rows, 10, 2), np.int32), np.zeros((rows, 10, 2), np.int32)
    digits = np.zeros((rows, 10, 2, _width(longest, digit_width, 32, "an MRA bound")), np.uint8)
    inclusive = np.zeros((rows, 10, 2), bool)
    for row, per_k in bounds:
        for k, pair in enumerate(per_k):
            for side, (s, e, d, incl) in enumerate(pair):
                sign[row, k, side], exponent[row, k, side], inclusive[row, k, side] = s, e, incl
                digits[row, k, side, : len(d)] = np.frombuffer(d.encode(), np.uint8) - ord("0")
    return Answers(kind, choice, choice_length, sign, exponent, digits, inclusive)
