"""Per-hand motion primitives: the steps of a hand's sequence, written onto its timeline.

A primitive is used in two stages: :func:`plan_step` draws its options (which finger, whether it releases,
how many repeats) and the length ranges of its phases into a :class:`Step`; once the hand's sequence has been
laid out in time (:func:`handx.synth.timeline.schedule`, :mod:`handx.synth.sequence`), :func:`write_step`
writes its moves onto the hand's :class:`~handx.synth.timeline.HandPlan`, its ground-truth events
(:class:`handx.synth.program.Event`) and, for contacts, the expectations that the generator verifies on the
finished motion with the thresholds of reference §2.3–2.4 / §2.9 (tip–tip 2 cm, tip–palm 2.5 cm, palm–palm
2.5 cm). Each primitive starts from the pose the previous one left.

Finger primitives change the hand shape (:mod:`handx.synth.shapes`) and have a small grammar: :data:`STARTS`
says from which shapes (:data:`STATES`) each may start, so that every event stays true of the motion (a hand
opens only when some finger is bent, counts only from a fist, spreads only straight fingers, pinches only
when the two tips are apart). Wrist primitives (translation, forearm rotation, wrist flexion) touch only the
wrist channels and are overlaid on the finger sequence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from handx.synth.hand import (
    LONG_FINGERS,
    POSE,
    ROT_SLICE,
    THUMB_ANGLE_INDEX,
    HandGeometry,
    finger_channels,
)
from handx.synth.shapes import (
    curled_shape,
    extended_shape,
    finger_flex_target,
    fist_shape,
    flat_shape,
    pinch_shape,
    point_shape,
    relaxed_shape,
    spread_shape,
    uniform,
)
from handx.synth.timeline import Expectation, HandPlan

FINGER_PRIMITIVES: tuple[str, ...] = (
    "fist", "open", "point",
    "pinch_index", "pinch_middle", "pinch_ring", "pinch_pinky",
    "spread", "close_fingers", "count", "finger_wave", "tap",
)
#: Primitives of the wrist alone (overlaid on the finger sequence).
WRIST_PRIMITIVES: tuple[str, ...] = (
    "move_left", "move_right", "move_forward", "move_back", "move_up", "move_down",
    "rotate_palm_up", "rotate_palm_down", "bend_wrist_down", "bend_wrist_up",
)
#: Per-hand primitives (the generator's ``kind`` names).
PRIMITIVES: tuple[str, ...] = (*FINGER_PRIMITIVES, *WRIST_PRIMITIVES, "hold_still")

#: Unit vectors of the wrist translation directions in the canonical frame (reference §1.2).
DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "left": (-1.0, 0.0, 0.0), "right": (1.0, 0.0, 0.0),
    "forward": (0.0, 1.0, 0.0), "back": (0.0, -1.0, 0.0),
    "up": (0.0, 0.0, 1.0), "down": (0.0, 0.0, -1.0),
}


# ---------------------------------------------------------------------------------------------- grammar

#: Hand shapes between finger primitives (``point_middle``: pointing with the middle finger).
STATES: tuple[str, ...] = ("relaxed", "curled", "extended", "flat", "spread", "fist", "point", "point_middle",
                           "pinch", "count")
_ALL_STATES = frozenset(STATES)
#: The shapes each finger primitive may start from, so that its event is true of the motion: opening needs a
#: bent finger, counting a fist, spreading and waving straight fingers, a pinch tips that are apart (> 3 cm).
STARTS: MappingProxyType[str, frozenset[str]] = MappingProxyType({
    "fist": _ALL_STATES - {"fist"},
    "open": frozenset({"fist", "point", "point_middle", "pinch", "count", "curled"}),
    "point": _ALL_STATES - {"point"},
    "pinch": frozenset({"relaxed", "extended", "flat", "spread", "fist"}),
    "spread": frozenset({"extended", "flat"}),
    "close_fingers": frozenset({"spread"}),
    "count": frozenset({"fist"}),
    "finger_wave": frozenset({"extended", "flat", "spread"}),
    "tap": frozenset({"relaxed", "extended", "flat", "spread", "point"}),
})
_RELEASE = {"fist": 0.3, "point": 0.3, "pinch": 0.4}


def _family(name: str) -> str:
    for prefix in ("pinch", "move", "rotate", "bend_wrist"):
        if name.startswith(prefix + "_"):
            return prefix
    return name


_FAMILY = {name: _family(name) for name in PRIMITIVES}


def base_name(name: str) -> str:
    """The primitive family of a name: ``pinch_ring`` → ``pinch``, ``move_up`` → ``move``, ``rotate_palm_up``
    → ``rotate``, ``bend_wrist_down`` → ``bend_wrist``."""
    family = _FAMILY.get(name)
    return family if family is not None else _family(name)


def can_start(name: str, state: str) -> bool:
    """Whether finger primitive ``name`` may start from hand shape ``state``."""
    return state in STARTS[base_name(name)]


#: The finger primitives allowed from each hand shape, in :data:`FINGER_PRIMITIVES` order.
ALLOWED: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {state: tuple(n for n in FINGER_PRIMITIVES if can_start(n, state)) for state in STATES})


def state_shape(rng: np.random.Generator, state: str) -> np.ndarray:
    """A hand shape ``(20,)`` for a start state (``relaxed``, ``curled``, ``extended``, ``flat``, ``fist``,
    ``spread``)."""
    if state == "relaxed":
        return relaxed_shape(rng)
    if state == "curled":
        return curled_shape(rng)
    if state == "extended":
        return extended_shape(rng)
    if state == "flat":
        return flat_shape(rng)
    if state == "fist":
        return fist_shape(rng)
    if state == "spread":
        return spread_shape(rng, float(uniform(rng, 0.92, 1.0)))
    raise ValueError(f"no start shape for state {state!r}")


# ------------------------------------------------------------------------------------------------ steps

@dataclasses.dataclass(frozen=True)
class Step:
    """A primitive drawn for a hand's sequence, before it is placed in time.

    Attributes:
        name: the primitive (:data:`PRIMITIVES`).
        parts: inclusive length ranges (frames) of its consecutive phases (the move, then for a return a hold
            and the way back), laid out by :func:`handx.synth.timeline.schedule`.
        end_state: the hand shape it leaves (:data:`STATES`; wrist primitives keep the shape).
        options: what was drawn: ``label`` (the ``primitive`` written into its events), ``release``/``back``
            (whether it returns), ``finger``, ``repeats``, ``count``, ``amount`` (of a spread) and ``target``
            (a hand shape ``(20,)`` imposed by an interaction).
    """

    name: str
    parts: tuple[tuple[int, int], ...]
    end_state: str
    options: Mapping[str, object] = dataclasses.field(default_factory=dict)


_FINGERS_ALL = ["thumb", *LONG_FINGERS]


def plan_step(name: str, rng: np.random.Generator, *, state: str = "relaxed", target: np.ndarray | None = None,
              finger: str = "index", end_state: str | None = None, label: str | None = None,
              release: bool | None = None) -> Step:
    """Draw the options and phase lengths of primitive ``name`` started from hand shape ``state``.

    ``target`` imposes the final hand shape of ``open`` or ``point`` (an interaction's contact shape, whose
    state is ``end_state``); ``finger`` is the pointing finger; ``label`` the ``primitive`` of its events;
    ``release`` decides whether a fist, point or pinch relaxes again (drawn when None).
    """
    base = base_name(name)
    opts: dict[str, object] = {"label": label or name}
    if target is not None:
        opts["target"] = np.asarray(target)
    if base in _RELEASE:
        release = bool(rng.random() < _RELEASE[base]) if release is None else release
        opts["release"] = release
        main = [(6, 14), (3, 10)] if base == "pinch" else [(6, 14)]
        parts = main + ([(6, 12)] if base == "pinch" else [(2, 8), (6, 12)]) * release
        if base == "point":
            opts["finger"] = finger
            end = "point" if finger == "index" else "point_middle"
        else:
            end = base
        if base == "pinch":
            opts["finger"] = name.split("_", 1)[1]
        return Step(name, tuple(parts), "relaxed" if release else end, opts)
    if base == "open":
        return Step(name, ((6, 16),), end_state or "extended", opts)
    if base == "spread":
        back = bool(rng.random() < 0.25)
        opts.update(back=back, amount=float(uniform(rng, 0.92, 1.0)))
        return Step(name, ((6, 14),) + ((2, 8), (6, 12)) * back, "extended" if back else "spread", opts)
    if base == "close_fingers":
        return Step(name, ((6, 14),), "extended", opts)
    if base == "count":
        n = int(rng.integers(2, 6))
        opts["count"] = n  # four or five fingers up leave the long fingers all straight
        return Step(name, ((3 * (n - 1) + 5, 6 * (n - 1) + 9),), "count" if n < 4 else "extended", opts)
    if base == "finger_wave":
        repeats = 1 + int(rng.random() < 0.4)
        opts["repeats"] = repeats
        return Step(name, ((14 * repeats, 22 * repeats),), state, opts)
    if base == "tap":
        repeats = int(rng.integers(2, 4))
        opts["repeats"] = repeats
        opts["finger"] = "index" if state == "point" or rng.random() < 0.7 else "middle"
        return Step(name, (((4, 6), (4, 6), (0, 3)) * repeats)[:-1], state, opts)
    if base in ("move", "rotate", "bend_wrist"):
        back = bool(rng.random() < (0.3 if base != "bend_wrist" else 0.4))
        opts["back"] = back
        main = {"move": (12, 28), "rotate": (12, 30), "bend_wrist": (10, 24)}[base]
        ret = {"move": (12, 24), "rotate": (12, 24), "bend_wrist": (10, 20)}[base]
        return Step(name, (main,) + ((2, 10), ret) * back, state, opts)
    raise ValueError(f"unknown primitive {name!r}; expected one of {', '.join(PRIMITIVES)}")


def write_step(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
               geometry: HandGeometry, inward_budget: float = 0.15) -> None:
    """Write a placed step into ``plan``: its moves, events and contact expectations.

    ``spans`` are the frames of ``step.parts`` (from :func:`handx.synth.timeline.schedule`); ``inward_budget``
    caps a wrist translation towards the other hand (metres).
    """
    base = base_name(step.name)
    _WRITERS[base](plan, rng, step, spans, geometry, inward_budget)


def _target(step: Step, default: np.ndarray) -> np.ndarray:
    target = step.options.get("target")
    return default if target is None else np.asarray(target)


def _release(plan: HandPlan, rng: np.random.Generator, step: Step, span: tuple[int, int], **params: object) -> None:
    plan.move_shape(span[0], span[1], relaxed_shape(rng))
    plan.event("release", span[0], span[1], primitive=step.options["label"], reverse=True, **params)


def _write_fist(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                geometry: HandGeometry, budget: float) -> None:
    (s0, e0) = spans[0]
    plan.move_shape(s0, e0, _target(step, fist_shape(rng)))
    plan.event("fist", s0, e0, primitive=step.options["label"], fingers=list(_FINGERS_ALL))
    if step.options["release"]:
        _release(plan, rng, step, spans[2])


def _write_point(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                 geometry: HandGeometry, budget: float) -> None:
    finger = str(step.options["finger"])
    (s0, e0) = spans[0]
    plan.move_shape(s0, e0, _target(step, point_shape(rng, finger)))
    plan.event("point", s0, e0, primitive=step.options["label"], fingers=[finger])
    if step.options["release"]:
        _release(plan, rng, step, spans[2])


def _write_pinch(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                 geometry: HandGeometry, budget: float) -> None:
    finger = str(step.options["finger"])
    (s0, e0) = spans[0]
    plan.move_shape(s0, e0, pinch_shape(rng, finger, geometry))
    plan.event("pinch", s0, e0, primitive=step.options["label"], fingers=["thumb", finger])
    end = None
    if step.options["release"]:
        end = spans[2][0]
        _release(plan, rng, step, spans[2], fingers=["thumb", finger])
    channels = np.concatenate([THUMB_ANGLE_INDEX, finger_channels(finger, abduction=True)])
    plan.expect.append(Expectation("tip_tip", (f"{plan.side}_thumb_tip", f"{plan.side}_{finger}_tip"), e0 - 1, end,
                                   s0 + 1, s0, tuple(channels.tolist())))


def _write_open(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                geometry: HandGeometry, budget: float) -> None:
    (s0, e0) = spans[0]
    plan.move_shape(s0, e0, _target(step, extended_shape(rng)))
    plan.event("open", s0, e0, primitive=step.options["label"], fingers=list(_FINGERS_ALL))


def _write_spread(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                  geometry: HandGeometry, budget: float) -> None:
    amount = float(step.options["amount"])
    (s0, e0) = spans[0]
    plan.move_shape(s0, e0, spread_shape(rng, amount))
    plan.event("spread", s0, e0, primitive=step.options["label"], amount=round(amount, 3))
    if step.options["back"]:
        s2, e2 = spans[2]
        plan.move_shape(s2, e2, extended_shape(rng))
        plan.event("close_fingers", s2, e2, primitive=step.options["label"], reverse=True)


def _write_close_fingers(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                         geometry: HandGeometry, budget: float) -> None:
    (s0, e0) = spans[0]
    plan.move_shape(s0, e0, extended_shape(rng))
    plan.event("close_fingers", s0, e0, primitive=step.options["label"])


def _write_count(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                 geometry: HandGeometry, budget: float) -> None:
    lo, hi = spans[0]
    n = int(step.options["count"])
    durs = rng.integers(5, 10, n)
    gaps = rng.integers(3, 7, n)

    def length(n: int) -> int:  # from the first finger's start to the last finger's end
        return int((np.concatenate([[0], np.cumsum(gaps[: n - 1])]) + durs[:n]).max())

    while length(n) > hi - lo:
        if gaps[: n - 1].max(initial=3) > 3:
            gaps[int(gaps[: n - 1].argmax())] -= 1
        elif durs[:n].max() > 5:
            durs[int(durs[:n].argmax())] -= 1
        else:
            n -= 1
    order = ["index", "middle", "ring", "pinky", "thumb"][:n]
    target = extended_shape(rng)
    total = length(n)
    t = lo + int(rng.integers(0, hi - lo - total + 1))
    start = t
    steps = []
    for k, finger in enumerate(order):
        ch = finger_channels(finger)
        plan.move(ch, t, t + int(durs[k]), target[ch])
        steps.append([finger, t, t + int(durs[k])])
        t += int(gaps[k])
    plan.event("count", start, max(s[2] for s in steps), primitive=step.options["label"], fingers=order, count=n,
               steps=steps)


def _write_finger_wave(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                       geometry: HandGeometry, budget: float) -> None:
    lo, hi = spans[0]
    order = list(LONG_FINGERS) if rng.random() < 0.5 else list(LONG_FINGERS[::-1])
    repeats = int(step.options["repeats"])
    half, stagger = int(rng.integers(4, 7)), int(rng.integers(2, 5))
    while repeats * (3 * stagger + 2 * half) > hi - lo:
        if repeats > 1:
            repeats -= 1
        elif half > 4:
            half -= 1
        elif stagger > 2:
            stagger -= 1
        else:
            break
    wave_len = 3 * stagger + 2 * half
    start = lo + int(rng.integers(0, max(hi - lo - repeats * wave_len, 0) + 1))
    rest = plan.value(start)
    steps = []
    for r in range(repeats):
        for k, finger in enumerate(order):
            ch = finger_channels(finger)
            t0 = start + r * wave_len + k * stagger
            plan.move(ch, t0, t0 + half, finger_flex_target(rng, "wave"))
            plan.move(ch, t0 + half, t0 + 2 * half, rest[ch])
            steps.append([finger, t0, t0 + 2 * half])
    plan.event("finger_wave", start, max(s[2] for s in steps), primitive=step.options["label"], fingers=order,
               repeats=repeats, steps=steps)


def _write_tap(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
               geometry: HandGeometry, budget: float) -> None:
    finger = str(step.options["finger"])
    repeats = int(step.options["repeats"])
    ch = finger_channels(finger)
    rest = plan.value(spans[0][0])[ch]
    bent = finger_flex_target(rng, "tap")
    for r in range(repeats):
        (a0, a1), (b0, b1) = spans[3 * r], spans[3 * r + 1]
        plan.move(ch, a0, a1, bent)
        plan.move(ch, b0, b1, rest)
    plan.event("tap", spans[0][0], spans[3 * repeats - 2][1], primitive=step.options["label"], fingers=[finger],
               repeats=repeats)


def _write_move(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                geometry: HandGeometry, budget: float) -> None:
    direction = step.name.split("_", 1)[1]
    hi = 0.15
    if direction == _inward(plan.side):
        hi = min(hi, budget)
    distance = float(uniform(rng, 0.05, hi)) if hi > 0.05 else float(max(hi, 0.0))
    s0, e0 = spans[0]
    unit = np.asarray(DIRECTIONS[direction])
    label = step.options["label"]
    plan.translate(s0, e0, unit * distance)
    plan.event("move", s0, e0, primitive=label, direction=direction, distance=round(distance, 4))
    if step.options["back"]:
        s2, e2 = spans[2]
        plan.translate(s2, e2, -unit * distance)
        plan.event("move", s2, e2, primitive=label, reverse=True, direction=_opposite(direction),
                   distance=round(distance, 4))


def _inward(side: str) -> str:
    return "right" if side == "left" else "left"


def _opposite(direction: str) -> str:
    pairs = {"left": "right", "forward": "back", "up": "down"}
    pairs.update({v: k for k, v in pairs.items()})
    return pairs[direction]


def _write_rotate(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                  geometry: HandGeometry, budget: float) -> None:
    """Forearm rotation; sets the hand's start supination (palm down for ``palm_up`` and vice versa)."""
    up = step.name == "rotate_palm_up"
    low, high = float(uniform(rng, -5, 15)), float(uniform(rng, 150, 180))
    sup0, sup1 = (low, high) if up else (high, low)
    plan.pose0[POSE["wrist_supination"]] = np.deg2rad(sup0)
    s0, e0 = spans[0]
    rot = plan.value(s0)[ROT_SLICE].copy()
    rot[0] = np.deg2rad(sup1)
    label, angle = step.options["label"], round(abs(sup1 - sup0), 1)
    plan.rotate(s0, e0, rot)
    plan.event("rotate", s0, e0, primitive=label, direction="palm_up" if up else "palm_down", angle=angle)
    if step.options["back"]:
        s2, e2 = spans[2]
        rot[0] = np.deg2rad(sup0)
        plan.rotate(s2, e2, rot)
        plan.event("rotate", s2, e2, primitive=label, reverse=True, direction="palm_down" if up else "palm_up",
                   angle=angle)


def _write_bend(plan: HandPlan, rng: np.random.Generator, step: Step, spans: list[tuple[int, int]],
                geometry: HandGeometry, budget: float) -> None:
    """Wrist flexion or extension with the palm down; sets the hand's start flexion and supination."""
    down = step.name == "bend_wrist_down"
    flex0 = float(uniform(rng, -5, 5))
    flex1 = float(uniform(rng, 35, 60)) if down else -float(uniform(rng, 30, 55))
    plan.pose0[POSE["wrist_flexion"]] = np.deg2rad(flex0)
    plan.pose0[POSE["wrist_supination"]] = min(plan.pose0[POSE["wrist_supination"]], np.deg2rad(20))
    s0, e0 = spans[0]
    rot = plan.value(s0)[ROT_SLICE].copy()
    rot[1] = np.deg2rad(flex1)
    label, angle = step.options["label"], round(abs(flex1 - flex0), 1)
    plan.rotate(s0, e0, rot)
    plan.event("bend_wrist", s0, e0, primitive=label, direction="down" if down else "up", angle=angle)
    if step.options["back"]:
        s2, e2 = spans[2]
        rot[1] = np.deg2rad(flex0)
        plan.rotate(s2, e2, rot)
        plan.event("bend_wrist", s2, e2, primitive=label, reverse=True, direction="up" if down else "down",
                   angle=angle)


def write_hold(plan: HandPlan, start: int, end: int, label: str = "hold_still") -> None:
    """The hand holds its pose over ``[start, end)`` (no move of it may overlap those frames)."""
    plan.event("hold_still", start, end, primitive=label, palm=palm_facing(plan.value(start)))


def palm_facing(pose: np.ndarray) -> str:
    """Where the palm of a pose ``(26,)`` faces: ``"down"``, ``"in"`` (towards the other hand) or ``"up"``."""
    sup = float(np.rad2deg(pose[POSE["wrist_supination"]]))
    return "down" if sup < 45 else ("in" if sup < 135 else "up")


_WRITERS = {
    "fist": _write_fist, "open": _write_open, "point": _write_point, "pinch": _write_pinch,
    "spread": _write_spread, "close_fingers": _write_close_fingers, "count": _write_count,
    "finger_wave": _write_finger_wave, "tap": _write_tap,
    "move": _write_move, "rotate": _write_rotate, "bend_wrist": _write_bend,
}
assert {base_name(p) for p in PRIMITIVES if p != "hold_still"} == set(_WRITERS)
