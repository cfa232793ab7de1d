"""Cold-start records: the stage-3 prompt of a question and a worked, correct solution.

The release's cold-start file (fields `prompt`, `solution`, `image`, `data_type`) fed `prompt` to
the model verbatim, so ours is the full stage-3 user text of SPEC.md section 3, and the reader
takes it verbatim too. We also keep the question's structured fields (`question_id`, `question`,
`options`, `answer`, `question_type`).
"""

from __future__ import annotations

from ladder_jax.data.prompts import reasoning_prompt
from ladder_jax.data.toyworld.question import Question


def stage3_prompt(question: Question) -> str:
    """The stage-3 user text of `question` (`prompts.reasoning_prompt`), so the prompt cold start
    trains on verbatim is the one stage 3 asks."""
    return reasoning_prompt(question.question, question.options or None, bool(question.options))


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
