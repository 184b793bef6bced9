"""Hand shapes: the 20 finger and thumb angles of a pose vector for each named shape, drawn at random.

Shapes are drawn uniformly between per-joint bounds given in degrees (returned in radians), with the flexion
bands of reference §2.3 in mind: a relaxed hand stays "Fully extended" (< 28° per joint), a fist is "Fully
bent" (> 60°). Pinch shapes are solved numerically per hand geometry (thumb and finger angles, damped
Gauss–Newton, cached) so that the two tips end 8 mm apart.
"""

from __future__ import annotations

import functools

import numpy as np

from handx.skeleton import TIPS
from handx.synth.hand import (
    FINGER_ANGLE_INDEX,
    LONG_FINGERS,
    POSE_DIM,
    POSE_LOWER,
    POSE_UPPER,
    THUMB_ANGLE_INDEX,
    HandGeometry,
    finger_channels,
    local_joints,
)

REST_ABD = np.array([-6.0, -1.0, 5.0, 11.0])  # index, middle, ring, pinky (degrees)
SPREAD_ABD = np.array([-26.0, -3.0, 21.0, 44.0])
FIST_ABD = np.array([-2.0, -1.0, 2.0, 6.0])


def _ranges(mcp: tuple, abd: tuple, pip: tuple, dip: tuple, thumb: list[tuple[float, float]]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Bounds (radians, ``(20,)`` each) of a hand shape drawn uniformly: ``(lo, hi)`` of each long-finger
    joint (scalars or ``(4,)`` arrays, index → pinky) and of the four thumb angles, all in degrees."""
    lo, hi = np.empty(20), np.empty(20)
    for col, (a, b) in enumerate((mcp, abd, pip, dip)):
        lo[FINGER_ANGLE_INDEX[:, col]], hi[FINGER_ANGLE_INDEX[:, col]] = a, b
    lo[THUMB_ANGLE_INDEX], hi[THUMB_ANGLE_INDEX] = np.asarray(thumb, dtype=np.float64).T
    return np.deg2rad(lo), np.deg2rad(hi)


def uniform(rng: np.random.Generator, lo: float, hi: float, n: int | None = None) -> np.ndarray:
    """``n`` uniform draws in ``[lo, hi)`` (a float when ``n`` is None)."""
    return rng.uniform(lo, hi, n)


def _angles(rng: np.random.Generator, *ranges: tuple[float, float]) -> np.ndarray:
    """One uniform draw per ``(lo, hi)`` range (degrees), e.g. a thumb's CMC yaw, CMC pitch, MCP and IP."""
    lo, hi = np.array(ranges, dtype=np.float64).T
    return rng.uniform(lo, hi)


_RAMP = np.array([0.0, 2.0, 4.0, 6.0])  # relaxed fingers curl more towards the little finger
# A relaxed hand: fingers slightly curled (every finger joint < 28°, the "Fully extended" band of reference
# §2.3), thumb loosely abducted.
_RELAXED = _ranges((8 + _RAMP, 21 + _RAMP), (REST_ABD - 2, REST_ABD + 2), (10 + _RAMP, 21 + _RAMP), (5, 15),
                   [(35, 45), (12, 22), (5, 15), (5, 15)])
_CURLED = _ranges((35, 50), (REST_ABD, REST_ABD), (45, 65), (20, 35), [(25, 35), (25, 35), (15, 25), (15, 25)])
_EXTENDED = _ranges((-6, 2), (REST_ABD - 1.5, REST_ABD + 1.5), (0, 4), (0, 4), [(45, 55), (5, 12), (0, 6), (0, 6)])
_FLAT = _ranges((-8, -3), (REST_ABD, REST_ABD), (0, 2), (0, 2), [(12, 22), (-8, -4), (-5, 0), (-5, 0)])
_FIST = _ranges((80, 90), (FIST_ABD, FIST_ABD), (95, 105), (63, 72), [(-3, 3), (37, 43), (37, 43), (27, 33)])


def _point_ranges(finger: str) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _FIST[0].copy(), _FIST[1].copy()
    k = LONG_FINGERS.index(finger)
    lo[FINGER_ANGLE_INDEX[k]] = np.deg2rad([-5.0, REST_ABD[k], 0.0, 0.0])
    hi[FINGER_ANGLE_INDEX[k]] = np.deg2rad([3.0, REST_ABD[k], 5.0, 5.0])
    return lo, hi


_POINT = {finger: _point_ranges(finger) for finger in LONG_FINGERS}


def relaxed_shape(rng: np.random.Generator) -> np.ndarray:
    """A relaxed hand: fingers slightly curled (more towards the little finger; every finger joint < 28°, the
    "Fully extended" band of reference §2.3), thumb loosely abducted."""
    return rng.uniform(*_RELAXED)


def curled_shape(rng: np.random.Generator) -> np.ndarray:
    """Fingers loosely curled (start of an opening hand)."""
    return rng.uniform(*_CURLED)


def extended_shape(rng: np.random.Generator) -> np.ndarray:
    """All fingers straight and together, thumb out."""
    return rng.uniform(*_EXTENDED)


def flat_shape(rng: np.random.Generator) -> np.ndarray:
    """A flat hand for palm contact: fingers slightly hyperextended, thumb alongside the index, out of the palm."""
    return rng.uniform(*_FLAT)


def fist_shape(rng: np.random.Generator) -> np.ndarray:
    """A fist: every finger joint fully bent (> 60°, reference §2.3), the thumb wrapped over the middle
    phalanges."""
    return rng.uniform(*_FIST)


def point_shape(rng: np.random.Generator, finger: str = "index") -> np.ndarray:
    """One finger straight, the others and the thumb as in a fist."""
    return rng.uniform(*_POINT[finger])


def spread_shape(rng: np.random.Generator, amount: float) -> np.ndarray:
    """Straight fingers abducted by ``amount`` (0 = together, 1 = fully spread), thumb wide."""
    lo, hi = _EXTENDED[0].copy(), _EXTENDED[1].copy()
    abd = np.deg2rad(REST_ABD + amount * (SPREAD_ABD - REST_ABD))
    lo[FINGER_ANGLE_INDEX[:, 1]] = hi[FINGER_ANGLE_INDEX[:, 1]] = abd
    lo[THUMB_ANGLE_INDEX[:2]], hi[THUMB_ANGLE_INDEX[:2]] = np.deg2rad([55.0, 0.0]), np.deg2rad([65.0, 8.0])
    return rng.uniform(lo, hi)


def finger_flex_target(rng: np.random.Generator, depth: str) -> np.ndarray:
    """(mcp, pip, dip) radians of a bending finger: ``"tap"`` (half bent) or ``"wave"`` (mostly bent)."""
    if depth == "tap":
        return np.deg2rad(_angles(rng, (45, 60), (30, 50), (15, 30)))
    return np.deg2rad(_angles(rng, (55, 75), (60, 80), (35, 50)))


@functools.cache
def _pinch_solution(finger: str, geometry: HandGeometry, gap: float) -> tuple[float, ...]:
    """Thumb (4) and finger (mcp, pip, dip) angles that put the two tips ``gap`` metres apart.

    Damped Gauss–Newton on the residuals ``[|tip_thumb − tip_finger| − gap, w·(θ − θ_pref)]`` with a
    finite-difference Jacobian, clipped to the joint limits. ``θ_pref`` (a natural pinch) keeps the solution
    in the middle of the joint ranges. Lengths scale uniformly, so callers pass ``geometry.scaled(1)``.
    """
    fch = finger_channels(finger)
    var = np.concatenate([THUMB_ANGLE_INDEX, fch])  # (7,)
    pref = np.zeros(POSE_DIM)
    pref[FINGER_ANGLE_INDEX[:, 1]] = np.deg2rad(REST_ABD)
    pref[THUMB_ANGLE_INDEX] = np.deg2rad([15.0, 45.0, 20.0, 20.0])
    pref[fch] = np.deg2rad([40.0, 45.0, 25.0])
    ti, fi = TIPS["thumb"], TIPS[finger]
    damping, eps = 1e-3, 1e-6

    def residuals(poses: np.ndarray, weight: float) -> np.ndarray:  # (B, 26) → (B, 8)
        joints = local_joints(poses, geometry)  # (B, 21, 3)
        dist = np.linalg.norm(joints[:, ti] - joints[:, fi], axis=-1)
        return np.concatenate([(dist - gap)[:, None], weight * (poses[:, var] - pref[var])], axis=1)

    x = pref.copy()
    # A strongly regularised pass finds a natural pose, a weakly regularised one closes the remaining gap.
    for weight in [0.01] * 60 + [0.001] * 40:
        batch = np.repeat(x[None], len(var) + 1, axis=0)  # (8, 26)
        batch[np.arange(1, len(var) + 1), var] += eps
        res = residuals(batch, weight)
        jac = ((res[1:] - res[0]) / eps).T  # (8 residuals, 7 variables)
        step = -np.linalg.solve(jac.T @ jac + damping * np.eye(len(var)), jac.T @ res[0])
        x[var] = np.clip(x[var] + step, POSE_LOWER[var], POSE_UPPER[var])
    joints = local_joints(x, geometry)
    err = abs(float(np.linalg.norm(joints[ti] - joints[fi])) - gap)
    if err > 5e-4:
        raise RuntimeError(f"pinch solver did not converge for the {finger} finger (error {err * 1000:.1f} mm)")
    return tuple(x[var].tolist())


def pinch_shape(rng: np.random.Generator, finger: str, geometry: HandGeometry) -> np.ndarray:
    """Thumb tip on ``finger``'s tip (8 mm apart at scale 1); the other fingers loosely extended."""
    shape = rng.uniform(*_PINCH_OTHERS)
    sol = np.asarray(_pinch_solution(finger, geometry.scaled(1.0), 0.008))
    shape[_PINCH_CHANNELS[finger]] = sol
    return shape


_PINCH_OTHERS = _ranges((0, 20), (REST_ABD - 2, REST_ABD + 2), (0, 20), (0, 12), [(0, 0)] * 4)
_PINCH_CHANNELS = {f: np.concatenate([THUMB_ANGLE_INDEX, finger_channels(f)]) for f in LONG_FINGERS}


__all__ = [
    "FIST_ABD",
    "REST_ABD",
    "SPREAD_ABD",
    "curled_shape",
    "extended_shape",
    "finger_flex_target",
    "fist_shape",
    "flat_shape",
    "pinch_shape",
    "point_shape",
    "relaxed_shape",
    "spread_shape",
    "uniform",
]
