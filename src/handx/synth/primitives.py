"""Per-hand motion primitives, built as key poses on a timeline.

A :class:`HandPlan` holds one hand's start pose and a list of moves; each move drives some pose channels
(:mod:`handx.synth.hand`) to a target with a minimum-jerk profile ``s(τ) = 10τ³ − 15τ⁴ + 6τ⁵``. A move over
the frames ``[start, end)`` leaves the old pose on frame ``start`` and reaches its target on frame ``end − 1``,
the convention of the event segmentation of reference §2.2 (events ``[i, j)`` from ``x(i)`` to ``x(j − 1)``).

Every primitive (and every interaction, :mod:`handx.synth.interactions`) writes its ground-truth events
(:class:`handx.synth.program.Event`) and, for contacts, the expectations that the generator verifies on the
finished motion with the thresholds of reference §2.3–2.4 / §2.9 (tip–tip 2 cm, tip–palm 2.5 cm, palm–palm
2.5 cm).

Pinch contacts are made true by construction: the pinch poses are solved numerically per hand geometry
(thumb and finger angles, damped Gauss–Newton, cached) so that the two tips end 8 mm apart.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from handx.skeleton import TIPS
from handx.synth.hand import (
    FINGER_ANGLE_INDEX,
    FLEX_SLICE,
    LONG_FINGERS,
    POS_SLICE,
    POSE,
    POSE_DIM,
    POSE_LOWER,
    POSE_UPPER,
    ROT_SLICE,
    THUMB_ANGLE_INDEX,
    HandGeometry,
    finger_channels,
    local_joints,
)
from handx.synth.program import Event

FRAMES = 60
OTHER = {"left": "right", "right": "left"}

#: Per-hand primitives (the generator's ``kind`` names).
PRIMITIVES: tuple[str, ...] = (
    "fist", "open", "point",
    "pinch_index", "pinch_middle", "pinch_ring", "pinch_pinky",
    "spread", "close_fingers", "count", "finger_wave", "tap",
    "move_left", "move_right", "move_forward", "move_back", "move_up", "move_down",
    "rotate_palm_up", "rotate_palm_down", "bend_wrist_down", "bend_wrist_up",
    "hold_still",
)

#: Unit vectors of the wrist translation directions in the canonical frame (reference §1.2).
DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "left": (-1.0, 0.0, 0.0), "right": (1.0, 0.0, 0.0),
    "forward": (0.0, 1.0, 0.0), "back": (0.0, -1.0, 0.0),
    "up": (0.0, 0.0, 1.0), "down": (0.0, 0.0, -1.0),
}


# ------------------------------------------------------------------------------------------- timeline

def min_jerk(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile ``10u³ − 15u⁴ + 6u⁵`` for ``u`` in [0, 1] (clipped)."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (10.0 + u * (-15.0 + 6.0 * u))


@dataclasses.dataclass(frozen=True)
class Move:
    """Drive ``channels`` of the pose vector to ``target`` over frames ``[start, end)``."""

    channels: tuple[int, ...]
    start: int
    end: int
    target: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Expectation:
    """A contact the finished motion must show.

    ``kind`` is ``tip_tip``, ``tip_palm`` or ``palm_palm``; ``between`` names the two parts as in the program
    (``"left_index_tip"``, ``"right_palm"``); the contact must hold on every frame of ``[start, end)``, and the
    two parts must be apart (tips > 3 cm, palms > 3.5 cm) on every frame before ``apart_before``.
    """

    kind: str
    between: tuple[str, str]
    start: int
    end: int
    apart_before: int


class HandPlan:
    """One hand's timeline: start pose, moves and ground-truth events (a builder; see :meth:`render`)."""

    def __init__(self, side: str, pose0: np.ndarray):
        if side not in OTHER:
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        self.side = side
        self.pose0 = np.array(pose0, dtype=np.float64)  # (26,)
        self.moves: list[Move] = []
        self.events: list[Event] = []
        self.expect: list[Expectation] = []
        self._busy: dict[int, int] = {}  # channel → frame at which its last move ends

    # -- building
    def move(self, channels: np.ndarray, start: int, end: int, target: np.ndarray) -> None:
        """Add a minimum-jerk move; moves on one channel must not overlap in time."""
        channels = np.atleast_1d(np.asarray(channels, dtype=np.int64))
        target = np.broadcast_to(np.asarray(target, dtype=np.float64), channels.shape)
        if not 0 <= start < end <= FRAMES or end - start < 2:
            raise ValueError(f"move frames must satisfy 0 <= start < end - 1 < {FRAMES}, got [{start}, {end})")
        for c in channels.tolist():
            if self._busy.get(c, -1) > start:
                raise ValueError(f"overlapping moves on pose channel {c} at frame {start}")
            self._busy[c] = end - 1
        self.moves.append(Move(tuple(channels.tolist()), int(start), int(end), tuple(target.tolist())))

    def move_shape(self, start: int, end: int, shape: np.ndarray) -> None:
        """Move all finger and thumb angles to ``shape`` ``(20,)``."""
        self.move(np.arange(20), start, end, shape)

    def translate(self, start: int, end: int, delta: np.ndarray) -> None:
        """Move the wrist by ``delta`` ``(3,)`` metres."""
        idx = np.arange(POSE_DIM)[POS_SLICE]
        self.move(idx, start, end, self.value(start)[POS_SLICE] + np.asarray(delta))

    def rotate(self, start: int, end: int, rot: np.ndarray) -> None:
        """Turn the wrist to the anatomical angles ``rot`` ``(3,)`` (supination, flexion, yaw)."""
        self.move(np.arange(POSE_DIM)[ROT_SLICE], start, end, rot)

    def event(self, action: str, start: int, end: int, **params: object) -> None:
        self.events.append(Event(self.side, action, int(start), int(end), params))

    # -- evaluation
    def render(self, frames: int = FRAMES) -> np.ndarray:
        """Pose trajectory ``(frames, 26)`` (not yet clipped to joint limits)."""
        traj = np.repeat(self.pose0[None], frames, axis=0)  # (T, 26)
        t = np.arange(frames, dtype=np.float64)
        for mv in sorted(self.moves, key=lambda m: m.start):
            ch = np.asarray(mv.channels)
            s = min_jerk((t - mv.start) / (mv.end - 1 - mv.start))  # (T,)
            traj[:, ch] += s[:, None] * (np.asarray(mv.target) - traj[mv.start, ch])
        return traj

    def value(self, frame: int) -> np.ndarray:
        """The planned pose ``(26,)`` at ``frame`` given the moves added so far.

        Moves on one channel never overlap, so each move starts from the target of the previous one.
        """
        pose = self.pose0.copy()
        for mv in sorted(self.moves, key=lambda m: m.start):
            if mv.start >= frame:
                break
            ch = np.asarray(mv.channels)
            s = float(min_jerk(np.asarray((frame - mv.start) / (mv.end - 1 - mv.start))))
            pose[ch] += s * (np.asarray(mv.target) - pose[ch])
        return pose

    def is_static(self) -> bool:
        return not self.moves


def schedule(rng: np.random.Generator, window: tuple[int, int], parts: list[tuple[int, int]]
             ) -> list[tuple[int, int]]:
    """Consecutive intervals with random lengths in ``parts`` (inclusive ranges) placed at a random offset.

    Lengths are shrunk proportionally (to at least 2 frames) when they do not fit in ``window``.
    """
    lengths = np.array([rng.integers(lo, hi + 1) for lo, hi in parts], dtype=np.float64)
    avail = window[1] - window[0]
    if lengths.sum() > avail:
        lengths = np.maximum(np.floor(lengths * avail / lengths.sum()), 2.0)
        while lengths.sum() > avail:
            lengths[int(lengths.argmax())] -= 1
    lengths_i = lengths.astype(int)
    start = window[0] + int(rng.integers(0, avail - lengths_i.sum() + 1))
    out = []
    for n in lengths_i:
        out.append((start, start + int(n)))
        start += int(n)
    return out


# --------------------------------------------------------------------------------------------- shapes
# Hand shapes are the 20 finger and thumb angles of a pose vector, drawn in degrees and returned in radians.

REST_ABD = np.array([-6.0, -1.0, 5.0, 11.0])  # index, middle, ring, pinky (degrees)
SPREAD_ABD = np.array([-26.0, -3.0, 21.0, 44.0])
FIST_ABD = np.array([-2.0, -1.0, 2.0, 6.0])


def _shape(mcp: np.ndarray, abd: np.ndarray, pip: np.ndarray, dip: np.ndarray, thumb: np.ndarray) -> np.ndarray:
    out = np.empty(20)
    out[FINGER_ANGLE_INDEX[:, 0]] = mcp
    out[FINGER_ANGLE_INDEX[:, 1]] = abd
    out[FINGER_ANGLE_INDEX[:, 2]] = pip
    out[FINGER_ANGLE_INDEX[:, 3]] = dip
    out[THUMB_ANGLE_INDEX] = thumb
    return np.deg2rad(out)


def uniform(rng: np.random.Generator, lo: float, hi: float, n: int | None = None) -> np.ndarray:
    """``n`` uniform draws in ``[lo, hi)`` (a float when ``n`` is None)."""
    return rng.uniform(lo, hi, n)


def _angles(rng: np.random.Generator, *ranges: tuple[float, float]) -> np.ndarray:
    """One uniform draw per ``(lo, hi)`` range (degrees), e.g. a thumb's CMC yaw, CMC pitch, MCP and IP."""
    lo, hi = np.array(ranges, dtype=np.float64).T
    return rng.uniform(lo, hi)


def relaxed_shape(rng: np.random.Generator) -> np.ndarray:
    """A relaxed hand: fingers slightly curled (more towards the little finger; every finger joint < 28°, the
    "Fully extended" band of reference §2.3), thumb loosely abducted."""
    ramp = np.array([0.0, 2.0, 4.0, 6.0])
    return _shape(uniform(rng, 8, 21, 4) + ramp, REST_ABD + uniform(rng, -2, 2, 4),
                  uniform(rng, 10, 21, 4) + ramp, uniform(rng, 5, 15, 4),
                  _angles(rng, (35, 45), (12, 22), (5, 15), (5, 15)))


def curled_shape(rng: np.random.Generator) -> np.ndarray:
    """Fingers loosely curled (start of an opening hand)."""
    return _shape(uniform(rng, 35, 50, 4), REST_ABD, uniform(rng, 45, 65, 4), uniform(rng, 20, 35, 4),
                  _angles(rng, (25, 35), (25, 35), (15, 25), (15, 25)))


def extended_shape(rng: np.random.Generator) -> np.ndarray:
    """All fingers straight and together, thumb out."""
    return _shape(uniform(rng, -6, 2, 4), REST_ABD + uniform(rng, -1.5, 1.5, 4), uniform(rng, 0, 4, 4),
                  uniform(rng, 0, 4, 4), _angles(rng, (45, 55), (5, 12), (0, 6), (0, 6)))


def flat_shape(rng: np.random.Generator) -> np.ndarray:
    """A flat hand for palm contact: fingers slightly hyperextended, thumb alongside the index, out of the palm."""
    return _shape(uniform(rng, -8, -3, 4), REST_ABD, uniform(rng, 0, 2, 4), uniform(rng, 0, 2, 4),
                  _angles(rng, (12, 22), (-8, -4), (-5, 0), (-5, 0)))


def fist_shape(rng: np.random.Generator) -> np.ndarray:
    """A fist: every finger joint fully bent (> 60°, reference §2.3), the thumb wrapped over the middle
    phalanges."""
    return _shape(uniform(rng, 80, 90, 4), FIST_ABD, uniform(rng, 95, 105, 4), uniform(rng, 63, 72, 4),
                  _angles(rng, (-3, 3), (37, 43), (37, 43), (27, 33)))


def point_shape(rng: np.random.Generator, finger: str = "index") -> np.ndarray:
    """One finger straight, the others and the thumb as in a fist."""
    shape = fist_shape(rng)
    k = LONG_FINGERS.index(finger)
    mcp, pip, dip = _angles(rng, (-5, 3), (0, 5), (0, 5))
    shape[FINGER_ANGLE_INDEX[k]] = np.deg2rad([mcp, REST_ABD[k], pip, dip])
    return shape


def spread_shape(rng: np.random.Generator, amount: float) -> np.ndarray:
    """Straight fingers abducted by ``amount`` (0 = together, 1 = fully spread), thumb wide."""
    shape = extended_shape(rng)
    shape[FINGER_ANGLE_INDEX[:, 1]] = np.deg2rad(REST_ABD + amount * (SPREAD_ABD - REST_ABD))
    shape[THUMB_ANGLE_INDEX[:2]] = np.deg2rad(_angles(rng, (55, 65), (0, 8)))
    return shape


def finger_flex_target(rng: np.random.Generator, depth: str) -> np.ndarray:
    """(mcp, pip, dip) radians of a bending finger: ``"tap"`` (half bent) or ``"wave"`` (mostly bent)."""
    if depth == "tap":
        return np.deg2rad(_angles(rng, (45, 60), (30, 50), (15, 30)))
    return np.deg2rad(_angles(rng, (55, 75), (60, 80), (35, 50)))


@functools.lru_cache(maxsize=None)
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
    shape = _shape(uniform(rng, 0, 20, 4), REST_ABD + uniform(rng, -2, 2, 4), uniform(rng, 0, 20, 4),
                   uniform(rng, 0, 12, 4), np.zeros(4))
    sol = np.asarray(_pinch_solution(finger, geometry.scaled(1.0), 0.008))
    shape[np.concatenate([THUMB_ANGLE_INDEX, finger_channels(finger)])] = sol
    return shape


# ----------------------------------------------------------------------------------- per-hand primitives

@dataclasses.dataclass(frozen=True)
class PrimitiveContext:
    """Where a per-hand primitive may act: its frame window and how far its wrist may travel inwards."""

    window: tuple[int, int] = (0, FRAMES)
    inward_budget: float = 0.10
    geometry: HandGeometry = HandGeometry()

    def __post_init__(self) -> None:
        lo, hi = self.window
        if not 0 <= lo < hi <= FRAMES or hi - lo < 20:
            raise ValueError(
                f"PrimitiveContext.window must lie in [0, {FRAMES}] and span >= 20 frames, got {self.window}")


def _inward(side: str) -> str:
    return "right" if side == "left" else "left"


def _finger_pose_primitive(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str,
                           start_shape: np.ndarray, target: np.ndarray, action: str,
                           release: bool, **params: object) -> None:
    plan.pose0[FLEX_SLICE] = start_shape
    parts = [(6, 18), (6, 20)] + ([(6, 16)] if release else [])
    spans = schedule(rng, ctx.window, parts)
    (s0, e0) = spans[0]
    plan.move_shape(s0, e0, target)
    plan.event(action, s0, e0, primitive=name, **params)
    if release:
        s2, e2 = spans[2]
        plan.move_shape(s2, e2, relaxed_shape(rng))
        plan.event("release", s2, e2, primitive=name, reverse=True)


def _prim_fist(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    _finger_pose_primitive(plan, rng, ctx, name, relaxed_shape(rng), fist_shape(rng), "fist",
                           bool(rng.random() < 0.5), fingers=list(("thumb",) + LONG_FINGERS))


def _prim_open(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    _finger_pose_primitive(plan, rng, ctx, name, curled_shape(rng), extended_shape(rng), "open", False,
                           fingers=list(("thumb",) + LONG_FINGERS))


def _prim_point(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    _finger_pose_primitive(plan, rng, ctx, name, relaxed_shape(rng), point_shape(rng), "point",
                           bool(rng.random() < 0.4), fingers=["index"])


def _prim_pinch(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    finger = name.split("_", 1)[1]
    plan.pose0[FLEX_SLICE] = relaxed_shape(rng)
    release = bool(rng.random() < 0.5)
    spans = schedule(rng, ctx.window, [(6, 16), (8, 20)] + ([(6, 14)] if release else []))
    s0, e0 = spans[0]
    plan.move_shape(s0, e0, pinch_shape(rng, finger, ctx.geometry))
    plan.event("pinch", s0, e0, primitive=name, fingers=["thumb", finger])
    hold_end = spans[1][1]
    if release:
        s2, e2 = spans[2]
        plan.move_shape(s2, e2, relaxed_shape(rng))
        plan.event("release", s2, e2, primitive=name, reverse=True, fingers=["thumb", finger])
    plan.expect.append(Expectation("tip_tip", (f"{plan.side}_thumb_tip", f"{plan.side}_{finger}_tip"),
                                   e0 - 1, hold_end, s0))


def _prim_spread(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    plan.pose0[FLEX_SLICE] = extended_shape(rng)
    amount = float(uniform(rng, 0.92, 1.0))
    back = bool(rng.random() < 0.4)
    spans = schedule(rng, ctx.window, [(6, 16), (6, 20)] + ([(6, 14)] if back else []))
    s0, e0 = spans[0]
    plan.move_shape(s0, e0, spread_shape(rng, amount))
    plan.event("spread", s0, e0, primitive=name, amount=round(amount, 3))
    if back:
        s2, e2 = spans[2]
        plan.move_shape(s2, e2, extended_shape(rng))
        plan.event("close_fingers", s2, e2, primitive=name, reverse=True)


def _prim_close_fingers(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    plan.pose0[FLEX_SLICE] = spread_shape(rng, float(uniform(rng, 0.92, 1.0)))
    (s0, e0), _ = schedule(rng, ctx.window, [(6, 16), (6, 20)])
    plan.move_shape(s0, e0, extended_shape(rng))
    plan.event("close_fingers", s0, e0, primitive=name)


def _prim_count(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    plan.pose0[FLEX_SLICE] = fist_shape(rng)
    lo, hi = ctx.window
    n = int(rng.integers(2, 6))
    durs = rng.integers(5, 10, 5)
    gaps = rng.integers(5, 11, 5)
    while n > 1 and int(gaps[: n - 1].sum() + durs[n - 1]) > hi - lo:
        gaps = np.maximum(gaps - 1, 4)
        durs = np.maximum(durs - 1, 4)
        if int(gaps[: n - 1].sum() + durs[n - 1]) > hi - lo and gaps.max() == 4:
            n -= 1
    order = ["index", "middle", "ring", "pinky", "thumb"][:n]
    target = extended_shape(rng)
    total = int(gaps[: n - 1].sum() + durs[n - 1])
    start = lo + int(rng.integers(0, hi - lo - total + 1))
    steps = []
    t = start
    for k, finger in enumerate(order):
        ch = finger_channels(finger)
        plan.move(ch, t, t + int(durs[k]), target[ch])
        steps.append([finger, t, t + int(durs[k])])
        t += int(gaps[k])
    plan.event("count", start, max(s[2] for s in steps), primitive=name, fingers=order, count=n, steps=steps)


def _prim_finger_wave(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    plan.pose0[FLEX_SLICE] = extended_shape(rng)
    order = list(LONG_FINGERS) if rng.random() < 0.5 else list(LONG_FINGERS[::-1])
    repeats = int(rng.integers(1, 3))
    half = int(rng.integers(4, 7))
    stagger = int(rng.integers(2, 5))
    wave_len = 3 * stagger + 2 * half
    lo, hi = ctx.window
    while repeats * wave_len > hi - lo and repeats > 1:
        repeats -= 1
    start = lo + int(rng.integers(0, max(hi - lo - repeats * wave_len, 0) + 1))
    steps = []
    for r in range(repeats):
        for k, finger in enumerate(order):
            ch = finger_channels(finger)
            t0 = start + r * wave_len + k * stagger
            plan.move(ch, t0, t0 + half, finger_flex_target(rng, "wave"))
            plan.move(ch, t0 + half, t0 + 2 * half, plan.pose0[ch])
            steps.append([finger, t0, t0 + 2 * half])
    plan.event("finger_wave", start, max(s[2] for s in steps), primitive=name, fingers=order, repeats=repeats,
               steps=steps)


def _prim_tap(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    plan.pose0[FLEX_SLICE] = relaxed_shape(rng)
    finger = "index" if rng.random() < 0.7 else "middle"
    repeats = int(rng.integers(2, 4))
    ch = finger_channels(finger)
    spans = schedule(rng, ctx.window, [(3, 6), (3, 6), (0, 3)] * repeats)
    bent = finger_flex_target(rng, "tap")
    for r in range(repeats):
        (a0, a1), (b0, b1) = spans[3 * r], spans[3 * r + 1]
        plan.move(ch, a0, a1, bent)
        plan.move(ch, b0, b1, plan.pose0[ch])
    plan.event("tap", spans[0][0], spans[3 * repeats - 2][1], primitive=name, fingers=[finger], repeats=repeats)


def _prim_move(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    direction = name.split("_", 1)[1]
    plan.pose0[FLEX_SLICE] = relaxed_shape(rng)
    hi = 0.15
    if direction == _inward(plan.side):
        hi = min(hi, ctx.inward_budget)
    distance = float(uniform(rng, 0.05, max(hi, 0.05))) if hi >= 0.05 else float(hi)
    back = bool(rng.random() < 0.3)
    spans = schedule(rng, ctx.window, [(12, 28), (4, 14)] + ([(12, 24)] if back else []))
    s0, e0 = spans[0]
    unit = np.asarray(DIRECTIONS[direction])
    plan.translate(s0, e0, unit * distance)
    plan.event("move", s0, e0, primitive=name, direction=direction, distance=round(distance, 4))
    if back:
        s2, e2 = spans[2]
        plan.translate(s2, e2, -unit * distance)
        plan.event("move", s2, e2, primitive=name, reverse=True, direction=_opposite(direction),
                   distance=round(distance, 4))


def _opposite(direction: str) -> str:
    pairs = {"left": "right", "forward": "back", "up": "down"}
    pairs.update({v: k for k, v in pairs.items()})
    return pairs[direction]


def _prim_rotate(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    up = name == "rotate_palm_up"
    plan.pose0[FLEX_SLICE] = relaxed_shape(rng)
    low, high = float(uniform(rng, -5, 15)), float(uniform(rng, 150, 180))
    sup0, sup1 = (low, high) if up else (high, low)
    plan.pose0[POSE["wrist_supination"]] = np.deg2rad(sup0)
    (s0, e0), _ = schedule(rng, ctx.window, [(12, 30), (4, 14)])
    rot = plan.pose0[ROT_SLICE].copy()
    rot[0] = np.deg2rad(sup1)
    plan.rotate(s0, e0, rot)
    plan.event("rotate", s0, e0, primitive=name, direction="palm_up" if up else "palm_down",
               angle=round(abs(sup1 - sup0), 1))


def _prim_bend(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    down = name == "bend_wrist_down"
    plan.pose0[FLEX_SLICE] = relaxed_shape(rng)
    flex0 = float(uniform(rng, -5, 5))
    flex1 = float(uniform(rng, 35, 60)) if down else -float(uniform(rng, 30, 55))
    plan.pose0[POSE["wrist_flexion"]] = np.deg2rad(flex0)
    back = bool(rng.random() < 0.4)
    spans = schedule(rng, ctx.window, [(10, 24), (4, 14)] + ([(10, 20)] if back else []))
    s0, e0 = spans[0]
    rot = plan.pose0[ROT_SLICE].copy()
    rot[1] = np.deg2rad(flex1)
    plan.rotate(s0, e0, rot)
    plan.event("bend_wrist", s0, e0, primitive=name, direction="down" if down else "up",
               angle=round(abs(flex1 - flex0), 1))
    if back:
        s2, e2 = spans[2]
        rot[1] = np.deg2rad(flex0)
        plan.rotate(s2, e2, rot)
        plan.event("bend_wrist", s2, e2, primitive=name, reverse=True, direction="up" if down else "down",
                   angle=round(abs(flex1 - flex0), 1))


def _prim_hold(plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext, name: str) -> None:
    plan.pose0[FLEX_SLICE] = relaxed_shape(rng)
    plan.event("hold_still", 0, FRAMES, primitive=name, palm=palm_facing(plan.pose0))


def palm_facing(pose: np.ndarray) -> str:
    """Where the palm of a pose ``(26,)`` faces: ``"down"``, ``"in"`` (towards the other hand) or ``"up"``."""
    sup = float(np.rad2deg(pose[POSE["wrist_supination"]]))
    return "down" if sup < 45 else ("in" if sup < 135 else "up")


_BUILDERS: dict[str, Callable[[HandPlan, np.random.Generator, PrimitiveContext, str], None]] = {
    "fist": _prim_fist, "open": _prim_open, "point": _prim_point,
    "spread": _prim_spread, "close_fingers": _prim_close_fingers, "count": _prim_count,
    "finger_wave": _prim_finger_wave, "tap": _prim_tap,
    "rotate_palm_up": _prim_rotate, "rotate_palm_down": _prim_rotate,
    "bend_wrist_down": _prim_bend, "bend_wrist_up": _prim_bend, "hold_still": _prim_hold,
}
_BUILDERS.update({f"pinch_{f}": _prim_pinch for f in LONG_FINGERS})
_BUILDERS.update({f"move_{d}": _prim_move for d in DIRECTIONS})
assert set(_BUILDERS) == set(PRIMITIVES)


def build_primitive(name: str, plan: HandPlan, rng: np.random.Generator, ctx: PrimitiveContext) -> None:
    """Write primitive ``name`` into ``plan`` (its start shape, moves, events and contact expectations)."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown primitive {name!r}; expected one of {', '.join(PRIMITIVES)}")
    _BUILDERS[name](plan, rng, ctx, name)
