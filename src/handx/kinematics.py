"""Hand kinematics on joint positions: the local hand frame and per-joint bend angles.

The local frame follows reference §2.1: origin at the wrist, x̂ towards the middle MCP, ẑ the palm normal
(x̂ × index direction), ŷ = ẑ × x̂. Bend angles are the unsigned angles between consecutive bones of a finger
chain, used by the intensity filter (reference §2.6).
"""

from __future__ import annotations

import numpy as np

from handx.skeleton import CHAIN_ARRAY, JOINT_INDEX, WRIST

_EPS = 1e-8


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
    z = _normalize(np.cross(x, y0))
    y = _normalize(np.cross(z, x))
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
