"""Quality filter: hand-computed intensity, drift, anatomy, jitter and missing data cases."""

import numpy as np
import pytest

from handx import skeleton
from handx.features.quality import QualityConfig, intensity, quality_stats
from handx.kinematics import chain_bend_angles

SEGMENTS = {"thumb": (0.045, 0.035, 0.03, 0.025), "index": (0.09, 0.045, 0.025, 0.02),
            "middle": (0.09, 0.05, 0.03, 0.022), "ring": (0.085, 0.045, 0.028, 0.021),
            "pinky": (0.08, 0.035, 0.02, 0.019)}
SPREAD_DEG = {"thumb": 40.0, "index": 10.0, "middle": 0.0, "ring": -10.0, "pinky": -20.0}


def planar_hand(theta):
    """A hand whose fingers each lie in a vertical plane through the wrist and flex within it.

    ``theta``: ``(T, 3)`` radians at the three middle joints of every finger. The first bone of each finger is
    horizontal, so the bend angle at middle joint k is exactly ``|theta[:, k]|``.
    """
    t = theta.shape[0]
    hand = np.zeros((t, 21, 3))
    up = np.array([0.0, 0.0, 1.0])
    for finger, chain in skeleton.CHAINS.items():
        phi = np.radians(SPREAD_DEG[finger])
        forward = np.array([np.sin(phi), np.cos(phi), 0.0])
        point, heading = np.zeros((t, 3)), np.zeros(t)
        for k, (joint, length) in enumerate(zip(chain[1:], SEGMENTS[finger])):
            if k > 0:
                heading = heading + theta[:, k - 1]
            point = point + length * (np.cos(heading)[:, None] * forward + np.sin(heading)[:, None] * up)
            hand[:, joint] = point
    return hand


def two_hands(theta_left, theta_right):
    left, right = planar_hand(theta_left), planar_hand(theta_right)
    left[..., 0] = -left[..., 0] - 0.2  # mirrored, on -x
    return np.stack([left, right], axis=1)  # (T, 2, 21, 3)


def ramp(deg_per_s, t=60, fps=30, start=10.0):
    return np.radians(np.repeat((start + deg_per_s * np.arange(t) / fps)[:, None], 3, axis=1))


def test_bend_angles_of_the_planar_hand_are_the_programmed_angles():
    theta = np.radians(np.array([[10.0, 20.0, 35.0], [0.0, 45.0, 80.0]]))
    bends = chain_bend_angles(planar_hand(theta))  # (T, 5, 3)
    np.testing.assert_allclose(bends, np.repeat(theta[:, None, :], 5, axis=1), atol=1e-6)


def test_intensity_equals_the_programmed_angular_speed():
    # Every joint of every finger flexes at 40 deg/s on the left and 20 deg/s on the right: the weighted mean
    # of equal speeds is that speed.
    motion = two_hands(ramp(40.0), ramp(20.0))
    np.testing.assert_allclose(intensity(motion), [40.0, 20.0], rtol=1e-6)
    # Weights 9/3/1: only the distal joint moving at 65 deg/s gives 65 / 13 = 5 deg/s.
    theta = np.radians(np.stack([np.full(60, 10.0), np.full(60, 10.0), 10.0 + 65.0 * np.arange(60) / 30], 1))
    np.testing.assert_allclose(intensity(planar_hand(theta)[:, None])[..., 0], 5.0, rtol=1e-6)


@pytest.mark.parametrize("left,right,keep", [(40, 40, True), (40, 24, False), (27, 27, False), (50, 26, True)])
def test_intensity_filter_thresholds(left, right, keep):
    stats, reasons = quality_stats(two_hands(ramp(left), ramp(right))[None])
    assert (reasons[0] == []) == keep, reasons
    if not keep:
        assert "low intensity" in reasons[0][0]


def test_drift_anatomy_jitter_and_missing_hands_are_reported():
    base = two_hands(ramp(40.0), ramp(40.0))
    stretched, slight = base.copy(), base.copy()
    tip = skeleton.TIPS["index"]
    direction = base[:, 1, tip] - base[:, 1, skeleton.PARENTS[tip]]
    stretched[20:30, 1, tip] += 0.08 * direction[20:30]  # tip bone 8 % longer for 10 frames
    slight[20:30, 1, tip] += 0.03 * direction[20:30]
    giant = base * 3.0
    jitter = base.copy()
    jitter[31, 0, 5] += 0.2
    missing = base.copy()
    missing[:, 0] = 0.0
    nan = base.copy()
    nan[4, 1, 2, 0] = np.nan
    batch = np.stack([base, stretched, slight, giant, jitter, missing, nan])
    stats, reasons = quality_stats(batch)
    assert reasons[0] == [] and reasons[2] == []
    assert reasons[1] == ["right bone length drifts 8.0% (> 5%)"]
    assert stats["bone_drift"][1, 1] == pytest.approx(0.08, rel=1e-3)
    assert any("anatomically impossible" in r for r in reasons[3])
    assert any(r.startswith("jitter") for r in reasons[4])
    assert "left hand missing" in reasons[5]
    assert "non-finite values" in reasons[6]


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="max_bone_drift"):
        QualityConfig(max_bone_drift=2.0)
    with pytest.raises(ValueError, match="tau_hand"):
        QualityConfig(tau_hand=-1)
