import dataclasses
import json

import numpy as np
import pytest

from ladder_jax.data.prompts import build_messages, grounding_target, rescale_boxes
from ladder_jax.data.schema import Box, Record

OPTIONS = ("A. chair", "B. table", "C. sofa")
THINK = (
    "Please Think about this question as if you were a human pondering deeply. Engage in an internal dialogue "
    "using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it down', etc, or other "
    "natural language thought expressions It's encouraged to include self-reflection or verification in the "
    "reasoning process. \n"
)


def spatial(question_type="relative distance", options=OPTIONS, answer="B", data_type="multi_view", **kwargs):
    return Record(
        id="q7",
        kind=kwargs.pop("kind", "spatial"),
        question="Which is closest to the bed?",
        images=("s/0.jpg", "s/1.jpg"),
        data_type=data_type,
        question_type=question_type,
        options=options,
        answer=answer,
        **kwargs,
    )


def grounding():
    boxes = (Box((100.0, 200.0, 1295.0, 967.0), "chair"), Box((0.0, 0.5, 13.0, 27.0), "lamp"))
    return Record(
        id="g3", kind="grounding", question="Find the chair and the lamp.", images=("s/0.jpg",),
        data_type="single_image", boxes=boxes,
    )


def user_text(messages):
    return messages[-1]["content"][-1]["text"]


def test_stage1_prompt_and_target():
    messages, target = build_messages(grounding(), "stage1", image_hw=(968, 1296), resized_hw=(252, 364))
    assert messages[0] == {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant"}]}
    assert messages[1]["content"][0] == {"type": "image"}
    assert user_text(messages) == (
        "Question: Find the chair and the lamp.\nPlease carefully observe the image first to identify the object(s) "
        "referred to in the question. Note that each object type appears only once in the image. Please provide the "
        "2D bounding box coordinates and labels of the related objects in JSON format. "
    )
    # chair: 100*364/1296=28.09→28, 200*252/968=52.07→52,
    #        1295*364/1296=363.7→364→clamp 363, 967*252/968=251.7→252→clamp 251
    # lamp: 0.5*252/968=0.13→0, 13*364/1296=3.65→4, 27*252/968=7.03→7
    assert target == (
        '```json\n[\n\t{"bbox_2d": [28, 52, 363, 251], "label": "chair"},\n'
        '\t{"bbox_2d": [0, 0, 4, 7], "label": "lamp"}\n]\n```'
    )
    parsed = json.loads(target.removeprefix("```json\n").removesuffix("\n```"))
    assert parsed[1] == {"bbox_2d": [0, 0, 4, 7], "label": "lamp"}


def test_box_rounding_is_half_to_even_and_clamped():
    boxes = [Box((3.0, 5.0, 200.0, 400.0), "x")]
    # scale 0.5: 1.5→2, 2.5→2 (half to even, as Python's round), 100→99 and 200→99 after clamping
    np.testing.assert_array_equal(rescale_boxes(boxes, (200, 200), (100, 100)), [[2, 2, 99, 99]])
    assert rescale_boxes([], (10, 10), (28, 28)).shape == (0, 4)


def test_stage2_multiple_choice_prompt():
    messages, target = build_messages(spatial(), "stage2")
    assert [item["type"] for item in messages[1]["content"]] == ["image", "image", "text"]
    assert user_text(messages) == (
        "Question: Which is closest to the bed?Options:\nA. chair\nB. table\nC. sofa\n\n"
        "Please answer with the option's letter from the given choices directly."
    )
    assert target == "B"


def test_stage2_numeric_prompt_for_video():
    record = spatial("absolute distance", options=None, answer="2.4", data_type="video")
    messages, target = build_messages(record, "stage2")
    assert messages[0]["content"][0]["text"] == "You are a helpful assistant"
    assert messages[1]["content"][:-1] == [{"type": "video"}]
    assert user_text(messages) == (
        "Question: Which is closest to the bed?\n\n"
        "Please answer the question using a numerical value (e.g., 42 or 3.1) directly."
    )
    assert target == "2.4"


def test_stage3_multiple_choice_prompt_has_no_system_message():
    messages, target = build_messages(spatial(), "stage3")
    assert [m["role"] for m in messages] == ["user"]
    assert user_text(messages) == (
        "Question: Which is closest to the bed?\nOptions:\nA. chair\nB. table\nC. sofa \n" + THINK
        + "Please provide your detailed reasoning between the <think> </think> tags, and then answer the question "
        "with the option's letter from the given choices (e.g., A, B, etc.) within the <answer> </answer> tags."
    )
    assert target == "B"


def test_stage3_numeric_prompt():
    messages, _ = build_messages(spatial("object count", options=None, answer="4"), "stage3")
    assert user_text(messages) == (
        "Question: Which is closest to the bed? \n" + THINK
        + "Please provide your detailed reasoning between the <think> </think> tags, and then answer the question "
        "with a numerical value (e.g., 42 or 3.1) within the <answer> </answer> tags."
    )


def test_cold_start_uses_the_stage3_prompt_and_the_solution():
    solution = "<think>The table is nearer.</think><answer>B</answer>"
    record = spatial(kind="cold_start", solution=solution)
    messages, target = build_messages(record, "cold_start")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert user_text(messages) == user_text(build_messages(record, "stage3")[0])
    assert target == solution


def test_stage3_strips_image_tags_from_the_question_only():
    record = dataclasses.replace(spatial(), question="<image>\nWhich<image> is closest?",
                                 options=("A. <image>", "B. table"))
    assert user_text(build_messages(record, "stage3")[0]).startswith(
        "Question: \nWhich is closest?\nOptions:\nA. <image>\nB. table \nPlease Think")
    # Stage 2 keeps the question as released (the reference strips only in stage 3)
    assert user_text(build_messages(record, "stage2")[0]).startswith("Question: <image>\nWhich<image> is closest?Options:")


def test_stage3_puts_a_video_after_the_text_and_images_before_it():
    video = spatial("object count", options=None, answer="4", data_type="video")
    messages, _ = build_messages(video, "stage3")
    assert [c["type"] for c in messages[0]["content"]] == ["text", "video"]
    for stage in ("stage2", "cold_start"):
        record = dataclasses.replace(video, kind="cold_start", solution="<think>a</think><answer>4</answer>")
        assert [c["type"] for c in build_messages(record, stage)[0][-1]["content"]] == ["video", "text"]
    assert [c["type"] for c in build_messages(spatial(), "stage3")[0][0]["content"]] == ["image", "image", "text"]


def test_release_cold_start_rows_use_prompt_and_solution_verbatim():
    solution = "<think>The table is nearer.</think><answer>B</answer>"
    prompt = "Question: Which is closest? Think, then answer in <answer> tags."
    row = Record(id="c1", kind="cold_start", question=prompt, images=("s/0.jpg",), data_type="single_image",
                 solution=solution, prompt=prompt)  # no question_type: the release's rows have none
    messages, target = build_messages(row, "cold_start")
    assert user_text(messages) == prompt and target == solution
    assert messages[0]["content"][0]["text"] == "You are a helpful assistant"
    with pytest.raises(ValueError, match="'c1'.*stage3.*question_type"):  # stage 3 must know how to score it
        build_messages(row, "stage3")
    scored = dataclasses.replace(row, question_type="relative distance", options=OPTIONS, answer="B")
    assert build_messages(scored, "stage3") == ([{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": prompt}]}], "B")


def test_a_cold_start_row_with_question_type_and_prompt_is_not_wrapped_twice():
    built = user_text(build_messages(spatial(), "stage3")[0])
    row = spatial(kind="cold_start", solution="<think>a</think><answer>B</answer>", prompt=built)
    text = user_text(build_messages(row, "cold_start")[0])
    assert text == built and text.count("Question:") == 1


def test_unusable_records_are_rejected_with_their_id():
    with pytest.raises(ValueError, match="'q7'.*stage1.*boxes"):
        build_messages(spatial(), "stage1", image_hw=(10, 10), resized_hw=(28, 28))
    with pytest.raises(ValueError, match="'g3'.*resized_hw"):
        build_messages(grounding(), "stage1")
    with pytest.raises(ValueError, match="'q7'.*solution"):
        build_messages(spatial(), "cold_start")
    with pytest.raises(ValueError, match="'g3'.*question_type"):
        build_messages(grounding(), "stage2")
    with pytest.raises(ValueError, match="unknown stage"):
        build_messages(spatial(), "stage4")


def test_grounding_target_is_json_not_a_quoted_string():
    target = grounding_target([Box((10, 10, 20, 20), 'the "big" chair')], (100, 100), (100, 100))
    parsed = json.loads(target[len("```json\n") : -len("\n```")])
    assert parsed == [{"bbox_2d": [10, 10, 20, 20], "label": 'the "big" chair'}]
