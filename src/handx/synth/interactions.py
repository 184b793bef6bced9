"""Two-hand interactions and whole-clip scenes.

A :class:`Scene` holds both hands' :class:`~handx.synth.timeline.HandPlan` and the two-hand events. Around
each interaction both hands perform finger sequences (:mod:`handx.synth.sequence`), as the hands of HandX
clips do (both hands move in every clip that passes its intensity filter, reference Appendix B). The
interactions make their contacts true by construction, then the generator verifies them on the finished
motion (thresholds of reference §2.4 / §2.9):

* ``clap``: mirror-image flat hands with palms facing along x; the wrist offset that puts the palm surfaces
  1.0–1.5 cm apart follows in closed form from the mirror symmetry. Each hand first does finger primitives of
  its own and opens flat while the hands approach; after 1–3 claps the hands part and go on with finger
  primitives;
* ``palms_together``: the hands turn their palms in while opening flat, approach and press the palms together;
  in some clips they part again and move their fingers;
* ``tip_to_tip``: mirror-image pointing hands turned inwards; the left wrist is placed so that the two tips
  are 6–12 mm apart along x. The hands form the pointing shape while they approach;
* ``tip_to_palm``: the target hand opens with its palm facing the acting hand and holds still while touched;
  the acting wrist is placed so that its index tip sits 8–14 mm above the target palm centre, along the palm
  normal;
* ``mirrored``: the right hand performs a sequence and the left hand its mirror image (same anatomical
  angles, wrist x reflected in the plane between the hands);
* ``hold_and_act``: one hand holds its pose while the other performs a sequence; the holding hand moves its
  fingers before and after.

Hands start 28–42 cm apart (wrist to wrist) and approach along x only, so they never pass through each other.
Contact shapes are reached by the middle of the approach, while the hands are still 5 cm or more apart.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from handx.skeleton import TIPS
from handx.synth.hand import (
    FLEX_SLICE,
    PALM_CORNERS,
    POS_SLICE,
    POSE,
    POSE_DIM,
    ROT_SLICE,
    HandGeometry,
    forward_kinematics,
    palm_centre,
    palm_normal,
)
from handx.synth.primitives import (
    PRIMITIVES,
    plan_step,
    state_shape,
    write_hold,
    write_step,
)
from handx.synth.program import Event
from handx.synth.sequence import (
    SequenceConfig,
    build_sequence,
    hand_program,
    phase,
    start_state,
    walk,
)
from handx.synth.shapes import (
    extended_shape,
    flat_shape,
    point_shape,
    relaxed_shape,
    uniform,
)
from handx.synth.timeline import FRAMES, OTHER, Expectation, HandPlan, schedule

#: Two-hand interactions.
INTERACTIONS: tuple[str, ...] = (
    "clap", "tip_to_tip", "tip_to_palm", "palms_together", "mirrored", "hold_and_act",
)
#: Smallest wrist-to-wrist distance (metres) kept between hands that move independently.
MIN_WRIST_GAP = 0.20


# --------------------------------------------------------------------------------------------- scenes

@dataclasses.dataclass
class Scene:
    """Both hands' plans for one clip, the two-hand events and what the generator must verify.

    ``separated_x``: the hands are built mirror-symmetric with their palms or fingers facing along x, so every
    left joint must stay on −x of every right joint (no gross interpenetration even in contact).
    ``touch_from``: the hands must not touch each other before this frame (the start of a contact
    interaction; the whole clip for the others).
    """

    kind: str
    left: HandPlan
    right: HandPlan
    geometry: HandGeometry
    relation: list[Event] = dataclasses.field(default_factory=list)
    separated_x: bool = False
    touch_from: int = FRAMES

    def plan(self, side: str) -> HandPlan:
        return self.left if side == "left" else self.right

    @property
    def expectations(self) -> list[Expectation]:
        return [*self.left.expectations(), *self.right.expectations()]


def base_scene(rng: np.random.Generator, kind: str) -> tuple[Scene, float]:
    """Two relaxed hands, palms roughly down, fingers forward, side by side; returns the scene and the gap
    the wrists may close by moving inwards (each)."""
    geometry = HandGeometry().scaled(float(uniform(rng, 0.92, 1.08)))
    sep = float(uniform(rng, 0.28, 0.42))
    plans = {}
    left_pos = (-sep, uniform(rng, -0.04, 0.04), uniform(rng, -0.03, 0.03))
    for side, pos in (("left", left_pos), ("right", (0.0, 0.0, 0.0))):
        pose = np.zeros(POSE_DIM)
        pose[FLEX_SLICE] = relaxed_shape(rng)
        pose[ROT_SLICE] = np.deg2rad([uniform(rng, -5, 20), uniform(rng, -10, 10), uniform(rng, -8, 10)])
        pose[POS_SLICE] = pos
        plans[side] = HandPlan(side, pose)
    return Scene(kind, plans["left"], plans["right"], geometry), (sep - MIN_WRIST_GAP) / 2


def _contact_pose(shape: np.ndarray, rot_deg: np.ndarray, pos: np.ndarray) -> np.ndarray:
    pose = np.zeros(POSE_DIM)
    pose[FLEX_SLICE] = shape
    pose[ROT_SLICE] = np.deg2rad(rot_deg)
    pose[POS_SLICE] = pos
    return pose


def _palm_contact_positions(rng: np.random.Generator, scene: Scene, shape: np.ndarray, rot_deg: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Wrist positions (left, right) that put mirror-image palms a random 1.0–1.5 cm apart.

    Both hands have the same anatomical pose, so the left hand at ``(−X, 0, 0)`` is the mirror image of the
    right hand at the origin in the plane ``x = −X/2``. For mirror images the closest palm points are a point
    and its mirror, so the palm–palm distance is twice the smallest distance of a right palm corner to that
    plane (a linear function is smallest at a triangle corner): ``gap = 2·min x + X``, solved for ``X``.
    """
    gap = float(uniform(rng, 0.010, 0.015))
    right = forward_kinematics(_contact_pose(shape, rot_deg, np.zeros(3)), "right", scene.geometry)  # (21, 3)
    x = gap - 2.0 * float(right[PALM_CORNERS, 0].min())
    return np.array([-x, 0.0, 0.0]), np.zeros(3)


def _split(rng: np.random.Generator, total: float) -> tuple[float, float]:
    f = float(uniform(rng, 0.35, 0.65))
    return f * total, (1.0 - f) * total


def _approach(scene: Scene, span: tuple[int, int], travel: dict[str, float], name: str, back: bool = False
              ) -> None:
    """Both (or one) hands travel along x towards (or, with ``back``, away from) each other."""
    for side, dist in travel.items():
        sign = 1.0 if side == "left" else -1.0
        if back:
            sign = -sign
        plan = scene.plan(side)
        plan.translate(span[0], span[1], np.array([sign * dist, 0.0, 0.0]))
        params = {"reverse": True} if back else {}
        plan.event("move", span[0], span[1], primitive=name, direction="right" if sign > 0 else "left",
                   distance=round(dist, 4), **params)


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Frames of a contact interaction.

    ``pre``: free for finger primitives; ``prep``: the hands take their contact shape, ending halfway through
    ``approach``; the contact holds from the last approach frame to ``hold_end`` (exclusive); ``leave``: the
    hands part (None when they stay together to the end); ``post``: free for finger primitives again.
    """

    pre: tuple[int, int]
    prep: tuple[int, int]
    approach: tuple[int, int]
    hold_end: int
    leave: tuple[int, int] | None
    post: tuple[int, int]


def contact_timeline(rng: np.random.Generator, separate: bool, *, prep: tuple[int, int], approach: tuple[int, int],
                     hold: tuple[int, int], leave: tuple[int, int], min_pre: int = 0) -> Timeline:
    """Random phase lengths (inclusive ranges) laid out over the clip; the frames left over go before and
    after the contact (or, when the hands stay together, mostly before it and the rest into the hold)."""
    lp, la, lh, ll = (int(rng.integers(lo, hi + 1)) for lo, hi in (prep, approach, hold, leave))
    ll = ll if separate else 0
    lead = lp - la // 2  # prep start → approach start
    free = FRAMES - (lead + la + lh + ll) - min_pre
    if free < 0:
        raise ValueError(f"contact phases of {lead + la + lh + ll} frames do not fit in a clip")
    if separate:
        p0 = min_pre + round(float(uniform(rng, 0.4, 0.8)) * free)
    else:  # mostly before the contact: a long still contact would leave little motion in the clip
        p0 = min_pre + free - int(rng.integers(0, free // 3 + 1))
    a0 = p0 + lead
    a1 = a0 + la
    if not separate:
        return Timeline((0, p0), (p0, p0 + lp), (a0, a1), FRAMES, None, (FRAMES, FRAMES))
    h1 = a1 + lh
    return Timeline((0, p0), (p0, p0 + lp), (a0, a1), h1, (h1, h1 + ll), (h1 + ll, FRAMES))


def _shape_hand(scene: Scene, side: str, rng: np.random.Generator, config: SequenceConfig, window: tuple[int, int],
                final: str, prep: tuple[int, int], **step_options: object) -> str:
    """A hand starts from a random shape, does finger primitives in ``window`` and then takes its contact
    shape with primitive ``final`` (``open`` or ``point``) over ``prep``; returns its contact state."""
    plan = scene.plan(side)
    state = start_state(rng, allows=final)
    plan.pose0[FLEX_SLICE] = state_shape(rng, state)
    state = phase(plan, rng, window, state, scene.geometry, config, then=final, align="end")
    step = plan_step(final, rng, state=state, release=False, **step_options)
    write_step(plan, rng, step, [prep], scene.geometry)
    return step.end_state


def _interaction_clap(scene: Scene, rng: np.random.Generator, config: SequenceConfig) -> None:
    shape = flat_shape(rng)
    # Palms facing (supination ~90°); wrist flexion and inward yaw would tip the fingers into the other hand,
    # so both stay at or below zero and the fingers splay slightly apart.
    rot = np.array([uniform(rng, 78, 95), uniform(rng, -8, 0), uniform(rng, -4, 0)])
    pos_l, pos_r = _palm_contact_positions(rng, scene, shape, rot)
    a_l, a_r = _split(rng, float(uniform(rng, 0.14, 0.26)))
    scene.left.pose0 = _contact_pose(shape, rot, pos_l - [a_l, 0, 0])
    scene.right.pose0 = _contact_pose(shape, rot, pos_r + [a_r, 0, 0])
    repeats = 1 + int(rng.random() < 0.5) + int(rng.random() < 0.25)
    lp = int(rng.integers(7, 11))
    first = int(rng.integers(6, 9))  # the first approach
    lead = lp - first // 2
    parts = [(first, first)] + ([(5, 8), (2, 4), (5, 8), (0, 4)] * repeats)[1:-1]
    rel = schedule(rng, (0, FRAMES - lead), parts, align="start")
    p0 = round(float(uniform(rng, 0.3, 0.75)) * (FRAMES - lead - rel[-1][1]))
    spans = [(s + p0 + lead, e + p0 + lead) for s, e in rel]
    for side in ("left", "right"):
        _shape_hand(scene, side, rng, config, (0, p0), "open", (p0, p0 + lp), target=shape, end_state="flat",
                    label="clap")
    for r in range(repeats):
        approach, leave = spans[4 * r], spans[4 * r + 2]
        _approach(scene, approach, {"left": a_l, "right": a_r}, "clap")
        _approach(scene, leave, {"left": a_l, "right": a_r}, "clap", back=True)
        scene.right.expect.append(Expectation("palm_palm", ("left_palm", "right_palm"), approach[1] - 1,
                                              leave[0] + 1, spans[0][0]))
    for side in ("left", "right"):
        phase(scene.plan(side), rng, (spans[-1][1], FRAMES), "flat", scene.geometry, config, align="start")
    scene.relation.append(Event("both", "clap", spans[0][0], spans[-1][1], {"repeats": repeats}))
    scene.separated_x, scene.touch_from = True, spans[0][0]


def _interaction_palms_together(scene: Scene, rng: np.random.Generator, config: SequenceConfig) -> None:
    shape = flat_shape(rng)
    rot = np.array([uniform(rng, 80, 95), uniform(rng, -6, 0), uniform(rng, -4, 0)])
    pos_l, pos_r = _palm_contact_positions(rng, scene, shape, rot)
    a_l, a_r = _split(rng, float(uniform(rng, 0.18, 0.28)))
    separate = bool(rng.random() < 0.5)
    tl = contact_timeline(rng, separate, prep=(10, 16), approach=(8, 14), hold=(10, 16), leave=(8, 12))
    for side, pos, sign, a in (("left", pos_l, -1.0, a_l), ("right", pos_r, 1.0, a_r)):
        plan = scene.plan(side)
        plan.pose0[POS_SLICE] = pos + [sign * a, 0.0, 0.0]
        plan.pose0[POSE["wrist_yaw"]] = np.deg2rad(uniform(rng, -5, 5))
        sup0 = float(np.rad2deg(plan.pose0[POSE["wrist_supination"]]))
        _shape_hand(scene, side, rng, config, tl.pre, "open", tl.prep, target=shape, end_state="flat",
                    label="palms_together")
        plan.rotate(*tl.prep, np.deg2rad(rot))
        plan.event("rotate", *tl.prep, primitive="palms_together", direction="palm_in",
                   angle=round(abs(rot[0] - sup0), 1))
    _approach(scene, tl.approach, {"left": a_l, "right": a_r}, "palms_together")
    end = FRAMES
    if tl.leave is not None:
        _approach(scene, tl.leave, {"left": a_l, "right": a_r}, "palms_together", back=True)
        end = tl.leave[1]
        for side in ("left", "right"):
            phase(scene.plan(side), rng, tl.post, "flat", scene.geometry, config, align="start")
    scene.right.expect.append(Expectation("palm_palm", ("left_palm", "right_palm"), tl.approach[1] - 1,
                                          min(tl.hold_end + 1, FRAMES), tl.approach[0]))
    scene.relation.append(Event("both", "palms_together", tl.approach[0], end, {"separate": separate}))
    scene.separated_x, scene.touch_from = True, tl.approach[0]


def _interaction_tip_to_tip(scene: Scene, rng: np.random.Generator, config: SequenceConfig) -> None:
    finger = "index" if rng.random() < 0.75 else "middle"
    shape = point_shape(rng, finger)
    rot = np.array([uniform(rng, 0, 30), uniform(rng, -10, 10), uniform(rng, 30, 60)])
    tip = TIPS[finger]
    tip_r = forward_kinematics(_contact_pose(shape, rot, np.zeros(3)), "right", scene.geometry)[tip]
    tip_l0 = forward_kinematics(_contact_pose(shape, rot, np.zeros(3)), "left", scene.geometry)[tip]
    pos_l = tip_r - tip_l0 - [float(uniform(rng, 0.006, 0.012)), 0.0, 0.0]
    a_l, a_r = _split(rng, float(uniform(rng, 0.10, 0.22)))
    separate = bool(rng.random() < 0.5)
    tl = contact_timeline(rng, separate, prep=(8, 12), approach=(10, 16), hold=(8, 14), leave=(8, 14))
    states = {}
    for side, pos in (("left", pos_l - [a_l, 0, 0]), ("right", np.array([a_r, 0.0, 0.0]))):
        plan = scene.plan(side)
        plan.pose0[ROT_SLICE] = np.deg2rad(rot)
        plan.pose0[POS_SLICE] = pos
        states[side] = _shape_hand(scene, side, rng, config, tl.pre, "point", tl.prep, target=shape, finger=finger,
                                   label="tip_to_tip")
    _approach(scene, tl.approach, {"left": a_l, "right": a_r}, "tip_to_tip")
    end = FRAMES
    if tl.leave is not None:
        _approach(scene, tl.leave, {"left": a_l, "right": a_r}, "tip_to_tip", back=True)
        end = tl.leave[1]
        for side in ("left", "right"):
            phase(scene.plan(side), rng, tl.post, states[side], scene.geometry, config, align="start")
    scene.right.expect.append(Expectation("tip_tip", (f"left_{finger}_tip", f"right_{finger}_tip"),
                                          tl.approach[1] - 1, min(tl.hold_end + 1, FRAMES), tl.approach[0]))
    scene.relation.append(Event("both", "tip_to_tip", tl.approach[0], end,
                                {"fingers": [finger, finger], "separate": separate}))
    scene.separated_x, scene.touch_from = True, tl.approach[0]


def _interaction_tip_to_palm(scene: Scene, rng: np.random.Generator, config: SequenceConfig) -> None:
    acting = "left" if rng.random() < 0.5 else "right"
    target = OTHER[acting]
    inward = 1.0 if acting == "left" else -1.0
    tplan, aplan = scene.plan(target), scene.plan(acting)
    target_rot = np.array([uniform(rng, 80, 95), uniform(rng, -5, 5), uniform(rng, -5, 5)])
    tplan.pose0 = _contact_pose(extended_shape(rng), target_rot, np.zeros(3))
    tj = forward_kinematics(tplan.pose0, target, scene.geometry)  # the palm does not depend on the fingers
    goal = palm_centre(tj) + float(uniform(rng, 0.008, 0.014)) * palm_normal(tj, target)
    shape = point_shape(rng, "index")
    rot = np.array([uniform(rng, 0, 20), uniform(rng, -5, 10), uniform(rng, 50, 75)])
    tip0 = forward_kinematics(_contact_pose(shape, rot, np.zeros(3)), acting, scene.geometry)[TIPS["index"]]
    travel = float(uniform(rng, 0.08, 0.16))
    aplan.pose0[ROT_SLICE] = np.deg2rad(rot)
    aplan.pose0[POS_SLICE] = goal - tip0 - [inward * travel, 0.0, 0.0]
    separate = bool(rng.random() < 0.5)
    tl = contact_timeline(rng, separate, prep=(8, 12), approach=(10, 16), hold=(8, 14), leave=(8, 14), min_pre=10)
    state = _shape_hand(scene, acting, rng, config, tl.pre, "point", tl.prep, target=shape, label="tip_to_palm")
    # The target palm opens before the approach and holds still until the acting hand has withdrawn.
    a0 = tl.approach[0]
    opening = (a0 - int(rng.integers(6, min(10, a0) + 1)), a0)
    _shape_hand(scene, target, rng, config, (0, opening[0]), "open", opening)
    _approach(scene, tl.approach, {acting: travel}, "tip_to_palm")
    end = FRAMES
    if tl.leave is not None:
        _approach(scene, tl.leave, {acting: travel}, "tip_to_palm", back=True)
        end = tl.leave[1]
    write_hold(tplan, a0, end, label="tip_to_palm")
    if end < FRAMES:
        phase(aplan, rng, tl.post, state, scene.geometry, config, align="start")
        phase(tplan, rng, tl.post, "extended", scene.geometry, config, align="start")
    aplan.expect.append(Expectation("tip_palm", (f"{acting}_index_tip", f"{target}_palm"), tl.approach[1] - 1,
                                    min(tl.hold_end + 1, FRAMES), a0))
    scene.relation.append(Event("both", "tip_to_palm", a0, end,
                                {"acting": acting, "target": target, "fingers": ["index"], "separate": separate}))
    scene.touch_from = a0


def mirror_plan(plan: HandPlan, plane_x: float) -> HandPlan:
    """The mirror image of a hand's plan in the plane ``x = plane_x``: same anatomical angles, the other side.

    Wrist x positions become ``2·plane_x − x``; events (with sideways directions) and contact expectations swap
    left and right.
    """
    side = OTHER[plan.side]
    xi = POSE["wrist_x"]
    pose0 = plan.pose0.copy()
    pose0[xi] = 2.0 * plane_x - pose0[xi]
    out = HandPlan(side, pose0)
    for mv in plan.moves:
        target = [2.0 * plane_x - v if c == xi else v for c, v in zip(mv.channels, mv.target)]
        out.move(np.asarray(mv.channels), mv.start, mv.end, np.asarray(target))
    for ev in plan.events:
        params = dict(ev.params)
        if params.get("direction") in ("left", "right"):
            params["direction"] = OTHER[params["direction"]]
        if params.get("primitive") in ("move_left", "move_right"):
            params["primitive"] = "move_" + OTHER[str(params["primitive"])[5:]]
        out.events.append(Event(side, ev.action, ev.start, ev.end, params))
    for ex in plan.expect:
        between = tuple(n.replace(f"{plan.side}_", f"{side}_", 1) for n in ex.between)
        out.expect.append(dataclasses.replace(ex, between=between))
    return out


def _primitive_names(plan: HandPlan) -> list[str]:
    """The primitives of a hand's program in order of their first event (returns and holds left out)."""
    names: list[str] = []
    for ev in sorted(plan.events, key=lambda e: (e.start, e.end)):
        name = str(ev.params.get("primitive"))
        if not ev.params.get("reverse") and name not in names[-1:]:
            names.append(name)
    return names


def _interaction_mirrored(scene: Scene, rng: np.random.Generator, config: SequenceConfig, budget: float) -> None:
    sep = scene.right.pose0[POSE["wrist_x"]] - scene.left.pose0[POSE["wrist_x"]]
    hand_program(scene.right, rng, scene.geometry, config, inward_budget=budget, may_hold=False)
    scene.left = mirror_plan(scene.right, scene.right.pose0[POSE["wrist_x"]] - sep / 2)
    starts = [e.start for e in scene.right.events]
    ends = [e.end for e in scene.right.events]
    scene.relation.append(Event("both", "mirrored", min(starts), max(ends),
                                {"primitives": _primitive_names(scene.right)}))


def _interaction_hold_and_act(scene: Scene, rng: np.random.Generator, config: SequenceConfig) -> None:
    holding = "left" if rng.random() < 0.5 else "right"
    acting = OTHER[holding]
    hplan, aplan = scene.plan(holding), scene.plan(acting)
    length = int(rng.integers(24, 33))
    start = int(rng.integers(0, FRAMES - length + 1))
    window = (start, start + length)
    # The acting hand is still outside the act; the holding hand moves before and after it.
    state = start_state(rng)
    aplan.pose0[FLEX_SLICE] = state_shape(rng, state)
    steps = walk(rng, state, max(1, min(config.max_primitives, length // 11)), length, min_travel=config.min_travel)
    if steps is None:
        steps = walk(rng, state, 1, length)
    if steps is None:
        raise RuntimeError(f"no finger primitive fits an act of {length} frames from {state!r}")
    build_sequence(aplan, rng, window, steps, scene.geometry, max_hold=config.max_hold)
    act = (min(e.start for e in aplan.events), max(e.end for e in aplan.events))
    state = start_state(rng)
    hplan.pose0[FLEX_SLICE] = state_shape(rng, state)
    state = phase(hplan, rng, (0, act[0]), state, scene.geometry, config, min_travel=config.min_travel)
    write_hold(hplan, act[0], act[1], label="hold_and_act")
    phase(hplan, rng, (act[1], FRAMES), state, scene.geometry, config, min_travel=config.min_travel)
    scene.relation.append(Event("both", "hold_and_act", act[0], act[1],
                                {"holding": holding, "acting": acting, "primitives": _primitive_names(aplan)}))


def _independent(scene: Scene, rng: np.random.Generator, config: SequenceConfig, budget: float,
                 forced: str | None = None) -> None:
    forced_side = ("left", "right")[int(rng.integers(0, 2))] if forced is not None else None
    for side in ("left", "right"):
        hand_program(scene.plan(side), rng, scene.geometry, config, inward_budget=budget,
                     forced=forced if side == forced_side else None)
    scene.relation.append(Event("both", "independent", 0, FRAMES, {}))


def build_scene(rng: np.random.Generator, kind: str, config: SequenceConfig | None = None) -> Scene:
    """A full two-hand scene: ``kind`` is an interaction, a per-hand primitive (made part of one hand's
    program while the other does a random one) or ``"independent"`` (each hand a random program);
    ``config`` defaults to :class:`~handx.synth.sequence.SequenceConfig`."""
    config = SequenceConfig() if config is None else config
    scene, budget = base_scene(rng, kind)
    if kind == "clap":
        _interaction_clap(scene, rng, config)
    elif kind == "palms_together":
        _interaction_palms_together(scene, rng, config)
    elif kind == "tip_to_tip":
        _interaction_tip_to_tip(scene, rng, config)
    elif kind == "tip_to_palm":
        _interaction_tip_to_palm(scene, rng, config)
    elif kind == "mirrored":
        _interaction_mirrored(scene, rng, config, budget)
    elif kind == "hold_and_act":
        _interaction_hold_and_act(scene, rng, config)
    elif kind == "independent":
        _independent(scene, rng, config, budget)
    elif kind in PRIMITIVES:
        scene.kind = "independent"
        _independent(scene, rng, config, budget, forced=kind)
    else:
        raise ValueError(f"unknown kind {kind!r}; expected 'independent', one of {', '.join(INTERACTIONS)} "
                         f"or one of {', '.join(PRIMITIVES)}")
    return scene
