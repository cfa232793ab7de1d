"""The held-out grounding answer budget covers the longest answer the model is trained to write; the
held-out spatial questions share their number out over the question types."""

import random
from collections import Counter

from ladder_jax.data import prompts
from ladder_jax.data.schema import Box
from ladder_jax.data.tokenizer import default_corpus, train_tokenizer
from ladder_jax.demo.evaluate import balanced, grounding_budget
from ladder_jax.eval.benchmarks import Item


class _Record:
    def __init__(self, *boxes):
        self.boxes = boxes


def test_the_grounding_budget_fits_every_target_with_room_to_end():
    tokenizer = train_tokenizer(default_corpus(), vocab_size=512)
    one = _Record(Box((1, 2, 3, 4), "ball"))
    three = _Record(Box((100, 111, 1023, 998), "exercise ball"), Box((0, 0, 5, 7), "tv stand"),
                    Box((640, 480, 1279, 959), "trash can"))
    for records in ([one], [one, three], [three, one]):
        budget = grounding_budget(tokenizer, records)
        for r in records:
            target = prompts.grounding_target(r.boxes, (1280, 1280), (1280, 1280))
            assert budget > len(tokenizer(target, add_special_tokens=False)["input_ids"])
    assert grounding_budget(tokenizer, [one, three]) > grounding_budget(tokenizer, [one]) > 30


def test_balanced_shares_the_items_out_over_the_types_in_file_order():
    rng = random.Random(0)
    for _ in range(200):
        types = [rng.choice("aaaaabbbcd") for _ in range(rng.randint(0, 60))]
        items = [Item(id=str(i), question_type=t, prompt="", media=None, ground_truth="", think=False)
                 for i, t in enumerate(types)]
        count = rng.randint(0, 70)
        chosen = balanced(items, count)
        assert len(chosen) == min(count, len(items))
        assert [int(c.id) for c in chosen] == sorted(int(c.id) for c in chosen)  # file order
        taken, available = Counter(c.question_type for c in chosen), Counter(types)
        for t in available:  # each type's first items; a type short of its share gives all it has
            firsts = [i.id for i in items if i.question_type == t][:taken[t]]
            assert [c.id for c in chosen if c.question_type == t] == firsts
            others = [taken[u] for u in available if taken[u] < available[u]]
            assert taken[t] == available[t] or taken[t] + 1 >= max(others, default=0)


def test_other_pictures_asks_each_question_about_another_room_of_its_kind():
    from ladder_jax.demo.evaluate import other_pictures
    from ladder_jax.eval.media import Media

    rng = random.Random(1)
    items = []
    for i in range(120):
        kind, count = rng.choice([("images", 1), ("images", 2), ("frames", 4)])
        room = i // 4 if rng.random() < 0.5 else i  # like grounding questions: several asked about one room
        media = Media(kind, tuple(f"room{room}/view{v}.jpg" for v in range(count)))
        items.append(Item(id=str(i), question_type=rng.choice("ab"), prompt=f"q{i}", media=media, ground_truth=str(i),
                          think=False))
    items.append(Item(id="alone", question_type="c", prompt="", media=Media("images", ("x.jpg",)), ground_truth="",
                      think=False))
    swapped = other_pictures(items)
    for before, after in zip(items, swapped):
        assert (after.id, after.prompt, after.ground_truth) == (before.id, before.prompt, before.ground_truth)
        same_kind = [o.media for o in items if (o.question_type, o.media.kind, len(o.media.paths))
                     == (before.question_type, before.media.kind, len(before.media.paths))]
        assert after.media in same_kind
        assert (after.media == before.media) == (set(same_kind) == {before.media})  # no other room: its own
    assert swapped[-1].media == items[-1].media
