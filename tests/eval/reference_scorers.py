"""Plain re-statements of the reference scorers, written from their source without regular
expressions, to check `ladder_jax.eval.metrics` against:

- eval_spld (github ZJU-REAL/SpatialLadder, `eval_spld/utils.py`, `data_utils/vsi_utils.py`,
  `data_utils/vsibench.py`, `data_utils/cvbench.py`): the "spatialladder" protocol;
- thinking-in-space (github vision-x-nyu/thinking-in-space, `lmms_eval/tasks/vsibench/utils.py`):
  the "official" protocol.

Python's `re` semantics they rely on, spelled out: `\\w` is `c.isalnum() or c == "_"`, `\\d` is
`c.isdecimal()`, `[A-D]` under IGNORECASE is exactly a-d and A-D (checked over all code points).
"""

from __future__ import annotations

MCA = ["object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard",
       "object_rel_direction", "object_rel_distance", "route_planning", "obj_appearance_order"]
NA = ["object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation"]
WORDS = [("one", "1"), ("two", "2"), ("three", "3"), ("four", "4"), ("five", "5"), ("six", "6"), ("seven", "7"),
         ("eight", "8"), ("nine", "9"), ("ten", "10"), ("eleven", "11"), ("twelve", "12"), ("thirteen", "13"),
         ("fourteen", "14"), ("fifteen", "15"), ("sixteen", "16"), ("seventeen", "17"), ("eighteen", "18"),
         ("nineteen", "19"), ("twenty", "20"), ("thirty", "30"), ("forty", "40"), ("fifty", "50"), ("sixty", "60"),
         ("seventy", "70"), ("eighty", "80"), ("ninety", "90"), ("zero", "0"), ("a", "1"), ("an", "1")]


def _linspace_thresholds():
    """np.linspace(.5, .95, 10) as numpy computes it: start + i * step, the last one exactly `end`."""
    step = (0.95 - 0.5) / 9
    return [0.5 + i * step for i in range(9)] + [0.95]


THRESHOLDS = _linspace_thresholds()


def mra(pred, target):
    """vsi_utils.mean_relative_accuracy: None -> 0; abs(pred - target) / target <= 1 - theta, mean."""
    if pred is None or target is None:
        return 0.0
    error = abs(pred - target) / target
    return sum(1 for t in THRESHOLDS if error <= 1 - t) / len(THRESHOLDS)


def to_float(text):
    try:
        return float(text)
    except BaseException:
        return None


def extract_answer_text(text):
    """utils.extract_answer_text: the first <answer>...</answer> (across newlines), stripped; else "None"."""
    start = text.find("<answer>")
    while start != -1:
        end = text.find("</answer>", start + len("<answer>"))
        if end != -1:
            return text[start + len("<answer>"):end].strip()
        start = text.find("<answer>", start + 1)
    return "None"


def _is_word(c):
    return c.isalnum() or c == "_"


def _whole_word_in(word, text):
    at = text.find(word)
    while at != -1:
        before = text[at - 1] if at > 0 else ""
        after = text[at + len(word)] if at + len(word) < len(text) else ""
        if not (before and _is_word(before)) and not (after and _is_word(after)):
            return True
        at = text.find(word, at + 1)
    return False


def fuzzy_matching_num(pred):
    pred = pred.strip().lower()
    for word, digit in WORDS:
        if _whole_word_in(word, pred):
            return digit
    for i, c in enumerate(pred):
        if c.isdecimal():
            j = i
            while j < len(pred) and pred[j].isdecimal():
                j += 1
            if j + 1 < len(pred) and pred[j] == "." and pred[j + 1].isdecimal():
                j += 1
                while j < len(pred) and pred[j].isdecimal():
                    j += 1
            return pred[i:j]
    return "None"


def fuzzy_matching_vsi(pred):
    first = pred.split(" ")[0].strip()
    if first in ("A", "B", "C", "D", "A.", "B.", "C.", "D."):
        return first[0]
    return pred.strip()


def eval_spld_vsi(prediction, ground_truth, question_type, thinking):
    """vsibench_eval + vsibench_process_results for one doc."""
    if thinking and "<answer>" in prediction:
        prediction = extract_answer_text(prediction)
    if question_type in MCA:
        prediction = prediction.replace("Answer:", "")
        return 1.0 if fuzzy_matching_vsi(prediction).lower() == ground_truth.lower() else 0.0
    if question_type in NA:
        return mra(to_float(fuzzy_matching_num(prediction)), to_float(ground_truth))
    raise ValueError(question_type)


def fuzzy_matching_cvbench(pred):
    first = pred.split(" ")[0].strip()
    body = first[:-1] if first.endswith(".") else first
    if body and body[0] in "([{":
        body = body[1:]
    if body and body[-1] in ")]}":
        body = body[:-1]
    if len(body) == 1 and body in "ABCDabcd":
        return "".join(c for c in first.upper() if c in "ABCD")
    return pred.strip()


def eval_spld_cvbench(prediction, ground_truth, thinking):
    if thinking and "<answer>" in prediction:
        prediction = extract_answer_text(prediction)
    return 1.0 if fuzzy_matching_cvbench(prediction) == fuzzy_matching_cvbench(ground_truth) else 0.0


def official_vsi(prediction, ground_truth, question_type):
    """thinking-in-space vsibench_process_results (no tag extraction)."""
    token = prediction.split(" ")[0].rstrip(".").strip()
    if question_type in MCA[:3] + MCA[4:]:
        return 1.0 if token.lower() == ground_truth.lower() else 0.0
    if question_type in NA:
        try:
            return mra_official(to_float(token), to_float(ground_truth))
        except TypeError:
            return 0.0
    raise ValueError(question_type)


def mra_official(pred, target):
    """Its MRA has no None check: abs(None - x) raises TypeError, which the caller turns into 0."""
    error = abs(pred - target) / target
    return sum(1 for t in THRESHOLDS if error <= 1 - t) / len(THRESHOLDS)


def _group_means(rows):
    groups = {}
    for row in rows:
        groups.setdefault(row["question_type"], []).append(row["score"])
    return {t: sum(s) / len(s) for t, s in sorted(groups.items())}


def eval_spld_aggregate(rows):
    """vsibench_aggregate_results: per-type means, object_rel_direction from its three difficulties
    (0 if any is missing, those present dropped), overall / mca / na = means of task values (0 if none)."""
    output = _group_means(rows)
    if "object_rel_direction" not in output:
        try:
            parts = []
            for d in ("easy", "medium", "hard"):
                parts.append(output.pop(f"object_rel_direction_{d}"))
            output["object_rel_direction"] = sum(parts) / 3.0
        except KeyError:
            output["object_rel_direction"] = 0
    mca = [v for t, v in output.items() if t in MCA]
    na = [v for t, v in output.items() if t in NA]
    return {"overall": sum(output.values()) / len(output), "MCQ": sum(mca) / len(mca) if mca else 0,
            "NQ": sum(na) / len(na) if na else 0}


def official_aggregate(rows):
    """thinking-in-space vsibench_aggregate_results: overall only (KeyError when easy is present
    without medium and hard)."""
    output = _group_means(rows)
    if "object_rel_direction_easy" in output:
        output["object_rel_direction"] = sum(output.pop(f"object_rel_direction_{d}")
                                             for d in ("easy", "medium", "hard")) / 3.0
    return {"overall": sum(output.values()) / len(output)}
