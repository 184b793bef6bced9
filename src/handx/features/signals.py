"""The scalar signals behind the motion codes, vectorised over clips (reference §2.1, §2.3, §2.4).

Every function takes clips ``(..., T, 2, 21, 3)`` (or one hand ``(..., T, 21, 3)``) and returns signals with
time on the last-but-one or last axis as documented. Deviations from the reference code (DESIGN.md):

- palm sample points are fixed: each palm triangle is split into 25 equal sub-triangles and their centroids
  are the samples, so codes and contact labels are deterministic;
- flexion angles keep their sign, and only angles with |θ| < 11° are zeroed, so the "hyper-extended" band
  (< −20°) can fire.
"""

from __future__ import annotations

import numpy as np

from handx.kinematics import cross as kinematics_cross
from handx.kinematics import local_frame
from handx.skeleton import CHAINS, FINGERS, JOINT_INDEX, LEFT, PALM_TRIANGLES, TIPS, WRIST

FLEXION_ZERO_BELOW = np.deg2rad(11.0)

#: Flexion keys in JSON order and the (j1, j2, j3) triple whose angle at j2 each measures.
FLEXION_KEYS: tuple[str, ...] = (
    "thumb_mcp", "thumb_ip",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
)


def _triple(key: str) -> tuple[int, int, int]:
    finger = key.split("_")[0]
    chain = CHAINS[finger]
    middle = JOINT_INDEX[key]
    k = chain.index(middle)
    return chain[k - 1], chain[k], chain[k + 1]


FLEXION_TRIPLES = np.array([_triple(k) for k in FLEXION_KEYS], dtype=np.int64)  # (14, 3)
THUMB_MCP, THUMB_IP = 0, 1  # rows of FLEXION_KEYS measured with the thumb rules

SPACING_PAIRS: tuple[tuple[str, str], ...] = (("index", "middle"), ("middle", "ring"), ("ring", "pinky"))
SPACING_KEYS = tuple(f"{a}, {b}" for a, b in SPACING_PAIRS)
INTRA_TIP_FINGERS: tuple[str, ...] = ("index", "middle", "ring", "pinky")
INTRA_TIP_KEYS = tuple(f"{f}_tip, thumb_tip" for f in INTRA_TIP_FINGERS)
TIP_ORDER = np.array([TIPS[f] for f in FINGERS])  # thumb, index, middle, ring, pinky


def palm_weights(per_triangle: int = 25) -> np.ndarray:
    """Fixed barycentric weights of the palm samples: ``(per_triangle, 3)``.

    The triangle is split into n² equal sub-triangles (n = √per_triangle) and each weight is a sub-triangle's
    centroid, so the samples cover the palm evenly and never change.
    """
    n = int(round(np.sqrt(per_triangle)))
    if n * n != per_triangle:
        raise ValueError(f"per_triangle must be a square number, got {per_triangle}")
    points = []
    for i in range(n):
        for j in range(n - i):
            points.append((i + 1 / 3, j + 1 / 3))  # upward sub-triangle centroid (lattice units)
            if j < n - i - 1:
                points.append((i + 2 / 3, j + 2 / 3))  # downward sub-triangle centroid
    uv = np.array(points) / n  # (n², 2)
    return np.column_stack([1.0 - uv.sum(1), uv[:, 0], uv[:, 1]])  # (n², 3)


PALM_WEIGHTS = palm_weights()  # (25, 3)
#: The six joints that span the palm (wrist, thumb CMC and the four MCPs), in index order.
PALM_JOINTS = np.unique(PALM_TRIANGLES)


def _palm_matrix() -> np.ndarray:
    """``(100, 6)`` weights with ``palm_samples(hand) == PALM_MATRIX @ hand[PALM_JOINTS]``."""
    matrix = np.zeros((len(PALM_TRIANGLES) * len(PALM_WEIGHTS), len(PALM_JOINTS)))
    for t, triangle in enumerate(PALM_TRIANGLES):
        columns = np.searchsorted(PALM_JOINTS, triangle)
        for k, weights in enumerate(PALM_WEIGHTS):
            matrix[t * len(PALM_WEIGHTS) + k, columns] += weights
    return matrix


PALM_MATRIX = _palm_matrix()  # (100, 6)


def palm_samples(hand: np.ndarray) -> np.ndarray:
    """100 fixed points on the palm (4 triangles × 25, reference §2.3): ``(..., 21, 3)`` → ``(..., 100, 3)``."""
    return _samples(hand[..., PALM_JOINTS, :])


def local_coordinates(hand: np.ndarray) -> np.ndarray:
    """Joints in the local hand frame of reference §2.1: ``(..., 21, 3)`` → ``(..., 21, 3)``."""
    rotation = local_frame(hand)  # (..., 3, 3), rows x̂ ŷ ẑ
    rel = hand - hand[..., WRIST:WRIST + 1, :]  # (..., 21, 3)
    # rel @ Rᵀ written out component by component: much faster than a tiny matmul per frame
    rx, ry, rz = rel[..., 0], rel[..., 1], rel[..., 2]  # (..., 21)
    out = np.empty_like(rel)
    for k in range(3):
        out[..., k] = rx * rotation[..., k, 0, None] + ry * rotation[..., k, 1, None] + rz * rotation[..., k, 2, None]
    return out  # (..., 21, 3)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    cos = (a * b).sum(-1) / np.maximum(na * nb, 1e-12)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def flexion(hand: np.ndarray, hand_index: int, local: np.ndarray | None = None) -> np.ndarray:
    """Signed flexion angles (radians) of the 14 :data:`FLEXION_KEYS`: ``(..., T, 21, 3)`` → ``(..., 14, T)``.

    Long fingers: both bones projected on the local x–z plane, angle by arccos, sign of (v12 × v23)_y, negated
    for the left hand. thumb_mcp: 3-D angle with sign −sign((v12 × v23)_z). thumb_ip: unsigned 3-D angle.
    |θ| < 11° becomes 0 (reference §2.3). ``local`` may pass precomputed :func:`local_coordinates`.
    """
    local = local_coordinates(hand) if local is None else local  # (..., T, 21, 3)
    p = local[..., FLEXION_TRIPLES, :]  # (..., T, 14, 3, 3)
    v12 = p[..., 1, :] - p[..., 0, :]  # (..., T, 14, 3)
    v23 = p[..., 2, :] - p[..., 1, :]
    cross = kinematics_cross(v12, v23)
    planar = np.array([1.0, 0.0, 1.0])
    angle = _angle(v12 * planar, v23 * planar) * np.sign(cross[..., 1]) * (-1.0 if hand_index == LEFT else 1.0)
    angle[..., THUMB_MCP] = -_angle(v12[..., THUMB_MCP, :], v23[..., THUMB_MCP, :]) * np.sign(cross[..., THUMB_MCP, 2])
    angle[..., THUMB_IP] = _angle(v12[..., THUMB_IP, :], v23[..., THUMB_IP, :])
    angle = np.where(np.abs(angle) < FLEXION_ZERO_BELOW, 0.0, angle)
    return np.moveaxis(angle, -1, -2)  # (..., 14, T)


def spacing(hand: np.ndarray, local: np.ndarray | None = None) -> np.ndarray:
    """Angles (radians) between the proximal phalanges of adjacent fingers: ``(..., T, 21, 3)`` → ``(..., 3, T)``.
    ``local`` may pass precomputed :func:`local_coordinates`."""
    local = local_coordinates(hand) if local is None else local
    bones = {f: local[..., JOINT_INDEX[f"{f}_pip"], :] - local[..., JOINT_INDEX[f"{f}_mcp"], :]
             for f in ("index", "middle", "ring", "pinky")}
    return np.stack([_angle(bones[a], bones[b]) for a, b in SPACING_PAIRS], axis=-2)  # (..., 3, T)


def intra_tip_distances(hand: np.ndarray) -> np.ndarray:
    """Thumb tip → index/middle/ring/pinky tip distances: ``(..., T, 21, 3)`` → ``(..., 4, T)``."""
    thumb = hand[..., TIPS["thumb"]:TIPS["thumb"] + 1, :]  # (..., T, 1, 3)
    others = hand[..., [TIPS[f] for f in INTRA_TIP_FINGERS], :]  # (..., T, 4, 3)
    return np.moveaxis(np.linalg.norm(others - thumb, axis=-1), -1, -2)


def inter_tip_distances(motion: np.ndarray) -> np.ndarray:
    """Left tip × right tip distances, thumb..pinky: ``(..., T, 2, 21, 3)`` → ``(..., 5, 5, T)``."""
    left = motion[..., 0, TIP_ORDER, :]  # (..., T, 5, 3)
    right = motion[..., 1, TIP_ORDER, :]
    d = np.linalg.norm(left[..., :, None, :] - right[..., None, :, :], axis=-1)  # (..., T, 5, 5)
    return np.moveaxis(d, -3, -1)  # (..., 5, 5, T)


def _samples(palm_joints: np.ndarray) -> np.ndarray:
    """Palm samples ``(..., 100, 3)`` of palm joints ``(..., 6, 3)`` as one matrix product (not one per frame)."""
    return np.moveaxis(np.tensordot(palm_joints, PALM_MATRIX, axes=([-2], [1])), -1, -2)


def _palm_scores(points: np.ndarray, palm_joints: np.ndarray) -> np.ndarray:
    """``|q_j|² − 2 p·q_j`` for points ``(F, n, 3)`` against the 100 palm samples q_j of ``palm_joints``
    ``(F, 6, 3)``: ``(F, n, 100)`` float32. Since every sample is ``PALM_MATRIX @ palm_joints``, the products
    come from one large matrix product of ``p·joint`` ``(F·n, 6)`` with ``PALM_MATRIX.T``."""
    f, n = points.shape[:2]
    samples = _samples(palm_joints)  # (F, 100, 3)
    dots = np.matmul(points, np.swapaxes(palm_joints, 1, 2))  # (F, n, 6): p · joint
    scores = (dots.reshape(f * n, -1).astype(np.float32) @ (-2.0 * PALM_MATRIX.T).astype(np.float32))
    scores = scores.reshape(f, n, -1)  # (F, n, 100)
    scores += np.square(samples).sum(-1).astype(np.float32)[:, None, :]
    return scores


def _centred(motion: np.ndarray) -> np.ndarray:
    """Frames ``(..., T, 2, 21, 3)`` → ``(F, 2, 21, 3)`` centred on their palms (float32-friendly magnitudes)."""
    frames = motion.reshape(-1, *motion.shape[-3:])
    return frames - frames[:, :, PALM_JOINTS].mean(axis=(1, 2), keepdims=True)


def _palm_spheres(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``(F, 2, 3)`` (the mean palm sample) and radius ``(F, 2)`` of a sphere holding each hand's palm
    samples. Samples are convex combinations of the six palm joints, so the joints' farthest distance from the
    centre bounds them."""
    joints = frames[:, :, PALM_JOINTS]  # (F, 2, 6, 3)
    centre = np.tensordot(joints, PALM_MATRIX.mean(0), axes=([-2], [0]))  # (F, 2, 3)
    return centre, np.linalg.norm(joints - centre[..., None, :], axis=-1).max(-1)


def _needed(lower: np.ndarray, frames_per_signal: int, far: float | None) -> np.ndarray:
    """Which rows need exact distances: all without ``far``; else every frame of a signal (a run of
    ``frames_per_signal`` rows) whose lower bound drops below ``far`` somewhere."""
    if far is None:
        return np.ones(lower.shape, dtype=bool)
    near = (lower.reshape(-1, frames_per_signal, *lower.shape[1:]) < far).any(axis=1, keepdims=True)
    return np.broadcast_to(near, (lower.shape[0] // frames_per_signal, frames_per_signal, *lower.shape[1:])
                           ).reshape(lower.shape)


def tip_palm_distances(motion: np.ndarray, k: int = 5, far: float | None = None, chunk: int = 4096
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Tip → other palm distances (reference §2.4): mean of the ``k`` nearest palm samples, and the minimum.

    ``(..., T, 2, 21, 3)`` → two arrays ``(..., 2, 5, T)``: axis −3 is the tip's hand (0: left tips → right
    palm, 1: right tips → left palm), axis −2 the finger (thumb..pinky). Distances are computed in float32
    from palm-centred coordinates (error about 1e-7 m). With ``far``, a signal that stays at least ``far`` away
    in every frame (by a bounding-sphere lower bound) holds that lower bound instead of the exact distance:
    every one of its frames is still beyond ``far``, which is all a band edge at ``far`` needs.
    """
    lead, t = motion.shape[:-4], motion.shape[-4]
    frames = _centred(motion)  # (F, 2, 21, 3)
    centre, radius = _palm_spheres(frames)
    tips = frames[:, :, TIP_ORDER]  # (F, 2, 5, 3)
    lower = np.linalg.norm(tips - centre[:, ::-1, None, :], axis=-1) - radius[:, ::-1, None]  # (F, 2, 5)
    nearest = np.repeat(np.maximum(lower, 0.0)[..., None], k, axis=-1)  # (F, 2, 5, k)
    need = _needed(lower, t, far).any(-1)  # (F, 2): a hand's five tips are computed together
    rows_f, rows_h = np.nonzero(need)
    other = frames[rows_f, 1 - rows_h][:, PALM_JOINTS]  # (R, 6, 3): the other hand's palm joints
    points = tips[rows_f, rows_h]  # (R, 5, 3)
    for lo in range(0, len(rows_f), chunk):
        scores = _palm_scores(points[lo:lo + chunk], other[lo:lo + chunk])  # (c, 5, 100)
        best = np.partition(scores, k - 1, axis=-1)[..., :k] + np.square(points[lo:lo + chunk]).sum(-1)[..., None]
        nearest[rows_f[lo:lo + chunk], rows_h[lo:lo + chunk]] = np.sqrt(np.maximum(best, 0.0))
    nearest = nearest.reshape(lead + (t, 2, 5, k))
    return np.moveaxis(nearest.mean(-1), -3, -1), np.moveaxis(nearest.min(-1), -3, -1)  # (..., 2, 5, T)


def palm_palm_distance(motion: np.ndarray, k: int = 30, far: float | None = None, chunk: int = 256
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Palm–palm distance (reference §2.4): for each left sample the nearest right sample; mean of the ``k``
    smallest, and the overall minimum. ``(..., T, 2, 21, 3)`` → two arrays ``(..., T)``. ``far`` as in
    :func:`tip_palm_distances`, per clip."""
    lead, t = motion.shape[:-4], motion.shape[-4]
    frames = _centred(motion)  # (F, 2, 21, 3)
    centre, radius = _palm_spheres(frames)
    lower = np.linalg.norm(centre[:, 0] - centre[:, 1], axis=-1) - radius.sum(-1)  # (F,)
    mean_k = np.maximum(lower, 0.0)
    minimum = mean_k.copy()
    rows = np.flatnonzero(_needed(lower, t, far))
    for lo in range(0, len(rows), chunk):
        sel = rows[lo:lo + chunk]
        left = _samples(frames[sel, 0][:, PALM_JOINTS])  # (c, 100, 3)
        scores = _palm_scores(left, frames[sel, 1][:, PALM_JOINTS])  # (c, 100, 100)
        nearest = np.sqrt(np.maximum(scores.min(-1) + np.square(left).sum(-1), 0.0))  # (c, 100)
        mean_k[sel] = np.partition(nearest, k - 1, axis=-1)[:, :k].mean(-1)
        minimum[sel] = nearest.min(-1)
    return mean_k.reshape(lead + (t,)), minimum.reshape(lead + (t,))


def palm_relative_position(motion: np.ndarray) -> np.ndarray:
    """mean(right palm samples) − mean(left palm samples) per axis: ``(..., T, 2, 21, 3)`` → ``(..., 3, T)``."""
    centres = np.tensordot(motion[..., PALM_JOINTS, :], PALM_MATRIX.mean(0), axes=([-2], [0]))  # (..., T, 2, 3)
    return np.moveaxis(centres[..., 1, :] - centres[..., 0, :], -1, -2)
