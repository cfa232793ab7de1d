"""Question builders on hand-made scenes and visibility tables whose answers are known."""

import re

import numpy as np

from ladder_jax.data.toyworld.catalogue import BOX
from ladder_jax.data.toyworld.question import Views, format_number
from ladder_jax.data.toyworld.questions_choice import appearance_order, direction_quadrant, relative_distance
from ladder_jax.data.toyworld.questions_numeric import object_count, room_size
from ladder_jax.data.toyworld.scene import Obj, Scene

LABELS = ("sofa", "lamp", "table", "bed", "chair", "chair")


def _scene(centres, labels=LABELS):
    objs = tuple(
        Obj(i + 1, label, BOX, np.array([x, y, 0.5]), np.array([0.4, 0.4, 1.0]), 0.0, (1, 2, 3))
        for i, ((x, y), label) in enumerate(zip(centres, labels))
    )
    return Scene(np.array([6.0, 5.0, 2.8]), objs, np.zeros((6, 3), np.float32))


def _views(data_type, first_frames, frames=8, glimpses=()):
    """Object i + 1 is clearly seen from frame first_frames[i] on; (id, frame) in glimpses shows 5 pixels."""
    pixels = np.zeros((frames, len(first_frames) + 1), int)
    for i, f in enumerate(first_frames):
        if f is not None:
            pixels[f:, i + 1] = 500
    for obj_id, f in glimpses:
        pixels[f, obj_id] = 5
    return Views(data_type, pixels, 100)


def test_appearance_order_follows_first_clear_sighting():
    scene = _scene([(1, 1), (2, 1), (3, 1), (4, 1)], LABELS[:4])
    views = _views("video", [5, 0, 7, 2])  # lamp, bed, sofa, table
    for seed in range(10):
        q = appearance_order(scene, views, np.random.default_rng(seed))
        chosen = dict(opt.split(". ", 1) for opt in q.options)[q.answer]
        assert chosen == "lamp, bed, sofa, table"
        assert sum(opt.endswith("lamp, bed, sofa, table") for opt in q.options) == 1


def test_appearance_order_leaves_out_an_object_a_glimpse_puts_out_of_turn():
    scene = _scene([(1, 1), (2, 1), (3, 1), (4, 1)], LABELS[:4])
    # The table (id 3) shows a few pixels in frame 1, before the sofa is clearly seen in frame 2: no
    # order of all four holds, so three are asked, never the sofa and the table together.
    views = _views("video", [2, 0, 4, 6], glimpses=[(3, 1)])
    for seed in range(10):
        q = appearance_order(scene, views, np.random.default_rng(seed))
        chosen = dict(opt.split(". ", 1) for opt in q.options)[q.answer]
        assert chosen in ("lamp, sofa, bed", "lamp, table, bed")
        assert len({opt.split(". ", 1)[1] for opt in q.options}) == 4
    assert appearance_order(scene, _views("multi_view", [2, 0, 4, 6]), np.random.default_rng(0)) is None


def test_appearance_order_is_not_asked_when_fewer_than_three_are_ordered():
    scene = _scene([(1, 1), (2, 1), (3, 1), (4, 1)], LABELS[:4])
    # Everything is clearly seen from the first two frames on: no three first sightings are strictly ordered.
    assert appearance_order(scene, _views("video", [0, 0, 1, 1]), np.random.default_rng(0)) is None


def test_relative_distance_refuses_ties():
    # Three candidates on a circle of radius 1.5 m around the sofa: no unique closest or farthest.
    scene = _scene([(3, 2.5), (4.5, 2.5), (3, 4.0), (1.5, 2.5)], LABELS[:4])
    views = _views("single_image", [0, 0, 0, 0], frames=1)
    for seed in range(5):
        q = relative_distance(scene, views, np.random.default_rng(seed))
        if q is not None:  # only possible with a non-sofa target
            assert not q.question.endswith("the sofa?")


def test_direction_quadrants():
    stand, face = np.array([1.0, 1.0, 0.5]), np.array([3.0, 1.0, 0.5])  # facing +x; left is +y
    assert direction_quadrant(stand, face, np.array([2.0, 2.0, 0.0]))[0] == "front-left"
    assert direction_quadrant(stand, face, np.array([2.0, 0.2, 0.9]))[0] == "front-right"
    assert direction_quadrant(stand, face, np.array([0.0, 1.5, 0.5]))[0] == "back-left"
    quadrant, ahead, left = direction_quadrant(stand, face, np.array([0.5, 0.0, 0.5]))
    assert quadrant == "back-right" and np.isclose(ahead, -0.5) and np.isclose(left, -1.0)


def test_object_count_skips_labels_with_a_barely_visible_instance():
    scene = _scene([(1, 1), (2, 1), (3, 1), (4, 1), (1, 3), (2, 3)])
    views = _views("single_image", [0, 0, 0, 0, 0, None], frames=1, glimpses=[(6, 0)])
    for seed in range(10):
        q = object_count(scene, views, np.random.default_rng(seed))
        assert "chair" not in q.question and q.answer == "1"
    views = _views("multi_view", [0, 0, 0, 0, 0, 3], frames=4)
    counts = {re.search(r"many (.+)\(s\)", q.question).group(1): q.answer
              for q in (object_count(scene, views, np.random.default_rng(s)) for s in range(30))}
    assert counts["chair"] == "2"


def test_room_size_is_the_floor_area_and_only_for_several_views():
    scene = _scene([(1, 1)], ["sofa"])
    assert room_size(scene, _views("single_image", [0], frames=1), np.random.default_rng(0)) is None
    q = room_size(scene, _views("video", [0]), np.random.default_rng(0))
    assert q.answer == "30" and q.options is None


def test_format_number():
    assert [format_number(v) for v in (23.4, 3.0, 2.054, 2.056, 0.1 + 0.2)] == ["23.4", "3", "2.05", "2.06", "0.3"]
