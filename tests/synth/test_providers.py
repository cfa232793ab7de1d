"""Perception providers: ground truth from a scene folder, and the metric-depth adapter on a tiny
random-weight Depth Anything saved to a local folder (nothing downloaded)."""

import numpy as np
import pytest

from tests.synth.analytic import camera, random_room, render
from ladder_jax.synth.analyze import analyze_scene
from ladder_jax.synth.providers import GroundTruth, TransformersDepth, perceive
from ladder_jax.synth.scene import load_scene, write_scene


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
