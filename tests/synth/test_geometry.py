"""Scene folders, lifting, the canonical frame and cleaning against the analytic scene's exact geometry."""

import numpy as np
import pytest

from tests.synth.analytic import WorldBox, camera, render
from ladder_jax.data.scene_folder import SceneError, load_scene, write_scene
from ladder_jax.synth.canonical import canonical_frame
from ladder_jax.synth.cleaning import CleaningConfig, clean_points, largest_cluster, min_area_rectangle
from ladder_jax.synth.lifting import assumed_intrinsics, backproject, object_points

BOXES = [WorldBox("table", (-0.8, 3.0, 0.4), (1.0, 0.6, 0.8), 0.3), WorldBox("bin", (0.9, 2.6, 0.2), (0.3, 0.3, 0.4))]


@pytest.fixture(scope="module")
def view():
    k, c2w = camera(1.5, 25, 160, 120)
    depth, ids, rgb = render(BOXES, k, c2w, 160, 120, wall_y=6.0)
    return k, c2w, depth, ids, rgb


def to_world(points, c2w):
    return points @ c2w[:3, :3].T + c2w[:3, 3]


def test_scene_round_trip_keeps_16_bit_ids(tmp_path, view):
    k, c2w, depth, ids, rgb = view
    ids = np.where(ids == 2, 40000, ids)
    write_scene(tmp_path / "s", rgb, depth, ids, {1: "table", 40000: "bin"}, k, c2w)
    scene = load_scene(tmp_path / "s")
    assert scene.instances.max() == 40000 and np.array_equal(scene.instances, ids)
    assert np.array_equal(scene.depth, depth) and np.allclose(scene.intrinsics, k)
    assert scene.labels == {1: "table", 40000: "bin"} and np.allclose(scene.world_up, [0, 0, 1])


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "depth.npy").unlink(), "missing depth.npy"),
    (lambda f: (f / "meta.json").write_text('{"objects": [{"id": 1}]}'), "objects[0]"),
    (lambda f: (f / "meta.json").write_text('{"objects": [], "intrinsics": [[1, 0], [0, 1]]}'), "'intrinsics'"),
    (lambda f: np.save(f / "depth.npy", np.ones((5, 5), np.float32)), "rgb.png is 160x120 but depth.npy is 5x5"),
])
def test_bad_scene_errors_name_folder_and_field(tmp_path, view, damage, message):
    k, c2w, depth, ids, rgb = view
    folder = write_scene(tmp_path / "bad", rgb, depth, ids, {1: "table", 2: "bin"}, k)
    damage(folder)
    with pytest.raises(SceneError, match=str(folder)) as e:
        load_scene(folder)
    assert message in str(e.value)


def test_lifting_is_exact_z_depth(view):
    k, c2w, depth, ids, _ = view
    world = to_world(backproject(depth, k), c2w)
    floor = (ids == 0) & (depth > 0) & (world[..., 1] < 5.9)
    assert np.abs(world[floor][:, 2]).max() < 1e-6  # floor pixels land on z = 0 (float32 depth)
    pts = object_points(backproject(depth, k), depth, ids, [2])[2]
    local = to_world(pts, c2w) - np.array(BOXES[1].center)
    half = np.array(BOXES[1].size) / 2
    assert np.all(np.abs(local) <= half + 1e-6)
    assert np.isclose(np.abs(local / half).max(axis=1), 1, atol=1e-5).all()  # every point on the box surface


def test_assumed_intrinsics_are_stated():
    k, text = assumed_intrinsics(200, 100)
    assert k[0, 0] == k[1, 1] == 300 and "1.5·W" in text
    k, text = assumed_intrinsics(200, 100, fov_deg=90)
    assert np.isclose(k[0, 0], 100) and "90° horizontal" in text


def test_ransac_finds_the_floor_not_the_wall(view):
    k, c2w, depth, ids, _ = view
    pts = backproject(depth, k)[(ids == 0) & (depth > 0)]
    frame = canonical_frame(pts)
    up_true = c2w[:3, :3].T @ [0, 0, 1]
    assert frame.has_up and frame.source == "floor plane (RANSAC)"
    assert np.degrees(np.arccos(frame.rotation[1] @ up_true)) < 0.5
    assert abs(frame.camera_height - 1.5) < 0.01 and frame.floor_fraction > 0.3
    assert np.allclose(canonical_frame(pts, c2w).rotation[1], up_true)


def test_no_floor_falls_back_to_camera_axes():
    k, c2w = camera(1.5, 0, 160, 120)
    depth, ids, _ = render(BOXES, k, c2w, 160, 120, wall_y=4.0, floor=False)
    frame = canonical_frame(backproject(depth, k)[(ids == 0) & (depth > 0)])
    assert not frame.has_up and "no floor" in frame.source


def test_cleaning_removes_injected_outliers(view):
    k, c2w, depth, ids, _ = view
    pts = object_points(backproject(depth, k), depth, ids, [1])[1]
    rng = np.random.default_rng(0)
    outliers = pts[rng.choice(len(pts), len(pts) // 20)] + rng.normal(0, 0.4, (len(pts) // 20, 3))
    kept, why = clean_points(np.concatenate([pts, outliers]), 3.0 / k[0, 0], CleaningConfig())
    assert why == ""
    kept_rows = {tuple(r) for r in kept}
    gap = np.linalg.norm(outliers[:, None] - pts[None], axis=2).min(axis=1)
    survived = np.array([tuple(o) in kept_rows for o in outliers])
    voxel = 1.5 * 3.0 / k[0, 0]
    assert not survived[gap > CleaningConfig().eps_voxels * voxel].any()  # beyond the DBSCAN radius: all gone
    assert survived.mean() < 0.3 and len(kept) >= 0.95 * len(pts)


def test_dbscan_keeps_the_largest_cluster():
    rng = np.random.default_rng(1)
    big, small = rng.normal(0, 0.05, (300, 3)), rng.normal(2, 0.05, (100, 3))
    keep = largest_cluster(np.concatenate([big, small]), 0.05, 4)
    assert keep[:300].mean() > 0.95 and not keep[300:].any()


def test_min_area_rectangle_on_a_rotated_square():
    g = np.stack(np.meshgrid(np.linspace(-0.25, 0.25, 30), np.linspace(-0.25, 0.25, 30)), -1).reshape(-1, 2)
    c, s = np.cos(0.7), np.sin(0.7)
    yaw, long, short, centre = min_area_rectangle(g @ np.array([[c, s], [-s, c]]) + [1, 2])
    assert np.allclose([long, short], 0.5, atol=1e-6) and np.allclose(centre, [1, 2])
