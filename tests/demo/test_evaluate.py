"""The held-out grounding answer budget covers the longest answer the model is trained to write."""

from ladder_jax.data import prompts
from ladder_jax.data.schema import Box
from ladder_jax.data.tokenizer import default_corpus, train_tokenizer
from ladder_jax.demo.evaluate import grounding_budget


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
