import random
import unicodedata

import numpy as np
import pytest

from ladder_jax.data.tokenizer import default_corpus, train_tokenizer
from ladder_jax.train import reward_kernels, reward_tables
from ladder_jax.train.rewards import (
    RewardConfig,
    accuracy_reward,
    clean_answer,
    encode_answers,
    format_reward,
    length_penalty,
    rewards_from_text,
    score_completion,
    total_reward,
)

MC, NUM = "relative direction", "object count"
# One shape for every device call in this file, so the scorer compiles once.
SHAPE = {"max_bytes": 1024, "batch_size": 512, "choice_width": 16, "digit_width": 768}


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(default_corpus() + ["<answer></answer><think></think> 1e309 nan inf"], vocab_size=600)


@pytest.fixture(scope="module")
def table(tokenizer):
    return reward_tables.byte_table(tokenizer)


# --- the reference, rule by rule (expected values worked out by hand) ---------------------------


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<think>a</think><answer>B</answer>", 1.0),
        ("  \n<think>a\nb</think> \n\t<answer>\nB\n</answer>\n ", 1.0),  # strip; dot matches newline
        ("<think></think><answer></answer>", 1.0),  # empty parts are allowed
        ("<think>a</think>x<answer>B</answer>", 0.0),  # only white space between the blocks
        ("<think>a</think><answer>B</answer>.", 0.0),  # nothing after </answer>
        ("x<think>a</think><answer>B</answer>", 0.0),
        ("<think>a<think>b</think><answer>B</answer>", 0.0),  # two <think>
        ("<think>a</think><answer>B<answer>C</answer>", 0.0),  # two <answer>
        ("<think>a</think>b</think>\u3000<answer>B</answer>c</answer>", 1.0),  # extra closers ok
        ("<think>a</think><answer>B</answer", 0.0),
        ("<answer>B</answer>", 0.0),
        ("", 0.0),
    ],
)
def test_format_reward(completion, expected):
    assert format_reward(completion) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>A</answer> then <answer> B. </answer>", "b"),  # the last block
        ("<answer>a<answer>b</answer>c</answer>", "a<answer>b"),  # findall: lazy, non-overlapping
        ("no tags  B..", "no tags  b"),  # whole text; every trailing "." goes
        ("<answer>x\ny</answer>", "x y"),  # newline after a non-space → space
        ("<answer>x \ny</answer>", "x y"),  # newline after a space is removed
        ("<answer>x\r\ny</answer>", "x y"),  # "\r" → " ", then "\n" follows white space
        ("<answer>\nB</answer>", "b"),  # leading newline → space → stripped
        ("<answer>5 .</answer>", "5 "),  # rstrip(".") after strip leaves the space
        ("<answer>É</answer>", "é"),
    ],
)
def test_clean_answer(text, expected):
    assert clean_answer(text) == expected


# float64 tolerances 1 − θ: 0.5, 0.44999999999999996, 0.4, 0.35, 0.30000000000000004, 0.25,
# 0.19999999999999996, 0.15000000000000002, 0.10000000000000009, 0.050000000000000044.
ACCURACY_CASES = [
    ("<answer>B</answer>", "B", MC, 1.0),
    ("<answer>b.</answer>", "B", MC, 1.0),
    ("<answer>(B)</answer>", "B", MC, 0.0),  # exact equality after cleaning, nothing more
    ("<answer>B. sofa</answer>", "B", MC, 0.0),
    ("<answer>\u212a</answer>", "k", MC, 1.0),  # KELVIN SIGN lowercases to "k"
    ("<answer>10</answer>", "10", NUM, 1.0),
    ("<answer>15</answer>", "10", NUM, 0.1),  # e = 0.5 ≤ 0.5 only
    ("<answer>14.5</answer>", "10", NUM, 0.1),  # e = 0.45 > 0.44999999999999996
    ("<answer>29</answer>", "20", NUM, 0.1),  # same: 9 / 20 = 0.45
    ("<answer>12</answer>", "10", NUM, 0.6),  # e = 0.2 > 0.19999999999999996
    ("<answer>11</answer>", "10", NUM, 0.9),  # e = 0.1 ≤ 0.10000000000000009
    ("<answer>7.5</answer>", "10", NUM, 0.6),  # e = 0.25 ≤ 0.25
    ("<answer>1_0</answer>", "10", NUM, 1.0),  # float() accepts a digit-separating "_"
    ("<answer>\uff11\uff10</answer>", "10", NUM, 1.0),  # and Unicode decimal digits
    ("<answer>1e1</answer>", "10.", NUM, 1.0),
    ("<answer>1e309</answer>", "10", NUM, 0.0),  # inf
    ("<answer>nan</answer>", "10", NUM, 0.0),
    ("<answer>ten</answer>", "10", NUM, 0.0),
    ("<answer>1__0</answer>", "10", NUM, 0.0),
    ("<answer>-0</answer>", "0", NUM, 1.0),  # y = 0: only a zero prediction counts
    ("<answer>1e-400</answer>", "0", NUM, 1.0),  # underflows to 0.0
    ("<answer>0.001</answer>", "0", NUM, 0.0),
    ("<answer>-3</answer>", "-2", NUM, 0.1),  # e = |−3 + 2| / |−2| = 0.5
    ("<answer>3</answer>", "-2", NUM, 0.0),  # e = 2.5
    ("<answer>5</answer>", "abc", NUM, 0.0),  # unusable ground truth
    ("<answer>5</answer>", "inf", NUM, 0.0),
]


@pytest.mark.parametrize("prediction, truth, question_type, expected", ACCURACY_CASES)
def test_accuracy_reward(prediction, truth, question_type, expected):
    assert accuracy_reward(prediction, truth, question_type) == expected


# --- device == reference ------------------------------------------------------------------------

SPACES = [" ", "  ", "\n", "\r", "\r\n", "\n\r", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u1680", "\u2003",
          "\u2028", "\u3000", " \n", "\n\n"]
NUMBERS = ["0", "-0", "+0", "0.0", ".5", "5.", "5.e2", ".", "-", "+", "1e309", "-1e309", "1e-400", "nan", "-nan",
           "inf", "-inf", "Infinity", "iNf", "1_000", "1__0", "_1", "1_", "1_.5", "1._5", "1e1_0", "1e_1", "1e",
           "e1", "1e+2", "1E-2", "--3", "+-3", "3..", "0x10", "1,5", "12.5.", "00012.50", "\uff11\uff12",
           "\u0663.\u0665", "\U0001d7ce", "1 2", "1\n2", "7\u00a0", "9" * 60, "0." + "0" * 50 + "1",
           "1" + "0" * 320, "1e99999999999", "1e-0000000000002", "3.4028235e38", "2.5", "14.5", "15", "7.5",
           "10", "11", "29", "100", "0.5", "0.45", "1e1", "-2", "-3", "\u2212" + "3", "4.4999999999999999"]
LETTERS = ["A", "B", "b", "C", "D", "B.", "b..", "(B)", "B .", "Answer: B", "\u212a", "k", "K", "\uff42", "\u0130",
           "\u00e9", "option B", "B)", "B\n", "\nb", "B\r\n."]
TEXT = ["hmm", "let me think", "über", "椅子", "😀", "a.b", "...", "<", ">", "/", "answer", "<Answer>", "<answer",
        "answer>", "</ answer>", "<think >", "think>", "<", "\x00", "\ufffd"]
TAGS = ["<think>", "</think>", "<answer>", "</answer>"]
MC_TRUTHS = ["A", "B", "c", " D. ", "<answer>B</answer>", "k", "b.", "B\n"]
NUM_TRUTHS = ["10", "3.5", "0", "-2", "0.001", "1e3", "20", "7.25", "nan", "abc", "1_000", "2.5", "0.3", "1e-310"]


def _boundary_numbers(rng: random.Random, truth: str) -> list[str]:
    """Decimals on, just inside and just outside the exact MRA bounds of a ground truth."""
    target = float(clean_answer(truth))
    out = []
    for pair in reward_tables.numeric_bounds(target):
        for sign, exponent, digits, _ in pair:
            text = f"{'-' if sign < 0 else ''}0.{digits}e{exponent}"
            out += [text, text + "1", text[:-1] + str(int(text[-1]) - 1) + "9" if text[-1] != "0" else text]
    out += [repr(target * (1 + s * t)) for t in (0.5, 0.45, 0.2, 0.1, 0.05) for s in (-1, 1)]
    return rng.sample(out, 6)


def _piece(rng: random.Random, numbers: list[str]) -> str:
    pool = rng.choice([SPACES, numbers, LETTERS, TEXT, TAGS, TAGS])
    return rng.choice(pool)


def _completion(rng: random.Random, numbers: list[str], truth: str) -> str:
    shape = rng.random()
    piece = lambda: _piece(rng, numbers)  # noqa: E731
    if shape < 0.45:  # near-valid: a well-formed answer (often the right one) with random damage
        guess = truth if rng.random() < 0.3 else rng.choice(numbers + LETTERS)
        parts = ["<think>", piece() + piece(), "</think>", rng.choice(SPACES + [""]), "<answer>",
                 rng.choice(SPACES + [""]) + guess + rng.choice(SPACES + ["", ".", ".."]), "</answer>"]
        for _ in range(rng.randrange(3)):
            parts.insert(rng.randrange(len(parts) + 1), piece())
        if rng.random() < 0.2:
            del parts[rng.randrange(len(parts))]
        return rng.choice(SPACES + [""]) + "".join(parts) + rng.choice(SPACES + ["", ""])
    return "".join(piece() for _ in range(rng.randrange(9)))


def _cases(count: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    completions, truths, types = [], [], []
    boundary = {truth: _boundary_numbers(rng, truth) for truth in NUM_TRUTHS if truth not in ("nan", "abc")}
    for _ in range(count):
        if rng.random() < 0.4:
            truth, question_type, numbers = rng.choice(MC_TRUTHS), MC, NUMBERS
        else:
            truth, question_type = rng.choice(NUM_TRUTHS), NUM
            numbers = NUMBERS + boundary.get(truth, []) * 3
        completions.append(_completion(rng, numbers, truth))
        truths.append(truth)
        types.append(question_type)
    return completions, truths, types


def test_device_matches_reference_on_10000_hostile_completions(tokenizer, table):
    completions, truths, types = _cases(10_000, seed=0)
    completions += ["", " ", "\n\r", "<answer>", "</answer>", "<answer></answer>", "<think></think><answer></answer>"]
    truths, types = truths + ["B"] * 7, types + [MC] * 7
    # the tokenizer normalizes to NFC (the Kelvin sign becomes "K"); the reference scores what it sees
    seen = [tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in completions]
    assert seen == [unicodedata.normalize("NFC", text) for text in completions]
    got = rewards_from_text(completions, truths, types, tokenizer, table=table, **SHAPE)
    want = np.array([score_completion(c, t, q, max_bytes=1024) for c, t, q in zip(seen, truths, types)])
    mismatch = np.flatnonzero((got["format"] != want[:, 0]) | (got["accuracy"] != want[:, 1]))
    assert not mismatch.size, [(completions[i], truths[i], got["accuracy"][i], want[i]) for i in mismatch[:5]]
    for key in ("format", "accuracy"):
        assert np.isfinite(got[key]).all() and (got[key] >= 0).all() and (got[key] <= 1).all()
    # the generator reaches every outcome, not just zeros
    assert want[:, 0].mean() > 0.1 and (want[:, 1] == 1).mean() > 0.05 and ((want[:, 1] > 0) & (want[:, 1] < 1)).any()


def test_device_truncates_like_the_reference(tokenizer, table):
    completions, truths, types = _cases(500, seed=1)
    completions = [c * 40 for c in completions]
    got = rewards_from_text(completions, truths, types, tokenizer, table=table, **SHAPE)
    seen = [unicodedata.normalize("NFC", text) for text in completions]
    assert sum(len(text.encode()) > 1024 for text in seen) > 200
    want = np.array([score_completion(c, t, q, max_bytes=1024) for c, t, q in zip(seen, truths, types)])
    assert (got["format"] == want[:, 0]).all() and (got["accuracy"] == want[:, 1]).all()


def _score_ids(table, ids: list[list[int]], truths: list[str], types: list[str]):
    """score_tokens on rows of token ids, padded to SHAPE."""
    tokens = np.zeros((SHAPE["batch_size"], SHAPE["max_bytes"]), np.int32)
    for i, row in enumerate(ids):
        tokens[i, : len(row)] = row
    lengths = np.array([len(r) for r in ids] + [0] * (len(tokens) - len(ids)), np.int32)
    pad = len(tokens) - len(ids)
    answers = encode_answers(truths + ["1"] * pad, types + [NUM] * pad, SHAPE["choice_width"], SHAPE["digit_width"])
    out = reward_kernels.score_tokens(table, tokens, lengths, answers, max_bytes=SHAPE["max_bytes"])
    return np.asarray(out["format"])[: len(ids)], np.asarray(out["accuracy_tenths"])[: len(ids)] / 10


def _byte_ids(tokenizer, data: bytes) -> list[int]:
    """One single-byte token per byte: any byte string, valid UTF-8 or not."""
    symbols = {b: s for s, b in reward_tables._byte_symbols().items()}
    return tokenizer.convert_tokens_to_ids([symbols[b] for b in data])


def test_device_matches_reference_on_invalid_utf8(tokenizer, table):
    """Sampled tokens can form any bytes: the reference sees them decoded with errors="replace"."""
    rng = random.Random(2)
    junk = [b"\x80", b"\xc2", b"\xe2\x80", b"\xc0\xb0", b"\xe0\x80\xb0", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
            b"\xf0\x9f\x98", b"\xff", b"\xc2\xa0", b"\xe2\x80\x83", b"\xef\xbc\x91", b"\xe2\x84\xaa", b"\xc2\x85"]
    completions, truths, types = _cases(512, seed=3)
    rows = []
    for text in completions:
        data = bytearray(text.encode())
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.choice(junk)
        rows.append(bytes(data))
    format_r, accuracy = _score_ids(table, [_byte_ids(tokenizer, row[:1024]) for row in rows], truths, types)
    seen = [row.decode("utf-8", errors="replace") for row in rows]
    want = np.array([score_completion(c, t, q, 1024) for c, t, q in zip(seen, truths, types)])
    assert (format_r == want[:, 0]).all() and (accuracy == want[:, 1]).all()


def test_special_tokens_are_skipped(tokenizer, table):
    ids = tokenizer("<|im_start|><think>a</think><answer>3.5</answer><|im_end|>", add_special_tokens=False)["input_ids"]
    assert len(table.length) == len(tokenizer) and table.length[ids[0]] == 0 and table.length[ids[-1]] == 0
    format_r, accuracy = _score_ids(table, [ids], ["3.5"], ["room size"])
    assert format_r[0] == 1 and accuracy[0] == 1


def test_hand_cases_agree_on_device(tokenizer, table):
    """Every hand-computed accuracy case above, scored on device from text."""
    # (the tokenizer's NFC turns the Kelvin sign into "K", which lowercases to "k" all the same)
    completions, truths, types, expected = map(list, zip(*ACCURACY_CASES))
    got = rewards_from_text(completions, truths, types, tokenizer, table=table, **SHAPE)
    assert got["accuracy"].tolist() == expected


def test_lowercasing_never_changes_what_float_accepts():
    """The reference lowercases before float(); the device does not. That is exact because no
    character's lowercase differs from it in white space, decimal digit value or number syntax."""
    def classes(text):
        return tuple("space" if ch.isspace() else int(ch) if ch.isdecimal() else ch.lower() if ch in "+-._eE"
                     else "other" for ch in text)
    for code in range(0x110000):
        char = chr(code)
        lowered = char.lower()
        if len(lowered) == 1:
            assert classes(lowered) == classes(char), hex(code)
        else:  # U+0130 → "i̇": neither is part of a number
            assert set(classes(lowered)) == {"other"} and classes(char) == ("other",), hex(code)


def test_byte_table_decodes_like_the_tokenizer(tokenizer, table):
    text = "Question: the chair is 1.25 m — über 椅子 😀\n\tA. left"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    data = b"".join(bytes(table.bytes[i, : table.length[i]]) for i in ids)
    assert data.decode() == tokenizer.decode(ids) == text
    assert table.bytes.shape[0] == len(tokenizer)


def test_numeric_bounds_are_exact():
    """The decision bounds of y = 10, tolerance 0.5: predictions x with |x − 10| / 10 ≤ 0.5."""
    (low, high) = reward_tables.numeric_bounds(10.0)[0]
    assert low[:2] == (1, 1) and high[:2] == (1, 2)  # about 0.5·10^1 and 0.15·10^2
    for side, inner in ((low, 5.0), (high, 15.0)):
        sign, exponent, digits, inclusive = side
        midpoint = float(f"0.{digits}e{exponent}")
        assert midpoint == inner  # the midpoint next to 5.0 / 15.0 rounds to them: inclusive
        assert inclusive
    assert accuracy_reward("4.999999999999999", "10", NUM) == 0.0  # one ulp below 5: e > 0.5
    assert accuracy_reward("4.9999999999999999", "10", NUM) == 0.1  # rounds to 5.0


def test_length_penalty_and_total(tokenizer, table):
    config = RewardConfig(length_weight=0.5, length_free_tokens=100, length_max_tokens=200)
    assert np.asarray(length_penalty(np.array([50, 100, 150, 200, 900]), config)).tolist() == [0, 0, 0.5, 1, 1]
    assert total_reward(config, 1.0, 0.6, 0.5) == pytest.approx(1.0 + 0.6 - 0.25)
    default = RewardConfig()
    assert (default.format_weight, default.accuracy_weight, default.length_weight) == (1.0, 1.0, 0.0)
    got = rewards_from_text(["<think>a</think><answer>B</answer>"], ["B"], [MC], tokenizer, table=table, **SHAPE)
    assert got["total"].tolist() == [2.0] and got["length_penalty"].tolist() == [0.0]
