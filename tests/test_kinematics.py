"""Tests for handx.kinematics: the projection onto a fixed skeleton (bone lengths, wrists, bone directions, hard
constraints, batches, NaN hands), the skeleton records of runs, and the IK/FK primitives against hand-computed
cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from handx import skeleton
from handx.kinematics import (
    NOMINAL_HAND_LENGTH_M,
    hand_lengths_for_size,
    kabsch,
    median_bone_lengths,
    project_to_skeleton,
    restore_bone_lengths,
    skeleton_from_clips,
    skeleton_lengths,
    swing,
    world_transforms,
)
from handx.synth.hand import POSE_DIM, clip_to_limits, forward_kinematics_pair

BONES = skeleton.BONES
CHILD_IS_WRIST_BONE = BONES[:, 0] == skeleton.WRIST  # (20,) the five palm bones


def valid_clip(seed: int, frames: int = 30, scale: float = 1.0) -> np.ndarray:
    """A float64 clip with exactly constant bones: the synthetic hand at random poses, ``(T, 2, 21, 3)``."""
    from handx.synth.hand import HandGeometry

    rng = np.random.default_rng(seed)
    poses = clip_to_limits(rng.uniform(-1, 1, (frames, 2, POSE_DIM)) * 0.6)  # (T, 2, 26)
    poses[..., 23:] = rng.normal(0, 0.2, (frames, 2, 3))  # wrist positions
    return forward_kinematics_pair(poses, HandGeometry().scaled(scale))  # (T, 2, 21, 3) float64


def noisy_clip(seed: int, frames: int = 30, noise: float = 0.004) -> np.ndarray:
    clip = valid_clip(seed, frames)
    return clip + np.random.default_rng(seed + 100).normal(0, noise, clip.shape)


def bone_vectors(joints: np.ndarray) -> np.ndarray:
    return joints[..., BONES[:, 1], :] - joints[..., BONES[:, 0], :]  # (..., 20, 3)


# ----------------------------------------------------------------------------------------------------------------
# Projection


def test_projected_clip_has_the_given_bone_lengths_in_every_frame():
    lengths = hand_lengths_for_size(1.1)
    lengths[0] *= 0.97  # a different left hand
    out = project_to_skeleton(noisy_clip(0), lengths)
    assert out.dtype == np.float64
    np.testing.assert_allclose(skeleton.bone_lengths(out), np.broadcast_to(lengths, (30, 2, 20)), rtol=0, atol=1e-9)


def test_projection_keeps_wrists_and_bone_directions():
    joints = noisy_clip(1)
    out = project_to_skeleton(joints, hand_lengths_for_size(0.9))
    np.testing.assert_array_equal(out[:, :, skeleton.WRIST], joints[:, :, skeleton.WRIST])
    a, b = bone_vectors(out), bone_vectors(joints)
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)  # (T, 2, 20)
    assert cos.min() > 1 - 1e-12


def test_a_zero_bone_puts_its_child_on_its_parent():
    joints = valid_clip(8, frames=3)
    dip, tip = skeleton.JOINT_INDEX["index_dip"], skeleton.JOINT_INDEX["index_tip"]
    joints[1, 0, tip] = joints[1, 0, dip]
    out = project_to_skeleton(joints, median_bone_lengths(joints))
    np.testing.assert_array_equal(out[1, 0, tip], out[1, 0, dip])
    assert np.isfinite(out).all()


def test_projecting_a_valid_clip_is_the_identity():
    clip = valid_clip(2, scale=0.8)
    np.testing.assert_allclose(project_to_skeleton(clip, median_bone_lengths(clip)), clip, rtol=0, atol=1e-9)
    lengths = hand_lengths_for_size(1.2)
    once = project_to_skeleton(noisy_clip(3), lengths)
    np.testing.assert_allclose(project_to_skeleton(once, lengths), once, rtol=0, atol=1e-9)


def test_fixed_joints_stay_exactly_and_free_bones_get_their_length():
    joints = noisy_clip(4)
    lengths = hand_lengths_for_size(1.0)
    fixed = np.random.default_rng(0).random(joints.shape[:-1]) < 0.3  # (T, 2, 21), joints inside chains too
    fixed[5] = True  # a keyframe
    fixed[:, 0] = True  # a given left hand
    out = project_to_skeleton(joints, lengths, fixed=fixed)
    np.testing.assert_array_equal(out[fixed], joints[fixed])
    np.testing.assert_array_equal(out[:, 0], joints[:, 0])  # a fully fixed hand is unchanged
    np.testing.assert_array_equal(out[5], joints[5])
    free_child = ~fixed[..., BONES[:, 1]]  # (T, 2, 20): bones placed by the projection
    got = skeleton.bone_lengths(out)
    np.testing.assert_allclose(got[free_child], np.broadcast_to(lengths, got.shape)[free_child], atol=1e-9)
    both = fixed[..., BONES[:, 1]] & fixed[..., BONES[:, 0]]  # bones between two fixed joints keep theirs
    np.testing.assert_array_equal(got[both], skeleton.bone_lengths(joints)[both])
    a, b = bone_vectors(out), bone_vectors(joints)  # every bone with a free child points as in the input
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    assert cos[free_child].min() > 1 - 1e-12


def test_fixed_wrists_chain_the_fingers_from_the_given_wrist():
    joints = noisy_clip(5)
    fixed = np.zeros(joints.shape[:-1], dtype=bool)
    fixed[..., skeleton.WRIST] = True
    lengths = hand_lengths_for_size(1.0)
    np.testing.assert_array_equal(project_to_skeleton(joints, lengths, fixed=fixed),
                                  project_to_skeleton(joints, lengths))


def test_batches_broadcast_lengths_per_clip():
    clips = np.stack([noisy_clip(s, frames=12) for s in range(6)]).reshape(2, 3, 12, 2, 21, 3)
    per_clip = np.stack([hand_lengths_for_size(s) for s in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3)]).reshape(2, 3, 2, 20)
    out = project_to_skeleton(clips, per_clip)
    assert out.shape == clips.shape
    for i in range(2):
        for j in range(3):
            np.testing.assert_array_equal(out[i, j], project_to_skeleton(clips[i, j], per_clip[i, j]))
    shared = project_to_skeleton(clips, per_clip[0, 0])  # (2, 20) for every clip
    np.testing.assert_array_equal(shared[1, 2], project_to_skeleton(clips[1, 2], per_clip[0, 0]))
    fixed = np.zeros((12, 2, 21), dtype=bool)  # one mask for every clip
    fixed[0] = True
    np.testing.assert_array_equal(project_to_skeleton(clips, per_clip, fixed=fixed)[:, :, 0], clips[:, :, 0])


@pytest.mark.parametrize("joints_shape,lengths_shape", [((12, 2, 21, 3), (20,)), ((12, 2, 20, 3), (2, 20)),
                                                        ((2, 12, 2, 21, 3), (3, 2, 20)),
                                                        ((12, 2, 21, 3), (4, 2, 20))])
def test_projection_rejects_bad_shapes(joints_shape, lengths_shape):
    with pytest.raises(ValueError, match="project_to_skeleton"):
        project_to_skeleton(np.zeros(joints_shape), np.ones(lengths_shape))


def test_nan_hands_stay_nan():
    joints = noisy_clip(6, frames=10)
    joints[3:6, 1] = np.nan  # the right hand lost for three frames
    out = project_to_skeleton(joints, median_bone_lengths(joints))
    assert np.isnan(out[3:6, 1]).all()
    assert np.isfinite(out[:3]).all() and np.isfinite(out[6:]).all() and np.isfinite(out[:, 0]).all()
    lengths = median_bone_lengths(joints)
    assert np.isfinite(lengths).all()
    np.testing.assert_allclose(skeleton.bone_lengths(out[3:6, 0]), np.broadcast_to(lengths[0], (3, 20)), atol=1e-9)


def test_old_name_is_the_same_function():
    assert restore_bone_lengths is project_to_skeleton


# ----------------------------------------------------------------------------------------------------------------
# Skeletons: hand sizes and the training set's median hand


def test_hand_size_scales_the_nominal_hand():
    np.testing.assert_array_equal(hand_lengths_for_size(1.0), np.stack([skeleton.NOMINAL_BONE_LENGTHS] * 2))
    middle = np.asarray(skeleton.CHAINS["middle"][1:]) - 1
    assert hand_lengths_for_size(1.1)[1, middle].sum() == pytest.approx(1.1 * 0.183, abs=5e-4)
    assert NOMINAL_HAND_LENGTH_M == pytest.approx(0.183, abs=5e-4)
    for bad in (0.3, 2.5, 18.3):
        with pytest.raises(ValueError, match="hand size"):
            hand_lengths_for_size(bad)


def test_skeleton_record_is_the_median_hand_and_reads_back():
    scales = [0.8, 0.9, 1.0, 1.1, 1.3]
    clips = np.stack([valid_clip(s, frames=8, scale=scale) for s, scale in enumerate(scales)])  # (5, 8, 2, 21, 3)
    record = skeleton_from_clips([clips[:2], clips[2:]])
    assert set(record) == {"lengths"} and np.asarray(record["lengths"]).shape == (2, 20)
    np.testing.assert_allclose(skeleton_lengths(record), skeleton.bone_lengths(clips[2, 0]), atol=1e-12)  # scale 1
    np.testing.assert_array_equal(skeleton_lengths(None), hand_lengths_for_size(1.0))
    for bad in ({"lengths": [[0.1] * 20]}, {"lengths": [[0.1] * 20, [-0.1] * 20]}, {"length": 1}, [1, 2]):
        with pytest.raises(ValueError, match="skeleton"):
            skeleton_lengths(bad)
    with pytest.raises(ValueError, match="no clips"):
        skeleton_from_clips([])


def test_median_bone_lengths_defaults_to_finite_frames():
    joints = valid_clip(7, frames=9)
    joints[0, 0] = np.nan
    np.testing.assert_allclose(median_bone_lengths(joints), skeleton.bone_lengths(joints[1]), atol=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# IK and FK primitives


def test_swing_takes_a_onto_b_by_the_smallest_rotation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 3))
    a /= np.linalg.norm(a, axis=-1, keepdims=True)
    b = rng.normal(size=(50, 3))
    b /= np.linalg.norm(b, axis=-1, keepdims=True)
    b[0] = -a[0]  # opposite vectors
    r = swing(a, b)  # (50, 3, 3)
    np.testing.assert_allclose(np.einsum("nab,nb->na", r, a), b, atol=1e-12)
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    angle = Rotation.from_matrix(r[1:]).magnitude()
    np.testing.assert_allclose(angle, np.arccos(np.clip((a[1:] * b[1:]).sum(-1), -1, 1)), atol=1e-9)


def test_kabsch_recovers_a_rotation():
    rest = np.random.default_rng(1).normal(size=(4, 6, 3))
    truth = Rotation.random(4, random_state=2).as_matrix()  # (4, 3, 3)
    np.testing.assert_allclose(kabsch(rest, np.einsum("nab,nkb->nka", truth, rest)), truth, atol=1e-12)


def test_world_transforms_of_a_hand_computed_chain():
    parents = np.array([-1, 0, 1])
    quarter = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    rotations = np.stack([quarter, quarter, np.eye(3)])[None]  # (1, 3, 3, 3)
    translations = np.array([[[1.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]]])  # (1, 3, 3)
    world_rot, world_pos = world_transforms(parents, rotations, translations)
    # root at (1, 0, 0) turned 90°; joint 1 one unit along the root's x (world +y); joint 2 two units along
    # joint 1's x, turned 180° in all (world −x).
    np.testing.assert_allclose(world_pos[0], [[1, 0, 0], [1, 1, 0], [-1, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(world_rot[0, 2], quarter @ quarter, atol=1e-12)
    with pytest.raises(ValueError, match="before its parent"):
        world_transforms(np.array([1, -1]), rotations[:, :2], translations[:, :2])
