"""The ray caster against analytic geometry: z-depth of known planes and solids, and every
object pixel lifted back to 3-D lying on that object's surface (signed distances written here)."""

import dataclasses

import numpy as np
import pytest

from ladder_jax.data.toyworld import cameras
from ladder_jax.data.toyworld.catalogue import BOX, CYLINDER, SPHERE
from ladder_jax.data.toyworld.render import render
from ladder_jax.data.toyworld.scene import Obj, Scene, sample_scene

ROOM = np.array([6.0, 4.0, 2.8])
GREY = np.full((6, 3), 180.0, np.float32)


def _scene(*objects):
    return Scene(size=ROOM, objects=tuple(objects), surface_colours=GREY)


def _obj(obj_id, shape, centre, dims, yaw=0.0):
    return Obj(obj_id, f"thing{obj_id}", shape, np.array(centre, float), np.array(dims, float), yaw, (200, 30, 30))


def _lift(frame):
    size = frame.depth.shape[0]
    v, u = np.mgrid[0:size, 0:size]
    pix = np.stack([u, v, np.ones_like(u)], -1).astype(float)
    cam = (pix @ np.linalg.inv(frame.intrinsics).T) * frame.depth[..., None]
    return cam @ frame.camera_to_world[:3, :3].T + frame.camera_to_world[:3, 3]


def _sdf(obj, p):
    """Signed distance of points p (N, 3) to the object, from first principles."""
    q = p - obj.centre
    if obj.shape == SPHERE:
        return np.linalg.norm(q, axis=1) - obj.dims[0] / 2
    if obj.shape == BOX:
        c, s = np.cos(obj.yaw), np.sin(obj.yaw)
        q = np.stack([c * q[:, 0] + s * q[:, 1], -s * q[:, 0] + c * q[:, 1], q[:, 2]], 1)
        e = np.abs(q) - obj.dims / 2
    else:
        e = np.stack([np.hypot(q[:, 0], q[:, 1]) - obj.dims[0] / 2, np.abs(q[:, 2]) - obj.dims[2] / 2], 1)
    return np.linalg.norm(np.maximum(e, 0), axis=1) + np.minimum(e.max(1), 0)


def test_fronto_parallel_wall_has_constant_z_depth():
    # Looking straight at the wall x = 6 from x = 4.5: every wall pixel is 1.5 m deep along the
    # optical axis, although the ray lengths grow towards the image corners.
    eye = np.array([4.5, 2.0, 1.4])
    frame = render(_scene(), cameras.intrinsics(64, 60), cameras.look_at(eye, eye + [1, 0, 0]), 64)
    points = _lift(frame)
    on_wall = np.isclose(points[..., 0], 6.0, atol=1e-5)
    assert on_wall.all()
    np.testing.assert_allclose(frame.depth, 1.5, rtol=1e-6)
    assert (frame.instances == 0).all()


def test_floor_pixel_depth_matches_analytic_value():
    eye, target = np.array([0.5, 0.5, 1.6]), np.array([3.0, 2.0, 0.0])
    size, intr = 65, cameras.intrinsics(65, 70)
    frame = render(_scene(), intr, cameras.look_at(eye, target), size)
    # The central pixel (32, 32) looks exactly at the target on the floor.
    assert frame.depth[32, 32] == pytest.approx(np.linalg.norm(target - eye), rel=1e-6)


@pytest.mark.parametrize(
    "shape,dims,expected",
    [(SPHERE, [0.6, 0.6, 0.6], 3.0 - 0.3), (CYLINDER, [0.5, 0.5, 1.0], 3.0 - 0.25), (BOX, [0.8, 0.4, 1.0], 3.0 - 0.4)],
)
def test_depth_on_optical_axis_of_each_solid(shape, dims, expected):
    centre = np.array([4.0, 2.0, dims[2] / 2])
    eye = np.array([1.0, 2.0, centre[2]])
    frame = render(_scene(_obj(1, shape, centre, dims)), cameras.intrinsics(65, 60), cameras.look_at(eye, centre), 65)
    assert frame.instances[32, 32] == 1
    assert frame.depth[32, 32] == pytest.approx(expected, rel=1e-6)


def test_lifted_pixels_lie_on_their_objects_and_room_pixels_on_the_room():
    rng = np.random.default_rng(3)
    scene = sample_scene(rng)
    for pose in cameras.ring_views(scene.size, 3, rng):
        frame = render(scene, cameras.intrinsics(96, 65), pose, 96)
        points = _lift(frame)
        assert (frame.depth > 0).all()
        for obj in scene.objects:
            mask = frame.instances == obj.id
            np.testing.assert_allclose(_sdf(obj, points[mask]), 0.0, atol=1e-6)
        room = points[frame.instances == 0]
        to_plane = np.minimum(np.abs(room), np.abs(room - scene.size)).min(1)
        np.testing.assert_allclose(to_plane, 0.0, atol=1e-6)


def test_nearest_surface_wins_occlusion():
    near = _obj(1, BOX, [3.0, 2.0, 0.5], [0.4, 0.4, 1.0])
    far = _obj(2, SPHERE, [5.0, 2.0, 0.5], [1.0, 1.0, 1.0])
    eye = np.array([1.0, 2.0, 0.5])
    frame = render(_scene(far, near), cameras.intrinsics(65, 60), cameras.look_at(eye, far.centre), 65)
    assert frame.instances[32, 32] == 1 and frame.depth[32, 32] == pytest.approx(1.8)
    assert (frame.instances == 2).any()  # the sphere shows around the smaller box


def test_placed_objects_do_not_intersect_and_keep_off_the_walls():
    for seed in range(5):
        scene = sample_scene(np.random.default_rng(seed))
        points = np.random.default_rng(100 + seed).uniform(0, 1, (20000, 3)) * scene.size
        inside = np.stack([_sdf(o, points) < 0 for o in scene.objects])
        assert inside.sum(0).max() <= 1
        for obj in scene.objects:
            assert obj.centre[2] == pytest.approx(obj.dims[2] / 2)  # resting on the floor
            half = obj.extent[:2] / 2
            assert np.all(obj.centre[:2] - half >= 0.4) and np.all(obj.centre[:2] + half <= scene.size[:2] - 0.4)


def test_cameras_are_orthonormal_opencv_poses_inside_the_room():
    rng = np.random.default_rng(0)
    room = np.array([5.0, 3.5, 2.7])
    poses = [cameras.single_view(room, rng), *cameras.ring_views(room, 8, rng), *cameras.video_path(room, 16, rng)]
    for pose in poses:
        rot = pose[:3, :3]
        np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
        assert np.linalg.det(rot) == pytest.approx(1.0)
        assert rot[2, 0] == pytest.approx(0.0, abs=1e-12)  # image x axis stays horizontal (no roll)
        assert rot[2, 1] < 0  # image y (down) points down in the world
        assert np.all(pose[:3, 3] > 0) and np.all(pose[:3, 3] < room)
    eyes = np.array([p[:3, 3] for p in poses[9:]])
    steps = np.linalg.norm(np.diff(eyes, axis=0), axis=1)
    assert steps.max() < 2 * np.median(steps)  # a smooth walk, no jumps
