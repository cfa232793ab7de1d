"""Facts → output rows: release-format spatial items, grounding items and free-form QA.

Spatial rows use the SpatialLadder-26k field names (question_id, question, options, answer, image,
question_type, data_type) plus the audit fields predicate, objects, value, unit, definition, scene,
frame and assumptions. `as_record` turns a spatial row into the shared `Record`.
"""

from __future__ import annotations

import numpy as np

from ladder_jax.data.schema import Record
from ladder_jax.synth.analyze import Analysis
from ladder_jax.synth.predicates import Fact
from ladder_jax.synth.release_items import release_item
from ladder_jax.synth.templates import free_form

AUDIT_FIELDS = ("predicate", "objects", "value", "unit", "definition", "scene", "frame", "assumptions")


def _audit(fact: Fact, analysis: Analysis) -> dict:
    value = round(fact.value, 4) if isinstance(fact.value, float) else fact.value
    return {"predicate": fact.predicate, "objects": list(fact.objects), "value": value, "unit": fact.unit,
            "definition": fact.definition, "scene": analysis.scene, "frame": analysis.frame.source,
            "assumptions": list(analysis.assumptions)}


def scene_rows(analysis: Analysis, image: str, first_id: int, rng: np.random.Generator) -> dict[str, list[dict]]:
    """{"spatial", "grounding", "freeform"} rows for one analysed scene; ids count up from first_id."""
    rows = {"spatial": [], "grounding": [], "freeform": []}
    qid = first_id
    for fact in analysis.facts:
        audit = _audit(fact, analysis)
        qa = free_form(fact, rng)
        rows["freeform"].append({"question_id": qid, "question": qa.question, "answer": qa.answer,
                                 "image": [image], "data_type": "single_image", **audit})
        qid += 1
        item = release_item(fact, rng)
        if item is None:
            continue
        rows["spatial"].append({"question_id": qid, "question": item.question, "options": list(item.options) if item.options else None,
                                "answer": item.answer, "image": [image], "question_type": item.question_type,
                                "data_type": "single_image", **audit})
        named = [o for o in fact.objects if _box_has_area(analysis.pixel_boxes.get(o))] if fact.predicate != "count" else []
        if named:
            rows["grounding"].append({"question_id": qid, "question": item.question, "image": [image], "data_type": "single_image",
                                      "answer": [{"bbox_2d": list(analysis.pixel_boxes[o]), "label": o} for o in dict.fromkeys(named)]})
        qid += 1
    return rows


def _box_has_area(box) -> bool:
    """Inclusive pixel boxes one pixel thin would read as x2 <= x1 (or y2 <= y1), which the schema rejects."""
    return box is not None and box[2] > box[0] and box[3] > box[1]


def as_record(row: dict) -> Record:
    """A spatial row as the shared Record; the audit fields travel in `meta`."""
    return Record(id=str(row["question_id"]), kind="spatial", question=row["question"], images=tuple(row["image"]),
                  data_type=row["data_type"], question_type=row["question_type"],
                  options=tuple(row["options"]) if row["options"] else None, answer=row["answer"],
                  meta={k: row[k] for k in AUDIT_FIELDS})
