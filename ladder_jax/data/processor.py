"""The Qwen2.5-VL processor: chat text + images/videos → the arrays the model consumes.

`Processor.__call__` mirrors `transformers.Qwen2_5_VLProcessor` (same keys, ids and pixels);
`encode_record` / `encode_prompt` turn one of our records into a training or generation example
with the stage prompt of `prompts.py`.

Placeholders are expanded on token ids rather than on text: the tokenizer treats <|image_pad|> and
<|video_pad|> as atomic added tokens, so repeating the id gives the same sequence as repeating the
string before tokenizing, without tokenizing thousands of placeholders.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import transformers
from PIL import Image

from ladder_jax.data import prompts
from ladder_jax.data.preprocessor_config import load_preprocess_config, save_preprocess_config
from ladder_jax.data.schema import Record
from ladder_jax.data.tokenizer import special_token_ids
from ladder_jax.data.vision_preprocess import PreprocessConfig, preprocess_images, preprocess_videos, resized_size
from ladder_jax.models.qwen25_vl.batching import pad_sequences
from ladder_jax.models.qwen25_vl.inputs import IGNORE_INDEX

TEXT, IMAGE, VIDEO = 0, 1, 2  # mm_token_type_ids values, as transformers assigns them


class Processor:
    """Tokenizer (with the Qwen2.5-VL chat template) plus image/video preprocessing settings."""

    def __init__(self, tokenizer: transformers.PreTrainedTokenizerBase, vision: PreprocessConfig = PreprocessConfig()):
        if not tokenizer.chat_template:
            raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has no chat template")
        self.tokenizer = tokenizer
        self.vision = vision
        self.ids = special_token_ids(tokenizer)

    @classmethod
    def from_pretrained(cls, path: str, **vision_overrides: Any) -> Processor:
        """Load a HF Qwen2.5-VL folder or a ladder_jax checkpoint (a stage's `final/`, an `import-hf`
        output); keyword overrides replace PreprocessConfig fields (e.g. max_pixels).
        Nothing is downloaded: a path that is not a folder on disk is an error, not a hub name."""
        from ladder_jax.paths import is_remote  # noqa: PLC0415

        if is_remote(path):  # a checkpoint in an object store: its side files, copied locally for transformers
            import tempfile  # noqa: PLC0415

            from ladder_jax.models.qwen25_vl.checkpoint import local_side_files  # noqa: PLC0415

            with tempfile.TemporaryDirectory() as local:
                return cls.from_pretrained(local_side_files(path, local), **vision_overrides)
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{path} is not a folder on disk (Processor.from_pretrained reads a local Hugging "
                                    f"Face folder and never downloads; fetch it first)")
        legacy = os.path.join(path, "hf_files")  # a checkpoint imported before its files moved up
        if not os.path.exists(os.path.join(path, "tokenizer_config.json")) and os.path.isdir(legacy):
            path = legacy
        if not os.path.exists(os.path.join(path, "tokenizer_config.json")):
            raise FileNotFoundError(f"{path} has no tokenizer_config.json: not a Hugging Face model folder, or a "
                                    "checkpoint written without its tokenizer (export it from a checkpoint that has "
                                    "one, or copy the tokenizer and preprocessor files in)")
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        template_file = os.path.join(path, "chat_template.json")
        if not tokenizer.chat_template and os.path.exists(template_file):
            with open(template_file) as f:
                tokenizer.chat_template = json.load(f)["chat_template"]
        return cls(tokenizer, load_preprocess_config(path, **vision_overrides))

    def save_pretrained(self, path: str) -> None:
        """Tokenizer files, chat template (chat_template.jinja) and preprocessor configs, loadable by
        transformers 4.5x and 5.x alike (see `_portable_tokenizer_config`)."""
        os.makedirs(path, exist_ok=True)
        self.tokenizer.save_pretrained(path)
        _portable_tokenizer_config(os.path.join(path, "tokenizer_config.json"))
        save_preprocess_config(self.vision, path)

    def apply_chat_template(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def __call__(
        self,
        text: str | Sequence[str],
        images: Sequence[Image.Image] | None = None,
        videos: Sequence[Sequence[Image.Image]] | None = None,
        padding: bool = False,
    ) -> dict[str, np.ndarray]:
        """Like Qwen2_5_VLProcessor(text=..., images=..., videos=..., return_tensors="np").

        Images and videos are consumed in placeholder order across the batch. Returns (B, L)
        input_ids / attention_mask / mm_token_type_ids (padded on the tokenizer's side when
        `padding`), plus pixel_values / image_grid_thw and pixel_values_videos / video_grid_thw /
        second_per_grid_ts for whichever media were given.
        """
        texts = [text] if isinstance(text, str) else list(text)
        vision = self._preprocess(images, videos)
        rows = self._expand_batch([self._tokenize(t) for t in texts], vision)
        return self._pad(rows, padding) | vision

    def encode_record(
        self, record: Record, images: Sequence[Image.Image], stage: prompts.Stage, answer_only_loss: bool = True,
        label_video_pads: bool = False,
    ) -> dict[str, np.ndarray]:
        """One SFT example: 1-D input_ids, attention_mask, labels, mm_token_type_ids + vision arrays.

        `images` are the decoded `record.images` (the frames, for a video record). Labels are
        IGNORE_INDEX outside the assistant answer and its <|im_end|> by default; with
        `answer_only_loss=False` they follow the reference: every token except pad, <|image_pad|>
        and <|video_pad|>. The reference's processor (transformers 4.49) left <|video_pad|>
        labelled; `label_video_pads=True` does too.
        """
        messages, target = self._messages(record, images, stage)
        prompt = self.apply_chat_template(messages, add_generation_prompt=True)
        full = self.apply_chat_template(messages + [_assistant(target)])
        prompt_ids, full_ids = self._tokenize(prompt), self._tokenize(full)
        if not np.array_equal(full_ids[: len(prompt_ids)], prompt_ids):
            raise ValueError(f"record {record.id!r}: the answer merges with the prompt's last token")
        labels = full_ids.copy()
        if answer_only_loss:
            answer_end = len(full_ids) - 1 - np.flatnonzero(full_ids[::-1] == self.ids["eos"])[0]
            labels[: len(prompt_ids)] = IGNORE_INDEX
            labels[answer_end + 1 :] = IGNORE_INDEX
        else:
            masked = [self.ids["pad"], self.ids["image"]] + ([] if label_video_pads else [self.ids["video"]])
            labels[np.isin(full_ids, masked)] = IGNORE_INDEX
        vision = self._record_vision(record, images)
        (row,) = self._expand_batch([full_ids], vision, extra=[labels])
        return self._sequence(row) | vision

    def encode_prompt(
        self, record: Record, images: Sequence[Image.Image], stage: prompts.Stage
    ) -> dict[str, np.ndarray]:
        """A generation prompt (ends with "<|im_start|>assistant\\n") for `record` at `stage`."""
        messages, _ = self._messages(record, images, stage)
        ids = self._tokenize(self.apply_chat_template(messages, add_generation_prompt=True))
        vision = self._record_vision(record, images)
        (row,) = self._expand_batch([ids], vision)
        return self._sequence(row) | vision

    def _messages(self, record: Record, images: Sequence[Image.Image], stage: prompts.Stage):
        if len(images) != len(record.images):
            raise ValueError(f"record {record.id!r}: {len(record.images)} image paths but {len(images)} images given")
        if stage != "stage1":
            return prompts.build_messages(record, stage)
        first = images[0]
        return prompts.build_messages(
            record, stage, image_hw=(first.height, first.width), resized_hw=resized_size(first, self.vision)
        )

    def _record_vision(self, record: Record, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        if record.data_type == "video":
            return self._preprocess(None, [images])
        return self._preprocess(images, None)

    def _preprocess(
        self, images: Sequence[Image.Image] | None, videos: Sequence[Sequence[Image.Image]] | None
    ) -> dict[str, np.ndarray]:
        out = {}
        if images:
            out |= preprocess_images(images, self.vision)
        if videos:
            out |= preprocess_videos(videos, self.vision)
        return out

    def _tokenize(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer(text, add_special_tokens=False)["input_ids"], dtype=np.int64)

    def _expand_batch(
        self, rows: list[np.ndarray], vision: dict[str, np.ndarray], extra: list[np.ndarray] | None = None
    ) -> list[dict[str, np.ndarray]]:
        """Repeat each placeholder id grid.prod() // merge² times; `extra` (labels) is repeated alike."""
        counts = {}
        for name, grid_key in (("image", "image_grid_thw"), ("video", "video_grid_thw")):
            grids = vision.get(grid_key, np.zeros((0, 3), np.int64))
            found = sum(int(np.sum(row == self.ids[name])) for row in rows)
            if found != len(grids):
                raise ValueError(f"text has {found} {name} placeholders but {len(grids)} {name}s were given")
            counts[self.ids[name]] = iter(grids.prod(axis=1) // self.vision.merge_size**2)
        out = []
        for i, ids in enumerate(rows):
            repeats = np.ones(len(ids), dtype=np.int64)
            for token, per_item in counts.items():
                where = np.flatnonzero(ids == token)
                repeats[where] = [next(per_item) for _ in where]
            expanded = {"input_ids": np.repeat(ids, repeats)}
            if extra is not None:
                expanded["labels"] = np.repeat(extra[i], repeats)
            out.append(expanded)
        return out

    def _sequence(self, row: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = row["input_ids"]
        return row | {"attention_mask": np.ones_like(ids), "mm_token_type_ids": self.token_types(ids)}

    def _pad(self, rows: list[dict[str, np.ndarray]], padding: bool) -> dict[str, np.ndarray]:
        lengths = [len(row["input_ids"]) for row in rows]
        if len(set(lengths)) > 1 and not padding:
            raise ValueError(f"texts tokenize to different lengths {lengths}; pass padding=True")
        width, left = max(lengths), self.tokenizer.padding_side == "left"
        ids = pad_sequences([row["input_ids"] for row in rows], width, self.ids["pad"], left, np.int64)
        mask = pad_sequences([np.ones(n) for n in lengths], width, 0, left, np.int64)
        return {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": self.token_types(ids) * mask}

    def token_types(self, input_ids: np.ndarray) -> np.ndarray:
        """mm_token_type_ids: 0 text, 1 image pad, 2 video pad."""
        return np.where(input_ids == self.ids["image"], IMAGE, np.where(input_ids == self.ids["video"], VIDEO, TEXT))


def _assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}



def _portable_tokenizer_config(file: str) -> None:
    """transformers 5 writes the extra special tokens as a list under `extra_special_tokens`, which
    transformers 4.x takes for a name -> token dict and fails on; the published Qwen configs list
    them under `additional_special_tokens`, which both versions read."""
    with open(file) as f:
        config = json.load(f)
    extra = config.get("extra_special_tokens")
    if isinstance(extra, list):
        config["additional_special_tokens"] = config.pop("extra_special_tokens")
        tmp = file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
        os.replace(tmp, file)
