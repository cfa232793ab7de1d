"""Stage 0 of the toy ladder (demo/vision_pretrain.py): the cell truth read from an instance map, scene
folders read with the bad ones counted, and a short pretraining that changes the tower and nothing
else, lowers its loss, is written once and reused."""

import json

import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from ladder_jax.demo import vision_pretrain
from ladder_jax.demo.run import Phases, demo_config, prepare_world
from ladder_jax.models.qwen25_vl.checkpoint import load_params
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train import stage_inputs, stages

BG = vision_pretrain.BACKGROUND


def test_cell_truth_takes_the_label_covering_a_quarter_of_the_cell():
    m = np.zeros((8, 8), np.int32)
    m[:4, :4] = 1                      # top left: all sofa
    m[0:2, 4:6] = 2                    # top right: lamp on exactly a quarter
    m[4:8, 0:4] = 3                    # bottom left: an id without a label
    m[4:6, 4:5], m[4, 5] = 1, 1        # bottom right: sofa on 3 of 16 pixels
    labels = {1: "sofa", 2: "lamp"}
    assert vision_pretrain.cell_truth(m, labels, 2, 2) == ["sofa", "lamp", BG, BG]
    # cells of unequal size when the grid does not divide the map: every pixel in exactly one cell
    odd = np.arange(9 * 7).reshape(9, 7) % 3
    assert len(vision_pretrain.cell_truth(odd, {1: "a"}, 4, 3)) == 12
    assert vision_pretrain.cell_truth(np.ones((7, 5), np.int32), {1: "a"}, 3, 2) == ["a"] * 6


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("stage0")
    cfg = demo_config(out, True, ["--config.demo.scenes=8", "--config.demo.eval_fraction=0.25",
                                  "--config.demo.vision_pretrain.steps=40", "--config.demo.vision_pretrain.batch_size=4"])
    prepare_world(cfg, Phases(out / "timings.json"))
    records, _, _ = stage_inputs.read_records(cfg)
    return out, cfg, stage_inputs.stage_processor(cfg, records, "stage1")


def test_read_rooms_counts_the_scene_folders_it_cannot_use(world, tmp_path):
    out, cfg, processor = world
    scenes = tmp_path / "scenes"
    source = sorted((out / "toyworld" / "scenes").iterdir())[:3]
    for folder in source:
        (scenes / folder.name).mkdir(parents=True)
        for f in folder.iterdir():
            (scenes / folder.name / f.name).write_bytes(f.read_bytes())
    (scenes / source[0].name / "rgb.png").write_bytes(b"not a png")  # corrupt
    Image.new("RGB", (224, 224)).save(scenes / source[1].name / "rgb.png")  # another size: refused by load_scene
    rooms = vision_pretrain.read_rooms(scenes, processor.vision)
    assert rooms.skipped == {"unreadable scene folder": 2} and rooms.pixels.shape == (1, 64, 1176)
    assert rooms.cells == (4, 4) and rooms.objects.shape == (1, 16) and rooms.classes[0] == BG
    meta = json.loads((scenes / source[2].name / "meta.json").read_text())
    want = vision_pretrain.cell_truth(np.asarray(Image.open(scenes / source[2].name / "instances.png")).astype(np.int32),
                                      {o["id"]: o["label"] for o in meta["objects"]}, 4, 4)
    assert [rooms.classes[i] for i in rooms.objects[0]] == want
    # held-out rooms read with the training classes: a label the training rooms lack is background
    narrow = vision_pretrain.read_rooms(scenes, processor.vision, classes=(BG,))
    assert (narrow.objects == 0).all()
    with pytest.raises(ValueError, match="no readable scene folder"):
        vision_pretrain.read_rooms(tmp_path / "nothing", processor.vision)


def test_prepared_trains_the_tower_alone_once(world, caplog):
    out, cfg, processor = world
    mesh = make_mesh(*stages.check_devices(cfg, jax.device_count(), jax.process_count()))
    with jax.log_compiles(), caplog.at_level("WARNING"):
        started = vision_pretrain.prepared(cfg, out / "vision_pretrain", processor, mesh)
    # one training step program for all 40 steps (the 8-device mesh's shardings once made it two)
    assert sum(r.getMessage().startswith("Compiling jit(step)") for r in caplog.records) == 1
    final = out / "vision_pretrain" / "final"
    assert (started.model.init, started.model.path) == ("params", str(final)) and cfg.model.init == "preset"
    report = vision_pretrain.report_of(started)
    assert report["rooms"] == 6 and report["held_out_rooms"] == 2 and report["steps"] == 40
    assert report["loss"][-1][1] < report["loss"][0][1] - 1.0, report["loss"]
    assert set(report["held_out_after"]) == {"cells", "object_cells", "row", "col"}

    _, _, random = stage_inputs.load_model_source(cfg, processor, mesh)
    _, _, trained = load_params(final, mesh)
    flat_random, flat_trained = (dict(jax.tree_util.tree_leaves_with_path(nnx.to_pure_dict(s))) for s in (random, trained))
    changed = {jax.tree_util.keystr(k) for k in flat_random if not np.array_equal(flat_random[k], flat_trained[k])}
    assert changed and all(k.startswith("['visual']") for k in changed)
    assert any("merger" in k for k in changed) and any("blocks" in k for k in changed)

    mtime = (final / "params").stat().st_mtime_ns
    again = vision_pretrain.prepared(cfg, out / "vision_pretrain", processor, mesh)
    assert again.model.path == str(final) and (final / "params").stat().st_mtime_ns == mtime
    off = demo_config(out, True, ["--config.demo.vision_pretrain.steps=0"])
    assert vision_pretrain.prepared(off, out / "unused", processor, mesh) is off and not (out / "unused").exists()


def test_label_vectors_are_the_unit_mean_of_the_labels_word_embeddings(world):
    _, _, processor = world
    tok = processor.tokenizer
    table = np.random.default_rng(0).normal(size=(len(tok), 16)).astype(np.float32)
    got = vision_pretrain.label_vectors(table, tok, ["sofa", "tv stand"])
    for label, v in zip(["sofa", "tv stand"], got):
        ids = tok.encode(" " + label, add_special_tokens=False) + tok.encode(label, add_special_tokens=False)
        want = table[ids].mean(0)
        np.testing.assert_allclose(v, want / np.linalg.norm(want), rtol=1e-6)
    assert not np.allclose(got[0], got[1])


def test_the_heads_start_strongly_typed_so_the_step_compiles_once():
    # A weak-typed leaf comes back from the first Adam update strongly typed: the step would retrace.
    heads = vision_pretrain._heads(8, 3, 2, 2, seed=0)
    assert all(x.dtype == np.float32 and not x.weak_type for x in jax.tree.leaves(heads))
