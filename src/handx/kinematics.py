"""Hand kinematics on joint positions: the local hand frame and per-joint bend angles.

Also the projection of noisy joint positions onto a skeleton with constant bone lengths, used by importers
whose source does not keep bones rigid (resampled Leap data, image-space landmarks).

The local frame follows reference §2.1: origin at the wrist, x̂ towards the middle MCP, ẑ the palm normal
(x̂ × index direction), ŷ = ẑ × x̂. Bend angles are the unsigned angles between consecutive bones of a finger
chain, used by the intensity filter (reference §2.6).
"""

from __future__ import annotations

import numpy as np

from handx.skeleton import CHAIN_ARRAY, JOINT_INDEX, WRIST, bone_lengths

_EPS = 1e-8


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (numpy's ``cross`` is slow on many short vectors)."""
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                     a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def _normalize(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, _EPS)


def local_frame(hand: np.ndarray) -> np.ndarray:
    """Rotation of the local hand frame (reference §2.1) for joints ``(..., 21, 3)``.

    Returns ``(..., 3, 3)`` whose rows are x̂, ŷ, ẑ in world coordinates, so ``R @ (p - wrist)`` gives local
    coordinates.
    """
    wrist = hand[..., WRIST, :]
    x = _normalize(hand[..., JOINT_INDEX["middle_mcp"], :] - wrist)
    y0 = _normalize(hand[..., JOINT_INDEX["index_mcp"], :] - wrist)
    z = _normalize(cross(x, y0))
    y = _normalize(cross(z, x))
    return np.stack([x, y, z], axis=-2)  # (..., 3, 3)


def chain_bend_angles(hand: np.ndarray) -> np.ndarray:
    """Unsigned bend angle (radians) at the three middle joints of each finger chain.

    ``(..., 21, 3)`` → ``(..., 5, 3)``: fingers in :data:`handx.skeleton.FINGERS` order, joints proximal →
    distal (thumb: cmc, mcp, ip; others: mcp, pip, dip). 0 means the two bones are aligned.
    """
    chain = hand[..., CHAIN_ARRAY, :]  # (..., 5, 5, 3)
    bones = chain[..., 1:, :] - chain[..., :-1, :]  # (..., 5, 4, 3)
    incoming, outgoing = _normalize(bones[..., :-1, :]), _normalize(bones[..., 1:, :])  # (..., 5, 3, 3)
    cos = np.clip((incoming * outgoing).sum(-1), -1.0, 1.0)
    return np.arccos(cos)  # (..., 5, 3)


def restore_bone_lengths(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Re-chain each hand from its wrist so every bone keeps its direction and gets the given length.

    Args:
        joints: ``(T, 2, 21, 3)``; NaN hands stay NaN.
        lengths: ``(2, 20)`` bone lengths per hand in :data:`handx.skeleton.BONES` order (child-index order).

    Returns:
        ``(T, 2, 21, 3)`` float64.
    """
    joints = np.asarray(joints, dtype=np.float64)
    out = joints.copy()
    chains = CHAIN_ARRAY  # (5, 5): wrist then four joints per finger
    for k in range(1, chains.shape[1]):  # walk the five fingers outwards together
        parent, child = chains[:, k - 1], chains[:, k]  # (5,), (5,)
        bone = joints[..., child, :] - joints[..., parent, :]  # (T, 2, 5, 3)
        norm = np.linalg.norm(bone, axis=-1, keepdims=True)  # (T, 2, 5, 1)
        unit = np.divide(bone, norm, out=np.zeros_like(bone), where=norm > 0)
        out[..., child, :] = out[..., parent, :] + unit * lengths[None, :, child - 1, None]
    return out


def median_bone_lengths(joints: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Median length of each bone per hand over the frames where the hand is present: ``(2, 20)``."""
    return median_over_present(bone_lengths(joints), present)


def median_over_present(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``(N, 2, ...)`` per-frame values → ``(2, ...)`` medians over each hand's present frames (NaN if never)."""
    return np.stack([np.median(values[present[:, h], h], axis=0) if present[:, h].any()
                     else np.full(values.shape[2:], np.nan) for h in range(present.shape[1])])
