"""What the demo measures on the held-out rooms, the same way for every model it compares.

    grounding   stage-1 questions, greedy JSON boxes: mean IoU (`eval.grounding.parsed_iou`) and the
                share of answers that parse as boxes; beside it the position-blind reference: the IoU
                of answering each asked label's mean training box (`position_blind_iou`), and the
                model's own IoU with each question asked about another room's picture
    direct      stage-2 questions with the direct-answer prompt, the question types in turn
                (`balanced`): the toy-world benchmark (accuracy on multiple choice, MRA on numbers)
                per question type, through `eval.runner`; beside it the same questions each asked about
                another held-out room's picture (`other_pictures`): what the model gets without looking
    reasoning   the same questions with the stage-3 prompt: format and accuracy rewards as GRPO
                computes them (`rewards.score_completion`), their weighted sum, and accuracy per type

All three are greedy, so a model's numbers are a pure function of its parameters.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ladder_jax.data import prompts, spld
from ladder_jax.data.processor import Processor
from ladder_jax.eval import media as media_lib
from ladder_jax.eval import runner
from ladder_jax.eval.benchmarks import Item, read_benchmark
from ladder_jax.eval.grounding import best_ious, box_iou, parse_boxes, parsed_iou
from ladder_jax.eval.media import Media
from ladder_jax.generate import greedy_texts
from ladder_jax.train.rewards import score_completion

DIRECT_TOKENS, BATCH = 16, 8


def grounding_budget(tokenizer, records) -> int:
    """Tokens a grounding answer may take: the longest held-out target (boxes as given) plus room for
    the end token and a few wider numbers. (A fixed 96 silently cut every 3-object answer short.)"""
    side = 1 + max((max(b.bbox_2d) for r in records for b in r.boxes), default=0)
    targets = [prompts.grounding_target(r.boxes, (side, side), (side, side)) for r in records]
    return 8 + max((len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in targets), default=0)


def balanced(items: list[Item], count: int) -> list[Item]:
    """`count` items taking the question types in turn (each type's in file order), kept in file order.
    The overall score is the mean over types, so a type must not ride on a handful of items: the
    first 240 toy-world questions held 2 appearance-order ones, each worth 1/14 of the overall."""
    by_type: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_type.setdefault(item.question_type, []).append(i)
    queues = [iter(v) for v in by_type.values()]
    chosen: list[int] = []
    while queues and len(chosen) < count:
        for queue in list(queues):
            index = next(queue, None)
            if index is None:
                queues.remove(queue)
            elif len(chosen) < count:
                chosen.append(index)
    return [items[i] for i in sorted(chosen)]


def other_pictures(items: list[Item]) -> list[Item]:
    """Each item with the media of the next item of its question type and media layout (kind,
    picture count) that shows something else: the same questions about other rooms. A model that
    reads the picture scores lower on these; one that answers from the words alone scores the same.
    An item whose group holds no other media keeps its own."""
    groups: dict[tuple, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault((item.question_type, item.media.kind, len(item.media.paths)), []).append(i)
    out = list(items)
    for members in groups.values():
        for k, i in enumerate(members):
            later = members[k + 1:] + members[:k]
            j = next((j for j in later if items[j].media != items[i].media), i)
            out[i] = dataclasses.replace(items[i], media=items[j].media)
    return out


def label_mean_boxes(train) -> dict[str, np.ndarray]:
    """Each label's mean xyxy box over the `train` grounding records: the position-blind answer."""
    boxes: dict[str, list] = {}
    for r in train:
        for b in r.boxes:
            boxes.setdefault(b.label, []).append(b.bbox_2d)
    return {label: np.mean(v, 0) for label, v in boxes.items()}


def position_blind_iou(train, held) -> float:
    """Mean box IoU over `held` grounding records of answering every asked label with that label's
    mean box over `train` (an unseen label: an empty box): what a model that reads the labels but
    not the picture can score."""
    means = label_mean_boxes(train)
    return _mean([np.mean([box_iou(np.asarray(b.bbox_2d, float), means.get(b.label, np.zeros(4))) for b in r.boxes])
                  for r in held if r.boxes])


class HeldOut:
    """The held-out questions of a toy-world eval split, read once and asked of many models."""

    def __init__(self, eval_root: Path, processor: Processor, grounding_items: int, spatial_items: int,
                 reasoning_tokens: int, reward_weights: tuple[float, float] = (1.0, 1.0), train_records=()):
        self.processor, self.reasoning_tokens, self.weights = processor, reasoning_tokens, reward_weights
        records, self.report = spld.read_release(eval_root, [spld.GROUNDING_FILE])
        image_root = spld.default_image_root(eval_root)
        self.grounding = [(r, Item(id=r.id, question_type="grounding", prompt=prompts.grounding_prompt(r.question),
                                   media=Media("images", tuple(str(image_root / p) for p in r.images),
                                               resize="processor"),
                                   ground_truth="", think=False))
                          for r in records[:grounding_items]]
        self.grounding_tokens = grounding_budget(processor.tokenizer, [r for r, _ in self.grounding])
        self.position_blind = position_blind_iou([r for r in train_records if r.kind == "grounding"],
                                                 [r for r, _ in self.grounding])
        # asked as the stages were trained (prompts and image sizes), not as the benchmark evaluator asks
        self.direct = balanced(read_benchmark("toyworld", eval_root, prompt_style="training")[0], spatial_items)
        self.reasoning = balanced(read_benchmark("toyworld", eval_root, think=True, prompt_style="training")[0],
                                  spatial_items)

    def __call__(self, model, name: str) -> dict[str, Any]:
        return {"grounding": self.grounding_scores(model), "direct": self.direct_scores(model, name),
                "reasoning": self.reasoning_scores(model, name)}

    def grounding_scores(self, model) -> dict[str, Any]:
        scores = self._grounding(model, self.grounding)
        blind = self._grounding(model, list(zip([r for r, _ in self.grounding],
                                                other_pictures([item for _, item in self.grounding]))))
        return scores | {"position_blind_iou": self.position_blind, "box_iou_other_pictures": blind["box_iou"]}

    def _grounding(self, model, pairs) -> dict[str, Any]:
        ious, parsed, named = [], [], []
        for start in range(0, len(pairs), BATCH):
            chunk = pairs[start:start + BATCH]
            encoded = [runner.encode(self.processor, item, media_lib.load(item.media)) for _, item in chunk]
            for text, (record, _) in zip(greedy_texts(model, self.processor, encoded, BATCH, self.grounding_tokens),
                                         chunk):
                boxes = parse_boxes(text)
                ious.append(parsed_iou(boxes, record.boxes))
                parsed.append(boxes is not None)
                named += [iou is not None for iou in best_ious(boxes or [], record.boxes)]
        # named: the share of asked objects the answer gives a box for (IoU only counts those).
        return {"box_iou": _mean(ious), "parsed": _mean(parsed), "named": _mean(named), "items": len(ious)}

    def direct_scores(self, model, name: str) -> dict[str, Any]:
        def score(items):
            return _summary(runner.evaluate(model, self.processor, items, benchmark="toyworld", batch_size=BATCH,
                                            max_new_tokens=DIRECT_TOKENS, progress=False, model_name=name).summary)
        blind = score(other_pictures(self.direct))
        return score(self.direct) | {"overall_other_pictures": blind["overall"],
                                     "tasks_other_pictures": blind["tasks"]}

    def reasoning_scores(self, model, name: str) -> dict[str, Any]:
        result = runner.evaluate(model, self.processor, self.reasoning, benchmark="toyworld", batch_size=BATCH,
                                 max_new_tokens=self.reasoning_tokens, think=True, progress=False, model_name=name)
        rewards = np.array([score_completion(row["raw_output"], row["ground_truth"], row["question_type"])
                            for row in result.predictions]).reshape(-1, 2)
        fmt, acc = rewards.mean(0) if len(rewards) else (float("nan"), float("nan"))
        return _summary(result.summary) | {"format_reward": float(fmt), "accuracy_reward": float(acc),
                                           "reward": float(self.weights[0] * fmt + self.weights[1] * acc),
                                           "example": result.predictions[0]["raw_output"] if result.predictions else ""}


def _summary(summary: dict) -> dict[str, Any]:
    scores = summary["scores"]
    return {"overall": scores["overall"], "numeric_mra": scores["NQ"], "choice_accuracy": scores["MCQ"],
            "tasks": {task: t["score"] for task, t in summary["tasks"].items()}, "items": summary["num_scored"]}


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
