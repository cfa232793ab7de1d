"""The format and accuracy rewards on device, from token ids, with static shapes.

Each completion becomes a (max_bytes,) byte row through the tokenizer's byte table. Everything
after that is whole-row array logic, no Python loop over characters:
  * UTF-8 is decoded per byte position the way Python's decoder with errors="replace" does, so
    Unicode white space (str.isspace, re's \\s) and Unicode decimal digits (float()) are seen;
  * the format rule, the last <answer>…</answer> (re.findall semantics) and the newline cleaning
    become prefix maxima over tag positions;
  * float() acceptance is a 14-state automaton scanned over the cleaned answer;
  * the accepted decimal is compared digit by digit with the exact MRA bounds of reward_tables.
Bytes past `max_bytes` are dropped; `rewards.score_completion(..., max_bytes)` drops the same.
"""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from ladder_jax.train.reward_tables import KIND_CHOICE, KIND_NUMERIC, Answers, ByteTable

# Symbol classes of the float automaton: digit, "_", ".", sign, exponent mark, white space, other.
_D, _U, _P, _S, _E, _W, _X = range(7)
_DEAD = 13
_MOVES = {
    0: {_D: 2, _P: 5, _S: 1, _W: 0},  # start (leading white space allowed)
    1: {_D: 2, _P: 5},  # after the sign
    2: {_D: 2, _U: 3, _P: 4, _E: 8, _W: 12},  # integer digits (accepting)
    3: {_D: 2},  # "_" inside the integer part
    4: {_D: 6, _E: 8, _W: 12},  # "5." (accepting)
    5: {_D: 6},  # "." with no integer digits
    6: {_D: 6, _U: 7, _E: 8, _W: 12},  # fraction digits (accepting)
    7: {_D: 6},
    8: {_D: 10, _S: 9},  # after "e"
    9: {_D: 10},
    10: {_D: 10, _U: 11, _W: 12},  # exponent digits (accepting)
    11: {_D: 10},
    12: {_W: 12},  # trailing white space (accepting)
}
_ACCEPTING = (2, 4, 6, 10, 12)
_TRANSITIONS = np.array(
    [[_MOVES.get(state, {}).get(symbol, _DEAD) for state in range(_DEAD + 1)] for symbol in range(7)]
    + [list(range(_DEAD + 1))],  # row 7: identity, for bytes that continue a character
    np.int32,
)
_EXPONENT_CAP = 10**8  # exponents with more significant digits saturate: far beyond every bound


@lru_cache(maxsize=1)
def _unicode_runs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends) of the str.isspace runs and the code points of every Unicode digit zero."""
    space = [c for c in range(0x110000) if chr(c).isspace()]
    breaks = [i for i in range(1, len(space)) if space[i] != space[i - 1] + 1]
    starts = [space[0]] + [space[i] for i in breaks]
    ends = [space[i - 1] for i in breaks] + [space[-1]]
    zeros = [c for c in range(0x110000) if chr(c).isdecimal() and int(chr(c)) == 0]
    return np.array(starts, np.int32), np.array(ends, np.int32), np.array(zeros, np.int32)


def _ahead(a: jax.Array, k: int, fill=0) -> jax.Array:
    """a[:, i + k] at position i."""
    return jnp.pad(a[:, k:], ((0, 0), (0, k)), constant_values=fill)


def _behind(a: jax.Array, k: int, fill=0) -> jax.Array:
    """a[:, i − k] at position i."""
    return jnp.pad(a[:, :-k], ((0, 0), (k, 0)), constant_values=fill)


def _pick(a: jax.Array, index: jax.Array, fill=False) -> jax.Array:
    """a[b, index[b]] per row, `fill` where the index is outside the row."""
    inside = (index >= 0) & (index < a.shape[1])
    value = jnp.take_along_axis(a, jnp.clip(index, 0, a.shape[1] - 1)[:, None], axis=1)[:, 0]
    return jnp.where(inside, value, fill)


def _first(mask: jax.Array, default) -> jax.Array:
    """Index of the first True per row, `default` (scalar or per row) when there is none."""
    default = jnp.broadcast_to(jnp.asarray(default), mask.shape[:1])[:, None]
    return jnp.min(jnp.where(mask, jnp.arange(mask.shape[1]), default), axis=1)


def _last(mask: jax.Array) -> jax.Array:
    return jnp.max(jnp.where(mask, jnp.arange(mask.shape[1]), -1), axis=1)


def _tag(x: jax.Array, tag: str) -> jax.Array:
    """True where the ASCII `tag` starts (bytes past the text are 0, never part of a tag)."""
    hit = jnp.ones(x.shape, bool)
    for k, char in enumerate(tag.encode()):
        hit &= _ahead(x, k) == char
    return hit


def expand_bytes(table: ByteTable, ids: jax.Array, lengths: jax.Array, max_bytes: int):
    """(B, max_bytes) int32 bytes of the first `lengths` tokens (0 past the end) and their count.

    Byte j belongs to the last token starting at or before j: a running maximum over the token
    indices scattered at their start offsets (tokens without bytes never own one)."""
    rows, steps = ids.shape
    sizes = jnp.where(jnp.arange(steps) < lengths[:, None], table.length[ids], 0)
    starts = jnp.cumsum(sizes, axis=1) - sizes
    target = jnp.where(sizes > 0, starts, max_bytes)
    owner = jnp.full((rows, max_bytes), -1, jnp.int32)
    owner = owner.at[jnp.arange(rows)[:, None], target].max(jnp.arange(steps, dtype=jnp.int32), mode="drop")
    token = jnp.maximum(jax.lax.cummax(owner, axis=1), 0)
    offset = jnp.arange(max_bytes) - jnp.take_along_axis(starts, token, axis=1)
    width = table.bytes.shape[1]
    byte = table.bytes[jnp.take_along_axis(ids, token, axis=1), jnp.clip(offset, 0, width - 1)]
    count = jnp.minimum(jnp.sum(sizes, axis=1), max_bytes)
    return jnp.where(jnp.arange(max_bytes) < count[:, None], byte.astype(jnp.int32), 0), count


def _run_of(code: jax.Array, starts: np.ndarray) -> jax.Array:
    """Index of the last run start ≤ code (−1 if none); the tables are short, so compare them all."""
    return jnp.sum(code[..., None] >= jnp.asarray(starts), axis=-1) - 1


def _in_runs(code: jax.Array, starts: np.ndarray, ends: np.ndarray) -> jax.Array:
    run = _run_of(code, starts)
    return (run >= 0) & (code <= jnp.asarray(ends)[jnp.maximum(run, 0)])


def _characters(x: jax.Array):
    """Per byte: starts a character?, its code point (−1 where Python decodes U+FFFD), its size.

    A lead byte with the right continuation bytes and no overlong / surrogate / out-of-range value
    is one character; every other byte is a character of its own with code −1.
    """
    follows = [(_ahead(x, k) & 0xC0) == 0x80 for k in (1, 2, 3)]
    tail = [_ahead(x, k) & 0x3F for k in (1, 2, 3)]
    code2 = ((x & 0x1F) << 6) | tail[0]
    code3 = ((x & 0x0F) << 12) | (tail[0] << 6) | tail[1]
    code4 = ((x & 0x07) << 18) | (tail[0] << 12) | (tail[1] << 6) | tail[2]
    ok2 = (x >= 0xC2) & (x < 0xE0) & follows[0]
    surrogate = (code3 >= 0xD800) & (code3 < 0xE000)
    ok3 = (x >= 0xE0) & (x < 0xF0) & follows[0] & follows[1] & (code3 >= 0x800) & ~surrogate
    ok4 = (x >= 0xF0) & (x < 0xF5) & follows[0] & follows[1] & follows[2]
    ok4 &= (code4 >= 0x10000) & (code4 <= 0x10FFFF)
    inside = _behind(ok2 | ok3 | ok4, 1, False) | _behind(ok3 | ok4, 2, False) | _behind(ok4, 3, False)
    code = jnp.select([x < 0x80, ok2, ok3, ok4], [x, code2, code3, code4], -1)
    size = jnp.select([ok2, ok3, ok4], [2, 3, 4], 1)
    return ~inside, code, size


def _space_bytes(x: jax.Array, count: jax.Array) -> jax.Array:
    """True on every byte of a white-space character (str.isspace; all of them are ≤ 3 bytes)."""
    start, code, size = _characters(x)
    starts, ends, _ = _unicode_runs()
    space = start & _in_runs(code, starts, ends) & (jnp.arange(x.shape[1]) < count[:, None])
    return space | _behind(space & (size >= 2), 1, False) | _behind(space & (size >= 3), 2, False)


def _format_ok(x: jax.Array, count: jax.Array, space: jax.Array) -> jax.Array:
    """strip(c) = "<think>" X "</think>" W "<answer>" Y "</answer>" with W white space and the only
    "<think>" / "<answer>" being those: since tags contain no white space, "</think>" must end
    exactly where the white-space run before the unique "<answer>" begins."""
    position = jnp.arange(x.shape[1])
    solid = (position < count[:, None]) & ~space
    begin, end = _first(solid, x.shape[1]), _last(solid) + 1
    think, answer = _tag(x, "<think>"), _tag(x, "<answer>")
    unique = (think.sum(1) == 1) & (answer.sum(1) == 1)
    at = jnp.argmax(answer, axis=1)
    closes = _pick(_tag(x, "</answer>"), end - 9) & (end - 9 >= at + 8)
    gap = _last(solid & (position < at[:, None])) + 1
    thought = _pick(_tag(x, "</think>"), gap - 8) & (gap - 8 >= begin + 7)
    return unique & _pick(think, begin) & closes & thought


def _answer_span(x: jax.Array, count: jax.Array):
    """[start, end) of re.findall(r"<answer>(.*?)</answer>")[-1], else of the whole text.

    The tags cannot overlap, and findall's state after a tag is fixed by the tag alone, so a
    "</answer>" closes a match iff the tag before it is an "<answer>"; that match opened at the
    first "<answer>" after the previous "</answer>"."""
    opens, closes = _tag(x, "<answer>"), _tag(x, "</answer>")
    length = x.shape[1]
    position = jnp.arange(length)
    last_open = _behind(jax.lax.cummax(jnp.where(opens, position, -1), axis=1), 1, -1)
    last_close = _behind(jax.lax.cummax(jnp.where(closes, position, -1), axis=1), 1, -1)
    close = _last(closes & (last_open > last_close))
    next_open = jax.lax.cummin(jnp.where(opens, position, length), axis=1, reverse=True)
    opened = _pick(next_open, _pick(last_close, close, -1) + 1, length)
    found = close >= 0
    return jnp.where(found, opened + 8, 0), jnp.where(found, close, count)


def _compact(values: jax.Array, keep: jax.Array):
    """The kept values moved to the front of each row (0 after), and how many there are."""
    rows, length = keep.shape
    target = jnp.where(keep, jnp.cumsum(keep, axis=1) - 1, length)
    out = jnp.zeros_like(values).at[jnp.arange(rows)[:, None], target].set(values, mode="drop")
    return out, keep.sum(1)


def _cleaned(x: jax.Array, count: jax.Array, space: jax.Array):
    """clean_answer before lowercasing, as a row of bytes starting at 0, and its length."""
    position = jnp.arange(x.shape[1])
    start, end = _answer_span(x, count)
    newline = (x == 10) | (x == 13)
    dropped = newline & (position > start[:, None]) & _behind(space, 1, False)
    keep = (position >= start[:, None]) & (position < end[:, None]) & ~dropped
    text, size = _compact(jnp.where(newline, 32, x), keep)
    solid = (position < size[:, None]) & ~_space_bytes(text, size)
    begin, stop = _first(solid, size), _last(solid) + 1
    inside = (position >= begin[:, None]) & (position < stop[:, None])
    stop = jnp.maximum(_last(inside & (text != ord("."))) + 1, begin)
    shifted = jnp.take_along_axis(text, jnp.clip(begin[:, None] + position, 0, x.shape[1] - 1), axis=1)
    size = stop - begin
    return jnp.where(position < size[:, None], shifted, 0), size


def _choice_match(text: jax.Array, size: jax.Array, choice: jax.Array, choice_size: jax.Array) -> jax.Array:
    """text.lower() == choice for an ASCII choice: ASCII lowercasing, plus U+212A KELVIN SIGN
    whose lowercase is "k" (the only non-ASCII character lowering into ASCII alone)."""
    position = jnp.arange(text.shape[1])
    start, code, _ = _characters(text)
    kelvin = start & (code == 0x212A)
    lower = jnp.where((text >= ord("A")) & (text <= ord("Z")), text + 32, text)
    lower = jnp.where(kelvin, ord("k"), lower)
    keep = (position < size[:, None]) & ~_behind(kelvin, 1, False) & ~_behind(kelvin, 2, False)
    index = jnp.clip(jnp.cumsum(keep, axis=1) - 1, 0, choice.shape[1] - 1)
    expected = jnp.take_along_axis(choice.astype(jnp.int32), index, axis=1)
    return (keep.sum(1) == choice_size) & jnp.all(~keep | (lower == expected), axis=1)


def _symbols(text: jax.Array, size: jax.Array):
    """Automaton symbol and digit value (−1 if none) per byte; 7 (identity) inside characters."""
    start, code, _ = _characters(text)
    space_starts, space_ends, zeros = _unicode_runs()
    zero = jnp.asarray(zeros)[jnp.maximum(_run_of(code, zeros), 0)]
    digit = jnp.where((code >= zero) & (code - zero < 10), code - zero, -1)
    space = _in_runs(code, space_starts, space_ends)
    symbol = jnp.select(
        [digit >= 0, code == ord("_"), code == ord("."), (code == ord("+")) | (code == ord("-")),
         (code == ord("e")) | (code == ord("E")), space],
        [_D, _U, _P, _S, _E, _W],
        _X,
    )
    live = start & (jnp.arange(text.shape[1]) < size[:, None])
    return jnp.where(live, symbol, 7), jnp.where(live, digit, -1), code


def _accepts(symbol: jax.Array) -> jax.Array:
    """Run the float automaton from state 0 over the row (a scan: tiny state, quick to compile)."""
    transitions = jnp.asarray(_TRANSITIONS)

    def step(state, column):
        return transitions[column, state], None

    state, _ = jax.lax.scan(step, jnp.zeros(symbol.shape[:1], jnp.int32), symbol.T)
    return jnp.isin(state, jnp.asarray(_ACCEPTING))


def _decimal(symbol: jax.Array, digit: jax.Array, code: jax.Array, width: int):
    """An accepted string as (negative, zero, exponent, digits (B, width), sticky):
    value = ±0.d1d2… · 10^exponent with d1 ≠ 0; sticky = a nonzero digit beyond `width`."""
    length = symbol.shape[1]
    position = jnp.arange(length)
    mark = _first(symbol == _E, length)
    mantissa = (symbol == _D) & (position < mark[:, None])
    point = _first(symbol == _P, mark)
    integer = jnp.sum(mantissa & (position < point[:, None]), axis=1)
    lead = _first(mantissa & (digit > 0), length)
    zeros = jnp.sum(mantissa & (position < lead[:, None]), axis=1)
    rank = jnp.cumsum(mantissa, axis=1) - 1 - zeros[:, None]
    significant = mantissa & (position >= lead[:, None])
    target = jnp.where(significant & (rank < width), rank, width)
    digits = jnp.zeros((symbol.shape[0], width), jnp.int32)
    digits = digits.at[jnp.arange(symbol.shape[0])[:, None], target].set(digit, mode="drop")
    sticky = jnp.any(significant & (rank >= width) & (digit > 0), axis=1)
    power = (symbol == _D) & (position > mark[:, None])
    after = jnp.sum(power, axis=1)[:, None] - jnp.cumsum(power, axis=1)  # exponent digits to the right
    weight = jnp.asarray(10 ** np.arange(8, dtype=np.int32))[jnp.minimum(after, 7)]
    magnitude = jnp.sum(jnp.where(power, digit * weight, 0), axis=1)
    places = jnp.sum(power & (position >= _first(power & (digit > 0), length)[:, None]), axis=1)
    magnitude = jnp.where(places > 7, _EXPONENT_CAP, magnitude)
    exponent = jnp.where(_pick(code, mark + 1, 0) == ord("-"), -magnitude, magnitude)
    negative = code[:, 0] == ord("-")
    return negative, lead == length, integer - zeros + exponent, digits, sticky


def _compare(value, answers: Answers) -> jax.Array:
    """sign(value − bound) for every (row, tolerance, side) bound; bounds are nonzero."""
    negative, zero, exponent, digits, sticky = value
    sign = jnp.where(zero, 0, jnp.where(negative, -1, 1))[:, None, None]
    difference = digits[:, None, None, :] - answers.digits.astype(jnp.int32)
    differs = difference != 0
    first = jnp.take_along_axis(difference, jnp.argmax(differs, axis=-1)[..., None], axis=-1)[..., 0]
    same_exponent = jnp.where(jnp.any(differs, axis=-1), jnp.sign(first), sticky[:, None, None].astype(jnp.int32))
    magnitude = jnp.where(exponent[:, None, None] == answers.exponent,
                          same_exponent, jnp.sign(exponent[:, None, None] - answers.exponent))
    return jnp.where(sign != answers.sign, jnp.sign(sign - answers.sign), answers.sign * magnitude)


@partial(jax.jit, static_argnames=("max_bytes",))
def score_tokens(table: ByteTable, ids: jax.Array, lengths: jax.Array, answers: Answers, max_bytes: int):
    """Format reward (0/1) and accuracy in tenths (0..10) per completion, both int32.

    Equals `rewards.score_completion(text, …, max_bytes)` for the text whose UTF-8 bytes are the
    tokens' bytes (decoded with errors="replace"); accuracy = tenths / 10.
    """
    x, count = expand_bytes(table, ids, lengths, max_bytes)
    space = _space_bytes(x, count)
    text, size = _cleaned(x, count, space)
    choice = _choice_match(text, size, answers.choice, answers.choice_length)
    symbol, digit, code = _symbols(text, size)
    comparison = _compare(_decimal(symbol, digit, code, answers.digits.shape[-1]), answers)
    lower_ok = (comparison[..., 0] > 0) | ((comparison[..., 0] == 0) & answers.inclusive[..., 0])
    upper_ok = (comparison[..., 1] < 0) | ((comparison[..., 1] == 0) & answers.inclusive[..., 1])
    hits = jnp.sum(lower_ok & upper_ok, axis=1) * _accepts(symbol)
    tenths = jnp.where(answers.kind == KIND_CHOICE, 10 * choice, jnp.where(answers.kind == KIND_NUMERIC, hits, 0))
    return {"format": _format_ok(x, count, space).astype(jnp.int32), "accuracy_tenths": tenths.astype(jnp.int32)}
