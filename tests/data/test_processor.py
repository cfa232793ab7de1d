import json
import math

import numpy as np
import pytest
from PIL import Image
from transformers import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

from ladder_jax.data.processor import Processor
from ladder_jax.data.prompts import build_messages
from ladder_jax.data.schema import Box, Record
from ladder_jax.data.tokenizer import default_corpus, train_tokenizer
from ladder_jax.data.vision_preprocess import PreprocessConfig
from ladder_jax.models.qwen25_vl.inputs import IGNORE_INDEX

MIN, MAX = 16 * 28 * 28, 128 * 28 * 28
VIDEO_MAX = 32 * 28 * 28


@pytest.fixture(scope="module")
def processor():
    vision = PreprocessConfig(MIN, MAX, video_min_pixels=MIN, video_max_pixels=VIDEO_MAX, num_frames=4)
    return Processor(train_tokenizer(default_corpus()), vision)


def image(height, width, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def reference_tokens(image_grids, video_grids):
    """Placeholder counts as Qwen2_5_VLProcessor computes them, from transformers' own sizing."""
    return [int(np.prod(g)) // 4 for g in image_grids], [int(np.prod(g)) // 4 for g in video_grids]


def expand_reference(ids, image_id, video_id, image_counts, video_counts):
    images, videos, out = iter(image_counts), iter(video_counts), []
    for token in ids:
        n = next(images) if token == image_id else next(videos) if token == video_id else 1
        out += [token] * n
    return out


def video_grid(frames, num_frames):
    height, width = hf_smart_resize(frames[0].height, frames[0].width, 28, MIN, VIDEO_MAX)
    return [math.ceil(min(len(frames), num_frames) / 2), height // 14, width // 14]


def user(*items, text="What is here?"):
    return {"role": "user", "content": [*({"type": kind} for kind in items), {"type": "text", "text": text}]}


CASES = {
    "text": ([user()], [], []),
    "one_image": ([user("image")], [image(968, 1296, 1)], []),
    "several_images": ([user("image", "image", "image")], [image(37, 997, 2), image(120, 90, 3), image(1, 1, 4)], []),
    "video": ([user("video")], [], [[image(240, 320, s) for s in range(5)]]),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("generation", [True, False])
def test_call_matches_chat_template_with_pad_expansion(processor, case, generation):
    messages, images, videos = CASES[case]
    tokenizer = processor.tokenizer
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    out = processor(text=text, images=images or None, videos=videos or None)

    ref = Qwen2VLImageProcessorPil(min_pixels=MIN, max_pixels=MAX)(images, return_tensors="np") if images else {}
    image_grids = ref["image_grid_thw"].tolist() if images else []
    video_grids = [video_grid(v, 4) for v in videos]
    counts = reference_tokens(image_grids, video_grids)
    template_ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation)["input_ids"]
    expected = expand_reference(template_ids, processor.ids["image"], processor.ids["video"], *counts)

    assert out["input_ids"].tolist() == [expected]
    assert out["attention_mask"].tolist() == [[1] * len(expected)]
    types = out["mm_token_type_ids"][0]
    assert (types == 1).sum() == sum(counts[0]) and (types == 2).sum() == sum(counts[1])
    assert np.all(out["input_ids"][0][types == 1] == processor.ids["image"])
    if images:
        np.testing.assert_array_equal(out["image_grid_thw"], ref["image_grid_thw"])
        assert np.abs(out["pixel_values"] - ref["pixel_values"]).max() <= 1e-5
    if videos:
        np.testing.assert_array_equal(out["video_grid_thw"], video_grids)
        assert out["pixel_values_videos"].shape == (sum(np.prod(g) for g in video_grids), 3 * 2 * 14 * 14)
        np.testing.assert_allclose(out["second_per_grid_ts"], [2 / (2.0 * 4 / 5)])


def test_call_matches_string_level_expansion(processor):
    """The transformers route: repeat the placeholder string, then tokenize the whole text."""
    messages, images, _ = CASES["several_images"]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    grids = Qwen2VLImageProcessorPil(min_pixels=MIN, max_pixels=MAX)(images)["image_grid_thw"]
    parts = text.split("<|image_pad|>")
    expanded = parts[0] + "".join("<|image_pad|>" * (int(np.prod(g)) // 4) + p for g, p in zip(grids, parts[1:]))
    assert processor(text, images=images)["input_ids"][0].tolist() == processor.tokenizer(expanded)["input_ids"]


def test_batch_padding_follows_the_tokenizer_side(processor):
    texts = ["short", "a much longer text than the first"]
    with pytest.raises(ValueError, match="padding=True"):
        processor(texts)
    single = [processor(t)["input_ids"][0] for t in texts]
    for side in ("right", "left"):
        processor.tokenizer.padding_side = side
        out = processor(texts, padding=True)
        row = out["input_ids"][0]
        kept = row[out["attention_mask"][0] == 1]
        np.testing.assert_array_equal(kept, single[0])
        pads = row[out["attention_mask"][0] == 0]
        assert np.all(pads == processor.ids["pad"]) and len(pads) == len(single[1]) - len(single[0])
        assert (out["attention_mask"][0, 0] == 0) == (side == "left")
    processor.tokenizer.padding_side = "right"


def test_placeholder_count_mismatch_is_an_error(processor):
    text = processor.apply_chat_template([user("image", "image")])
    with pytest.raises(ValueError, match="2 image placeholders but 1 images"):
        processor(text, images=[image(50, 50)])
    with pytest.raises(ValueError, match="0 video placeholders but 1 videos"):
        processor("no video here", videos=[[image(50, 50)]])


def spatial_record(data_type="multi_view", n=3, **kwargs):
    fields = dict(question_type="relative distance", options=("A. chair", "B. sofa"), answer="B") | kwargs
    return Record(id="r1", kind="spatial", question="Which is nearer?", images=tuple(f"{i}.jpg" for i in range(n)),
                  data_type=data_type, **fields)


def test_encode_record_answer_only_labels(processor):
    record = spatial_record()
    images = [image(100, 140, s) for s in range(3)]
    out = processor.encode_record(record, images, "stage2")
    ids, labels = out["input_ids"], out["labels"]
    supervised = np.flatnonzero(labels != IGNORE_INDEX)
    assert np.array_equal(supervised, np.arange(supervised[0], supervised[-1] + 1))  # one contiguous span
    assert processor.tokenizer.decode(labels[supervised]) == "B<|im_end|>"
    assert np.array_equal(labels[supervised], ids[supervised])
    assert processor.tokenizer.decode(ids[supervised[-1] + 1 :]) == "\n"  # the template's trailing newline: no loss
    assert processor.tokenizer.decode(ids[: supervised[0]]).endswith("<|im_start|>assistant\n")
    answer = {"role": "assistant", "content": [{"type": "text", "text": "B"}]}
    messages = processor.tokenizer.apply_chat_template([*build_messages(record, "stage2")[0], answer], tokenize=False)
    np.testing.assert_array_equal(ids, processor(messages, images=images)["input_ids"][0])
    assert out["pixel_values"].shape[0] == out["image_grid_thw"].prod(axis=1).sum()
    assert out["image_grid_thw"].shape == (3, 3) and "pixel_values_videos" not in out


def test_encode_record_reference_labels_mask_only_pads(processor):
    record = spatial_record("video", n=6)
    out = processor.encode_record(record, [image(64, 64, s) for s in range(6)], "stage2", answer_only_loss=False)
    ids, labels = out["input_ids"], out["labels"]
    vision_pad = np.isin(ids, [processor.ids["image"], processor.ids["video"], processor.ids["pad"]])
    assert vision_pad.sum() == out["video_grid_thw"].prod() // 4 > 0
    assert np.all(labels[vision_pad] == IGNORE_INDEX)
    np.testing.assert_array_equal(labels[~vision_pad], ids[~vision_pad])
    # 4 of 6 frames; 64x64 grows by sqrt(12544 / 4096) = 1.75 to 112x112 → 8x8 patches
    assert "pixel_values" not in out and out["video_grid_thw"].tolist() == [[2, 8, 8]]


def test_reference_labels_keep_video_pads_on_request(processor):
    record = spatial_record("video", n=4)
    frames = [image(64, 64, s) for s in range(4)]
    out = processor.encode_record(record, frames, "stage2", answer_only_loss=False, label_video_pads=True)
    ids, labels = out["input_ids"], out["labels"]
    video = ids == processor.ids["video"]
    # 4 frames of 112x112: (2, 8, 8) patches, 2·8·8 / 4 = 32 video pads, every one labelled
    assert video.sum() == 32 and np.array_equal(labels[video], ids[video])
    assert np.all(labels[np.isin(ids, [processor.ids["pad"], processor.ids["image"]])] == IGNORE_INDEX)
    assert np.sum(labels == IGNORE_INDEX) == 0  # no pad or image pad in this sequence: all labelled


def test_encode_record_stage1_rescales_boxes_to_the_resized_image(processor):
    record = Record(id="g", kind="grounding", question="Find the sofa.", images=("0.jpg",), data_type="single_image",
                    boxes=(Box((648.0, 484.0, 1296.0, 968.0), "sofa"),))
    out = processor.encode_record(record, [image(968, 1296)], "stage1")
    answer = processor.tokenizer.decode(out["labels"][out["labels"] != IGNORE_INDEX])
    # 968x1296 → 252x364 at 128·28·28 pixels: 648*364/1296 = 182, 484*252/968 = 126, far corner clamps to 363, 251
    assert answer == '```json\n[\n\t{"bbox_2d": [182, 126, 363, 251], "label": "sofa"}\n]\n```<|im_end|>'
    assert out["image_grid_thw"].tolist() == [[1, 18, 26]]


def test_encode_prompt_ends_with_the_generation_prompt(processor):
    record = spatial_record("single_image", n=1)
    out = processor.encode_prompt(record, [image(300, 200)], "stage3")
    text = processor.tokenizer.decode(out["input_ids"][out["mm_token_type_ids"] == 0])
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert text.endswith("within the <answer> </answer> tags.<|im_end|>\n<|im_start|>assistant\n")
    assert "labels" not in out and out["attention_mask"].sum() == len(out["input_ids"])


def test_encode_record_checks_the_image_count(processor):
    with pytest.raises(ValueError, match="'r1': 3 image paths but 1 images"):
        processor.encode_record(spatial_record(), [image(50, 50)], "stage2")


def test_save_and_load_pretrained_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = Processor.from_pretrained(tmp_path)
    assert loaded.vision == processor.vision
    record, images = spatial_record(), [image(90, 120, s) for s in range(3)]
    a, b = processor.encode_record(record, images, "stage2"), loaded.encode_record(record, images, "stage2")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # transformers reads the same folder and preprocesses identically
    hf = Qwen2VLImageProcessorPil.from_pretrained(tmp_path)(images, return_tensors="np")
    assert np.abs(hf["pixel_values"] - a["pixel_values"]).max() <= 1e-5
    assert Processor.from_pretrained(tmp_path, max_pixels=MIN).vision.max_pixels == MIN


def write_hub_folder(path, processor, **overrides):
    """A folder laid out like Qwen/Qwen2.5-VL-*-Instruct: tokenizer files + preprocessor_config.json only."""
    processor.tokenizer.save_pretrained(path)
    config = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
              "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
              "image_std": [0.26862954, 0.26130258, 0.27577711], "image_processor_type": "Qwen2VLImageProcessor",
              "processor_class": "Qwen2_5_VLProcessor"} | overrides
    (path / "preprocessor_config.json").write_text(json.dumps(config))


def test_from_pretrained_reads_a_hub_layout(processor, tmp_path):
    write_hub_folder(tmp_path, processor)
    vision = Processor.from_pretrained(tmp_path).vision
    assert (vision.min_pixels, vision.max_pixels) == (3136, 12845056)
    assert (vision.video_min_pixels, vision.video_max_pixels) == (3136, 12845056)


def test_from_pretrained_refuses_steps_it_does_not_implement(processor, tmp_path):
    write_hub_folder(tmp_path, processor, do_normalize=False)
    with pytest.raises(ValueError, match="do_normalize=False"):
        Processor.from_pretrained(tmp_path)


def test_a_path_that_is_not_a_folder_is_never_looked_up_on_a_hub(tmp_path):
    for path in ("Qwen/Qwen2.5-VL-3B-Instruct", str(tmp_path / "missing")):
        with pytest.raises(FileNotFoundError, match="not a folder on disk"):
            Processor.from_pretrained(path)
