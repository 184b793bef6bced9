"""The diffusion features (reference §1.5): round trips, centring, the scalar bend and normalisation stats."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from handx.features.signals import FLEXION_KEYS, flexion, local_coordinates
from handx.representations.joints168 import (
    NUM_FEATURES,
    clip_centre,
    decode,
    encode,
    scalar_bend,
    wrap_angle,
)
from handx.representations.stats import FeatureStats
from handx.skeleton import CHAIN_ARRAY, CHAINS, JOINT_INDEX, LEFT, RIGHT, TIP_INDICES, WRIST, mirror
from handx.synth import generate_clip

BEND_JOINTS = np.sort(CHAIN_ARRAY[:, 1:4].reshape(-1))  # the 15 joints that carry a bend


@pytest.fixture(scope="module")
def synth_clips() -> np.ndarray:
    return np.stack([generate_clip(0, i).motion for i in range(4)])  # (4, 60, 2, 21, 3) float32


def random_clips(seed: int, n: int = 3, frames: int = 60, dtype=np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clips = rng.normal(scale=0.1, size=(n, frames, 2, 21, 3)) + rng.normal(scale=1.0, size=(n, 1, 1, 1, 3))
    return clips.astype(dtype)


def rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_random(dtype):
    clips = random_clips(1, dtype=dtype)
    features, centre = encode(clips)
    assert features.shape == (3, 60, NUM_FEATURES) and centre.shape == (3, 3)
    assert features.dtype == dtype and centre.dtype == dtype
    np.testing.assert_allclose(decode(features, centre), clips, rtol=0, atol=1e-5)


def test_round_trip_synth(synth_clips):
    features, centre = encode(synth_clips)
    np.testing.assert_allclose(decode(features, centre), synth_clips, rtol=0, atol=1e-5)
    one_features, one_centre = encode(synth_clips[0])  # a single clip (T, 2, 21, 3)
    assert one_features.shape == (60, NUM_FEATURES) and one_centre.shape == (3,)
    np.testing.assert_array_equal(one_features, features[0])


def test_feature_layout(synth_clips):
    features, centre = encode(synth_clips)
    per_joint = features.reshape(4, 60, 42, 4)
    np.testing.assert_allclose(per_joint[..., 21 + 5, :3], synth_clips[:, :, RIGHT, 5] - centre[:, None], atol=1e-6)
    np.testing.assert_allclose(per_joint[..., 3, :3], synth_clips[:, :, LEFT, 3] - centre[:, None], atol=1e-6)
    np.testing.assert_allclose(per_joint[..., 3], scalar_bend(synth_clips).reshape(4, 60, 42), atol=1e-6)


def test_centre(synth_clips):
    clips = random_clips(2)
    features, centre = encode(clips)
    wrists = clips[:, :, :, WRIST]  # (n, T, 2, 3)
    np.testing.assert_allclose(centre, ((wrists[:, :, 0] + wrists[:, :, 1]) / 2).mean(axis=1), atol=1e-12)
    xyz = features.reshape(3, 60, 2, 21, 4)[..., :3]
    np.testing.assert_allclose(xyz[:, :, :, WRIST].mean(axis=(1, 2)), 0.0, atol=1e-12)
    shift = np.array([0.3, -1.2, 2.0])
    shifted_features, shifted_centre = encode(clips + shift)  # translation moves the centre, not the features
    np.testing.assert_allclose(shifted_centre, centre + shift, atol=1e-12)
    np.testing.assert_allclose(shifted_features, features, atol=1e-9)
    np.testing.assert_allclose(clip_centre(mirror(synth_clips)), clip_centre(synth_clips) * [-1, 1, 1], atol=1e-6)


def test_decode_without_centre_is_canonical(synth_clips):
    clips = random_clips(3)
    features, _ = encode(clips)
    out = decode(features)
    np.testing.assert_allclose(out[:, 0, RIGHT, WRIST], 0.0, atol=1e-12)
    np.testing.assert_allclose(out, clips - clips[:, :1, RIGHT:RIGHT + 1, WRIST:WRIST + 1], atol=1e-9)
    # canonical windows (right wrist at the origin at frame 0) come back unchanged
    features, _ = encode(synth_clips)
    np.testing.assert_allclose(decode(features), synth_clips, atol=1e-6)


def test_decode_torch_matches_numpy():
    clips = random_clips(4, dtype=np.float32)
    features, centre = encode(clips)
    for c in (None, centre):
        expected = decode(features, c)
        got = decode(torch.from_numpy(features), None if c is None else torch.from_numpy(c))
        assert isinstance(got, torch.Tensor)
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 2, 21, 3\)"):
        encode(np.zeros((60, 42, 3)))
    with pytest.raises(ValueError, match="168"):
        decode(np.zeros((60, 160)))
    with pytest.raises(ValueError, match="centre"):
        decode(np.zeros((2, 60, 168)), np.zeros((3,)))


# ------------------------------------------------------------------------------------------------ scalar bend


def test_bend_wrapped_and_matches_signed_planar_angle():
    clips = random_clips(5, n=4)  # random joints: bones point anywhere, so raw differences leave (−π, π]
    s = scalar_bend(clips)  # (n, T, 2, 21)
    assert s.shape == (4, 60, 2, 21)
    assert np.all(s > -math.pi) and np.all(s <= math.pi)
    others = np.setdiff1d(np.arange(21), BEND_JOINTS)
    assert set(others) == {WRIST, *TIP_INDICES.tolist()}
    assert np.all(s[..., others] == 0.0)
    # independent formula: the signed angle from v1 to v2 in the local (x, z) plane, atan2(cross, dot)
    local = local_coordinates(clips)
    raw_jumps = 0
    for chain in CHAINS.values():
        for k in range(1, 4):
            v1 = local[..., chain[k], :] - local[..., chain[k - 1], :]
            v2 = local[..., chain[k + 1], :] - local[..., chain[k], :]
            signed = np.arctan2(v1[..., 0] * v2[..., 2] - v1[..., 2] * v2[..., 0],
                                v1[..., 0] * v2[..., 0] + v1[..., 2] * v2[..., 2])  # (n, T, 2)
            expected = signed * np.array([1.0, -1.0])  # negated for the right hand
            got = s[..., chain[k]]
            close = np.isclose(got, expected, atol=1e-9) | (np.isclose(np.abs(got), math.pi, atol=1e-9)
                                                             & np.isclose(np.abs(expected), math.pi, atol=1e-9))
            assert close.all()
            raw = np.arctan2(v2[..., 2], v2[..., 0]) - np.arctan2(v1[..., 2], v1[..., 0])
            raw_jumps += int((np.abs(raw) > math.pi).sum())
    assert raw_jumps > 0  # the unwrapped reference formula would have left (−π, π] on these clips


def test_wrap_angle():
    angles = np.array([0.0, math.pi, -math.pi, 3 * math.pi, -3 * math.pi + 1e-3, 2 * math.pi, 7.0, -7.0])
    wrapped = wrap_angle(angles)
    assert np.all(wrapped > -math.pi) and np.all(wrapped <= math.pi)
    np.testing.assert_allclose(wrapped[:4], [0.0, math.pi, math.pi, math.pi], atol=1e-12)
    np.testing.assert_allclose(np.cos(wrapped), np.cos(angles), atol=1e-12)
    np.testing.assert_allclose(np.sin(wrapped), np.sin(angles), atol=1e-9)


def planar_right_hand(bends: dict[str, tuple[float, float, float]]) -> np.ndarray:
    """A right hand (palm facing −z) whose local frame is the world frame: each finger's bones lie in the x–z
    plane and turn by ``bends[finger]`` (radians, positive = towards the palm) at its three middle joints."""
    hand = np.zeros((21, 3))
    bases = {"index": (0.085, 0.02, 0.0), "middle": (0.09, 0.0, 0.0), "ring": (0.082, -0.02, 0.0),
             "pinky": (0.072, -0.04, 0.0), "thumb": (0.03, 0.035, 0.0)}
    for finger, chain in CHAINS.items():
        hand[chain[1]] = bases[finger]
        heading = 0.0  # direction of v1 at the base in the x–z plane (its y part is not seen)
        for k, length in zip(range(1, 4), (0.04, 0.025, 0.02)):
            heading -= bends[finger][k - 1]  # turning towards −z (the palm of a right hand)
            hand[chain[k + 1]] = hand[chain[k]] + length * np.array([math.cos(heading), 0.0, math.sin(heading)])
    return hand


def test_hand_computed_bend_and_sign():
    bends = {"index": (0.3, 0.5, -0.2), "middle": (0.0, 1.0, 0.4), "ring": (-0.35, 0.2, 0.6),
             "pinky": (0.9, 1.2, 0.7), "thumb": (0.1, -0.4, 0.8)}
    right = planar_right_hand(bends)
    np.testing.assert_allclose(local_coordinates(right), right, atol=1e-12)  # the world frame is the local frame
    left = right * np.array([-1.0, 1.0, 1.0])  # its mirror image is a left hand bent the same way
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(5):  # any rigid motion of either hand leaves s unchanged
        frames.append(np.stack([left @ rotation(rng).T + rng.normal(size=3),
                                right @ rotation(rng).T + rng.normal(size=3)]))
    s = scalar_bend(np.stack(frames))  # (5, 2, 21)
    for finger, chain in CHAINS.items():
        for k in range(1, 4):
            np.testing.assert_allclose(s[:, :, chain[k]], bends[finger][k - 1], atol=1e-9,
                                       err_msg=f"{finger} joint {chain[k]}")


def test_bend_past_pi_is_wrapped():
    right = planar_right_hand({f: (0.0, 0.0, 0.0) for f in CHAINS})
    pip, dip, tip = JOINT_INDEX["index_pip"], JOINT_INDEX["index_dip"], JOINT_INDEX["index_tip"]
    # v1 (pip → dip) heads 170° in the x–z plane, v2 (dip → tip) −170°: a turn of +20° (away from the palm for
    # the right hand), whose raw difference of atan2 values is −340°
    right[dip] = right[pip] + 0.025 * np.array([math.cos(math.radians(170)), 0.0, math.sin(math.radians(170))])
    right[tip] = right[dip] + 0.02 * np.array([math.cos(math.radians(-170)), 0.0, math.sin(math.radians(-170))])
    s = scalar_bend(np.stack([right * [-1.0, 1.0, 1.0], right])[None])  # (1, 2, 21)
    np.testing.assert_allclose(s[0, :, dip], math.radians(-20), atol=1e-9)


def test_bend_agrees_with_flexion(synth_clips):
    """Long-finger flexion (signals.flexion, an arccos-based implementation) is s wherever it is not zeroed."""
    s = scalar_bend(synth_clips)  # (n, T, 2, 21)
    long_rows = [i for i, key in enumerate(FLEXION_KEYS) if not key.startswith("thumb")]
    joints = [JOINT_INDEX[FLEXION_KEYS[i]] for i in long_rows]
    for hand in (LEFT, RIGHT):
        theta = flexion(synth_clips[:, :, hand].astype(np.float64), hand)[:, long_rows]  # (n, 12, T)
        got = np.moveaxis(s[:, :, hand][..., joints], -1, -2)  # (n, 12, T)
        nonzero = theta != 0
        assert nonzero.mean() > 0.2
        np.testing.assert_allclose(got[nonzero], theta[nonzero], atol=1e-5)
    assert (s[..., BEND_JOINTS] > 0.5).any()  # the synthetic hands do bend towards their palms


def test_bend_mirror(synth_clips):
    s = scalar_bend(synth_clips)
    mirrored = scalar_bend(mirror(synth_clips))
    np.testing.assert_allclose(mirrored[..., LEFT, :], s[..., RIGHT, :], atol=1e-5)
    np.testing.assert_allclose(mirrored[..., RIGHT, :], s[..., LEFT, :], atol=1e-5)


def test_bend_non_finite_gives_zero(synth_clips):
    clip = synth_clips[0].astype(np.float64).copy()
    clean = scalar_bend(clip)
    clip[3, LEFT, JOINT_INDEX["index_dip"]] = np.nan
    clip[7, RIGHT, WRIST] = np.inf
    clip[9, LEFT] = 0.0  # a degenerate hand (every joint at one point)
    with np.errstate(all="ignore"):
        s = scalar_bend(clip)
    assert np.isfinite(s).all()
    assert s[3, LEFT, JOINT_INDEX["index_pip"]] == 0 and s[3, LEFT, JOINT_INDEX["index_dip"]] == 0
    np.testing.assert_array_equal(s[3, LEFT, JOINT_INDEX["middle_pip"]], clean[3, LEFT, JOINT_INDEX["middle_pip"]])
    assert np.all(s[7, RIGHT] == 0) and np.all(s[9, LEFT] == 0)


# ------------------------------------------------------------------------------------------------ statistics


def test_stats_fit_matches_numpy():
    rng = np.random.default_rng(7)
    scales = rng.uniform(0.01, 2.0, size=NUM_FEATURES)
    batches = [1e3 + rng.normal(size=shape) * scales for shape in [(5, 60, 168), (3, 60, 168), (1, 168), (0, 168)]]
    batches[0][..., 10] = 0.25  # constant features get std 1
    for b in batches[1:]:
        b[..., 10] = 0.25
    stats = FeatureStats.fit(iter(batches))  # any iterable, consumed once
    rows = np.concatenate([b.reshape(-1, NUM_FEATURES) for b in batches])
    expected_std = rows.std(axis=0)
    expected_std[10] = 1.0
    assert stats.mean.dtype == np.float32 and stats.mean.shape == (NUM_FEATURES,)
    np.testing.assert_allclose(stats.mean, rows.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats.std, expected_std, rtol=1e-5)


def test_stats_normalize_round_trip_numpy_and_torch():
    clips = random_clips(8, n=4)
    features, _ = encode(clips)
    stats = FeatureStats.fit([features[:2], features[2:]])
    z = stats.normalize(features)
    np.testing.assert_allclose(z.reshape(-1, NUM_FEATURES).mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(stats.denormalize(z), features, atol=1e-6)
    x = torch.randn(2, 60, NUM_FEATURES, dtype=torch.float64)
    round_trip = stats.normalize(stats.denormalize(x))
    assert isinstance(round_trip, torch.Tensor) and round_trip.dtype == torch.float64
    torch.testing.assert_close(round_trip, x)
    np.testing.assert_allclose(stats.normalize(features.astype(np.float32)), z, atol=1e-4)


def test_stats_json_and_validation():
    stats = FeatureStats(np.arange(168, dtype=np.float32), np.full(168, 0.5, dtype=np.float32))
    again = FeatureStats.from_json(json.loads(json.dumps(stats.to_json())))
    np.testing.assert_array_equal(again.mean, stats.mean)
    np.testing.assert_array_equal(again.std, stats.std)
    with pytest.raises(ValueError, match="std"):
        FeatureStats(np.zeros(168), np.zeros(168))
    with pytest.raises(ValueError, match="missing"):
        FeatureStats.from_json({"mean": [0.0]})
    with pytest.raises(ValueError, match="no feature rows"):
        FeatureStats.fit([])
    with pytest.raises(ValueError, match="non-finite"):
        FeatureStats.fit([np.full((2, 168), np.nan)])
    with pytest.raises(ValueError, match="batch 1"):
        FeatureStats.fit([np.zeros((2, 168)), np.zeros((2, 167))])
    with pytest.raises(ValueError, match="168"):
        stats.normalize(np.zeros((3, 167)))
    with pytest.raises(ValueError):
        stats.mean[0] = 1.0  # read-only
