"""Per-hand sequences: finger primitives played back to back, with a wrist primitive overlaid.

HandX keeps only clips in which both hands move (the intensity filter of reference §2.6 and Appendix B: the
weighted joint angular speed must reach 25 deg/s on each hand and 30 deg/s on average), so a hand of a
synthetic clip rarely performs one gesture in its two seconds. Here it performs a random walk of 2–4 finger
primitives over the grammar of :data:`handx.synth.primitives.STARTS`, each starting from the shape the
previous one left, laid out back to back with random durations and short holds (:func:`build_sequence`); a
share of hands also translates, turns or bends the wrist meanwhile (:func:`hand_program`). The interactions
of :mod:`handx.synth.interactions` use the same walks before and after their contact phases.

The walk favours primitives that move many joints far (a fist, opening, a finger wave) over small ones (a
pinch, spreading) until the sequence's estimated finger travel reaches :attr:`SequenceConfig.min_travel`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from handx.synth.hand import FLEX_SLICE, HandGeometry
from handx.synth.primitives import (
    ALLOWED,
    FINGER_PRIMITIVES,
    WRIST_PRIMITIVES,
    Step,
    base_name,
    can_start,
    plan_step,
    state_shape,
    write_hold,
    write_step,
)
from handx.synth.timeline import FRAMES, HandPlan, schedule


@dataclasses.dataclass(frozen=True)
class SequenceConfig:
    """How dense and varied the per-hand programs are.

    Attributes:
        min_primitives: fewest finger primitives of a hand's sequence over a whole clip ...
        max_primitives: ... and most.
        single_fraction: share of whole-clip sequences with a single finger primitive.
        still_fraction: share of independent hands that hold still over the whole clip.
        wrist_fraction: share of whole-clip sequences with a wrist primitive (translation, forearm rotation,
            wrist bend) overlaid.
        max_hold: longest hold between consecutive finger primitives (frames).
        min_travel: finger travel a sequence aims for (degrees of weighted bend-angle change averaged over the
            five fingers, the measure of the intensity filter; 50 ≈ 25 deg/s over a clip): until the walk's
            estimate reaches it, primitives are drawn in proportion to their travel as well as their weight.
    """

    min_primitives: int = 2
    max_primitives: int = 4
    single_fraction: float = 0.03
    still_fraction: float = 0.02
    wrist_fraction: float = 0.35
    max_hold: int = 5
    min_travel: float = 90.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_primitives <= self.max_primitives <= 6:
            raise ValueError("SequenceConfig.min_primitives and .max_primitives must satisfy "
                             f"1 <= min <= max <= 6, got {self.min_primitives} and {self.max_primitives}")
        for name in ("single_fraction", "still_fraction", "wrist_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SequenceConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.max_hold <= 20:
            raise ValueError(f"SequenceConfig.max_hold must be in [0, 20] frames, got {self.max_hold}")
        if self.min_travel < 0:
            raise ValueError(f"SequenceConfig.min_travel must be >= 0, got {self.min_travel}")


#: How often the walk picks each finger primitive (relative weights among those allowed).
WEIGHTS: dict[str, float] = {
    "fist": 2.5, "open": 3.0, "point": 1.5,
    "pinch_index": 1.0, "pinch_middle": 0.7, "pinch_ring": 0.5, "pinch_pinky": 0.5,
    "spread": 2.0, "close_fingers": 4.0, "count": 2.0, "finger_wave": 2.0, "tap": 1.5,
}
#: Rough finger travel of each primitive (degrees, as in :attr:`SequenceConfig.min_travel`), measured on
#: generated clips; returns (release, way back) and repeats add theirs.
TRAVEL: dict[str, float] = {
    "fist": 60.0, "open": 60.0, "point": 45.0, "pinch": 15.0, "spread": 12.0, "close_fingers": 12.0,
    "count": 16.0, "finger_wave": 100.0, "tap": 18.0,
}
_STRONG = {name: WEIGHTS[name] * (TRAVEL[base_name(name)] / 30.0) ** 0.5 for name in FINGER_PRIMITIVES}
_START_STATES = ("relaxed", "curled", "extended", "fist", "spread")
_START_WEIGHTS = (0.43, 0.2, 0.2, 0.15, 0.02)
_WRIST_WEIGHTS: dict[str, float] = {name: 1.5 if name.startswith("rotate") else 1.0 for name in WRIST_PRIMITIVES}


def pick(rng: np.random.Generator, names: list[str] | tuple[str, ...], weights: list[float] | tuple[float, ...]) -> str:
    """One of ``names`` with probability proportional to ``weights`` (one uniform draw)."""
    total = sum(weights)
    u = rng.random() * total
    for name, w in zip(names, weights):
        u -= w
        if u < 0:
            return name
    return names[-1]


def step_travel(step: Step) -> float:
    """Estimated finger travel of a step (see :data:`TRAVEL`)."""
    base = base_name(step.name)
    travel = TRAVEL.get(base, 0.0)
    if base == "count":
        return travel * int(step.options["count"])
    if base in ("finger_wave", "tap"):
        return travel * int(step.options["repeats"])
    if step.options.get("release") or step.options.get("back"):
        return 2.0 * travel
    return travel


def start_state(rng: np.random.Generator, allows: str | None = None) -> str:
    """A random start shape for a hand (relaxed, curled, extended, fist or spread), one from which finger
    primitive ``allows`` may start when given."""
    states, weights = _START_STATES, _START_WEIGHTS
    if allows is not None:
        keep = [k for k, s in enumerate(states) if can_start(allows, s)]
        states, weights = tuple(states[k] for k in keep), tuple(weights[k] for k in keep)
    return pick(rng, states, weights)


def walk(rng: np.random.Generator, state: str, count: int, frames: int, *, forced: str | None = None,
         forced_at: int | None = None, then: str | None = None, min_travel: float = 0.0,
         attempts: int = 16) -> list[Step] | None:
    """A random walk of ``count`` finger primitives from hand shape ``state`` over the grammar.

    The steps' shortest lengths (holds aside) fit in ``frames``; ``forced`` is played as step ``forced_at``;
    ``then`` must be allowed from the last step's shape. Returns None when no walk is found in ``attempts``.
    """
    for _ in range(attempts):
        steps: list[Step] = []
        current, used, travel = state, 0, 0.0
        for k in range(count):
            reserve = 6 * (count - k - 1)  # the shortest possible later steps
            if k == forced_at:
                if forced is None or not can_start(forced, current):
                    break
                step = plan_step(forced, rng, state=current)
            else:
                names = [n for n in ALLOWED[current] if n != forced]
                weights = [(_STRONG if travel < min_travel else WEIGHTS)[n] for n in names]
                step = plan_step(pick(rng, names, weights), rng, state=current)
            need = sum(lo for lo, _ in step.parts)
            if used + need + reserve > frames:
                break
            steps.append(step)
            current, used, travel = step.end_state, used + need, travel + step_travel(step)
        else:
            if then is None or can_start(then, current):
                return steps
    return None


def build_sequence(plan: HandPlan, rng: np.random.Generator, window: tuple[int, int], steps: list[Step],
                   geometry: HandGeometry, *, align: str = "random", max_hold: int = 5,
                   inward_budget: float = 0.15) -> None:
    """Lay ``steps`` out back to back in ``window`` (holds of 0–``max_hold`` frames between) and write them.

    Each step starts from the pose the previous one left, so consecutive primitives blend continuously.
    """
    parts: list[tuple[int, int]] = []
    owner: list[int] = []
    for k, step in enumerate(steps):
        if k:
            parts.append((0, max_hold))
            owner.append(-1)
        parts.extend(step.parts)
        owner.extend([k] * len(step.parts))
    spans = schedule(rng, window, parts, align)
    for k, step in enumerate(steps):
        write_step(plan, rng, step, [sp for sp, o in zip(spans, owner) if o == k], geometry, inward_budget)


def phase(plan: HandPlan, rng: np.random.Generator, window: tuple[int, int], state: str, geometry: HandGeometry,
          config: SequenceConfig, *, then: str | None = None, align: str = "random",
          min_travel: float | None = None) -> str:
    """Finger primitives of one hand within ``window`` (a part of a clip), from shape ``state``.

    As many as fit (one per 10 frames, at most :attr:`SequenceConfig.max_primitives`); ``then`` must be
    allowed from the shape the phase ends in (the caller guarantees it is allowed from ``state``, which is
    kept when no walk fits); ``min_travel`` defaults to half the config's. Returns the end shape.
    """
    length = window[1] - window[0]
    most = min(config.max_primitives, length // 10)
    if most <= 0:
        return state
    count = int(rng.integers(max(1, most - 1), most + 1))
    travel = config.min_travel / 2 if min_travel is None else min_travel
    steps = walk(rng, state, count, length, then=then, min_travel=travel)
    if not steps:
        return state
    build_sequence(plan, rng, window, steps, geometry, align=align, max_hold=config.max_hold)
    return steps[-1].end_state


def hand_program(plan: HandPlan, rng: np.random.Generator, geometry: HandGeometry, config: SequenceConfig, *,
                 inward_budget: float, forced: str | None = None, may_hold: bool = True) -> None:
    """A whole-clip program for one hand: a finger sequence with an optional wrist primitive overlaid, or
    (a share :attr:`SequenceConfig.still_fraction` when ``may_hold``) holding still.

    ``forced`` (any of :data:`handx.synth.primitives.PRIMITIVES`) is made part of the program.
    """
    if forced == "hold_still" or (forced is None and may_hold and rng.random() < config.still_fraction):
        plan.pose0[FLEX_SLICE] = state_shape(rng, start_state(rng))
        write_hold(plan, 0, FRAMES)
        return
    wrist = forced if forced in WRIST_PRIMITIVES else None
    if wrist is None and rng.random() < config.wrist_fraction:
        wrist = pick(rng, WRIST_PRIMITIVES, tuple(_WRIST_WEIGHTS.values()))
    finger = forced if forced in FINGER_PRIMITIVES else None
    single = rng.random() < config.single_fraction
    count = 1 if single else int(rng.integers(config.min_primitives, config.max_primitives + 1))
    state = start_state(rng)
    forced_at = int(rng.integers(0, count)) if finger else None
    steps = walk(rng, state, count, FRAMES, forced=finger, forced_at=forced_at, min_travel=config.min_travel)
    if steps is None and finger is not None:  # start with the forced primitive, from a shape that allows it
        state, forced_at = start_state(rng, allows=finger), 0
        steps = walk(rng, state, count, FRAMES, forced=finger, forced_at=0, min_travel=config.min_travel)
    while steps is None and count > 1 and finger is None:  # a shorter sequence then
        count -= 1
        steps = walk(rng, state, count, FRAMES, min_travel=config.min_travel)
    if steps is None:
        raise RuntimeError(f"no finger sequence of {count} primitive(s) from {state!r} fits the clip")
    plan.pose0[FLEX_SLICE] = state_shape(rng, state)
    build_sequence(plan, rng, (0, FRAMES), steps, geometry, max_hold=config.max_hold, inward_budget=inward_budget)
    if wrist is not None:
        step = plan_step(wrist, rng)
        write_step(plan, rng, step, schedule(rng, (0, FRAMES), list(step.parts)), geometry, inward_budget)


__all__ = [
    "TRAVEL",
    "WEIGHTS",
    "SequenceConfig",
    "build_sequence",
    "hand_program",
    "phase",
    "pick",
    "start_state",
    "step_travel",
    "walk",
]
