"""Facts → questions: several phrasings per predicate, answers in human units.

Two outputs per fact where it maps: a SpatialLadder-26k style item (one of the seven question
types; multiple choice with "A. ..." options and a letter answer, or a bare number in the unit the
question names) and a free-form question with a sentence answer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ladder_jax.synth.predicates import Fact

METRES_PER_INCH = 0.0254
METRES_PER_FOOT = 0.3048
LETTERS = "ABCD"


def number(x: float, decimals: int) -> str:
    """Fixed decimals with trailing zeros dropped: 1.50 → "1.5", 2.00 → "2"."""
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def human_length(metres: float, rng: np.random.Generator) -> str:
    """< 1 m → centimetres or inches; ≥ 1 m → metres or feet (1–2 decimals)."""
    metric = rng.random() < 0.5
    if metres < 1.0:
        if metric:
            return f"{number(metres * 100, 0 if metres >= 0.1 else 1)} centimeters"
        return f"{number(metres / METRES_PER_INCH, 1)} inches"
    if metric:
        return f"{number(metres, 2)} meters"
    return f"{number(metres / METRES_PER_FOOT, 1)} feet"


RELATIONS = {  # predicate: (phrase when true, phrase when false)
    "left_of": ("to the left of", "to the right of"),
    "above": ("above", "below"),
    "behind": ("behind", "in front of"),
    "closer": ("closer to the camera than", "farther from the camera than"),
    "bigger": ("bigger than", "smaller than"),
    "taller": ("taller than", "shorter than"),
    "wider": ("wider than", "thinner than"),
}
RELATION_QUESTIONS = ["Is the {a} {rel} the {b}?", "Would you say the {a} is {rel} the {b}?",
                      "From this viewpoint, is the {a} {rel} the {b}?"]
QUANTITY_QUESTIONS = {
    "distance": ["How far apart are the centres of the {a} and the {b}?", "What is the distance between the {a} and the {b}, centre to centre?",
                 "How far is the middle of the {a} from the middle of the {b}?"],
    "horizontal_distance": ["Measured along the floor, how far apart are the {a} and the {b}?",
                            "What is the horizontal distance between the centres of the {a} and the {b}?"],
    "vertical_distance": ["How far apart are the centres of the {a} and the {b} vertically?",
                          "What is the vertical distance between the middle of the {a} and the middle of the {b}?"],
    "width": ["How wide is the {a}?", "What is the width of the {a}?", "Measure the {a}'s longer horizontal side: how long is it?"],
    "depth": ["How deep is the {a}?", "What is the depth of the {a}, its shorter horizontal side?"],
    "height": ["How tall is the {a}?", "What is the height of the {a}?", "How high does the {a} measure from bottom to top?"],
    "size": ["How long is the longest side of the {a}?", "What is the largest dimension of the {a}?"],
}
QUANTITY_ANSWERS = {
    "distance": ["The {a} and the {b} are about {v} apart.", "Roughly {v}."],
    "horizontal_distance": ["Along the floor they are about {v} apart.", "About {v} horizontally."],
    "vertical_distance": ["About {v} vertically.", "Their centres differ in height by roughly {v}."],
    "width": ["The {a} is about {v} wide.", "Roughly {v}."],
    "depth": ["The {a} is about {v} deep.", "Roughly {v}."],
    "height": ["The {a} is about {v} tall.", "Roughly {v}."],
    "size": ["Its longest side is about {v}.", "Roughly {v}."],
}
CLOCK_QUESTIONS = {
    "direction": ["Facing the same way as the camera, at what clock position is the {a}?",
                  "Where is the {a} from the camera, as a clock direction (12 o'clock is straight ahead)?"],
    "direction_from": ["If you stand at the {a} facing the camera's forward direction, at what o'clock is the {b}?",
                       "Standing by the {a} and looking the way the camera looks, which clock direction points to the {b}?"],
}


@dataclasses.dataclass(frozen=True)
class QA:
    question: str
    answer: str


def _names(fact: Fact) -> dict[str, str]:
    return dict(zip("ab", fact.objects))


def free_form(fact: Fact, rng: np.random.Generator) -> QA:
    """A natural question and sentence answer for any fact."""
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    names = _names(fact)
    if fact.predicate in RELATIONS:
        true_phrase, false_phrase = RELATIONS[fact.predicate]
        asked_true = rng.random() < 0.5
        rel = true_phrase if asked_true else false_phrase
        yes = bool(fact.value) == asked_true
        truth = true_phrase if fact.value else false_phrase
        return QA(pick(RELATION_QUESTIONS).format(rel=rel, **names),
                  f"{'Yes' if yes else 'No'}, the {names['a']} is {truth} the {names['b']}.")
    if fact.predicate in CLOCK_QUESTIONS:
        return QA(pick(CLOCK_QUESTIONS[fact.predicate]).format(**names), f"At {fact.value} o'clock.")
    if fact.predicate == "count":
        return QA(f"How many {fact.objects[0]}(s) can you see?", f"{fact.value}.")
    if fact.predicate == "nearest":
        return QA(f"Which is nearest to the {fact.objects[0]}: " + ", ".join(f"the {o}" for o in fact.objects[1:]) + "?",
                  f"The {fact.value}.")
    return QA(pick(QUANTITY_QUESTIONS[fact.predicate]).format(**names),
              pick(QUANTITY_ANSWERS[fact.predicate]).format(v=human_length(fact.value, rng), **names))
