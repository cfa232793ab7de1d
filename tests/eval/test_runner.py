"""The runner end to end on a tiny random model saved as a HF folder (tests/eval/conftest.py), and
the scoring path on hand-written outputs against hand-computed values."""

import json

import pytest

from ladder_jax.eval import benchmarks, runner, scoring
from ladder_jax.eval.benchmarks import Item
from ladder_jax.eval.media import Media
from ladder_jax.generate import generate
from tests.eval import bench_files as bf
from tests.eval.results import assert_same_result, raw_outputs, runner_result

NEW_TOKENS = 4


@pytest.mark.parametrize("name", benchmarks.BENCHMARKS)
def test_evaluate_writes_every_item(name, model, processor, data, tmp_path):
    items, report = benchmarks.read_benchmark(name, data[name], num_frames=4)
    result = runner.evaluate(model, processor, items, benchmark=name, batch_size=2, max_new_tokens=NEW_TOKENS,
                             report=report, progress=False)
    paths = result.write(tmp_path)
    rows = [json.loads(line) for line in paths["predictions.jsonl"].read_text().splitlines()]
    undecodable = 1 if name == "cvbench" else 0  # its non-image bytes
    assert [r["id"] for r in rows] == [i.id for i in items if not (name == "cvbench" and i.id == "4")]
    assert len(rows) == len(items) - undecodable
    for row in rows:
        assert set(row) == {"id", "question_type", "group", "ground_truth", "raw_output", "parsed_answer", "score"}
        assert 0.0 <= row["score"] <= 1.0 and isinstance(row["raw_output"], str)
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["num_items"] == len(items) and summary["num_skipped"] == report.num_rejected
    assert report.num_rejected >= undecodable + (bf.VSI_BAD if name == "vsi" else 0)  # read and decode skips
    headline = ("2D", "3D", "avg") if name == "cvbench" else ("overall", "NQ", "MCQ")
    assert all(0.0 <= summary["scores"][key] <= 1.0 for key in headline)
    assert sum(t["count"] for t in summary["tasks"].values()) == len(rows)
    markdown = paths["summary.md"].read_text()
    assert ("| model | 2D | 3D | Avg |" if name == "cvbench" else f"| model | {name} (NQ / MCQ / Avg) |") in markdown
    skipped = json.loads(paths["skipped.json"].read_text())
    assert skipped["num_rejected"] == report.num_rejected and skipped["num_accepted"] == len(rows)
    if name == "cvbench":
        assert report.counts()["media: cannot decode or preprocess"] == 1


def test_the_eval_verb_writes_its_out_folder_whole_and_only_once(model_dir, data, tmp_path, capsys):
    from ladder_jax.cli import main

    args = ["eval", "--model", str(model_dir), "--benchmark", "toyworld", "--data", str(data["toyworld"]),
            "--out", str(tmp_path / "out"), "--limit", "2", "--batch-size", "2", "--max-new-tokens", "2"]
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "predictions.jsonl", "skipped.json", "summary.json", "summary.md"]
    first = (tmp_path / "out" / "predictions.jsonl").read_text()
    assert main(args) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "out" / "predictions.jsonl").read_text() == first
    assert main(args + ["--overwrite"]) == 0
    assert (tmp_path / "out" / "predictions.jsonl").read_text() == first  # greedy: the same answers
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_the_printed_skip_count_holds_read_and_decode_skips(model_dir, data, tmp_path, capsys):
    from ladder_jax.cli import main

    args = ["eval", "--model", str(model_dir), "--benchmark", "cvbench", "--data", str(data["cvbench"]),
            "--batch-size", "2", "--max-new-tokens", "2", "--min-pixels", "784", "--max-pixels", "3136"]
    assert main(args + ["--out", str(tmp_path / "out")]) == 0
    scored = bf.CVBENCH_GOOD - 1  # one row's bytes are no image
    assert f"{scored} scored, {bf.CVBENCH_BAD + 1} skipped" in capsys.readouterr().out
    skipped = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert skipped["num_rejected"] == bf.CVBENCH_BAD + 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_skipped"] == bf.CVBENCH_BAD + 1 and summary["protocol"] == "spatialladder"
    assert summary["decoding"]["source"].endswith("generation_config.json")  # transformers' save_pretrained wrote it
    assert summary["decoding"]["eos_token_ids"] == [json.loads((model_dir / "config.json").read_text())["eos_token_id"]]


def test_a_set_whose_media_all_fail_exits_non_zero(model_dir, tmp_path, capsys):
    from ladder_jax.cli import main

    rows = [{"idx": i, "prompt": "Which? (A) x (B) y", "image": {"bytes": b"not an image"}, "answer": "(A)",
             "type": "2D", "task": "Count", "source": "COCO"} for i in range(2)]
    bf._parquet(tmp_path / "cv" / "test.parquet", rows)
    assert main(["eval", "--model", str(model_dir), "--benchmark", "cvbench", "--data", str(tmp_path / "cv"),
                 "--out", str(tmp_path / "out"), "--max-new-tokens", "2"]) == 2
    err = capsys.readouterr().err
    assert "every question was skipped (2; 2 media: cannot decode or preprocess)" in err
    assert not (tmp_path / "out").exists()


def test_batched_generation_equals_one_prompt_at_a_time(model, processor, data):
    """Left padding, bucketed lengths and patches, and filler rows leave greedy answers unchanged."""
    items, _ = benchmarks.read_benchmark("toyworld", data["toyworld"])
    items = items[:3]
    result = runner.evaluate(model, processor, items, benchmark="toyworld", batch_size=2,
                             max_new_tokens=NEW_TOKENS, progress=False)
    batched = [r["raw_output"] for r in result.predictions]
    single = []
    for item in items:
        inputs = runner.encode(processor, item, runner.media_lib.load(item.media))
        tokens = generate(model, inputs, NEW_TOKENS)[0]
        single.append(processor.tokenizer.decode([t for t in tokens if t != model.config.eos_token_id],
                                                 skip_special_tokens=True))
    assert batched == single
    assert len(set(batched)) > 1  # the answers differ, so rows were not mixed up unnoticed


def test_reference_decoding_reads_generation_config_and_applies_it(model, model_dir, processor, data, tmp_path):
    """Two end tokens and the repetition penalty from generation_config.json reach the sampler: the
    batched answers equal `generate` one prompt at a time with the same settings."""
    from ladder_jax.eval.decoding import decoding_for
    items, _ = benchmarks.read_benchmark("toyworld", data["toyworld"])
    items = items[:3]
    plain = [r["raw_output"] for r in runner.evaluate(model, processor, items, benchmark="toyworld", batch_size=2,
                                                       max_new_tokens=8, progress=False).predictions]
    first = runner.encode(processor, items[0], runner.media_lib.load(items[0].media))
    second_end = int(generate(model, first, 8)[0][2])  # a token the plain path of item 0 emits
    (tmp_path / "generation_config.json").write_text(json.dumps(
        {"eos_token_id": [model.config.eos_token_id, second_end], "repetition_penalty": 1.5}))
    decoding = decoding_for(tmp_path, model.config.eos_token_id)
    assert decoding.eos_token_ids == (model.config.eos_token_id, second_end) and decoding.repetition_penalty == 1.5
    result = runner.evaluate(model, processor, items, benchmark="toyworld", batch_size=2, max_new_tokens=8,
                             progress=False, decoding=decoding)
    single = []
    for item in items:
        inputs = runner.encode(processor, item, runner.media_lib.load(item.media))
        tokens = generate(model, inputs, 8, eos_token_id=list(decoding.eos_token_ids), repetition_penalty=1.5)[0]
        single.append(processor.tokenizer.decode([t for t in tokens if t not in decoding.eos_token_ids],
                                                 skip_special_tokens=True))
    assert [r["raw_output"] for r in result.predictions] == single != plain
    assert result.summary["decoding"]["repetition_penalty"] == 1.5
    assert decoding_for(model_dir, 7, "greedy").eos_token_ids == (7,)
    (tmp_path / "generation_config.json").write_text('{"eos_token_id": [], "repetition_penalty": 1.05}')
    with pytest.raises(ValueError, match="eos_token_id"):
        decoding_for(tmp_path, 7)


def test_limit_takes_the_first_items_in_file_order(model, processor, data):
    items, _ = benchmarks.read_benchmark("toyworld", data["toyworld"])
    result = runner.evaluate(model, processor, items, benchmark="toyworld", batch_size=2,
                             max_new_tokens=NEW_TOKENS, limit=3, progress=False)
    assert [r["id"] for r in result.predictions] == [i.id for i in items[:3]]
    assert result.summary["num_items"] == 3


def test_runner_pairs_outputs_with_their_items(model, processor, data, monkeypatch):
    """Generation replaced by an oracle that reads each prompt back: every answer must land on its
    own item although the runner visits items grouped by media, so everything scores 1."""
    items, _ = benchmarks.read_benchmark("toyworld", data["toyworld"])
    answer_of = {i.prompt: i.ground_truth for i in items}

    def oracle(model, processor, encoded, batch_size, max_new_tokens, **decoding):
        texts = [processor.tokenizer.decode(e["input_ids"][0]) for e in encoded]
        return [next(a for p, a in answer_of.items() if p in t) for t in texts]  # bare: no thinking

    monkeypatch.setattr(runner, "greedy_texts", oracle)
    result = runner.evaluate(model, processor, items, benchmark="toyworld", batch_size=3, progress=False)
    assert [r["score"] for r in result.predictions] == [1.0] * len(items)
    assert result.summary["scores"]["overall"] == 1.0


def _item(qid, question_type, truth, group="", think=False):
    return Item(id=qid, question_type=question_type, prompt="", media=Media("images", ("x.png",)),
                ground_truth=truth, think=think, group=group)


def test_scoring_against_hand_computed_values():
    items = [
        _item("a", "object_counting", "4"),
        _item("b", "object_counting", "10"),
        _item("c", "object_rel_distance", "B"),
        _item("d", "object_rel_direction_easy", "A"),
        _item("e", "object_rel_direction_hard", "C"),
        _item("f", "room_size_estimation", "20"),
        _item("g", "route_planning", "D"),
    ]
    outputs = {"a": "<think>I count.</think><answer>4</answer>", "b": "There are 6.8 of them, or 9.",
               "c": "B. table", "d": "b", "e": "Answer: C", "f": "no idea"}  # "g" never answered
    rows = scoring.predictions(items, outputs)
    assert [r["id"] for r in rows] == list("abcdef")
    # eval_spld, default mode: no tag extraction; "b" is no letter token; "Answer:" removed
    assert [r["parsed_answer"] for r in rows] == [4.0, 6.8, "B", "b", "C", None]
    # b: |6.8 - 10| / 10 = 0.32 passes the tolerances 0.50, 0.45, 0.40, 0.35 -> MRA 0.4
    assert [r["score"] for r in rows] == [1.0, 0.4, 1.0, 0.0, 1.0, 0.0]
    summary = scoring.summarize("vsi", rows)
    assert summary["object_counting"] == pytest.approx(0.7)
    assert summary["object_rel_direction"] == pytest.approx(0.5)  # mean of easy 0 and hard 1
    assert summary["overall"] == pytest.approx((0.7 + 1.0 + 0.5 + 0.0) / 4)
    assert summary["NQ"] == pytest.approx((0.7 + 0.0) / 2) and summary["MCQ"] == pytest.approx((1.0 + 0.5) / 2)
    assert summary["NQ_items"] == pytest.approx(1.4 / 3) and summary["MCQ_items"] == pytest.approx(2 / 3)
    # eval_spld itself, medium missing: the direction task is 0 and "hard" stays a task of its own
    assert summary["overall_as_reference"] == pytest.approx((0.7 + 1.0 + 0.0 + 1.0 + 0.0) / 5)
    table = scoring.markdown(scoring.summary_json("vsi", "m", rows))
    assert "| m | 35.0 / 75.0 / 55.0 |" in table and "| object_counting | NQ | 2 | 70.0 |" in table
    official = scoring.predictions(items, outputs, protocol="official")
    assert [r["score"] for r in official] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]  # float("<think>I"), "There", ...


def test_cvbench_scoring_against_hand_computed_values():
    items = [_item("0", "Count", "(A)", "ADE20K"), _item("1", "Relation", "(B)", "ADE20K"),
             _item("2", "Relation", "(C)", "COCO", think=True), _item("3", "Depth", "(A)", "Omni3D"),
             _item("4", "Distance", "(B)", "Omni3D")]
    outputs = {"0": "(A)", "1": "A", "2": "<answer>C</answer>", "3": "(B) table", "4": "(B) table"}
    rows = scoring.predictions(items, outputs, benchmark="cvbench")
    assert [r["score"] for r in rows] == [1.0, 0.0, 1.0, 0.0, 1.0]
    summary = scoring.summarize("cvbench", rows)
    assert summary["2D"] == pytest.approx(0.75) and summary["3D"] == pytest.approx(0.5)
    assert summary["avg"] == pytest.approx(0.625)
    assert "| m | 75.0 | 50.0 | 62.5 |" in scoring.markdown(scoring.summary_json("cvbench", "m", rows))



def test_sharded_over_the_mesh_equals_one_device(model, model_dir, data, tmp_path):
    """`eval --mesh 2,2,2` on 8 CPU devices (parameters over fsdp and tensor as the table says,
    each batch of 4 prompts over data x fsdp) writes what one device writes."""
    from ladder_jax.cli import main

    assert main(["eval", "--model", str(model_dir), "--benchmark", "vsi", "--data", str(data["vsi"]),
                 "--out", str(tmp_path / "sharded"), "--mesh", "2,2,2", "--batch-size", "4", "--max-new-tokens", "3",
                 "--num-frames", "4", "--min-pixels", "784", "--max-pixels", "3136"]) == 0
    one = runner_result(model, model_dir, "vsi", data["vsi"], tmp_path / "one", batch_size=4, max_new_tokens=3,
                        num_frames=4)
    assert len(model.mesh.devices.flat) == 1
    assert_same_result(tmp_path / "sharded", one)
    assert len(set(raw_outputs(one))) > 1  # the answers differ, so rows were not mixed up unnoticed
