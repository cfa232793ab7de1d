"""A tiny Qwen2.5-VL-compatible tokenizer trained on the fly, and the real Qwen2-VL chat template.

Tests and demos cannot download Qwen's 151k-token vocabulary, so they train a small byte-level BPE
with Qwen2's pre-tokenizer and the Qwen2.5-VL special tokens. Everything downstream (chat template,
pad expansion, label masks) is then exercised exactly as with the real tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import transformers
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from ladder_jax.data import prompts
from ladder_jax.data.schema import MULTIPLE_CHOICE_TYPES, NUMERIC_TYPES, Box

PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
IMAGE_TOKEN = "<|image_pad|>"
VIDEO_TOKEN = "<|video_pad|>"

# The chat template shipped with Qwen2-VL / Qwen2.5-VL Instruct (chat_template.json), verbatim.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_EXAMPLE_QUESTIONS = {
    "relative distance": "Which of these objects (chair, table, sofa, lamp) is the closest to the bed?",
    "relative direction": "If I am standing by the door and facing the window, is the desk to my left or right?",
    "appearance order": "What will be the first-time appearance order of the following categories in the video?",
    "object size": "What is the length of the longest dimension (length, width, or height) of the cabinet, in cm?",
    "room size": "What is the size of this room (in square meters)?",
    "object count": "How many chair(s) are in this room?",
    "absolute distance": "What is the direct distance between the sofa and the television (in meters)?",
}
_EXAMPLE_OPTIONS = ("A. chair", "B. table", "C. sofa", "D. lamp")


def default_corpus() -> list[str]:
    """Training text for a demo tokenizer: every stage prompt, chat scaffolding, numbers, answers."""
    texts = [prompts.SFT_SYSTEM_PROMPT, "You are a helpful assistant.", "system\nuser\nassistant\n"]
    for question_type in MULTIPLE_CHOICE_TYPES + NUMERIC_TYPES:
        question = _EXAMPLE_QUESTIONS[question_type]
        mc = question_type in MULTIPLE_CHOICE_TYPES
        options = _EXAMPLE_OPTIONS if mc else None
        texts += [
            prompts.grounding_prompt(question),
            prompts.direct_answer_prompt(question, options, mc),
            prompts.reasoning_prompt(question, options, mc),
        ]
    texts += [str(n) for n in range(1000)] + [f"{n / 10:.1f}" for n in range(200)]
    texts += [prompts.grounding_target((Box((120, 40, 600, 500), "chair"),), (968, 1296), (252, 364))]
    texts += ["<think>Let me think. The chair is 1.5 meters from the bed. Wait, oh, I see.</think><answer>B</answer>"]
    return texts


MAX_TRAINING_WORD = 64  # characters; BPE training is quadratic in a word's length
_LONG_WORD = re.compile(r"\S{%d,}" % (MAX_TRAINING_WORD + 1))


def _bounded_words(text: str) -> str:
    """Training text with every run of more than 64 non-space characters cut into 64-character words.

    One 1 MB question without spaces would otherwise keep training busy for hours (100 KB: 12 s);
    no useful merge is longer than this, and encoding is unaffected.
    """
    return _LONG_WORD.sub(lambda m: " ".join(m[0][i:i + MAX_TRAINING_WORD] for i in range(0, len(m[0]), MAX_TRAINING_WORD)), text)


def _byte_level_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE with Qwen2's NFC normalizer and digit/word-splitting pre-tokenizer."""
    tokenizer = Tokenizer(BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(map(_bounded_words, texts), trainer=trainer)
    return tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> transformers.PreTrainedTokenizerFast:
    """A Qwen2 tokenizer (saves and reloads with AutoTokenizer) trained on `texts`.

    The 14 Qwen2.5-VL special tokens come first (ids 0..13, <|endoftext|> = 0), then the 256 byte
    symbols, then merges up to `vocab_size`. eos = <|im_end|>, pad = <|endoftext|> as in Qwen2.5-VL.
    """
    minimum = len(SPECIAL_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())
    if vocab_size < minimum:
        raise ValueError(f"vocab_size={vocab_size} is below the {minimum} special and byte tokens")
    tokenizer = transformers.Qwen2TokenizerFast(
        tokenizer_object=_byte_level_bpe(texts, vocab_size),
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=131072,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def special_token_ids(tokenizer: transformers.PreTrainedTokenizerBase) -> dict[str, int]:
    """Ids of the tokens the model and processor key on; raises if the vocabulary lacks one."""
    vocab = tokenizer.get_vocab()
    names = {
        "image": IMAGE_TOKEN,
        "video": VIDEO_TOKEN,
        "vision_start": "<|vision_start|>",
        "vision_end": "<|vision_end|>",
        "im_start": "<|im_start|>",
        "eos": tokenizer.eos_token,
        "pad": tokenizer.pad_token,
    }
    missing = sorted(f"{key}={token!r}" for key, token in names.items() if token not in vocab)
    if missing:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} lacks special tokens: {', '.join(missing)}")
    return {key: vocab[token] for key, token in names.items()}


def end_token_ids(tokenizer: transformers.PreTrainedTokenizerBase) -> tuple[int, ...]:
    """The tokens generation stops at, as Qwen2.5-VL's generation_config.json lists them: the
    tokenizer's eos (<|im_end|>, 151645 in Qwen's vocabulary) and <|endoftext|> (151643) when the
    vocabulary has it. Ours and Qwen's both name them so."""
    vocab = tokenizer.get_vocab()
    if tokenizer.eos_token not in vocab:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has no eos token in its vocabulary")
    ids = [vocab[tokenizer.eos_token]] + ([vocab[PAD_TOKEN]] if PAD_TOKEN in vocab else [])
    return tuple(dict.fromkeys(ids))
