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


def palm_samples(hand: np.ndarray) -> np.ndarray:
    """100 fixed points on the palm (4 triangles × 25, reference §2.3): ``(..., 21, 3)`` → ``(..., 100, 3)``."""
    corners = hand[..., PALM_TRIANGLES, :]  # (..., 4, 3 corners, 3)
    points = np.matmul(PALM_WEIGHTS, corners)  # (25, 3) @ (..., 4, 3, 3) → (..., 4, 25, 3)
    return points.reshape(*points.shape[:-3], -1, 3)


def local_coordinates(hand: np.ndarray) -> np.ndarray:
    """Joints in the local hand frame of reference §2.1: ``(..., 21, 3)`` → ``(..., 21, 3)``."""
    rotation = local_frame(hand)  # (..., 3, 3), rows x̂ ŷ ẑ
    return np.matmul(hand - hand[..., WRIST:WRIST + 1, :], np.swapaxes(rotation, -1, -2))  # (..., 21, 3)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    cos = (a * b).sum(-1) / np.maximum(na * nb, 1e-12)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def flexion(hand: np.ndarray, hand_index: int) -> np.ndarray:
    """Signed flexion angles (radians) of the 14 :data:`FLEXION_KEYS`: ``(..., T, 21, 3)`` → ``(..., 14, T)``.

    Long fingers: both bones projected on the local x–z plane, angle by arccos, sign of (v12 × v23)_y, negated
    for the left hand. thumb_mcp: 3-D angle with sign −sign((v12 × v23)_z). thumb_ip: unsigned 3-D angle.
    |θ| < 11° becomes 0 (reference §2.3).
    """
    local = local_coordinates(hand)  # (..., T, 21, 3)
    p = local[..., FLEXION_TRIPLES, :]  # (..., T, 14, 3, 3)
    v12 = p[..., 1, :] - p[..., 0, :]  # (..., T, 14, 3)
    v23 = p[..., 2, :] - p[..., 1, :]
    cross = np.cross(v12, v23)
    planar = np.array([1.0, 0.0, 1.0])
    angle = _angle(v12 * planar, v23 * planar) * np.sign(cross[..., 1]) * (-1.0 if hand_index == LEFT else 1.0)
    angle[..., THUMB_MCP] = -_angle(v12[..., THUMB_MCP, :], v23[..., THUMB_MCP, :]) * np.sign(cross[..., THUMB_MCP, 2])
    angle[..., THUMB_IP] = _angle(v12[..., THUMB_IP, :], v23[..., THUMB_IP, :])
    angle = np.where(np.abs(angle) < FLEXION_ZERO_BELOW, 0.0, angle)
    return np.moveaxis(angle, -1, -2)  # (..., 14, T)


def spacing(hand: np.ndarray) -> np.ndarray:
    """Angles (radians) between the proximal phalanges of adjacent fingers: ``(..., T, 21, 3)`` → ``(..., 3, T)``."""
    local = local_coordinates(hand)
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


def pairwise_sq(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Squared distances between point sets ``a`` ``(..., n, 3)`` and ``b`` ``(..., m, 3)``: ``(..., n, m)`` float32.

    |p − q|² = [p, 1]·[−2q, |q|²] + |p|²: one batched float32 product of augmented vectors per block, so no
    ``(n, m, 3)`` difference tensor is built. Points are first centred on ``b``'s mean, which keeps the float32
    cancellation error near 1e-9 m² for hand-sized sets (about 1e-7 m on a distance).
    """
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    centre = b.mean(-2, keepdims=True)
    a2 = np.broadcast_to(a - centre, lead + a.shape[-2:]).reshape(-1, *a.shape[-2:]).astype(np.float32)
    b2 = np.broadcast_to(b - centre, lead + b.shape[-2:]).reshape(-1, *b.shape[-2:]).astype(np.float32)
    a_aug = np.concatenate([a2, np.ones(a2.shape[:-1] + (1,), np.float32)], -1)  # (N, n, 4)
    b_aug = np.concatenate([-2.0 * b2, np.square(b2).sum(-1, keepdims=True)], -1)  # (N, m, 4)
    out = np.empty(a2.shape[:-1] + b2.shape[-2:-1], dtype=np.float32)  # (N, n, m)
    for lo in range(0, a2.shape[0], chunk):
        np.matmul(a_aug[lo:lo + chunk], np.swapaxes(b_aug[lo:lo + chunk], -1, -2), out=out[lo:lo + chunk])
    out += np.square(a2).sum(-1)[..., None]
    np.maximum(out, 0.0, out=out)
    return out.reshape(lead + out.shape[-2:])


def nearest_sq(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """For each point of ``a`` ``(..., n, 3)`` the squared distance to the nearest point of ``b`` ``(..., m, 3)``,
    float64 ``(..., n)``, computed block by block with :func:`pairwise_sq` (never the whole table at once)."""
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a2 = np.broadcast_to(a, lead + a.shape[-2:]).reshape(-1, *a.shape[-2:])
    b2 = np.broadcast_to(b, lead + b.shape[-2:]).reshape(-1, *b.shape[-2:])
    out = np.empty(a2.shape[:-1])
    for lo in range(0, a2.shape[0], chunk):
        out[lo:lo + chunk] = pairwise_sq(a2[lo:lo + chunk], b2[lo:lo + chunk]).min(-1)
    return out.reshape(lead + a.shape[-2:-1])


def tip_palm_distances(motion: np.ndarray, palms: np.ndarray | None = None, k: int = 5
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Tip → other palm distances (reference §2.4): mean of the ``k`` nearest palm samples, and the minimum.

    ``(..., T, 2, 21, 3)`` (and optionally its :func:`palm_samples` ``(..., T, 2, 100, 3)``) → two arrays
    ``(..., 2, 5, T)``: axis −3 is the tip's hand (0: left tips → right palm, 1: right tips → left palm), axis −2
    the finger (thumb..pinky).
    """
    tips = motion[..., TIP_ORDER, :]  # (..., T, 2, 5, 3)
    palms = palm_samples(motion) if palms is None else palms  # (..., T, 2, 100, 3)
    sq = pairwise_sq(tips, palms[..., ::-1, :, :])  # (..., T, 2, 5, 100): to the other hand's palm
    nearest = np.sqrt(np.partition(sq, k - 1, axis=-1)[..., :k].astype(np.float64))  # (..., T, 2, 5, k)
    return np.moveaxis(nearest.mean(-1), -3, -1), np.moveaxis(nearest.min(-1), -3, -1)  # (..., 2, 5, T)


def palm_palm_distance(motion: np.ndarray, palms: np.ndarray | None = None, k: int = 30
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Palm–palm distance (reference §2.4): for each left sample the nearest right sample; mean of the ``k``
    smallest, and the overall minimum. ``(..., T, 2, 21, 3)`` → two arrays ``(..., T)``."""
    palms = palm_samples(motion) if palms is None else palms  # (..., T, 2, 100, 3)
    nearest = np.sqrt(nearest_sq(palms[..., 0, :, :], palms[..., 1, :, :]))  # (..., T, 100)
    smallest = np.partition(nearest, k - 1, axis=-1)[..., :k]
    return smallest.mean(-1), nearest.min(-1)


def palm_relative_position(motion: np.ndarray, palms: np.ndarray | None = None) -> np.ndarray:
    """mean(right palm samples) − mean(left palm samples) per axis: ``(..., T, 2, 21, 3)`` → ``(..., 3, T)``."""
    palms = palm_samples(motion) if palms is None else palms
    centres = palms.mean(-2)  # (..., T, 2, 3)
    return np.moveaxis(centres[..., 1, :] - centres[..., 0, :], -1, -2)
