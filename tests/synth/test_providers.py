"""Perception providers: ground truth from a scene folder, and the metric-depth adapter on a tiny
random-weight Depth Anything saved to a local folder (nothing downloaded)."""

import numpy as np
import pytest

from tests.synth.analytic import camera, random_room, render
from ladder_jax.data.scene_folder import load_scene, write_scene
from ladder_jax.synth.analyze import analyze_scene
from ladder_jax.synth.providers import GroundTruth, OwlDetector, SamSegmenter, TransformersDepth, perceive


def test_ground_truth_providers_rebuild_the_scene(tmp_path):
    boxes = random_room(np.random.default_rng(5), 6)
    k, c2w = camera(1.6, 30, 160, 120)
    depth, ids, rgb = render(boxes, k, c2w, 160, 120, wall_y=6.5)
    folder = write_scene(tmp_path / "s", rgb, depth, ids, {i + 1: b.label for i, b in enumerate(boxes)}, k)
    gt = GroundTruth(folder)
    scene = perceive("s", rgb, gt, gt, gt, k)
    original = load_scene(folder)
    relabel = {new: original.labels[old] for new, old in zip(sorted(scene.labels), gt.ids)}
    assert scene.labels == relabel and np.array_equal(scene.depth, original.depth)
    assert np.array_equal(scene.instances > 0, original.instances > 0)
    assert sorted(f.predicate for f in analyze_scene(scene).facts) == sorted(f.predicate for f in analyze_scene(original).facts)


def tiny_depth_anything(folder, kind):
    torch = pytest.importorskip("torch")
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessorPil

    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=14,
                            image_size=56, out_features=["stage1", "stage2"], out_indices=[1, 2], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[16, 32], reassemble_factors=[2, 1],
                                 reassemble_hidden_size=32, fusion_hidden_size=16, head_hidden_size=8,
                                 depth_estimation_type=kind, max_depth=20)
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessorPil(size={"height": 56, "width": 56}, keep_aspect_ratio=False, ensure_multiple_of=14).save_pretrained(folder)
    return folder


def test_metric_depth_adapter_loads_a_local_folder(tmp_path):
    provider = TransformersDepth(tiny_depth_anything(tmp_path / "metric", "metric"))
    rgb = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    depth = provider.depth(rgb)
    assert depth.shape == (40, 60) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and (depth > 0).all() and depth.max() <= 20  # metric head: sigmoid · max_depth


def test_relative_depth_models_are_refused(tmp_path):
    with pytest.raises(ValueError, match="metric model is required"):
        TransformersDepth(tiny_depth_anything(tmp_path / "relative", "relative"))


def tiny_owlv2(folder):
    """A random OWLv2 with a hand-made CLIP BPE tokenizer (characters only, no merges).

    The special tokens get the last ids on purpose: OWLv2 treats a query whose first token id is 0
    as padding and masks it, as CLIP's real vocabulary (start token 49406) never triggers.
    """
    pytest.importorskip("torch")
    import json

    import torch
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessorPil, Owlv2Processor

    folder.mkdir(parents=True)
    chars = sorted(set("chairtablelamp"))
    vocab = {t: i for i, t in enumerate([*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    n = len(vocab)
    text = dict(vocab_size=n, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                max_position_embeddings=16, bos_token_id=n - 2, eos_token_id=n - 1, pad_token_id=n - 1)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8)
    torch.manual_seed(0)
    Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(folder)
    Owlv2Processor(image_processor=Owlv2ImageProcessorPil(size={"height": 32, "width": 32}), tokenizer=tokenizer).save_pretrained(folder)
    return folder


def tiny_sam(folder):
    torch = pytest.importorskip("torch")
    from transformers import SamConfig, SamImageProcessorPil, SamModel, SamProcessor

    vision = dict(hidden_size=16, output_channels=8, num_hidden_layers=1, num_attention_heads=2, image_size=64, patch_size=16,
                  mlp_dim=32, global_attn_indexes=[0], window_size=0, num_pos_feats=4)
    prompt = dict(hidden_size=8, image_size=64, patch_size=16, mask_input_channels=4)
    decoder = dict(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, mlp_dim=16, iou_head_hidden_dim=8)
    torch.manual_seed(0)
    SamModel(SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)).save_pretrained(folder)
    SamProcessor(image_processor=SamImageProcessorPil(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})).save_pretrained(folder)
    return folder


def test_owlv2_and_sam_adapters_load_local_folders(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    detections = OwlDetector(tiny_owlv2(tmp_path / "owl"), ["chair", "table"], threshold=0.0).detect(rgb)
    assert len(detections) == 16  # a 32-px image in 8-px patches: 16 boxes, each kept for its best query
    for d in detections:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 <= x2 <= 59 and 0 <= y1 <= y2 <= 39 and d.label in ("chair", "table") and 0 <= d.score <= 1
    masks = SamSegmenter(tiny_sam(tmp_path / "sam")).masks(rgb, detections[:3])
    assert masks.shape == (3, 40, 60) and masks.dtype == bool


def test_images_end_to_end_through_the_cli(tmp_path):
    import argparse
    import json

    from PIL import Image

    from ladder_jax.data.spld import read_release
    from ladder_jax.synth import cli

    config = {"depth": {"path": str(tiny_depth_anything(tmp_path / "depth", "metric"))},
              "detector": {"path": str(tiny_owlv2(tmp_path / "owl")), "labels": ["chair", "table"], "threshold": 0.0},
              "segmenter": {"path": str(tiny_sam(tmp_path / "sam"))}, "fov_deg": 60}
    (tmp_path / "providers.json").write_text(json.dumps(config))
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, size in enumerate([(64, 48), (50, 50)]):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    parser = argparse.ArgumentParser()
    cli.configure("synth", parser)
    out = tmp_path / "out"
    assert cli.main("synth", parser.parse_args(["--images", str(photos), "--providers", str(tmp_path / "providers.json"),
                                                "--out", str(out)])) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["scenes_done"] == 2 and report["skipped_scenes"] == {}
    assert all("60° horizontal field of view" in a[0] for a in report["assumptions"].values())
    for name in ("p0", "p1"):
        assert (out / "scenes" / name / "depth.npy").is_file() and (out / "images" / f"{name}.png").is_file()
    _, release = read_release(out)
    assert release.rejections == []


@pytest.mark.parametrize("missing", ["depth", "segmenter"])
@pytest.mark.parametrize("path", ["no-such-org/no-such-model", "/no/such/folder", "providers.json"])
def test_a_model_path_not_on_disk_is_an_error_and_the_hub_is_never_asked(tmp_path, monkeypatch, capsys, missing, path):
    """Issue 16, item 10: a hub name in a providers config would have been downloaded silently."""
    import argparse
    import json

    from ladder_jax.synth import cli, providers

    def never(*args, **kwargs):
        raise AssertionError("a model was loaded")

    for adapter in ("TransformersDepth", "OwlDetector", "SamSegmenter"):
        monkeypatch.setattr(providers, adapter, never)
    monkeypatch.chdir(tmp_path)  # "providers.json" names a file here, not a folder
    (tmp_path / "models").mkdir()
    config = {role: {"path": str(tmp_path / "models")} for role in ("depth", "detector", "segmenter")}
    config["detector"]["labels"] = ["chair"]
    config[missing]["path"] = path
    (tmp_path / "providers.json").write_text(json.dumps(config))
    (tmp_path / "photos").mkdir()
    parser = argparse.ArgumentParser()
    cli.configure("synth", parser)
    args = parser.parse_args(["--images", "photos", "--providers", "providers.json", "--out", "out"])
    assert cli.main("synth", args) == 2
    err = capsys.readouterr().err
    assert err == (f"ladder-jax synth: providers config providers.json: {missing} path {path} is not a folder on disk; "
                   f"give a local model folder (nothing is downloaded)\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("adapter, classes", [
    (lambda: TransformersDepth("org/depth"), ["AutoImageProcessor", "AutoModelForDepthEstimation"]),
    (lambda: OwlDetector("org/owl", ["chair"]), ["Owlv2Processor", "Owlv2ForObjectDetection"]),
    (lambda: SamSegmenter("org/sam"), ["SamProcessor", "SamModel"]),
])
def test_the_adapters_load_with_local_files_only(monkeypatch, adapter, classes):
    transformers = pytest.importorskip("transformers")
    asked = []

    class Asked(Exception):
        pass

    def from_pretrained(path, **kwargs):
        asked.append(kwargs.get("local_files_only"))
        raise Asked

    for name in classes:
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained", from_pretrained)
    with pytest.raises(Asked):
        adapter()
    assert asked == [True]
