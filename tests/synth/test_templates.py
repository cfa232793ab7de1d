"""Human units, release-format items, free-form phrasings and the ambiguity filter."""

import re

import numpy as np
import pytest

from tests.synth.analytic import WorldBox, camera, render
from ladder_jax.data.scene_folder import Scene
from ladder_jax.data.schema import MULTIPLE_CHOICE_TYPES, NUMERIC_TYPES
from ladder_jax.synth.ambiguity import label_key, unambiguous_ids
from ladder_jax.synth.analyze import analyze_scene
from ladder_jax.synth.predicates import PREDICATES, Fact
from ladder_jax.synth.release_items import release_item
from ladder_jax.synth.templates import free_form, human_length

TO_METRES = {"centimeters": 0.01, "inches": 0.0254, "meters": 1.0, "feet": 0.3048}


@pytest.mark.parametrize("metres", [0.043, 0.37, 0.999, 1.0, 2.345, 7.8])
def test_human_length_units_and_rounding(metres):
    rng = np.random.default_rng(0)
    units = set()
    for _ in range(20):
        num, unit = re.fullmatch(r"(\d+(?:\.\d{1,2})?) (\w+)", human_length(metres, rng)).groups()
        units.add(unit)
        step = 10.0 ** -len(num.split(".")[1]) if "." in num else 1.0  # trailing zeros are dropped: looser
        assert abs(float(num) * TO_METRES[unit] - metres) <= 0.5 * step * TO_METRES[unit] + 1e-9
    assert units == ({"centimeters", "inches"} if metres < 1 else {"meters", "feet"})


def facts():
    return [Fact(p.name, ("chair", "table")[:p.arity], {"m": 1.234, "bool": True, "o'clock": 3}[p.unit], p.unit, p.definition)
            for p in PREDICATES.values()] + [Fact("count", ("chair",), 2, "objects", "d"),
                                              Fact("nearest", ("sofa", "chair", "lamp", "bin"), "lamp", "label", "d")]


def test_release_items_follow_the_release_format():
    rng = np.random.default_rng(0)
    for fact in facts():
        item = release_item(fact, rng)
        if fact.predicate in ("bigger", "taller", "wider"):
            assert item is None  # no release type for size comparisons: free-form only
            continue
        if item.question_type in MULTIPLE_CHOICE_TYPES:
            assert [o[:3] for o in item.options] == [f"{l}. " for l in "ABCD"[:len(item.options)]]
            assert item.answer in "ABCD"[:len(item.options)]
        else:
            assert item.question_type in NUMERIC_TYPES and item.options is None
            float(item.answer)
    sizes = [release_item(f, rng) for f in facts() if f.predicate in ("width", "height")]
    assert all("centimeters" in i.question and i.answer == "123" for i in sizes)


def test_free_form_has_several_phrasings_and_correct_polarity():
    rng = np.random.default_rng(0)
    left = Fact("left_of", ("chair", "table"), True, "bool", "d")
    qas = [free_form(left, rng) for _ in range(40)]
    assert len({q.question for q in qas}) >= 4
    for qa in qas:
        asked_left = "to the left of" in qa.question
        assert qa.answer.startswith("Yes" if asked_left else "No") and "chair is to the left of the table" in qa.answer
    height = free_form(Fact("height", ("chair",), 0.8, "m", "d"), rng)
    assert re.search(r"\d+(\.\d+)? (centimeters|inches)", height.answer)


def test_label_keys_collide_on_head_noun():
    assert label_key("Chairs") == label_key("wooden chair") == "chair" and label_key("glass") == "glass"
    ok, dropped = unambiguous_ids({1: "chair", 2: "wooden chair", 3: "table"}, {1, 2, 3})
    assert ok == {3} and set(dropped) == {1, 2}


def test_repeated_labels_are_never_named_but_are_counted():
    boxes = [WorldBox("chair", (-1.0, 3.0, 0.4), (0.5, 0.5, 0.8)), WorldBox("chair", (1.0, 3.0, 0.4), (0.5, 0.5, 0.8)),
             WorldBox("table", (0.0, 3.5, 0.35), (0.8, 0.6, 0.7)), WorldBox("bin", (0.0, 2.2, 0.2), (0.3, 0.3, 0.4))]
    k, c2w = camera(1.6, 30, 224, 224)
    depth, ids, rgb = render(boxes, k, c2w, 224, 224, wall_y=6.0)
    a = analyze_scene(Scene("two-chairs", rgb, depth, ids, {i + 1: b.label for i, b in enumerate(boxes)}, k))
    named = {o for f in a.facts if f.predicate != "count" for o in f.objects}
    assert named == {"table", "bin"}
    assert any(f.predicate == "count" and f.objects == ("chair",) and f.value == 2 for f in a.facts)
