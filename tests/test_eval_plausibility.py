"""Plausibility measures (handx.eval.plausibility): brute-force segment distances, capsules at known overlaps,
analytic trajectories, rigid-motion invariance and real capture."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from handx import skeleton
from handx.eval.plausibility import (
    BONE_RADII,
    Plausibility,
    bone_drift,
    capsule_segments,
    contact_sliding,
    interpenetration,
    jerk,
    penetration_depth,
    plausibility,
    segment_distance,
)

from hand_builders import apart, manipnet_windows, open_hand

# ----------------------------------------------------------------------------------------------------------------
# Segment distance


def sampled_distance(p0, p1, q0, q1, samples: int = 2001) -> np.ndarray:
    """Minimum over a dense grid of points on both segments: an upper bound within the grid spacing."""
    s = np.linspace(0.0, 1.0, samples)[:, None]
    best = []
    for a0, a1, b0, b1 in zip(p0, p1, q0, q1, strict=True):
        a, b = a0 + s * (a1 - a0), b0 + s * (b1 - b0)  # (S, 3)
        # nearest grid point of b for every point of a, through the exact point-segment projection on b's grid
        u = np.clip(np.round(((a - b0) @ (b1 - b0)) / max((b1 - b0) @ (b1 - b0), 1e-300) * (samples - 1)),
                    0, samples - 1).astype(int)
        near = np.linalg.norm(a - b[u], axis=1)
        for du in (-1, 1):  # the rounding can pick the wrong neighbour
            near = np.minimum(near, np.linalg.norm(a - b[np.clip(u + du, 0, samples - 1)], axis=1))
        best.append(near.min())
    return np.array(best)


def segment_cases(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Random, parallel, collinear, point-like and crossing segment pairs: four ``(K, 3)`` arrays."""
    p0, p1, q0, q1 = (rng.normal(size=(60, 3)) for _ in range(4))
    direction = rng.normal(size=(20, 3))
    start = rng.normal(size=(20, 3))
    offset = rng.normal(scale=0.3, size=(20, 3))
    along = rng.uniform(-2, 2, size=(20, 1))
    par = (start, start + direction, start + offset + along * direction, start + offset + (along + 0.5) * direction)
    col = (start, start + direction, start + along * direction, start + (along + 0.7) * direction)
    pts = (start, start, start + offset, start + offset + direction)  # first segment is a point
    both = (start, start, start + offset, start + offset)  # two points
    cross = (np.array([[-1.0, 0, 0]]), np.array([[1.0, 0, 0]]), np.array([[0, -1.0, 0.2]]), np.array([[0, 1.0, 0.2]]))
    flipped = (start + offset, start + offset + direction, start, start)  # second segment is a point
    cases = [(p0, p1, q0, q1), par, col, pts, both, cross, flipped]
    return tuple(np.concatenate([c[k] for c in cases]) for k in range(4))


def test_segment_distance_agrees_with_dense_sampling():
    p0, p1, q0, q1 = segment_cases(np.random.default_rng(0))
    exact = segment_distance(p0, p1, q0, q1)
    sampled = sampled_distance(p0, p1, q0, q1)
    assert (exact <= sampled + 1e-12).all()  # the true minimum is never above a sampled one
    step = (np.linalg.norm(p1 - p0, axis=1) + np.linalg.norm(q1 - q0, axis=1)) / 2000
    assert (sampled - exact <= step + 1e-12).all()
    assert segment_distance(*(c[140] for c in (p0, p1, q0, q1))) == pytest.approx(0.2)  # the crossing pair
    np.testing.assert_allclose(segment_distance(q0, q1, p0, p1), exact, atol=1e-12)  # symmetric


def test_segment_distance_broadcasts():
    rng = np.random.default_rng(1)
    p0, p1 = rng.normal(size=(4, 1, 3)), rng.normal(size=(4, 1, 3))
    q0, q1 = rng.normal(size=(1, 5, 3)), rng.normal(size=(1, 5, 3))
    d = segment_distance(p0, p1, q0, q1)
    assert d.shape == (4, 5)
    assert d[2, 3] == pytest.approx(segment_distance(p0[2, 0], p1[2, 0], q0[0, 3], q1[0, 3]))


# ----------------------------------------------------------------------------------------------------------------
# Interpenetration

THUMB_BASE = int(np.flatnonzero(skeleton.BONES[:, 1] == skeleton.JOINT_INDEX["thumb_cmc"])[0])  # wrist → thumb cmc


def two_bones(a0, a1, b0, b1) -> np.ndarray:
    """One frame ``(2, 21, 3)`` whose only near bones are the left and right wrist → thumb CMC, [a0, a1] and
    [b0, b1]; every other joint lies far below (left) or above (right), so all neighbouring bones leave the
    contact region."""
    frame = np.zeros((2, 21, 3))
    far = np.arange(21)[:, None] * [0.01, 0.0, 0.0]
    frame[0] = far + [-0.3, 0.0, -0.3]
    frame[1] = far + [-0.3, 0.0, 0.3]
    for hand, (start, end) in enumerate(((a0, a1), (b0, b1))):
        frame[hand, skeleton.WRIST], frame[hand, skeleton.JOINT_INDEX["thumb_cmc"]] = start, end
    return frame


@pytest.mark.parametrize("layout", ["crossing", "parallel"])
def test_penetration_of_two_capsules_at_a_known_distance(layout):
    assert BONE_RADII[THUMB_BASE] == BONE_RADII.max()  # so no neighbouring pair can overlap more
    gaps = np.linspace(0.005, 0.04, 15)  # distance d between the two axes, one per frame
    frames = []
    for d in gaps:
        if layout == "crossing":  # perpendicular, closest at both midpoints
            frames.append(two_bones([-0.05, 0, 0], [0.05, 0, 0], [0, -0.05, d], [0, 0.05, d]))
        else:  # parallel, the short right bone above the middle of the long left one
            frames.append(two_bones([-0.05, 0, 0], [0.05, 0, 0], [-0.01, 0, d], [0.01, 0, d]))
    clip = np.stack(frames)  # (T, 2, 21, 3)
    expected = np.maximum(2 * BONE_RADII[THUMB_BASE] - gaps, 0.0)  # r_a + r_b − d
    np.testing.assert_allclose(penetration_depth(clip)[0], expected, atol=1e-12)
    result = interpenetration(clip)
    assert result.mean_depth_mm == pytest.approx(1000 * expected.mean())
    assert result.max_depth_mm == pytest.approx(1000 * expected.max())
    assert result.frames == pytest.approx((expected > 0).mean())


def test_hands_far_apart_do_not_penetrate_and_rigid_motion_changes_nothing():
    assert not penetration_depth(apart(5)).any()
    # The clasp of test_penetration_...: moving the whole scene rigidly keeps every depth
    clip = np.stack([two_bones([-0.05, 0, 0], [0.05, 0, 0], [0, -0.05, d], [0, 0.05, d]) for d in (0.01, 0.02)])
    moved = clip @ Rotation.from_rotvec([0.3, -1.0, 0.5]).as_matrix().T + [0.1, 2.0, -0.4]
    np.testing.assert_allclose(penetration_depth(moved), penetration_depth(clip), atol=1e-12)


def test_tip_capsules_end_at_the_tip_vertex():
    hand = open_hand()
    start, end = capsule_segments(hand)  # (20, 3) each
    for tip in skeleton.TIPS.values():
        bone = int(np.flatnonzero(skeleton.BONES[:, 1] == tip)[0])
        # the end cap (a ball of the bone's radius around the axis end) just reaches the tip joint
        assert np.linalg.norm(hand[tip] - end[bone]) == pytest.approx(BONE_RADII[bone])
        assert np.linalg.norm(end[bone] - start[bone]) < np.linalg.norm(hand[tip] - start[bone])
    inner = ~np.isin(skeleton.BONES[:, 1], skeleton.TIP_INDICES)
    np.testing.assert_array_equal(end[inner], hand[skeleton.BONES[inner, 1]])


# ----------------------------------------------------------------------------------------------------------------
# Jerk and bone drift


def moving(path: np.ndarray) -> np.ndarray:
    """Two open hands translated together along ``path`` ``(T, 3)``: ``(T, 2, 21, 3)``."""
    return apart(len(path)) + path[:, None, None, :]


def test_jerk_of_constant_velocity_is_zero_and_of_a_cubic_is_six_times_its_coefficient():
    t = np.arange(40) / 30.0  # seconds
    assert jerk(moving(np.outer(t, [0.3, -0.2, 0.1]))) == pytest.approx(0.0, abs=1e-6)
    c = np.array([0.5, 0.0, -0.2])  # x(t) = c t³ m: third derivative 6c, which a third difference gets exactly
    assert jerk(moving(np.outer(t ** 3, c))) == pytest.approx(6 * np.linalg.norm(c), rel=1e-6)
    # at 60 fps the same trajectory, sampled twice as often, has the same jerk
    t60 = np.arange(80) / 60.0
    assert jerk(moving(np.outer(t60 ** 3, c)), fps=60) == pytest.approx(6 * np.linalg.norm(c), rel=1e-6)


def test_jerk_needs_four_frames():
    with pytest.raises(ValueError, match="4 frames"):
        jerk(apart(3))


def test_bone_drift_is_zero_for_rigid_motion():
    angles = np.linspace(0.0, 2.0, 30)
    rotations = Rotation.from_rotvec(angles[:, None] * [0.2, 0.9, -0.4]).as_matrix()  # (T, 3, 3)
    clip = np.einsum("tij,thkj->thki", rotations, apart(30)) + np.outer(angles, [0.1, 0.0, 0.3])[:, None, None]
    assert bone_drift(clip) == pytest.approx(0.0, abs=1e-9)


def test_bone_drift_of_a_sinusoidally_stretched_bone():
    # The right index tip segment stretches as L(t) = L₀(1 + a sin(2πt/10)) over whole periods: its coefficient
    # of variation is a/√2 (the sample mean of sin² over a period is 1/2); the other 39 bones stay 0.
    a, frames = 0.1, 40
    clip = apart(frames)
    dip, tip = skeleton.TIP_BONES[skeleton.FINGERS.index("index")]
    bone = clip[:, 1, tip] - clip[:, 1, dip]
    stretch = 1 + a * np.sin(2 * np.pi * np.arange(frames) / 10)
    clip[:, 1, tip] = clip[:, 1, dip] + stretch[:, None] * bone
    expected = 100 * a / np.sqrt(2) / 40
    assert bone_drift(clip) == pytest.approx(expected)
    assert bone_drift(np.stack([clip, apart(frames)])) == pytest.approx(expected / 2)  # mean over clips


# ----------------------------------------------------------------------------------------------------------------
# Contact sliding


def pointing_down_on_the_left_palm(frames: int, speed: float) -> np.ndarray:
    """The left hand flat; the right hand's fingers point down with the middle tip 1 cm above the left palm and
    the right hand sliding along +y (the left palm's length) at ``speed`` m/s: ``(T, 2, 21, 3)``."""
    left = open_hand() * [-1.0, 1.0, 1.0]  # (21, 3) flat in z = 0, fingers +y
    down = Rotation.from_rotvec([-np.pi / 2, 0.0, 0.0]).as_matrix()  # +y → −z
    right = open_hand() @ down.T  # (21, 3) fingers pointing −z
    right += [0.0, 0.035, 0.01] - right[skeleton.TIPS["middle"]]
    path = np.outer(np.arange(frames) / 30.0, [0.0, speed, 0.0])  # (T, 3)
    return np.stack([np.broadcast_to(left, (frames, 21, 3)), right + path[:, None]], axis=1)


def rigidly_moved(clip: np.ndarray) -> np.ndarray:
    """The whole clip turned and translated by a different rigid transform in every frame."""
    t = np.arange(len(clip)) / 30.0
    rotations = Rotation.from_rotvec(np.outer(t, [0.4, -1.2, 0.7])).as_matrix()  # (T, 3, 3)
    return np.einsum("tij,thkj->thki", rotations, clip) + np.outer(t, [0.2, -0.1, 0.05])[:, None, None]


def test_sliding_of_a_tip_moving_along_the_palm_is_its_speed():
    clip = pointing_down_on_the_left_palm(30, 0.03)
    assert contact_sliding(clip) == pytest.approx(30.0, rel=1e-9)  # every contact pair slides at 3 cm/s
    assert contact_sliding(rigidly_moved(clip)) == pytest.approx(30.0, rel=1e-9)  # measured in the palm's frame


def test_sliding_is_zero_for_contacts_that_move_with_the_hand():
    clip = pointing_down_on_the_left_palm(30, 0.0)
    left = clip[:, 0]
    left[:, skeleton.TIPS["thumb"]] = left[:, skeleton.TIPS["index"]] + [0.005, 0.0, 0.0]  # and a left pinch
    assert contact_sliding(clip) == pytest.approx(0.0, abs=1e-9)
    assert contact_sliding(rigidly_moved(clip)) == pytest.approx(0.0, abs=1e-9)


def test_sliding_of_a_pinch_is_the_tips_relative_speed_along_the_surface():
    clip = apart(12)
    left = clip[:, 0]
    radius, step = 0.01, 0.1  # the thumb tip circles the index tip at 1 cm, 0.1 rad per frame
    angle = step * np.arange(12)
    circle = radius * np.stack([np.cos(angle), np.sin(angle), np.zeros(12)], axis=-1)  # (T, 3)
    left[:, skeleton.TIPS["thumb"]] = left[:, skeleton.TIPS["index"]] + circle
    # per frame the chord is r(cos δ − 1) along the line between the tips (not sliding) and r sin δ across it
    expected = 1000 * radius * np.sin(step) * 30
    assert contact_sliding(clip) == pytest.approx(expected, rel=1e-9)
    assert contact_sliding(rigidly_moved(clip)) == pytest.approx(expected, rel=1e-9)


def test_pressing_into_a_surface_is_not_sliding():
    clip = apart(12)
    left = clip[:, 0]
    gap = 0.015 - 0.0005 * np.arange(12)  # the thumb tip closes in on the index tip along one line
    left[:, skeleton.TIPS["thumb"]] = left[:, skeleton.TIPS["index"]] + np.outer(gap, [0.6, 0.8, 0.0])
    assert contact_sliding(clip) == pytest.approx(0.0, abs=1e-9)


def test_sliding_without_contact_is_nan():
    assert np.isnan(contact_sliding(apart(10)))


# ----------------------------------------------------------------------------------------------------------------
# The summary and real capture


def test_plausibility_collects_the_measures():
    clip = pointing_down_on_the_left_palm(30, 0.03)
    result = plausibility(clip)
    assert isinstance(result, Plausibility)
    pen = interpenetration(clip)
    assert result.as_dict() == {
        "penetration_mm": pen.mean_depth_mm, "penetration_max_mm": pen.max_depth_mm,
        "penetration_frames": pen.frames, "jerk": jerk(clip), "bone_drift_pct": bone_drift(clip),
        "sliding_mm_s": contact_sliding(clip),
    }


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="motion"):
        plausibility(np.zeros((10, 2, 20, 3)))
    clip = apart(10)
    clip[4, 1, 3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        jerk(clip)
    with pytest.raises(ValueError, match="fps"):
        contact_sliding(apart(10), fps=0)


@pytest.fixture(scope="module")
def real_windows(shared_data) -> np.ndarray:
    """Both hands hold a cube."""
    return manipnet_windows(shared_data, "cube_med2")


def test_real_capture_is_plausible(real_windows):
    result = plausibility(real_windows)
    assert result.bone_drift_pct < 5.0  # the BVH skeleton is rigid; resampling adds little
    assert result.penetration_mm < 1.0 and result.penetration_frames < 0.05  # hands around an object, rarely touching
    assert result.penetration_max_mm < 15.0
    assert 0.0 < result.jerk < 1000.0
    assert np.isfinite(result.sliding_mm_s)  # this clip has contacts


def test_precomputed_frame_labels_give_the_same_scores(real_windows):
    from handx.eval.metrics import clip_contact_labels, frame_contact_labels

    frames = frame_contact_labels(real_windows)
    assert frames.shape == real_windows.shape[:2] + (19,) and frames.any()
    given = clip_contact_labels(real_windows, frame_labels=frames)
    computed = clip_contact_labels(real_windows)
    assert (given.all() == computed.all()).all()
    assert plausibility(real_windows, frame_labels=frames) == plausibility(real_windows)
