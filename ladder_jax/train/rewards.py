"""GRPO rewards (SPEC.md section 3): the plain-Python reference and the weights.

`score_completion` is the definition. `reward_kernels.score_tokens` computes the same format and
accuracy rewards on device from token ids and agrees with it exactly (tests/train/test_rewards.py);
`rewards_from_text` is the bridge used by tests and tools.

Numbers: a prediction or answer is whatever Python's `float()` accepts after cleaning: optional
sign, digits (any Unicode decimal digit, "_" only between two digits), an optional "." part and
exponent, surrounding white space. "nan", "inf", "infinity" and overflow ("1e309") parse to
non-finite values and score 0, like strings that do not parse. MRA follows
ladder_jax.eval.metrics: e = |ŷ − y| / |y| in float64 (y = 0: only ŷ = 0, "-0" and underflow
included, counts); a non-numeric or non-finite ground truth scores 0.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import transformers

from ladder_jax.data.schema import MULTIPLE_CHOICE_TYPES, NUMERIC_TYPES
from ladder_jax.eval.metrics import mean_relative_accuracy
from ladder_jax.train import reward_kernels, reward_tables
from ladder_jax.train.reward_tables import parse_number

_ANSWERS = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """r = w_f·r_format + w_a·r_accuracy − w_len·p_len (reference: w_f = w_a = 1).

    p_len = clip((n − free) / (max − free), 0, 1) for a completion of n tokens: no penalty up to
    `length_free_tokens`, the full weight at `length_max_tokens`. Off by default (w_len = 0).
    """

    format_weight: float = 1.0
    accuracy_weight: float = 1.0
    length_weight: float = 0.0
    length_free_tokens: int = 768
    length_max_tokens: int = 1024


def truncate_bytes(text: str, max_bytes: int | None) -> str:
    """The text the device sees when it keeps the first `max_bytes` UTF-8 bytes (cut chars → U+FFFD)."""
    if max_bytes is None:
        return text
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="replace")


def clean_answer(text: str) -> str:
    """Last <answer>…</answer> (else all); newline/CR after white space removed, other ones → " ";
    strip; rstrip("."); lowercase. Applied alike to completions and ground truths."""
    matches = _ANSWERS.findall(text)
    if matches:
        text = matches[-1]
    for char in ("\n", "\r"):
        text = re.sub(r"(?<=\s)" + re.escape(char), "", text)
        text = re.sub(r"(?<!\s)" + re.escape(char), " ", text)
    return text.strip().rstrip(".").lower()


def format_reward(completion: str) -> float:
    """1 iff strip(c) fully matches <think>.*?</think>\\s*<answer>.*?</answer> (dot matches newline)
    with exactly one "<think>" and one "<answer>"."""
    text = completion.strip()
    ok = _FORMAT.fullmatch(text) and text.count("<think>") == 1 and text.count("<answer>") == 1
    return 1.0 if ok else 0.0


def accuracy_reward(completion: str, answer: str, question_type: str) -> float:
    """Multiple choice: 1[clean(c) == clean(a)]; numeric: MRA(float(clean(c)), float(clean(a)))."""
    prediction, truth = clean_answer(completion), clean_answer(answer)
    if question_type in MULTIPLE_CHOICE_TYPES:
        return float(prediction == truth)
    if question_type in NUMERIC_TYPES:
        return mean_relative_accuracy(parse_number(prediction), parse_number(truth))
    raise ValueError(f"no accuracy reward for question type {question_type!r}")


def score_completion(
    completion: str, answer: str, question_type: str, max_bytes: int | None = None
) -> tuple[float, float]:
    """(r_format, r_accuracy) of one completion; `max_bytes` applies the device's byte cap."""
    completion = truncate_bytes(completion, max_bytes)
    return format_reward(completion), accuracy_reward(completion, answer, question_type)


def length_penalty(num_tokens, config: RewardConfig) -> jnp.ndarray:
    """p_len = clip((n − free) / (max − free), 0, 1), jittable."""
    span = max(config.length_max_tokens - config.length_free_tokens, 1)
    return jnp.clip((jnp.asarray(num_tokens) - config.length_free_tokens) / span, 0.0, 1.0)


def total_reward(config: RewardConfig, format_r, accuracy_r, penalty=0.0):
    """w_f·r_format + w_a·r_accuracy − w_len·p_len."""
    return config.format_weight * format_r + config.accuracy_weight * accuracy_r - config.length_weight * penalty


def encode_answers(
    answers: Sequence[str],
    question_types: Sequence[str],
    choice_width: int | None = None,
    digit_width: int | None = None,
) -> reward_tables.Answers:
    """Ground truths for `reward_kernels.score_tokens`, cleaned exactly as the reference cleans them."""
    cleaned = [clean_answer(a) for a in answers]
    return reward_tables.encode_cleaned_answers(cleaned, list(question_types), choice_width, digit_width)


def rewards_from_text(
    completions: Sequence[str],
    answers: Sequence[str],
    question_types: Sequence[str],
    tokenizer: transformers.PreTrainedTokenizerBase,
    *,
    config: RewardConfig = RewardConfig(),
    max_bytes: int = 4096,
    batch_size: int = 256,
    table: reward_tables.ByteTable | None = None,
    choice_width: int | None = None,
    digit_width: int | None = None,
) -> dict[str, np.ndarray]:
    """Tokenize, score on device in fixed-size batches, return float64 arrays "format", "accuracy",
    "length_penalty" and "total".

    Token rows are (batch_size, max_bytes): tokens without bytes (special tokens) are dropped on the
    host and no more than max_bytes tokens can hold bytes below the cap, so nothing that counts is lost.
    The length penalty counts all tokens. Fix the widths to compile once across calls.
    """
    table = reward_tables.byte_table(tokenizer) if table is None else table
    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in completions]
    rows, lengths = len(ids), np.array([len(row) for row in ids], np.int32)
    tokens, kept = np.zeros((rows, max_bytes), np.int32), np.zeros(rows, np.int32)
    for row, sequence in enumerate(ids):
        sequence = [t for t in sequence if table.length[t] > 0][:max_bytes]
        tokens[row, : len(sequence)], kept[row] = sequence, len(sequence)
    parts: dict[str, list[np.ndarray]] = {"format": [], "accuracy_tenths": []}
    for begin in range(0, rows, batch_size):
        chunk = slice(begin, min(begin + batch_size, rows))
        pad = batch_size - (chunk.stop - chunk.start)
        truths = list(answers[chunk]) + ["1"] * pad  # padding rows: any cheap numeric answer
        kinds = list(question_types[chunk]) + ["room size"] * pad
        encoded = encode_answers(truths, kinds, choice_width, digit_width)
        row_tokens, row_lengths = np.pad(tokens[chunk], ((0, pad), (0, 0))), np.pad(kept[chunk], (0, pad))
        out = reward_kernels.score_tokens(table, row_tokens, row_lengths, encoded, max_bytes=max_bytes)
        for key in parts:
            parts[key].append(np.asarray(out[key])[: batch_size - pad])
    format_r = np.concatenate(parts["format"]).astype(np.float64)
    accuracy = np.concatenate(parts["accuracy_tenths"]) / 10
    penalty = np.asarray(length_penalty(lengths, config), np.float64)
    total = total_reward(config, format_r, accuracy, penalty)
    return {"format": format_r, "accuracy": accuracy, "length_penalty": penalty, "total": total}
