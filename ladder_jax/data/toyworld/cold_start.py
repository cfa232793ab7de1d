"""Cold-start records: the stage-3 prompt of a question and a worked, correct solution.

The release's cold-start file (fields `prompt`, `solution`, `image`, `data_type`) fed `prompt` to
the model verbatim, so ours is the full stage-3 user text of SPEC.md section 3, and the reader
takes it verbatim too. We also keep the question's structured fields (`question_id`, `question`,
`options`, `answer`, `question_type`).

Two styles of solution (`REASONING_STYLES`, the toy world's `reasoning` setting):
    worked  the derivation from the geometry: coordinates, every candidate's distance, the offsets
            ahead and aside, the room's sides (what a large model could read off a scene)
    short   the one grounded statement that decides the answer, in words (which object, which
            side, how far), then the answer: a model that answers directly keeps that skill when
            it learns the format, instead of learning to write numbers it cannot perceive first
"""

from __future__ import annotations

from ladder_jax.data.prompts import reasoning_prompt
from ladder_jax.data.toyworld.question import Question


def stage3_prompt(question: Question) -> str:
    """The stage-3 user text of `question` (`prompts.reasoning_prompt`), so the prompt cold start
    trains on verbatim is the one stage 3 asks."""
    return reasoning_prompt(question.question, question.options or None, bool(question.options))


REASONING_STYLES = ("worked", "short")
# Which of a view's spatial questions get a cold-start record (the toy world's `cold_start`):
#   one  one drawn at random per scene and data type (a sixth of the spatial questions)
#   all  every one, so the cold start sees each question stage 2 trains on, in the stage-3 form
COLD_START_SHARES = ("one", "all")


def solution(question: Question, style: str = "worked") -> str:
    if style not in REASONING_STYLES:
        raise ValueError(f"unknown cold-start reasoning style {style!r}; use one of {REASONING_STYLES}")
    think = question.reasoning if style == "worked" else question.fact
    return f"<think>{think}</think><answer>{question.answer}</answer>"


def cold_start_record(question: Question, question_id: int, images: list[str], data_type: str,
                      style: str = "worked") -> dict:
    return {
        "question_id": question_id,
        "prompt": stage3_prompt(question),
        "solution": solution(question, style),
        "image": images,
        "data_type": data_type,
        "question_type": question.question_type,
        "question": question.question,
        "options": list(question.options) if question.options else None,
        "answer": question.answer,
    }
