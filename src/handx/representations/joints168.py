"""The diffusion model's per-frame motion features, ``joints168`` (reference §1.5, ``joint_pos_w_scalar_rot``).

A clip ``(T, 2, 21, 3)`` becomes ``(T, 168)``: 42 joints (0–20 left, 21–41 right, each hand in the order of
:mod:`handx.skeleton`) × ``[x, y, z, s]``, joint-major (feature ``j * 4 + f``):

* ``x, y, z``: joint positions minus the clip's centre, the time-mean of the midpoint of the two wrists;
* ``s``: the scalar bend of the joint (:func:`scalar_bend`), the signed angle between the incoming and the
  outgoing bone in the local x–z plane of the hand (reference §2.1), 0 at the wrist and the tips.

:func:`decode` inverts the position part exactly (``s`` is redundant with the positions and is ignored); the
centre is the ``extras`` of the :class:`~handx.representations.base.Representation` contract.

Layout (:data:`LAYOUT`): column ``(hand · 21 + joint) · 4 + f`` is hand ``hand``, joint ``joint``, channel
``"pos"`` with component ``x``/``y``/``z`` for f = 0, 1, 2 and channel ``"bend"`` (a scalar) for f = 3. Every
column belongs to one hand; the bend columns of the wrists and the tips are always 0.

Deviation (DESIGN.md): ``s`` is wrapped to (−π, π]; the reference code leaves the raw difference of two
``atan2`` values, which jumps by 2π when a bone crosses the local −x axis.
"""

from __future__ import annotations

import math

import numpy as np

from handx.kinematics import local_frame
from handx.representations.base import (XYZ, ArrayOrTensor, Layout, Representation, check_clips, check_extras,
                                       check_features)
from handx.skeleton import CHAIN_ARRAY, NUM_HANDS, NUM_JOINTS, PARENTS, RIGHT, WRIST

NAME = "joints168"
FEATURES_PER_JOINT = 4
NUM_FEATURES = NUM_HANDS * NUM_JOINTS * FEATURES_PER_JOINT  # 168

#: Column ``(hand · 21 + joint) · 4 + f``: ``pos`` x, y, z, then the scalar ``bend``.
LAYOUT = Layout.grid(range(NUM_HANDS), range(NUM_JOINTS), [("pos", XYZ), ("bend", ("",))])

#: The joints that carry a bend (positions 1–3 of each finger chain) and the next joint of their chain, ``(15,)``.
_BEND_JOINTS = CHAIN_ARRAY[:, 1:4].reshape(-1)
_BEND_NEXT = CHAIN_ARRAY[:, 2:5].reshape(-1)
_PARENT = np.maximum(PARENTS, 0)  # the wrist is its own parent (a zero bone)


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angles (radians) wrapped to (−π, π]."""
    wrapped = math.pi - np.mod(math.pi - angle, 2.0 * math.pi)
    return np.where(wrapped <= -math.pi, wrapped + 2.0 * math.pi, wrapped)


def scalar_bend(joints: np.ndarray) -> np.ndarray:
    """Scalar bend ``s`` of every joint (reference §1.5): ``(..., T, 2, 21, 3)`` → ``(..., T, 2, 21)``.

    For the three middle joints of each finger chain (thumb: cmc, mcp, ip; others: mcp, pip, dip), with
    ``v1 = p_j − p_prev`` and ``v2 = p_next − p_j`` in the local hand frame (reference §2.1),
    ``s = atan2(v2_z, v2_x) − atan2(v1_z, v1_x)``, negated for the right hand and wrapped to (−π, π]. Bending
    a finger towards its palm gives s > 0 on both hands (the sign of :func:`handx.features.signals.flexion`).
    The wrist and the five tips get 0, and so does any non-finite value.
    """
    joints = np.asarray(joints, dtype=np.float64)
    check_clips(joints, "scalar_bend")
    # A bone in the local frame is R (p_child − p_parent): only the x̂ and ẑ rows of R are needed.
    frame = local_frame(joints)  # (..., T, 2, 3, 3), rows x̂ ŷ ẑ
    bones = joints - joints[..., _PARENT, :]  # (..., T, 2, 21, 3): the bone ending at each joint (wrist: 0)
    planar = bones @ np.swapaxes(frame[..., 0::2, :], -1, -2)  # (..., T, 2, 21, 2): local (x, z)
    with np.errstate(invalid="ignore"):
        heading = np.arctan2(planar[..., 1], planar[..., 0])  # (..., T, 2, 21)
        raw = heading[..., _BEND_NEXT] - heading[..., _BEND_JOINTS]  # (..., T, 2, 15): atan2(v2) − atan2(v1)
        sign = np.where(np.arange(NUM_HANDS) == RIGHT, -1.0, 1.0)[:, None]  # (2, 1)
        bend = wrap_angle(raw * sign)
    out = np.zeros(joints.shape[:-1], dtype=np.float64)  # (..., T, 2, 21)
    out[..., _BEND_JOINTS] = np.where(np.isfinite(bend), bend, 0.0)
    return out


def clip_centre(joints: np.ndarray) -> np.ndarray:
    """Time-mean of the midpoint of the two wrists: ``(..., T, 2, 21, 3)`` → ``(..., 3)``."""
    return joints[..., :, WRIST, :].mean(axis=(-3, -2))  # mean over T and the two hands


def encode(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clips → features: ``(..., T, 2, 21, 3)`` → ``(features (..., T, 168), centre (..., 3))``.

    Positions are centred on :func:`clip_centre`; the result keeps the input's float dtype (float32 stays
    float32). ``decode(features, centre)`` gives the clips back.
    """
    joints = np.asarray(joints)
    check_clips(joints, "encode")
    dtype = np.result_type(joints.dtype, np.float32)
    centre = clip_centre(joints.astype(np.float64))  # (..., 3)
    xyz = joints - centre[..., None, None, None, :]  # (..., T, 2, 21, 3)
    s = scalar_bend(joints)[..., None]  # (..., T, 2, 21, 1)
    features = np.concatenate([xyz, s], axis=-1)  # (..., T, 2, 21, 4)
    features = features.reshape(*joints.shape[:-3], NUM_FEATURES)  # (..., T, 168): j*4+f, j = hand*21+joint
    return features.astype(dtype), centre.astype(dtype)


def decode(features: ArrayOrTensor, centre: ArrayOrTensor | None = None) -> ArrayOrTensor:
    """Features → clips: ``(..., T, 168)`` → ``(..., T, 2, 21, 3)`` (numpy or torch; ``s`` is ignored).

    With ``centre`` (``(..., 3)``, from :func:`encode`) this is the exact inverse of :func:`encode`. Without it,
    the motion is translated so the right wrist is at the origin at frame 0 (the canonical clip convention).
    """
    check_features(features, NUM_FEATURES, "decode")
    lead = tuple(features.shape[:-1])
    xyz = features.reshape(*lead, NUM_HANDS, NUM_JOINTS, FEATURES_PER_JOINT)[..., :3]  # (..., T, 2, 21, 3)
    if centre is None:
        return xyz - xyz[..., 0:1, RIGHT:RIGHT + 1, WRIST:WRIST + 1, :]
    check_extras(centre, features, "decode", "centre")
    return xyz + centre[..., None, None, None, :]


#: this module as a :class:`~handx.representations.base.Representation` (``extras`` = the centre)
JOINTS168 = Representation(NAME, NUM_FEATURES, LAYOUT, encode, decode)
