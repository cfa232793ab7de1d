"""Cold-start records: the stage-3 prompt of a question and a worked, correct solution.

The release's cold-start file (fields `prompt`, `solution`, `image`, `data_type`) fed `prompt` to
the model verbatim, so ours is the full stage-3 user text of SPEC.md section 3. We also keep the
question's structured fields (`question_id`, `question`, `options`, `answer`, `question_type`).
"""

from __future__ import annotations

from ladder_jax.data.toyworld.question import Question

THINK = (
    "Please Think about this question as if you were a human pondering deeply. Engage in an internal "
    "dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', 'let's break it "
    "down', etc, or other natural language thought expressions It's encouraged to include "
    "self-reflection or verification in the reasoning process. \n"
)
SUFFIX = "Please provide your detailed reasoning between the <think> </think> tags, and then answer the question with "
CHOICE_END = "the option's letter from the given choices (e.g., A, B, etc.) within the <answer> </answer> tags."
NUMBER_END = "a numerical value (e.g., 42 or 3.1) within the <answer> </answer> tags."


def stage3_prompt(question: Question) -> str:
    text = f"Question: {question.question} \n{THINK}"
    if question.options:
        text += "\nOptions:\n" + "\n".join(question.options) + "\n"
    return text + SUFFIX + (CHOICE_END if question.options else NUMBER_END)


def solution(question: Question) -> str:
    return f"<think>{question.reasoning}</think><answer>{question.answer}</answer>"


def cold_start_record(question: Question, question_id: int, images: list[str], data_type: str) -> dict:
    return {
        "question_id": question_id,
        "prompt": stage3_prompt(question),
        "solution": solution(question),
        "image": images,
        "data_type": data_type,
        "question_type": question.question_type,
        "question": question.question,
        "options": list(question.options) if question.options else None,
        "answer": question.answer,
    }
