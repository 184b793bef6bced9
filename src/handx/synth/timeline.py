"""One hand's timeline: a start pose and minimum-jerk moves of its pose channels, with its events.

A :class:`HandPlan` holds one hand's start pose and a list of moves; each move drives some pose channels
(:mod:`handx.synth.hand`) to a target with a minimum-jerk profile ``s(τ) = 10τ³ − 15τ⁴ + 6τ⁵``. A move over
the frames ``[start, end)`` leaves the old pose on frame ``start`` and reaches its target on frame ``end − 1``,
the convention of the event segmentation of reference §2.2 (events ``[i, j)`` from ``x(i)`` to ``x(j − 1)``).
Every move starts from where the previous move on its channels ended, with zero velocity and acceleration, so
moves played back to back blend without jumps. :func:`schedule` lays consecutive phases out in time.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from handx.synth.hand import POS_SLICE, POSE_DIM, ROT_SLICE
from handx.synth.program import Event

FRAMES = 60
OTHER = {"left": "right", "right": "left"}
_SHAPE_CHANNELS = np.arange(20)


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
    two parts must be apart (tips > 3 cm, palms > 3.5 cm) on every frame of ``[apart_from, apart_before)``.
    ``end = None`` means "until the hand next moves one of ``channels``" (a pinch held until the next
    primitive), resolved by :meth:`HandPlan.expectations` once the plan is complete.
    """

    kind: str
    between: tuple[str, str]
    start: int
    end: int | None
    apart_before: int
    apart_from: int = 0
    channels: tuple[int, ...] = ()


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
        chans = np.atleast_1d(channels).tolist()
        values = np.asarray(target, dtype=np.float64).tolist()
        values = [values] * len(chans) if isinstance(values, float) else values
        if len(values) != len(chans):
            raise ValueError(f"a move needs one target per channel, got {len(values)} for {len(chans)} channels")
        if not 0 <= start < end <= FRAMES or end - start < 2:
            raise ValueError(f"move frames must satisfy 0 <= start < end - 1 < {FRAMES}, got [{start}, {end})")
        busy = self._busy
        for c in chans:
            if busy.get(c, -1) > start:
                raise ValueError(f"overlapping moves on pose channel {c} at frame {start}")
            busy[c] = end - 1
        self.moves.append(Move(tuple(chans), int(start), int(end), tuple(values)))

    def move_shape(self, start: int, end: int, shape: np.ndarray) -> None:
        """Move all finger and thumb angles to ``shape`` ``(20,)``."""
        self.move(_SHAPE_CHANNELS, start, end, shape)

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
    def _profile(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start frames ``(M,)``, durations ``(M,)`` and pose changes ``(M, 26)`` of the moves, by start.

        Moves on one channel never overlap, so each starts from the target of the previous one (or the start
        pose) and the trajectory is ``pose0 + Σ_m s_m(t)·Δ_m`` with ``s_m`` the move's minimum-jerk profile.
        """
        moves = sorted(self.moves, key=lambda m: m.start)
        last = self.pose0.copy()
        deltas = np.zeros((len(moves), POSE_DIM))
        for k, mv in enumerate(moves):
            ch = list(mv.channels)
            target = np.asarray(mv.target)
            deltas[k, ch] = target - last[ch]
            last[ch] = target
        starts = np.array([mv.start for mv in moves], dtype=np.float64)
        spans = np.array([mv.end - 1 - mv.start for mv in moves], dtype=np.float64)
        return starts, spans, deltas

    def render(self, frames: int = FRAMES) -> np.ndarray:
        """Pose trajectory ``(frames, 26)`` (not yet clipped to joint limits)."""
        starts, spans, deltas = self._profile()
        t = np.arange(frames, dtype=np.float64)
        s = min_jerk((t[None, :] - starts[:, None]) / spans[:, None])  # (M, T)
        return self.pose0 + s.T @ deltas  # (T, 26)

    def value(self, frame: int) -> np.ndarray:
        """The planned pose ``(26,)`` at ``frame`` given the moves added so far."""
        starts, spans, deltas = self._profile()
        return self.pose0 + min_jerk((frame - starts) / spans) @ deltas

    def is_static(self) -> bool:
        return not self.moves

    def expectations(self) -> list[Expectation]:
        """The contact expectations with every open end resolved (see :class:`Expectation`)."""
        out = []
        for ex in self.expect:
            if ex.end is None:
                chans = set(ex.channels)
                end = min((mv.start for mv in self.moves if mv.start >= ex.start and chans & set(mv.channels)),
                          default=FRAMES)
                ex = dataclasses.replace(ex, end=max(end, ex.start + 1))
            out.append(ex)
        return out


def schedule(rng: np.random.Generator, window: tuple[int, int], parts: list[tuple[int, int]],
             align: str = "random") -> list[tuple[int, int]]:
    """Consecutive intervals with random lengths in ``parts`` (inclusive ranges) placed in ``window``.

    When the lengths do not fit, each is shrunk towards its lower bound; when even the lower bounds do not
    fit, all shrink proportionally, moves (lower bound >= 4) to at least 4 frames. ``align`` places the block
    at the start of the window, at its end or at a random offset (``"start"``, ``"end"``, ``"random"``).
    """
    lo = np.array([p[0] for p in parts], dtype=np.int64)
    hi = np.array([p[1] for p in parts], dtype=np.int64)
    lengths = rng.integers(lo, hi + 1)
    avail = window[1] - window[0]
    if lengths.sum() > avail:
        if lo.sum() <= avail:
            extra = lengths - lo
            lengths = lo + np.floor(extra * ((avail - lo.sum()) / extra.sum())).astype(np.int64)
        else:
            floor = np.minimum(lo, 4)
            lengths = np.maximum(np.floor(lo * (avail / lo.sum())).astype(np.int64), floor)
            while lengths.sum() > avail:
                slack = np.where(lengths > floor, lengths, -1)
                if slack.max() < 0:
                    raise ValueError(f"parts {parts} cannot fit in the window {window}")
                lengths[int(slack.argmax())] -= 1
    free = avail - int(lengths.sum())
    if align == "start":
        start = window[0]
    elif align == "end":
        start = window[0] + free
    elif align == "random":
        start = window[0] + int(rng.integers(0, free + 1))
    else:
        raise ValueError(f"align must be 'start', 'end' or 'random', got {align!r}")
    ends = start + np.cumsum(lengths)
    return list(zip((ends - lengths).tolist(), ends.tolist()))



__all__ = ["FRAMES", "OTHER", "Expectation", "HandPlan", "Move", "min_jerk", "schedule"]
