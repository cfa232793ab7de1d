import pytest
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers

from ladder_jax.data import prompts
from ladder_jax.data.schema import MULTIPLE_CHOICE_TYPES, NUMERIC_TYPES
from ladder_jax.data.tokenizer import SPECIAL_TOKENS, default_corpus, special_token_ids, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(default_corpus(), vocab_size=1024)


def test_special_tokens_are_single_tokens(tokenizer):
    for token in SPECIAL_TOKENS:
        ids = tokenizer(f"a{token}b", add_special_tokens=False)["input_ids"]
        assert tokenizer.convert_ids_to_tokens(ids) == ["a", token, "b"]
    ids = special_token_ids(tokenizer)
    assert tokenizer.convert_ids_to_tokens([ids["image"], ids["video"], ids["eos"], ids["pad"]]) == [
        "<|image_pad|>", "<|video_pad|>", "<|im_end|>", "<|endoftext|>"
    ]
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


def test_text_round_trips_through_byte_level_bpe(tokenizer):
    text = "Question: the chair is 1.25 m from the sofa — über naïve 椅子?\n\nA. left"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_default_corpus_covers_every_stage_prompt():
    corpus = set(default_corpus())
    assert prompts.SFT_SYSTEM_PROMPT in corpus
    assert any(prompts.GROUNDING_PROMPT.split("{question}")[1] in text for text in corpus)
    for suffix in (prompts.DIRECT_MC_SUFFIX, prompts.DIRECT_NUMERIC_SUFFIX, prompts.REASONING_MC_SUFFIX,
                   prompts.REASONING_NUMERIC_SUFFIX):
        assert any(text.endswith(suffix) for text in corpus)
    assert len(MULTIPLE_CHOICE_TYPES + NUMERIC_TYPES) * 3 <= len(corpus)


def test_chat_template_default_system_and_generation_prompt(tokenizer):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}]
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chat_template_explicit_system_video_images_and_string_content(tokenizer):
    media = [{"type": "video"}, {"type": "image"}, {"type": "image"}]
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief"}]},
        {"role": "user", "content": [*media, {"type": "text", "text": "Q"}]},
        {"role": "assistant", "content": "A"},
    ]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nBe brief<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"
        "<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>Q<|im_end|>\n"
        "<|im_start|>assistant\nA<|im_end|>\n"
    )
    labelled = tokenizer.apply_chat_template(messages, tokenize=False, add_vision_id=True)
    assert "Video 1: <|vision_start|><|video_pad|>" in labelled and "Picture 2: <|vision_start|>" in labelled


def test_save_and_reload_with_auto_tokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    reloaded = transformers.AutoTokenizer.from_pretrained(tmp_path)
    text = prompts.reasoning_prompt("How far is the lamp?", None, False) + "<|im_end|><|image_pad|>"
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert reloaded.chat_template == tokenizer.chat_template
    assert special_token_ids(reloaded) == special_token_ids(tokenizer)
    assert len(reloaded) == len(tokenizer) <= 1024


def test_vocab_too_small_is_refused():
    with pytest.raises(ValueError, match="vocab_size=100"):
        train_tokenizer(["abc"], vocab_size=100)


def test_end_tokens_are_im_end_and_endoftext():
    from ladder_jax.data.tokenizer import end_token_ids, train_tokenizer  # noqa: PLC0415

    tok = train_tokenizer(["a tiny corpus"], 300)
    vocab = tok.get_vocab()
    # Qwen's generation_config.json: eos_token_id [151645 (<|im_end|>), 151643 (<|endoftext|>)]
    assert end_token_ids(tok) == (vocab["<|im_end|>"], vocab["<|endoftext|>"])
    assert tok.eos_token == "<|im_end|>" and len(set(end_token_ids(tok))) == 2


def test_special_token_ids_names_missing_tokens():
    bare = Tokenizer(models.BPE())
    bare.pre_tokenizer = pre_tokenizers.ByteLevel()
    plain = transformers.PreTrainedTokenizerFast(tokenizer_object=bare, eos_token="</s>", pad_token="<pad>")
    with pytest.raises(ValueError, match="image='<\\|image_pad\\|>'"):
        special_token_ids(plain)


def test_one_megabyte_word_trains_fast_and_still_round_trips():
    import time

    from ladder_jax.data.tokenizer import _bounded_words

    corpus = default_corpus()
    assert [_bounded_words(t) for t in corpus] == corpus  # ordinary text trains exactly as before
    assert _bounded_words("a " + "x" * 130 + " b") == "a " + "x" * 64 + " " + "x" * 64 + " xx b"
    word = "ab3" * 350_000
    start = time.perf_counter()
    tok = train_tokenizer(corpus + [f"Question: {word}?"], 512)
    assert time.perf_counter() - start < 20  # before the bound: hours (100 KB alone took 12 s)
    assert tok.decode(tok(word)["input_ids"]) == word
