"""Shared fixtures: the real capture in ../shared/data and small synthetic inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from handx.io.handx_npz import MANO_KEYS

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HANDX_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module of tiny networks: they gain nothing from threads, and on a busy
    machine spinning threads make them many times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data`` (or ``$HANDX_SHARED_DATA``); skips when absent, fails when
    ``HANDX_REQUIRE_SHARED_DATA=1``."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    message = f"real capture data not found at {SHARED_DATA}"
    if os.environ.get("HANDX_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(message + " (HANDX_REQUIRE_SHARED_DATA=1)")
    pytest.skip(message)


def assert_plausible_anatomy(joints, present, *, bone_tolerance: float = 0.05,
                             hand_length_range=(0.15, 0.22), tip_range=(0.015, 0.035),
                             left_of_right_fraction: float = 0.5, fingers_forward: bool = True,
                             label: str = "") -> None:
    """Assert the anatomical plausibility checks every importer must pass on real capture.

    ``joints`` is ``(T, 2, 21, 3)`` in the canonical frame, ``present`` is ``(T, 2)``. Only frames with both hands
    are checked. Bone lengths must stay within ``bone_tolerance`` of their median, the hand length (wrist →
    middle tip) within ``hand_length_range`` metres, tip segments within ``tip_range`` metres, the left wrist on
    −x of the right wrist in more than ``left_of_right_fraction`` of frames, and (``fingers_forward``) the fingers
    pointing roughly +y, which holds for tabletop capture but not for signing, where fingers point up.
    """
    import numpy as np

    from handx import skeleton

    both = present.all(axis=1)
    assert both.any(), f"{label}: no frame has both hands"
    x = joints[both]  # (F, 2, 21, 3)
    assert np.isfinite(x).all(), f"{label}: non-finite joints in frames with both hands"
    bones = skeleton.bone_lengths(x)  # (F, 2, 20)
    median = np.median(bones, axis=0)  # (2, 20)
    drift = np.abs(bones / median - 1.0).max(axis=0)
    assert drift.max() <= bone_tolerance, (
        f"{label}: bone length drifts {drift.max():.3f} > {bone_tolerance} "
        f"(bone {skeleton.BONE_NAMES[int(drift.max(axis=0).argmax())]})"
    )
    lengths = skeleton.hand_length(x)  # (F, 2)
    lo, hi = hand_length_range
    assert lo <= lengths.min() and lengths.max() <= hi, f"{label}: hand length {lengths.min():.3f}-{lengths.max():.3f} m"
    tips = np.linalg.norm(x[..., skeleton.TIP_BONES[:, 1], :] - x[..., skeleton.TIP_BONES[:, 0], :], axis=-1)
    assert tip_range[0] <= tips.min() and tips.max() <= tip_range[1], (
        f"{label}: tip segments {tips.min() * 1000:.1f}-{tips.max() * 1000:.1f} mm"
    )
    left_of = (x[:, 0, 0, 0] < x[:, 1, 0, 0]).mean()
    assert left_of > left_of_right_fraction, f"{label}: left wrist on -x of right wrist in only {left_of:.0%} of frames"
    pointing = x[..., skeleton.JOINT_INDEX["middle_mcp"], 1] - x[..., skeleton.WRIST, 1]  # (F, 2)
    assert not fingers_forward or (pointing > 0).mean() > 0.5, f"{label}: fingers point +y in only {(pointing > 0).mean():.0%} of frame-hands"


def release_entry(rng, n_texts=5):
    return {
        "motion": rng.normal(scale=0.1, size=(60, 2, 21, 3)),  # float64, as the release stores it
        "left_annotation": [f"left text {k}" for k in range(n_texts)],
        "right_annotation": [f"right text {k}" for k in range(n_texts)],
        "interaction_annotation": [f"relation {k}" for k in range(n_texts)],
    }


def write_release(path, entries):
    """Write a file the way the HandX release does: one 0-d object array per key (numpy's own pickling)."""
    np.savez(path, **{str(i): np.array(e, dtype=object) for i, e in enumerate(entries)})


def write_mano(path, n, rng):
    np.savez(path, **{str(i): np.array({k: rng.normal(size=s) for k, s in MANO_KEYS.items()}, dtype=object)
                      for i in range(n)})
