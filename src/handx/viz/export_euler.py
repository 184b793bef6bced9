"""Euler angles for BVH export: rotation matrices → continuous angles in a BVH channel order.

Convention (that of :mod:`handx.io.bvh` and of BVH files generally): an order ``"ZYX"`` means the channels
``Zrotation Yrotation Xrotation`` and ``R = R_z(a) R_y(b) R_x(c)`` — intrinsic, in listed order. Matrices
are built with the reader's own :func:`handx.io.bvh.axis_rotation`, so angles compose exactly as the reader
composes them.

Decomposition (Tait–Bryan, axes ``i, j, k`` all different; ``ε = +1`` when ``(i, j, k)`` is a cyclic order of
``(x, y, z)``, else ``−1``): ``sin b = ε R[i, k]``, ``a = atan2(−ε R[j, k], R[k, k])``,
``c = atan2(−ε R[i, j], R[i, i])``.

Continuity over time (axis 0)
    Every rotation has two triples, ``(a, b, c)`` and ``(a + 180°, 180° − b, c + 180°)``. Frame by frame the one
    nearer the previous frame's choice is kept. That map is an isometry and an involution of the angle torus, so
    whether the other triple is nearer does not depend on which triple the previous frame used: the choice is a
    running parity of per-frame switch tests, computed without a loop over frames. Each channel is then
    unwrapped (no 360° jumps).

Gimbal lock
    At ``|cos b| ≈ 0`` only a combination of ``a`` and ``c`` is defined: ``c`` is held at its last defined value
    and ``a`` solved from ``R_i(a) = R R_k(c)ᵀ R_j(b)ᵀ``. Near (not at) the pole ``a`` and ``c`` turn fast, as
    any Euler triple must; :func:`best_orders` avoids this by choosing, per joint, the order whose middle
    angle stays farthest from ±90° over the clip.
"""

from __future__ import annotations

import numpy as np

from handx.io.bvh import axis_rotation

#: The six Tait–Bryan orders, the default first (ties in :func:`best_orders` go to earlier entries).
ORDERS: tuple[str, ...] = ("ZYX", "ZXY", "YXZ", "YZX", "XYZ", "XZY")
_AXIS = {"X": 0, "Y": 1, "Z": 2}
_GIMBAL = 1e-7


def channels(order: str) -> tuple[str, str, str]:
    """BVH channel names of an order: ``"ZYX"`` → ``("Zrotation", "Yrotation", "Xrotation")``."""
    return tuple(f"{axis}rotation" for axis in order)  # type: ignore[return-value]


def _axes(order: str) -> tuple[int, int, int, float]:
    i, j, k = (_AXIS[a] for a in order)
    parity = 1.0 if (j - i) % 3 == 1 else -1.0
    return i, j, k, parity


def euler_to_matrix(angles: np.ndarray, order: str) -> np.ndarray:
    """``(..., 3)`` radians in ``order`` → ``(..., 3, 3)``: ``R_i(a) R_j(b) R_k(c)``."""
    i, j, k, _ = _axes(order)
    return axis_rotation(i, angles[..., 0]) @ axis_rotation(j, angles[..., 1]) @ axis_rotation(k, angles[..., 2])


def pole_distance(rot: np.ndarray, order: str) -> np.ndarray:
    """``|cos b|`` of each rotation ``(..., 3, 3)`` in ``order``: 0 at gimbal lock, 1 at the farthest."""
    i, _, k, _ = _axes(order)
    return np.sqrt(np.clip(1.0 - rot[..., i, k] ** 2, 0.0, 1.0))


def best_orders(rot: np.ndarray) -> np.ndarray:
    """Per series (axes after the first), the index into :data:`ORDERS` whose middle angle stays farthest from
    ±90° over time: ``(T, ..., 3, 3)`` → int ``(...)``."""
    margin = np.stack([pole_distance(rot, order).min(axis=0) for order in ORDERS])  # (6, ...)
    return np.argmax(margin > margin.max(axis=0) - 1e-9, axis=0)  # the first of the (near-)best


def _wrap(x: np.ndarray) -> np.ndarray:
    return (x + np.pi) % (2.0 * np.pi) - np.pi


def matrix_to_euler(rot: np.ndarray, order: str) -> np.ndarray:
    """Continuous angles over time in ``order``: ``(T, ..., 3, 3)`` → ``(T, ..., 3)`` radians ``(a, b, c)``."""
    i, j, k, eps = _axes(order)
    sin_b = np.clip(eps * rot[..., i, k], -1.0, 1.0)
    cos_b = pole_distance(rot, order)
    b = np.arctan2(sin_b, cos_b)  # (T, ...) in [−π/2, π/2]
    a = np.arctan2(-eps * rot[..., j, k], rot[..., k, k])
    c = np.arctan2(-eps * rot[..., i, j], rot[..., i, i])
    gimbal = cos_b < _GIMBAL
    if gimbal.any():
        frames = np.arange(rot.shape[0]).reshape((-1,) + (1,) * (gimbal.ndim - 1))
        last = np.maximum.accumulate(np.where(gimbal, 0, frames), axis=0)  # last defined frame (0 if none)
        c = np.where(gimbal, np.take_along_axis(np.where(gimbal, 0.0, c), last, axis=0), c)
        # R_i(a) = R R_k(c)ᵀ R_j(b)ᵀ; with (i, i1, i2) cyclic, R_i(a)[i2, i1] = sin a and [i1, i1] = cos a.
        m = rot @ np.swapaxes(axis_rotation(k, c), -1, -2) @ np.swapaxes(axis_rotation(j, b), -1, -2)
        i1, i2 = (i + 1) % 3, (i + 2) % 3
        a = np.where(gimbal, np.arctan2(m[..., i2, i1], m[..., i1, i1]), a)
    principal = np.stack([a, b, c], axis=-1)  # (T, ..., 3)
    alternate = np.stack([a + np.pi, np.pi - b, c + np.pi], axis=-1)
    if rot.shape[0] > 1:
        d_same = (_wrap(principal[1:] - principal[:-1]) ** 2).sum(-1)  # (T − 1, ...)
        d_switch = (_wrap(alternate[1:] - principal[:-1]) ** 2).sum(-1)
        switch = np.concatenate([np.zeros_like(d_same[:1], dtype=bool), d_switch < d_same], axis=0)  # (T, ...)
        use_alternate = np.cumsum(switch, axis=0) % 2 == 1
        principal = np.where(use_alternate[..., None], alternate, principal)
    return np.unwrap(principal, axis=0)
