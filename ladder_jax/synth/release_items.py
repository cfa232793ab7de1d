"""Facts → SpatialLadder-26k question types (SPEC.md section 2).

Numeric answers are bare numbers in the unit the question names (metres for distances,
centimetres for object sizes, like the release); multiple choice has "A. ..." options and a
letter answer. Comparisons of size (bigger/taller/wider) have no release type and stay free-form.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ladder_jax.synth.predicates import Fact
from ladder_jax.synth.templates import LETTERS, number


@dataclasses.dataclass(frozen=True)
class ReleaseItem:
    question_type: str
    question: str
    options: tuple[str, ...] | None
    answer: str


DISTANCE_QUESTIONS = {
    "distance": ["What is the distance between the centres of the {a} and the {b} (in meters)?",
                 "How far is the centre of the {a} from the centre of the {b}, in meters?"],
    "horizontal_distance": ["Measured horizontally along the floor, how far apart are the centres of the {a} and the {b} (in meters)?"],
    "vertical_distance": ["What is the vertical distance between the centres of the {a} and the {b} (in meters)?"],
}
SIZE_QUESTIONS = {
    "size": "What is the length of the longest dimension (length, width, or height) of the {a}, measured in centimeters?",
    "width": "What is the width (longer horizontal side) of the {a}, measured in centimeters?",
    "depth": "What is the depth (shorter horizontal side) of the {a}, measured in centimeters?",
    "height": "What is the height of the {a}, measured in centimeters?",
}
SIDE_CHOICES = {"left_of": ("left", "right", "Is the {a} to the left or to the right of the {b}?"),
                "above": ("above", "below", "Is the {a} above or below the {b}?"),
                "behind": ("behind", "in front of", "Is the {a} behind or in front of the {b}, as seen from the camera?")}
CLOCK_QUESTIONS = {"direction": "Facing the way the camera faces, at what clock position is the {a} (12 o'clock is straight ahead)?",
                   "direction_from": "If I stand at the {a} facing the way the camera faces, at what clock position is the {b} (12 o'clock is straight ahead)?"}


def _choice(question_type: str, question: str, options: list[str], correct: str,
            rng: np.random.Generator) -> ReleaseItem:
    order = rng.permutation(len(options))
    shuffled = [options[i] for i in order]
    return ReleaseItem(question_type, question, tuple(f"{LETTERS[i]}. {o}" for i, o in enumerate(shuffled)),
                       LETTERS[shuffled.index(correct)])


def _clock_options(hour: int, rng: np.random.Generator) -> list[str]:
    others = [h for h in range(1, 13) if h != hour]
    distractors = rng.choice(others, size=3, replace=False)
    return [f"{h} o'clock" for h in [hour, *distractors.tolist()]]


def release_item(fact: Fact, rng: np.random.Generator) -> ReleaseItem | None:
    names = dict(zip("ab", fact.objects))
    p = fact.predicate
    if p in DISTANCE_QUESTIONS:
        qs = DISTANCE_QUESTIONS[p]
        return ReleaseItem("absolute distance", qs[int(rng.integers(len(qs)))].format(**names), None, number(fact.value, 2))
    if p in SIZE_QUESTIONS:
        return ReleaseItem("object size", SIZE_QUESTIONS[p].format(**names), None, number(fact.value * 100, 0))
    if p == "count":
        return ReleaseItem("object count", f"How many {fact.objects[0]}(s) are in this image?", None, str(fact.value))
    if p in SIDE_CHOICES:
        yes, no, q = SIDE_CHOICES[p]
        return _choice("relative direction", q.format(**names), [yes, no], yes if fact.value else no, rng)
    if p == "closer":
        return _choice("relative distance", "Which object is closer to the camera?", list(fact.objects),
                       fact.objects[0] if fact.value else fact.objects[1], rng)
    if p == "nearest":
        return _choice("relative distance", f"Measuring between centres, which of these objects is the closest to the {fact.objects[0]}?",
                       list(fact.objects[1:]), str(fact.value), rng)
    if p in CLOCK_QUESTIONS:
        return _choice("relative direction", CLOCK_QUESTIONS[p].format(**names), _clock_options(int(fact.value), rng), f"{fact.value} o'clock", rng)
    return None
