"""Hand-made two-hand poses and real capture windows shared by the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handx import skeleton


def open_hand() -> np.ndarray:
    """A flat hand in the z = 0 plane, fingers towards +y, thumb out to +x: ``(21, 3)``."""
    hand = np.zeros((21, 3))
    spread = {"thumb": 50.0, "index": 10.0, "middle": 0.0, "ring": -10.0, "pinky": -20.0}
    for finger, chain in skeleton.CHAINS.items():
        phi = np.radians(spread[finger])
        direction = np.array([np.sin(phi), np.cos(phi), 0.0])
        lengths = [skeleton.NOMINAL_BONE_LENGTH_BY_CHILD[skeleton.JOINT_NAMES[j]] for j in chain[1:]]
        hand[list(chain[1:])] = np.cumsum(lengths)[:, None] * direction
    return hand


def apart(frames: int) -> np.ndarray:
    """Two open hands 40 cm apart, no contact: ``(T, 2, 21, 3)``."""
    left = open_hand() * [-1.0, 1.0, 1.0] + [-0.2, 0.0, 0.0]  # the mirror image of the right hand, on −x
    right = open_hand() + [0.2, 0.0, 0.0]
    return np.tile(np.stack([left, right])[None], (frames, 1, 1, 1))


def manipnet_windows(shared_data: Path, name: str) -> np.ndarray:
    """60-frame windows of the real ManipNet pair ``name``: ``(N, 60, 2, 21, 3)``."""
    from handx.io.bvh import read_bvh_pair
    from handx.motion import Window, iter_windows

    folder = shared_data / "manipnet" / name
    seq = read_bvh_pair(folder / "leftHand.bvh", folder / "rightHand.bvh")
    return np.stack([w.motion for w in iter_windows(seq) if isinstance(w, Window)])
