"""The Grain pipeline: the batch contract, buckets, padding sides, labels, seeds, sharding, skips
and their counts, checkpoint/restore (with and without worker processes), shard sources, and a
batch through the tiny model."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from array_record.python.array_record_module import ArrayRecordWriter
from flax import nnx
from PIL import Image

from ladder_jax.data.buckets import Buckets
from ladder_jax.data.collate import model_inputs
from ladder_jax.data.pipeline import TRAIN_MAX_PIXELS, TRAIN_MIN_PIXELS, Pipeline, PipelineConfig
from ladder_jax.data.processor import Processor
from ladder_jax.data.shards import ShardSource
from ladder_jax.data.spld import read_release
from ladder_jax.models.qwen25_vl.inputs import IGNORE_INDEX, MODEL_KEYS
from ladder_jax.data.tokenizer import default_corpus, special_token_ids, train_tokenizer
from tests.data.pipeline_world import make_world
from tests.data.spld_fixture import make_release

BUCKETS = Buckets(lengths=(128, 256, 512), image_patches=(64, 128, 256), image_items=(1, 2, 4),
                  video_patches=(128, 256), video_items=(1,))
PATCH_DIM = 1176


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def processor():
    return Processor(train_tokenizer(default_corpus()))


def config(stage="stage2", global_batch_size=4, **kw):
    return PipelineConfig(stage, global_batch_size, buckets=kw.pop("buckets", BUCKETS), num_frames=4, **kw)


def pipeline(world, processor, stage="stage2", source=None, shard_index=0, shard_count=1, **kw):
    source = world.records if source is None else source
    return Pipeline(source, processor, config(stage, **kw), data_root=world.root,
                    shard_index=shard_index, shard_count=shard_count)


def run(pipe, limit=None):
    """Batches (copied out of Grain's shared memory) and the final report."""
    out = []
    with iter(pipe) as it:
        for batch in it:
            out.append({k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()})
            if len(out) == limit:
                break
        return out, it.report


def reference(pipe, world, record_id):
    """What the processor makes of one record, alone (the pipeline must only pad it)."""
    record = next(r for r in world.records if r.id == record_id)
    images = [Image.open(world.root / p) for p in record.images]
    if pipe.config.mode == "prompt":
        return pipe.processor.encode_prompt(record, images, pipe.config.stage), record
    return pipe.processor.encode_record(record, images, pipe.config.stage, pipe.config.answer_only_loss), record


def smallest(buckets, value):
    return 0 if value == 0 else min(b for b in buckets if b >= value)


def test_buckets_fit_smallest_and_keep_empty_dimensions_empty():
    b = Buckets(lengths=(8, 16), image_patches=(4, 8), image_items=(1, 2), video_patches=(4,), video_items=(1,))
    assert b.fit((5, 4, 1, 0, 0)) == (8, 4, 1, 0, 0)
    assert b.fit_batch([(5, 4, 1, 0, 0), (9, 0, 0, 4, 1)]) == (16, 4, 1, 4, 1)
    with pytest.raises(ValueError, match="too long: tokens exceed"):
        b.fit((17, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="multiples of 4"):
        Buckets(image_patches=(6,))
    with pytest.raises(ValueError, match="strictly increasing"):
        Buckets(lengths=(16, 8))
    assert b.max_programs() == 2 * 5 * 2


def test_defaults_follow_the_spec(processor, world):
    pipe = Pipeline(world.records, processor, PipelineConfig("stage2", 8), data_root=world.root, shard_index=0,
                    shard_count=1)
    v = pipe.processor.vision
    assert (v.min_pixels, v.max_pixels) == (TRAIN_MIN_PIXELS, TRAIN_MAX_PIXELS) == (16 * 28 * 28, 128 * 28 * 28)
    assert (v.video_min_pixels, v.video_max_pixels) == (TRAIN_MIN_PIXELS, TRAIN_MAX_PIXELS)
    assert pipe.config.mode == "train" and PipelineConfig("stage3", 8).mode == "prompt"
    assert processor.vision.max_pixels != TRAIN_MAX_PIXELS  # the caller's processor is not changed


@pytest.mark.parametrize("answer_only_loss", [True, False])
def test_training_batches_follow_the_contract(world, processor, answer_only_loss):
    pipe = pipeline(world, processor, answer_only_loss=answer_only_loss)
    batches, _ = run(pipe)
    assert len(batches) == pipe.batches_per_epoch == 3  # 14 spatial records, 2 of them bad, batch 4
    for batch in batches:
        assert set(batch) == set(MODEL_KEYS) | {"labels", "ids"}
        b, length = batch["input_ids"].shape
        for key in ("input_ids", "attention_mask", "labels", "image_grid_thw", "video_grid_thw"):
            assert batch[key].dtype == np.int32, key
        for key in ("pixel_values", "pixel_values_videos", "second_per_grid_ts"):
            assert batch[key].dtype == np.float32, key
        assert batch["pixel_values"].shape[::2] == batch["pixel_values_videos"].shape[::2] == (b, PATCH_DIM)
        assert batch["second_per_grid_ts"].shape == batch["video_grid_thw"].shape[:2]
        refs = [reference(pipe, world, rid)[0] for rid in batch["ids"]]
        n = [len(r["input_ids"]) for r in refs]
        patches = [len(r.get("pixel_values", ())) for r in refs]
        items = [len(r.get("image_grid_thw", ())) for r in refs]
        vpatches = [len(r.get("pixel_values_videos", ())) for r in refs]
        assert length == smallest(BUCKETS.lengths, max(n))
        assert batch["pixel_values"].shape[1] == smallest(BUCKETS.image_patches, max(patches))
        assert batch["image_grid_thw"].shape[1] == smallest(BUCKETS.image_items, max(items))
        assert batch["pixel_values_videos"].shape[1] == smallest(BUCKETS.video_patches, max(vpatches))
        for row, (ref, m) in enumerate(zip(refs, n)):
            np.testing.assert_array_equal(batch["input_ids"][row, :m], ref["input_ids"])
            np.testing.assert_array_equal(batch["labels"][row, :m], ref["labels"])
            assert (batch["input_ids"][row, m:] == processor.ids["pad"]).all()
            assert (batch["labels"][row, m:] == IGNORE_INDEX).all()  # -100 on every padding token
            assert batch["attention_mask"][row].tolist() == [1] * m + [0] * (length - m)
            _check_vision(batch, row, ref)
        if answer_only_loss:  # loss only on the answer and its <|im_end|>: a handful of tokens per row
            assert ((batch["labels"] != IGNORE_INDEX).sum(axis=1) <= 4).all()


def _check_vision(batch, row, ref):
    for pix, grid, per_row in (("pixel_values", "image_grid_thw", None),
                               ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")):
        want_pix = ref.get(pix, np.zeros((0, PATCH_DIM), np.float32))
        want_grid = ref.get(grid, np.zeros((0, 3), np.int64))
        np.testing.assert_array_equal(batch[pix][row, : len(want_pix)], want_pix)
        assert not batch[pix][row, len(want_pix):].any()
        np.testing.assert_array_equal(batch[grid][row, : len(want_grid)], want_grid)
        assert not batch[grid][row, len(want_grid):].any()
        if per_row and pix in ref:
            np.testing.assert_array_equal(batch[per_row][row, : len(want_grid)], ref[per_row])
            assert (batch[per_row][row, len(want_grid):] == 1.0).all()


def test_prompt_mode_is_left_padded_and_carries_answers(world, processor):
    pipe = pipeline(world, processor, "stage3", global_batch_size=3)
    batches, report = run(pipe)
    records = {r.id: r for r in world.records}
    assert sum(len(b["ids"]) for b in batches) == report.num_accepted == 12  # 14 good, 2 left at the end
    for batch in batches:
        assert "labels" not in batch and set(batch) >= set(MODEL_KEYS) | {"answers", "question_types"}
        length = batch["input_ids"].shape[1]
        assert (batch["attention_mask"][:, -1] == 1).all()  # every prompt ends at the last index
        for row, rid in enumerate(batch["ids"]):
            ref, record = reference(pipe, world, rid)
            m = len(ref["input_ids"])
            np.testing.assert_array_equal(batch["input_ids"][row, length - m:], ref["input_ids"])
            assert batch["attention_mask"][row].tolist() == [0] * (length - m) + [1] * m
            assert (batch["input_ids"][row, : length - m] == processor.ids["pad"]).all()
            assert batch["answers"][row] == records[rid].answer
            assert batch["question_types"][row] == records[rid].question_type
            _check_vision(batch, row, ref)


def test_stage1_targets_and_prompts_carry_rescaled_boxes(world, processor):
    train, _ = run(pipeline(world, processor, "stage1", global_batch_size=3))
    (batch,) = train
    assert sorted(batch["ids"]) == ["grounding/0", "grounding/1", "grounding/2"]
    answer = batch["labels"][0][batch["labels"][0] != IGNORE_INDEX]
    assert '"bbox_2d"' in processor.tokenizer.decode(answer)
    (prompts,), _ = run(pipeline(world, processor, "stage1", global_batch_size=3, mode="prompt"))
    assert all(a.startswith("```json") and '"label": "lamp"' in a for a in prompts["answers"])


def test_examples_longer_than_every_bucket_are_skipped_and_counted(world, processor):
    short = dataclasses.replace(BUCKETS, image_patches=(64, 128))  # the 3-view records need 192 patches
    pipe = pipeline(world, processor, buckets=short, global_batch_size=1)
    batches, report = run(pipe)
    reason = "too long: image patches exceed the largest bucket"
    too_long = [r.record_id for r in report.rejections if r.reason == reason]
    three_views = [r.id for r in world.records if r.data_type == "multi_view" and len(r.images) == 3]
    assert sorted(too_long) == sorted(three_views) and too_long
    assert not set(too_long) & {rid for b in batches for rid in b["ids"]}


def test_bad_inputs_are_skipped_counted_and_the_totals_add_up(world, processor):
    pipe = pipeline(world, processor, num_epochs=2, global_batch_size=4)
    batches, report = run(pipe)
    counts = report.counts()
    assert counts["images: corrupt image"] == 2 and counts["answer: not one of the option letters"] == 2
    bad = {r.record_id for r in report.rejections if not r.reason.startswith("dropped")}
    assert bad == {world.corrupt_id, world.invalid_id}
    assert "broken.jpg" in next(r.detail for r in report.rejections if r.reason == "images: corrupt image")
    assert report.total == 2 * pipe.num_examples == 2 * 14
    assert report.num_accepted == sum(len(b["ids"]) for b in batches) == 4 * len(batches)
    assert pipe.left_out == {"grounding": 3, "cold_start": 2}


def test_every_bad_item_raises_instead_of_spinning(world, processor):
    bad = [next(r for r in world.records if r.id == world.corrupt_id)] * 5
    with pytest.raises(RuntimeError, match="5 items in a row were skipped"):
        run(pipeline(world, processor, source=bad, global_batch_size=1, max_consecutive_skips=4))


def test_seeds_decide_the_order_and_epochs_reshuffle(world, processor):
    def order(seed, epochs=1):
        batches, _ = run(pipeline(world, processor, seed=seed, num_epochs=epochs, global_batch_size=1))
        return [b["ids"][0] for b in batches]

    first = order(3, epochs=2)
    assert first == order(3, epochs=2)
    assert first[:12] != order(4)
    assert sorted(first[:12]) == sorted(first[12:]) and first[:12] != first[12:]


def test_process_shards_are_disjoint_equal_and_cover_the_data(world, processor):
    seen = []
    for index in range(3):
        pipe = pipeline(world, processor, "stage3", shard_index=index, shard_count=3, global_batch_size=3)
        assert pipe.batch_size == 1 and pipe.local_examples == 16 // 3 and pipe.unused_by_sharding == 1
        batches, report = run(pipe)
        seen.append([b["ids"][0] for b in batches] + [r.record_id for r in report.rejections])
    assert [len(s) for s in seen] == [5, 5, 5]
    ids = [rid for s in seen for rid in s]
    assert len(set(ids)) == len(ids) == 15  # 16 stage-3 records: one is left over by sharding
    with pytest.raises(ValueError, match="does not divide"):
        pipeline(world, processor, shard_index=0, shard_count=3, global_batch_size=4)


def test_global_batches_hold_the_same_rows_for_any_process_count(world, processor):
    good = [r for r in world.records if r.kind == "spatial" and r.id not in (world.corrupt_id, world.invalid_id)]

    def local_ids(index, count):  # 3 epochs of 12 records: 4 global batches of 8 (two straddle epochs), then 4
        pipe = pipeline(world, processor, source=good, shard_index=index, shard_count=count, global_batch_size=8,
                        num_epochs=3, drop_remainder=False, seed=5)
        return [list(b["ids"]) for b in run(pipe)[0]]

    one = local_ids(0, 1)
    assert [len(b) for b in one] == [8, 8, 8, 8, 4]
    order = [rid for b in one for rid in b]
    epochs = [order[:12], order[12:24], order[24:]]
    assert all(sorted(e) == sorted(r.id for r in good) for e in epochs) and epochs[0] != epochs[1] != epochs[2]
    for count in (2, 4):
        shards = [local_ids(index, count) for index in range(count)]
        assert [len(s) for s in shards] == [len(one)] * count
        assert [[rid for s in shards for rid in s[k]] for k in range(len(one))] == one


@pytest.mark.parametrize("workers", [0, 2])
def test_restored_iterator_continues_with_exactly_the_next_batch(world, processor, workers):
    kw = dict(num_epochs=2, global_batch_size=2, num_workers=workers, seed=7)
    k, full = 3, []
    with iter(pipeline(world, processor, **kw)) as it:  # one uninterrupted run, its state noted after k batches
        for batch in it:
            full.append({key: np.array(v) if isinstance(v, np.ndarray) else v for key, v in batch.items()})
            if len(full) == k:
                state = json.loads(json.dumps(it.get_state()))  # a checkpoint holds it as JSON
        full_report = it.report
    with iter(pipeline(world, processor, **kw)) as it:  # a fresh iterator (fresh workers) restored
        it.set_state(state)
        rest = [{key: np.array(v) if isinstance(v, np.ndarray) else v for key, v in b.items()} for b in it]
        report = it.report
    assert len(full) == k + len(rest) == 12  # 2 epochs of 12 good records, batch 2
    for want, got in zip(full[k:], rest):
        assert want.keys() == got.keys()
        for key in want:
            np.testing.assert_array_equal(want[key], got[key])
    assert report.to_json() == full_report.to_json()  # the skip counts checkpoint with the batches
    assert report.counts()["images: corrupt image"] == 2


def test_prepared_shards_give_the_same_batches_as_the_release(processor, tmp_path):
    """data.root may be a `prepare` output: every stage's batches, on each of two processes,
    equal those read from the JSONL release (other kinds are left out alike)."""
    from ladder_jax.data.prepare import prepare

    tiny = make_release(tmp_path / "release")
    records, _ = read_release(tiny.root)
    records = [r for r in records if r.id not in tiny.corrupt]  # prepare finds these corrupt
    prepare(tiny.root, tmp_path / "prepared", num_shards=3, workers=1)
    shards = ShardSource.from_dir(tmp_path / "prepared")
    for stage, batch in (("stage1", 2), ("stage2", 2), ("cold_start", 1), ("stage3", 2)):
        for index in range(2):
            cfg = config(stage, global_batch_size=batch * 2, num_epochs=2, seed=5, min_pixels=16 * 28 * 28,
                         max_pixels=16 * 28 * 28, video_min_pixels=8 * 28 * 28, video_max_pixels=8 * 28 * 28)
            want, _ = run(Pipeline(records, processor, cfg, data_root=tiny.root / "images", shard_index=index,
                                   shard_count=2))
            pipe = Pipeline(shards, processor, cfg, shard_index=index, shard_count=2)
            got, report = run(pipe)
            assert len(got) == len(want) and (len(got) > 0 or stage == "cold_start"), stage
            assert pipe.left_out == Pipeline(records, processor, cfg, data_root=tiny.root).left_out
            for a, b in zip(want, got):
                assert a.keys() == b.keys()
                for key in a:
                    np.testing.assert_array_equal(a[key], b[key])


def test_a_damaged_shard_entry_is_skipped_and_counted(world, processor, tmp_path):
    from ladder_jax.data.shards import encode_record

    spatial = [r for r in world.records if r.kind == "spatial"]
    frames, writer = {}, ArrayRecordWriter(str(tmp_path / "frames.array_record"), "group_size:1")
    records = ArrayRecordWriter(str(tmp_path / "records.array_record"), "group_size:1")
    for record in spatial:
        for p in record.images:
            if p not in frames:
                frames[p] = len(frames)
                writer.write((world.root / p).read_bytes())
        records.write(encode_record(record, [frames[p] for p in record.images]))
    records.write(b"not a shard record")
    writer.close(), records.close()
    from_records, _ = run(pipeline(world, processor, source=spatial, shuffle=False, global_batch_size=3))
    pipe = Pipeline(ShardSource([tmp_path / "records.array_record"], [tmp_path / "frames.array_record"]), processor,
                    config(shuffle=False, global_batch_size=3), shard_index=0, shard_count=1)
    from_shards, report = run(pipe)
    assert len(from_shards) == len(from_records) == 4
    for a, b in zip(from_records, from_shards):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert report.counts() == {"images: corrupt image": 1, "answer: not one of the option letters": 1,
                               "unreadable source item": 1}


def test_the_published_release_layout_feeds_stage2(processor, tmp_path):
    tiny = make_release(tmp_path / "release")
    records, _ = read_release(tiny.root)
    pipe = Pipeline(records, processor, PipelineConfig("stage2", 1, shuffle=False, num_frames=4), shard_index=0,
                    shard_count=1, data_root=tiny.root / "images")
    batches, report = run(pipe)
    assert [r.record_id for r in report.rejections] == list(tiny.corrupt)
    assert report.rejections[0].source == "spld_spatial_data.jsonl" and report.rejections[0].line == 11
    spatial = [r.id for r in records if r.kind == "spatial" and r.id not in tiny.corrupt]
    assert [b["ids"][0] for b in batches] == spatial


def test_describe_counts_and_buckets(world, processor):
    pipe = pipeline(world, processor, global_batch_size=2, shard_index=1, shard_count=2)
    d = pipe.describe(sample=100)
    assert (d["examples"], d["local_examples"], d["unused_by_sharding"], d["batch_size"]) == (14, 7, 0, 1)
    assert d["batches_per_epoch"] == 7 and d["left_out_by_kind"] == {"grounding": 3, "cold_start": 2}
    assert sum(d["bucket_histogram"]["length"].values()) + sum(d["skipped_in_sample"].values()) == 7
    assert "batches per epoch" in pipe.summary()


def test_a_pipeline_batch_runs_through_the_tiny_model(world, processor):
    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel
    from ladder_jax.models.qwen25_vl.config import preset
    from ladder_jax.parallel.mesh import make_mesh

    ids = special_token_ids(processor.tokenizer)
    tiny = preset("tiny")
    cfg = tiny.replace(text=dataclasses.replace(tiny.text, vocab_size=len(processor.tokenizer)),
                       image_token_id=ids["image"], video_token_id=ids["video"],
                       vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"],
                       eos_token_id=ids["eos"], pad_token_id=ids["pad"])
    model = VisionLanguageModel.from_config(cfg, mesh=make_mesh(devices=jax.devices()[:1]))  # compiles faster
    batches, _ = run(pipeline(world, processor, global_batch_size=2))
    both = [b for b in batches if b["pixel_values"].shape[1] and b["pixel_values_videos"].shape[1]]
    batch = min(both, key=lambda b: b["input_ids"].size)  # images and a video, in the smallest shape
    forward = jax.jit(lambda state, inputs: nnx.merge(model.graphdef, state)(**inputs))
    with jax.set_mesh(model.mesh):
        logits = np.asarray(forward(model.state, model_inputs(batch)))
    assert logits.shape == batch["input_ids"].shape + (len(processor.tokenizer),)
    assert np.isfinite(logits).all()
