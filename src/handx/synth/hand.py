"""A forward-kinematics hand model for procedural two-hand motion.

The model produces the 21 joints of the HandX skeleton (reference §1.1, joint order from
:mod:`handx.skeleton`) from joint angles and a wrist pose, vectorised over frames. Bone lengths are fixed by
construction, so every generated clip has exactly constant bones.

Hand-local frame of a **right** hand (palm down, fingers forward)::

    +x  towards the little finger (ulnar side)     -x  towards the thumb
    +y  along the fingers                           +z  the back of the hand (the palm faces -z)

A left hand is the mirror image (local x negated), so with palms down and fingers along +y both thumbs point
towards the other hand: the right thumb is on the right palm's -x side, the left thumb on the left palm's +x
side. World joints are ``wrist_position + R_wrist @ local`` in the canonical frame of reference §1.2 (+x the
subject's right, +y forward, +z up).

Pose vector (``POSE_DIM = 26`` floats, radians and metres), laid out by :data:`POSE`:

* four long fingers (index, middle, ring, pinky), each ``mcp_flex, mcp_abd, pip, dip``. Flexion bends towards
  the palm; ``mcp_abd`` is the absolute sideways angle of the finger in the palm plane, positive towards the
  little-finger side;
* thumb ``cmc_yaw, cmc_pitch, mcp, ip``: CMC yaw swings the thumb radially (positive = away from the index),
  CMC pitch lifts it out of the palm plane towards the palm side (palmar abduction), MCP and IP flex it;
* wrist rotation ``supination, flexion, yaw`` as anatomical angles that mean the same for both hands:
  supination turns the thumb up (palm down → palm facing the other hand → palm up), flexion bends the hand
  palm-wards (down when the palm faces down), yaw turns the fingers inward (towards the other hand);
* wrist position ``x, y, z`` in the world.

Anatomy (adult hand, after published phalanx and metacarpal lengths with soft tissue at the tips): hand
length (wrist → middle tip along the chain) 18.3 cm at scale 1; tip segments 20–24 mm.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import numpy as np

from handx.skeleton import CHAINS, JOINT_INDEX, NUM_JOINTS, PALM_TRIANGLES, WRIST

#: The four long fingers, in the order their angles appear in a pose vector.
LONG_FINGERS: tuple[str, ...] = ("index", "middle", "ring", "pinky")
POSE_DIM = 26


def _layout() -> dict[str, int]:
    out: dict[str, int] = {}
    for k, finger in enumerate(LONG_FINGERS):
        for j, part in enumerate(("mcp_flex", "mcp_abd", "pip", "dip")):
            out[f"{finger}_{part}"] = 4 * k + j
    for j, part in enumerate(("cmc_yaw", "cmc_pitch", "mcp", "ip")):
        out[f"thumb_{part}"] = 16 + j
    for j, part in enumerate(("supination", "flexion", "yaw")):
        out[f"wrist_{part}"] = 20 + j
    for j, axis in enumerate("xyz"):
        out[f"wrist_{axis}"] = 23 + j
    return out


#: Name → index in the pose vector.
POSE: MappingProxyType[str, int] = MappingProxyType(_layout())
FLEX_SLICE = slice(0, 20)  # all finger and thumb angles
ROT_SLICE = slice(20, 23)  # wrist supination, flexion, yaw
POS_SLICE = slice(23, 26)  # wrist position
#: Pose indices of each long finger's (mcp_flex, mcp_abd, pip, dip), rows in LONG_FINGERS order.
FINGER_ANGLE_INDEX = np.arange(16).reshape(4, 4)
THUMB_ANGLE_INDEX = np.arange(16, 20)


def finger_channels(finger: str, *, abduction: bool = False) -> np.ndarray:
    """Pose indices that flex one finger (thumb included); with ``abduction`` also the sideways angle."""
    if finger == "thumb":
        return THUMB_ANGLE_INDEX.copy()
    idx = FINGER_ANGLE_INDEX[LONG_FINGERS.index(finger)]
    return idx if abduction else idx[[0, 2, 3]]


# ------------------------------------------------------------------------------------------------- geometry

@dataclasses.dataclass(frozen=True)
class HandGeometry:
    """Rest layout and bone lengths of a right hand in its local frame (metres at ``scale == 1``).

    Attributes:
        mcp: ``(4, 3)`` MCP positions of index, middle, ring, pinky (their norms are the metacarpal lengths).
        phalanges: ``(4, 3)`` proximal, middle and distal (DIP → tip) lengths of the long fingers.
        thumb_cmc: ``(3,)`` thumb CMC position.
        thumb_bones: ``(3,)`` thumb metacarpal, proximal phalanx, distal (IP → tip) lengths.
        thumb_roll: roll of the thumb about its own axis at rest (radians); turns the thumb pad towards the
            fingers so that flexing the thumb brings it across the palm.
        thumb_roll_per_pitch: extra roll per radian of palmar abduction (opposition pronates the thumb).
        scale: uniform size factor applied to every length.
    """

    mcp: tuple[tuple[float, float, float], ...] = (
        (-0.021, 0.084, 0.002),
        (-0.002, 0.088, 0.003),
        (0.016, 0.081, 0.000),
        (0.031, 0.071, -0.003),
    )
    phalanges: tuple[tuple[float, float, float], ...] = (
        (0.040, 0.024, 0.021),
        (0.045, 0.028, 0.022),
        (0.042, 0.026, 0.022),
        (0.033, 0.019, 0.020),
    )
    thumb_cmc: tuple[float, float, float] = (-0.024, 0.024, -0.004)
    thumb_bones: tuple[float, float, float] = (0.043, 0.032, 0.024)
    thumb_roll: float = float(np.deg2rad(-55.0))
    thumb_roll_per_pitch: float = -0.4
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not 0.5 <= self.scale <= 2.0:
            raise ValueError(f"HandGeometry.scale must be in [0.5, 2], got {self.scale}")
        if np.asarray(self.mcp).shape != (4, 3) or np.asarray(self.phalanges).shape != (4, 3):
            raise ValueError("HandGeometry.mcp and .phalanges must be (4, 3): index, middle, ring, pinky")

    def scaled(self, scale: float) -> "HandGeometry":
        """The same hand at another overall size."""
        return dataclasses.replace(self, scale=float(scale))


# --------------------------------------------------------------------------------------------- joint limits

def _limits() -> tuple[np.ndarray, np.ndarray]:
    deg = np.deg2rad
    lo = np.full(POSE_DIM, -np.inf)
    hi = np.full(POSE_DIM, np.inf)
    abd = {"index": (-32, 12), "middle": (-15, 15), "ring": (-10, 28), "pinky": (-6, 50)}
    for finger in LONG_FINGERS:
        lo[POSE[f"{finger}_mcp_flex"]], hi[POSE[f"{finger}_mcp_flex"]] = deg(-20), deg(95)  # small hyperextension
        lo[POSE[f"{finger}_mcp_abd"]], hi[POSE[f"{finger}_mcp_abd"]] = deg(abd[finger][0]), deg(abd[finger][1])
        lo[POSE[f"{finger}_pip"]], hi[POSE[f"{finger}_pip"]] = deg(-5), deg(110)
        lo[POSE[f"{finger}_dip"]], hi[POSE[f"{finger}_dip"]] = deg(-10), deg(85)
    lo[POSE["thumb_cmc_yaw"]], hi[POSE["thumb_cmc_yaw"]] = deg(-25), deg(70)
    lo[POSE["thumb_cmc_pitch"]], hi[POSE["thumb_cmc_pitch"]] = deg(-10), deg(75)
    lo[POSE["thumb_mcp"]], hi[POSE["thumb_mcp"]] = deg(-15), deg(65)
    lo[POSE["thumb_ip"]], hi[POSE["thumb_ip"]] = deg(-20), deg(85)
    lo[POSE["wrist_supination"]], hi[POSE["wrist_supination"]] = deg(-40), deg(185)
    lo[POSE["wrist_flexion"]], hi[POSE["wrist_flexion"]] = deg(-70), deg(75)
    lo[POSE["wrist_yaw"]], hi[POSE["wrist_yaw"]] = deg(-60), deg(95)
    lo.flags.writeable = False
    hi.flags.writeable = False
    return lo, hi


#: Lower and upper joint limits of a pose vector (radians; positions are unbounded).
POSE_LOWER, POSE_UPPER = _limits()


def clip_to_limits(pose: np.ndarray) -> np.ndarray:
    """Clip a pose ``(..., 26)`` to the joint limits."""
    return np.clip(pose, POSE_LOWER, POSE_UPPER)


# ------------------------------------------------------------------------------------------------ rotations

def wrist_rotation(rot: np.ndarray, side: str) -> np.ndarray:
    """World rotation of a hand from its anatomical wrist angles ``(..., 3)`` → ``(..., 3, 3)``.

    ``R = Rz(s·yaw) · Ry(s·supination) · Rx(−flexion)`` with ``s = +1`` for the right hand and ``−1`` for the
    left, so equal angles on both hands give mirror-image orientations.
    """
    return _signed_wrist_rotation(rot, _side_sign(side))


def _signed_wrist_rotation(rot: np.ndarray, s: float | np.ndarray) -> np.ndarray:
    """:func:`wrist_rotation` with the side sign ``s`` given (broadcast against ``rot[..., 0]``), closed form."""
    a, b, c = s * rot[..., 2], s * rot[..., 0], -rot[..., 1]
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    out = np.empty((*np.shape(a), 3, 3))
    out[..., 0, 0], out[..., 0, 1], out[..., 0, 2] = ca * cb, ca * sb * sc - sa * cc, ca * sb * cc + sa * sc
    out[..., 1, 0], out[..., 1, 1], out[..., 1, 2] = sa * cb, sa * sb * sc + ca * cc, sa * sb * cc - ca * sc
    out[..., 2, 0], out[..., 2, 1], out[..., 2, 2] = -sb, cb * sc, cb * cc
    return out


def _side_sign(side: str) -> float:
    if side == "right":
        return 1.0
    if side == "left":
        return -1.0
    raise ValueError(f"side must be 'left' or 'right', got {side!r}")


# ------------------------------------------------------------------------------------- forward kinematics

_FINGER_JOINTS = np.array([CHAINS[f][1:] for f in LONG_FINGERS], dtype=np.int64)  # (4, 4) mcp, pip, dip, tip
_THUMB_JOINTS = np.asarray(CHAINS["thumb"][1:], dtype=np.int64)  # (4,) cmc, mcp, ip, tip


def local_joints(pose: np.ndarray, geometry: HandGeometry = HandGeometry()) -> np.ndarray:
    """Joints of a right hand in its local frame: pose ``(..., 26)`` → ``(..., 21, 3)`` (wrist at the origin).

    Only the 20 finger and thumb angles are used. Angles are used as given; clip them with
    :func:`clip_to_limits` first when they may leave the joint limits.
    """
    pose = np.asarray(pose, dtype=np.float64)
    batch = pose.shape[:-1]
    out = np.zeros((*batch, NUM_JOINTS, 3))
    scale = geometry.scale

    # Long fingers: abduction a about the palm normal, then flexion about the rotated lateral axis. After the
    # cumulative flexion φ of a segment its direction is (sin a·cos φ, cos a·cos φ, −sin φ).
    ang = pose[..., FINGER_ANGLE_INDEX]  # (..., 4, 4): mcp_flex, mcp_abd, pip, dip
    abd = ang[..., 1:2]  # (..., 4, 1)
    phi = np.cumsum(ang[..., [0, 2, 3]], axis=-1)  # (..., 4, 3) cumulative flexion per segment
    cphi = np.cos(phi)
    seg = np.empty((*phi.shape, 3))  # (..., 4, 3 segments, 3)
    seg[..., 0] = np.sin(abd) * cphi
    seg[..., 1] = np.cos(abd) * cphi
    seg[..., 2] = -np.sin(phi)
    seg *= (np.asarray(geometry.phalanges) * scale)[..., None]
    mcp = np.asarray(geometry.mcp) * scale  # (4, 3)
    out[..., _FINGER_JOINTS[:, 0], :] = mcp
    out[..., _FINGER_JOINTS[:, 1:], :] = mcp[:, None, :] + np.cumsum(seg, axis=-2)

    # Thumb: R = Rz(yaw) · Rx(−pitch) · Ry(roll); after flexion φ a bone runs along cos φ·R[:, 1] − sin φ·R[:, 2].
    th = pose[..., THUMB_ANGLE_INDEX]  # (..., 4)
    roll = geometry.thumb_roll + geometry.thumb_roll_per_pitch * th[..., 1]
    cy, sy = np.cos(th[..., 0]), np.sin(th[..., 0])
    cp, sp = np.cos(th[..., 1]), np.sin(th[..., 1])
    cr, sr = np.cos(roll), np.sin(roll)
    col1 = np.stack([-sy * cp, cy * cp, -sp], axis=-1)[..., None, :]  # (..., 1, 3)
    col2 = np.stack([cy * sr - sy * sp * cr, sy * sr + cy * sp * cr, cp * cr], axis=-1)[..., None, :]
    tphi = np.zeros((*batch, 3))
    tphi[..., 1] = th[..., 2]
    tphi[..., 2] = th[..., 2] + th[..., 3]
    tseg = (np.cos(tphi)[..., None] * col1 - np.sin(tphi)[..., None] * col2) * (
        np.asarray(geometry.thumb_bones)[:, None] * scale)  # (..., 3, 3)
    cmc = np.asarray(geometry.thumb_cmc) * scale
    out[..., _THUMB_JOINTS[0], :] = cmc
    out[..., _THUMB_JOINTS[1:], :] = cmc + np.cumsum(tseg, axis=-2)
    return out


def forward_kinematics(pose: np.ndarray, side: str, geometry: HandGeometry = HandGeometry()) -> np.ndarray:
    """World joints of one hand: pose ``(..., 26)`` → ``(..., 21, 3)``.

    The local right-hand joints are mirrored (x negated) for the left hand, rotated by
    :func:`wrist_rotation` and translated to the wrist position.
    """
    pose = np.asarray(pose, dtype=np.float64)
    local = local_joints(pose, geometry)  # (..., 21, 3)
    if side == "left":
        local[..., 0] = -local[..., 0]
    rot = wrist_rotation(pose[..., ROT_SLICE], side)  # (..., 3, 3)
    return _rotate(local, rot) + pose[..., None, POS_SLICE]


def forward_kinematics_pair(poses: np.ndarray, geometry: HandGeometry = HandGeometry()) -> np.ndarray:
    """World joints of a (left, right) pair in one call: poses ``(..., 2, 26)`` → ``(..., 2, 21, 3)``.

    Same result as :func:`forward_kinematics` per hand, with half the overhead.
    """
    poses = np.asarray(poses, dtype=np.float64)
    local = local_joints(poses, geometry)  # (..., 2, 21, 3)
    local[..., 0, :, 0] = -local[..., 0, :, 0]
    rot = _signed_wrist_rotation(poses[..., ROT_SLICE], np.array([-1.0, 1.0]))  # (..., 2, 3, 3)
    return _rotate(local, rot) + poses[..., None, POS_SLICE]


def _rotate(points: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """``rot @ p`` for points ``(..., J, 3)`` and rotations ``(..., 3, 3)``, without BLAS (tiny matrices)."""
    cols = np.swapaxes(rot, -1, -2)[..., None, :, :]  # (..., 1, 3 columns, 3)
    return points[..., 0:1] * cols[..., 0, :] + points[..., 1:2] * cols[..., 1, :] + points[..., 2:3] * cols[..., 2, :]


# ----------------------------------------------------------------------------------------------- palm geometry

#: Corners of the palm triangles: wrist, thumb CMC and the four MCPs.
PALM_CORNERS = np.unique(PALM_TRIANGLES)
_PALM_EDGES = np.unique(np.sort(np.concatenate([PALM_TRIANGLES[:, [0, 1]], PALM_TRIANGLES[:, [1, 2]],
                                                PALM_TRIANGLES[:, [0, 2]]]), axis=1), axis=0)  # (9, 2)


def palm_centre(joints: np.ndarray) -> np.ndarray:
    """Mean of the palm corners (wrist, thumb CMC and the four MCPs): ``(..., 21, 3)`` → ``(..., 3)``."""
    return joints[..., PALM_CORNERS, :].mean(axis=-2)


def palm_normal(joints: np.ndarray, side: str) -> np.ndarray:
    """Unit normal pointing out of the palm (the palmar side): ``(..., 21, 3)`` → ``(..., 3)``."""
    a = joints[..., JOINT_INDEX["index_mcp"], :] - joints[..., WRIST, :]
    b = joints[..., JOINT_INDEX["pinky_mcp"], :] - joints[..., WRIST, :]
    n = np.cross(a, b) if side == "right" else np.cross(b, a)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def point_triangle_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Exact distance from points to triangles, all broadcast ``(..., 3)`` → ``(...)``.

    Projects onto the triangle's plane and, when the projection falls outside, takes the nearest point on the
    three edges.
    """
    ab, ac, ap = b - a, c - a, p - a
    n = np.cross(ab, ac)
    nn = np.maximum(np.einsum("...i,...i->...", n, n), 1e-18)
    # Barycentric coordinates of the projection.
    d00 = np.einsum("...i,...i->...", ab, ab)
    d01 = np.einsum("...i,...i->...", ab, ac)
    d11 = np.einsum("...i,...i->...", ac, ac)
    d20 = np.einsum("...i,...i->...", ap, ab)
    d21 = np.einsum("...i,...i->...", ap, ac)
    v = (d11 * d20 - d01 * d21) / nn
    w = (d00 * d21 - d01 * d20) / nn
    inside = (v >= 0) & (w >= 0) & (v + w <= 1)
    plane = np.abs(np.einsum("...i,...i->...", ap, n)) / np.sqrt(nn)

    def seg(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
        d = p1 - p0
        t = np.clip(np.einsum("...i,...i->...", p - p0, d) / np.maximum(np.einsum("...i,...i->...", d, d), 1e-18),
                    0.0, 1.0)
        return np.linalg.norm(p - (p0 + t[..., None] * d), axis=-1)

    edge = np.minimum(np.minimum(seg(a, b), seg(b, c)), seg(c, a))
    return np.where(inside, plane, edge)


def tip_palm_distance(points: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Distance from points ``(..., K, 3)`` to the palm triangles of ``joints`` ``(..., 21, 3)``: ``(..., K)``."""
    tri = joints[..., PALM_TRIANGLES, :]  # (..., 4, 3, 3)
    p = points[..., :, None, :]  # (..., K, 1, 3)
    d = point_triangle_distance(p, tri[..., None, :, 0, :], tri[..., None, :, 1, :], tri[..., None, :, 2, :])
    return d.min(axis=-1)  # (..., K)


def segment_segment_distance(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Distance between segments ``p0p1`` and ``q0q1``, all broadcast ``(..., 3)`` → ``(...)``."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a = np.einsum("...i,...i->...", d1, d1)
    e = np.einsum("...i,...i->...", d2, d2)
    f = np.einsum("...i,...i->...", d2, r)
    c = np.einsum("...i,...i->...", d1, r)
    b = np.einsum("...i,...i->...", d1, d2)
    denom = a * e - b * b
    s = np.where(denom > 1e-18, np.clip((b * f - c * e) / np.maximum(denom, 1e-18), 0.0, 1.0), 0.0)
    t = (b * s + f) / np.maximum(e, 1e-18)
    # Clamp t and recompute s where t left [0, 1].
    t_c = np.clip(t, 0.0, 1.0)
    s = np.where(t_c != t, np.clip((t_c * b - c) / np.maximum(a, 1e-18), 0.0, 1.0), s)
    return np.linalg.norm(p0 + s[..., None] * d1 - (q0 + t_c[..., None] * d2), axis=-1)


def palm_palm_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimum distance between the palm surfaces (four triangles each) of two hands ``(..., 21, 3)`` → ``(...)``.

    Exact for surfaces that do not intersect: the closest points of two triangles are a vertex and a face or
    two edges, so the answer is the minimum of the corner-to-palm distances both ways and all edge pairs.
    """
    d_ab = tip_palm_distance(a[..., PALM_CORNERS, :], b).min(axis=-1)
    d_ba = tip_palm_distance(b[..., PALM_CORNERS, :], a).min(axis=-1)
    ea = a[..., _PALM_EDGES, :]  # (..., 9, 2, 3)
    eb = b[..., _PALM_EDGES, :]
    d_ee = segment_segment_distance(ea[..., :, None, 0, :], ea[..., :, None, 1, :],
                                    eb[..., None, :, 0, :], eb[..., None, :, 1, :])  # (..., 9, 9)
    return np.minimum(np.minimum(d_ab, d_ba), d_ee.min(axis=(-2, -1)))


__all__ = [
    "PALM_CORNERS",
    "HandGeometry",
    "LONG_FINGERS",
    "POSE",
    "POSE_DIM",
    "POSE_LOWER",
    "POSE_UPPER",
    "clip_to_limits",
    "finger_channels",
    "forward_kinematics",
    "forward_kinematics_pair",
    "local_joints",
    "palm_centre",
    "palm_normal",
    "palm_palm_distance",
    "point_triangle_distance",
    "tip_palm_distance",
    "wrist_rotation",
]
