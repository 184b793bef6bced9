import numpy as np
import pytest

from handx.errors import HandxInputError
from handx.motion import (Provenance, Sequence, Window, apply_flips, canonical_flips, centre_on_right_wrist,
                          iter_windows, resample, validate_clip, window_starts)


def _clip(t=60, seed=0):
    return np.random.default_rng(seed).normal(size=(t, 2, 21, 3)).astype(np.float32)


def test_validate_accepts_a_clip_and_returns_float32():
    out = validate_clip(_clip().astype(np.float64))
    assert out.dtype == np.float32 and out.shape == (60, 2, 21, 3)


@pytest.mark.parametrize("shape", [(60, 21, 3), (60, 2, 20, 3), (60, 2, 21, 2), (60, 1, 21, 3)])
def test_validate_rejects_wrong_shapes(shape):
    with pytest.raises(HandxInputError, match="shape") as info:
        validate_clip(np.zeros(shape, np.float32), path="f.npz", item="key '3'")
    assert "f.npz" in str(info.value) and "key '3'" in str(info.value)


def test_validate_rejects_nan_frames_naming_the_frame():
    x = _clip()
    x[17, 1, 4, 2] = np.nan
    with pytest.raises(HandxInputError, match="frame 17"):
        validate_clip(x, path="a.npz")


def test_validate_rejects_missing_hand_and_wrong_dtype_and_frames():
    x = _clip()
    x[:, 0] = 0
    with pytest.raises(HandxInputError, match="left hand is missing"):
        validate_clip(x)
    with pytest.raises(HandxInputError, match="floating"):
        validate_clip(np.ones((60, 2, 21, 3), np.int32))
    with pytest.raises(HandxInputError, match="expected 60 frames"):
        validate_clip(_clip(59), frames=60)


def test_resample_linear_motion_is_exact():
    # A joint moving at constant velocity sampled irregularly must resample exactly onto the 30 fps grid.
    t = np.cumsum(np.random.default_rng(1).uniform(0.005, 0.02, size=200))
    velocity = np.array([0.1, -0.2, 0.3])
    joints = (t[:, None, None, None] * velocity).repeat(2, 1).repeat(21, 2)  # (N, 2, 21, 3)
    present = np.ones((200, 2), bool)
    out, pres = resample(joints, present, t, fps=30)
    grid = t[0] + np.arange(len(out)) / 30
    assert grid[-1] <= t[-1] + 1e-9 and grid[-1] + 1 / 30 > t[-1]
    np.testing.assert_allclose(out[:, 1, 5], grid[:, None] * velocity, atol=1e-6)
    assert pres.all()


def test_resample_marks_frames_next_to_a_missing_hand():
    t = np.arange(10) / 60.0
    joints = np.ones((10, 2, 21, 3))
    present = np.ones((10, 2), bool)
    present[4, 0] = False
    out, pres = resample(joints, present, t, fps=30)
    # Output frame k is at sample 2k; samples 3-5 bracket the gap, so frame 2 (sample 4) loses the left hand.
    assert not pres[2, 0] and pres[2, 1] and np.isnan(out[2, 0]).all()
    assert pres[[0, 1, 3, 4], 0].all()


def test_resample_rejects_unordered_timestamps():
    with pytest.raises(ValueError, match="increasing"):
        resample(np.zeros((3, 2, 21, 3)), np.ones((3, 2), bool), np.array([0.0, 0.2, 0.1]))


def test_canonical_flips_fix_a_rotated_recording():
    x = _clip()
    x[:, 0, :, 0] -= 5.0  # left hand on -x
    x[:, :, 4, 1] = x[:, :, 0, 1] + 1.0  # middle mcp ahead of the wrist (+y)
    assert canonical_flips(x) == (False, False, False)
    rotated = apply_flips(x, (True, True, False))  # 180 degrees about z
    flips = canonical_flips(rotated)
    assert flips == (True, True, False)
    np.testing.assert_allclose(apply_flips(rotated, flips), x)


def test_windows_centre_the_right_wrist_and_report_missing_hands():
    joints = _clip(200)
    present = np.ones((200, 2), bool)
    present[130, 1] = False
    seq = Sequence(joints, present, Provenance("d", "s", "CC0"))
    assert list(window_starts(200, 60, 30)) == [0, 30, 60, 90, 120]
    out = list(iter_windows(seq, 60, 30))
    windows = [w for w in out if isinstance(w, Window)]
    skipped = [w for w in out if not isinstance(w, Window)]
    assert [w.start for w in windows] == [0, 30, 60]
    assert [s[0] for s in skipped] == [90, 120] and "right hand missing" in skipped[0][1]
    for w in windows:
        np.testing.assert_allclose(w.motion[0, 1, 0], 0, atol=1e-6)
        np.testing.assert_allclose(w.motion, centre_on_right_wrist(joints[w.start:w.end]))
        # Centring is a translation: differences between joints are unchanged.
        np.testing.assert_allclose(w.motion[:, :, 3] - w.motion[:, :, 7],
                                   joints[w.start:w.end, :, 3] - joints[w.start:w.end, :, 7], atol=1e-5)


def test_smooth_time_agrees_with_scipy_and_keeps_constant_and_linear_motion():
    from scipy.ndimage import gaussian_filter1d

    from handx.motion import smooth_time

    rng = np.random.default_rng(0)
    clips = rng.normal(size=(3, 60, 2, 21, 3))
    for sigma in (0.7, 1.5, 2.0):
        want = gaussian_filter1d(clips, sigma, axis=1, mode="nearest", truncate=4.0)
        np.testing.assert_allclose(smooth_time(clips, sigma), want, atol=1e-12)
    constant = np.broadcast_to(rng.normal(size=(1, 1, 2, 21, 3)), (1, 60, 2, 21, 3))
    np.testing.assert_allclose(smooth_time(constant, 1.5), constant, atol=1e-12)
    line = np.linspace(0, 1, 60)[None, :, None, None, None] * np.ones((1, 60, 2, 21, 3))
    np.testing.assert_allclose(smooth_time(line, 1.5)[:, 8:-8], line[:, 8:-8], atol=1e-12)  # away from the edges
    np.testing.assert_array_equal(smooth_time(clips, 0), clips)
    with pytest.raises(ValueError, match="sigma"):
        smooth_time(clips, -1)


def test_one_triplet_type_orders_its_texts_as_the_branches():
    from handx.motion import BRANCHES, Texts, Triplet

    triplet = Triplet("left text", "right text", "relation text")
    assert tuple(triplet) == ("left text", "right text", "relation text")
    assert list(triplet.to_json()) == list(BRANCHES)
    assert Triplet.from_json(triplet.to_json()) == triplet
    texts = Texts(("a0", "a1"), ("b0", "b1"), ("c0", "c1"))
    assert texts.triplet(1) == Triplet("a1", "b1", "c1")
    assert Texts.from_json(texts.to_json()) == texts
    assert list(texts.to_json()) == list(BRANCHES)
