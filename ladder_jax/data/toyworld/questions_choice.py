"""Multiple-choice questions: relative distance, relative direction, appearance order.

Distances are between object centres (3-D, metres); directions use centres projected onto the
floor. Each builder rejects configurations whose answer sits near a decision boundary, so the
correct letter is unique and robust to small perception errors.
"""

from __future__ import annotations

import itertools

import numpy as np

from ladder_jax.data.toyworld.question import Question, Views, distance, lettered
from ladder_jax.data.toyworld.scene import Obj, Scene

TRIES = 30
ORDERED_OBJECTS = (4, 3)  # an appearance-order question asks four objects, else three
QUADRANTS = ("front-left", "front-right", "back-left", "back-right")
MIN_ANGLE_DEG = 15.0  # how far a direction must be from the nearest quadrant boundary


def named(scene: Scene, views: Views) -> list[Obj]:
    """Objects a question may name: unique label in the room, clearly seen in the views."""
    seen = views.seen()
    return [o for o in scene.unique_objects() if seen[o.id]]


def relative_distance(scene: Scene, views: Views, rng: np.random.Generator) -> Question | None:
    objs = named(scene, views)
    k = min(4, len(objs) - 1)
    if k < 3:
        return None
    for _ in range(TRIES):
        target, *choices = (objs[i] for i in rng.choice(len(objs), k + 1, replace=False))
        dists = np.array([distance(target.centre, c.centre) for c in choices])
        farthest = bool(rng.random() < 0.5)
        order = np.argsort(-dists if farthest else dists)
        best, runner_up = dists[order[0]], dists[order[1]]
        if abs(runner_up - best) < max(0.3, 0.15 * min(best, runner_up)):
            continue
        word = "farthest from" if farthest else "closest to"
        names = ", ".join(c.label for c in choices)
        letter = "ABCD"[order[0]]
        listing = "; ".join(f"{c.label} {d:.2f} m" for c, d in zip(choices, dists))
        return Question(
            "relative distance",
            f"Measuring from the centre of each object, which of these objects ({names}) is the "
            f"{word} the {target.label}?",
            lettered([c.label for c in choices]),
            letter,
            f"Centre distances to the {target.label}: {listing}. The {word} it is the "
            f"{choices[order[0]].label}, option {letter}.",
            f"The {choices[order[0]].label} is the {word} the {target.label}: option {letter}.",
        )
    return None


def direction_quadrant(stand: np.ndarray, face: np.ndarray, query: np.ndarray) -> tuple[str, float, float]:
    """(quadrant, metres ahead, metres to the left) of `query` for someone at `stand` facing `face`."""
    forward = (face - stand)[:2] / np.linalg.norm((face - stand)[:2])
    left = np.array([-forward[1], forward[0]])  # +z × forward
    offset = (query - stand)[:2]
    ahead, leftward = float(offset @ forward), float(offset @ left)
    quadrant = ("front-" if ahead > 0 else "back-") + ("left" if leftward > 0 else "right")
    return quadrant, ahead, leftward


def relative_direction(scene: Scene, views: Views, rng: np.random.Generator) -> Question | None:
    objs = named(scene, views)
    if len(objs) < 3:
        return None
    for _ in range(TRIES):
        stand, face, query = (objs[i] for i in rng.choice(len(objs), 3, replace=False))
        quadrant, ahead, leftward = direction_quadrant(stand.centre, face.centre, query.centre)
        angle = np.degrees(np.arctan2(abs(leftward), abs(ahead)))
        far_enough = min(distance(stand.centre[:2], face.centre[:2]), np.hypot(ahead, leftward)) >= 0.5
        if not far_enough or min(angle, 90 - angle) < MIN_ANGLE_DEG:
            continue
        choices = [QUADRANTS[i] for i in rng.permutation(4)]
        letter = "ABCD"[choices.index(quadrant)]
        side = f"{abs(leftward):.2f} m to the {'left' if leftward > 0 else 'right'}"
        return Question(
            "relative direction",
            f"If I am standing by the {stand.label} and facing the {face.label}, is the "
            f"{query.label} to my front-left, front-right, back-left, or back-right?",
            lettered(choices),
            letter,
            f"Standing at the {stand.label} and facing the {face.label}, the {query.label} is "
            f"{abs(ahead):.2f} m {'ahead' if ahead > 0 else 'behind'} and {side}, so it is "
            f"{quadrant}: option {letter}.",
            f"Facing the {face.label} from the {stand.label}, the {query.label} is "
            f"{'ahead' if ahead > 0 else 'behind'} and to the {'left' if leftward > 0 else 'right'}, "
            f"{quadrant}: option {letter}.",
        )
    return None


def appearance_order(scene: Scene, views: Views, rng: np.random.Generator) -> Question | None:
    """Objects whose first clear sightings are strictly ordered, none glimpsed before its turn: four as
    VSI-Bench asks when the walk shows four so, else three (a short walk rarely orders four: 13% of
    4-frame toy videos do, 52% order three)."""
    if views.data_type != "video":
        return None
    objs = named(scene, views)
    first, glimpse = views.first_seen(), views.first_glimpse()
    for count in ORDERED_OBJECTS:
        combos = list(itertools.combinations(sorted(objs, key=lambda o: first[o.id]), count))
        rng.shuffle(combos)
        for combo in combos[: TRIES * 4]:
            if all(glimpse[b.id] > first[a.id] for a, b in zip(combo, combo[1:])):
                return _order_question(list(combo), first, rng)
    return None


def _order_question(ordered: list[Obj], first: np.ndarray, rng: np.random.Generator) -> Question:
    labels = [o.label for o in ordered]
    asked = [labels[i] for i in rng.permutation(len(labels))]
    wrong = [p for p in itertools.permutations(labels) if list(p) != labels]
    picks = [list(wrong[i]) for i in rng.choice(len(wrong), 3, replace=False)]
    choices = picks + [labels]
    perm = rng.permutation(4)
    choices = [choices[i] for i in perm]
    letter = "ABCD"[int(np.argmax(perm == 3))]
    seen_at = ", ".join(f"the {o.label} in frame {int(first[o.id]) + 1}" for o in ordered)
    return Question(
        "appearance order",
        "What will be the first-time appearance order of the following categories in the video: "
        f"{', '.join(asked)}?",
        lettered([", ".join(c) for c in choices]),
        letter,
        f"They first appear as follows: {seen_at}. So the order is {', '.join(labels)}: option {letter}.",
        f"The first appearances go {', '.join(labels)}: option {letter}.",
    )
