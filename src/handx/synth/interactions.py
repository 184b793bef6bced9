"""Two-hand interactions and whole-clip scenes.

A :class:`Scene` holds both hands' :class:`~handx.synth.primitives.HandPlan` and the two-hand events. The
interactions make their contacts true by construction, then the generator verifies them on the finished
motion (thresholds of reference §2.4 / §2.9):

* ``clap`` and ``palms_together``: mirror-image flat hands with palms facing along x; the wrist offset that
  puts the palm surfaces 1.0–1.5 cm apart follows in closed form from the mirror symmetry;
* ``tip_to_tip``: mirror-image pointing hands turned inwards; the left wrist is placed so that the two tips
  are 6–12 mm apart along x;
* ``tip_to_palm``: the target palm faces the acting hand; the acting wrist is placed so that its index tip
  sits 8–14 mm above the target palm centre, along the palm normal;
* ``mirrored``: the right hand performs a primitive and the left hand its mirror image (same anatomical
  angles, wrist x reflected in the plane between the hands);
* ``hold_and_act``: one hand holds still while the other performs a primitive.

Hands start 28–42 cm apart (wrist to wrist) and approach along x only, so they never pass through each other.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from handx.skeleton import TIPS
from handx.synth.hand import (
    FLEX_SLICE,
    POS_SLICE,
    POSE,
    POSE_DIM,
    ROT_SLICE,
    PALM_CORNERS,
    HandGeometry,
    forward_kinematics,
    palm_centre,
    palm_normal,
)
from handx.synth.primitives import (
    FRAMES,
    OTHER,
    PRIMITIVES,
    Expectation,
    HandPlan,
    PrimitiveContext,
    uniform,
    build_primitive,
    extended_shape,
    flat_shape,
    palm_facing,
    point_shape,
    relaxed_shape,
    schedule,
)
from handx.synth.program import Event

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
    """

    kind: str
    left: HandPlan
    right: HandPlan
    geometry: HandGeometry
    relation: list[Event] = dataclasses.field(default_factory=list)
    separated_x: bool = False

    def plan(self, side: str) -> HandPlan:
        return self.left if side == "left" else self.right

    @property
    def expectations(self) -> list[Expectation]:
        return [*self.left.expect, *self.right.expect]


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


def _interaction_clap(scene: Scene, rng: np.random.Generator) -> None:
    shape = flat_shape(rng)
    # Palms facing (supination ~90°); wrist flexion and inward yaw would tip the fingers into the other hand,
    # so both stay at or below zero and the fingers splay slightly apart.
    rot = np.array([uniform(rng, 78, 95), uniform(rng, -8, 0), uniform(rng, -4, 0)])
    pos_l, pos_r = _palm_contact_positions(rng, scene, shape, rot)
    a_l, a_r = _split(rng, float(uniform(rng, 0.14, 0.26)))
    scene.left.pose0 = _contact_pose(shape, rot, pos_l - [a_l, 0, 0])
    scene.right.pose0 = _contact_pose(shape, rot, pos_r + [a_r, 0, 0])
    repeats = int(rng.integers(1, 4))
    spans = schedule(rng, (0, FRAMES), [(5, 10), (2, 4), (5, 10), (0, 5)] * repeats)
    for r in range(repeats):
        approach, _, leave = spans[4 * r], spans[4 * r + 1], spans[4 * r + 2]
        _approach(scene, approach, {"left": a_l, "right": a_r}, "clap")
        _approach(scene, leave, {"left": a_l, "right": a_r}, "clap", back=True)
        scene.right.expect.append(Expectation("palm_palm", ("left_palm", "right_palm"), approach[1] - 1,
                                              leave[0] + 1, spans[0][0]))
    scene.relation.append(Event("both", "clap", spans[0][0], spans[4 * repeats - 2][1], {"repeats": repeats}))
    scene.separated_x = True


def _interaction_palms_together(scene: Scene, rng: np.random.Generator) -> None:
    shape = flat_shape(rng)
    rot = np.array([uniform(rng, 80, 95), uniform(rng, -6, 0), uniform(rng, -4, 0)])
    pos_l, pos_r = _palm_contact_positions(rng, scene, shape, rot)
    a_l, a_r = _split(rng, float(uniform(rng, 0.18, 0.28)))
    separate = bool(rng.random() < 0.4)
    parts = [(10, 18), (10, 20), (12, 24)] + ([(8, 14)] if separate else [])
    spans = schedule(rng, (0, FRAMES), parts)
    for side, pos, sign, a in (("left", pos_l, -1.0, a_l), ("right", pos_r, 1.0, a_r)):
        plan = scene.plan(side)
        plan.pose0[POS_SLICE] = pos + [sign * a, 0.0, 0.0]
        plan.pose0[POSE["wrist_yaw"]] = np.deg2rad(uniform(rng, -5, 5))
        sup0 = float(np.rad2deg(plan.pose0[POSE["wrist_supination"]]))
        plan.move_shape(*spans[0], shape)
        plan.rotate(*spans[0], np.deg2rad(rot))
        plan.event("rotate", *spans[0], primitive="palms_together", direction="palm_in",
                   angle=round(abs(rot[0] - sup0), 1))
    _approach(scene, spans[1], {"left": a_l, "right": a_r}, "palms_together")
    end = spans[3][0] + 1 if separate else FRAMES
    if separate:
        _approach(scene, spans[3], {"left": a_l, "right": a_r}, "palms_together", back=True)
    scene.right.expect.append(Expectation("palm_palm", ("left_palm", "right_palm"), spans[1][1] - 1, end,
                                          spans[1][0]))
    scene.relation.append(Event("both", "palms_together", spans[1][0], spans[3][1] if separate else FRAMES,
                                {"separate": separate}))
    scene.separated_x = True


def _interaction_tip_to_tip(scene: Scene, rng: np.random.Generator) -> None:
    finger = "index" if rng.random() < 0.75 else "middle"
    shape = point_shape(rng, finger)
    rot = np.array([uniform(rng, 0, 30), uniform(rng, -10, 10), uniform(rng, 30, 60)])
    tip = TIPS[finger]
    tip_r = forward_kinematics(_contact_pose(shape, rot, np.zeros(3)), "right", scene.geometry)[tip]
    tip_l0 = forward_kinematics(_contact_pose(shape, rot, np.zeros(3)), "left", scene.geometry)[tip]
    pos_l = tip_r - tip_l0 - [float(uniform(rng, 0.006, 0.012)), 0.0, 0.0]
    a_l, a_r = _split(rng, float(uniform(rng, 0.10, 0.22)))
    separate = bool(rng.random() < 0.5)
    spans = schedule(rng, (0, FRAMES), [(6, 14), (10, 22), (6, 20)] + ([(8, 16)] if separate else []))
    for side, pos in (("left", pos_l - [a_l, 0, 0]), ("right", np.array([a_r, 0.0, 0.0]))):
        plan = scene.plan(side)
        plan.pose0[ROT_SLICE] = np.deg2rad(rot)
        plan.pose0[POS_SLICE] = pos
        plan.move_shape(*spans[0], shape)
        plan.event("point", *spans[0], primitive="tip_to_tip", fingers=[finger])
    _approach(scene, spans[1], {"left": a_l, "right": a_r}, "tip_to_tip")
    end = spans[3][0] + 1 if separate else FRAMES
    if separate:
        _approach(scene, spans[3], {"left": a_l, "right": a_r}, "tip_to_tip", back=True)
    scene.right.expect.append(Expectation("tip_tip", (f"left_{finger}_tip", f"right_{finger}_tip"),
                                          spans[1][1] - 1, end, spans[1][0]))
    scene.relation.append(Event("both", "tip_to_tip", spans[1][0], spans[3][1] if separate else FRAMES,
                                {"fingers": [finger, finger], "separate": separate}))
    scene.separated_x = True


def _interaction_tip_to_palm(scene: Scene, rng: np.random.Generator) -> None:
    acting = "left" if rng.random() < 0.5 else "right"
    target = OTHER[acting]
    inward = 1.0 if acting == "left" else -1.0
    tplan, aplan = scene.plan(target), scene.plan(acting)
    target_rot = np.array([uniform(rng, 80, 95), uniform(rng, -5, 5), uniform(rng, -5, 5)])
    tplan.pose0 = _contact_pose(extended_shape(rng), target_rot, np.zeros(3))
    tj = forward_kinematics(tplan.pose0, target, scene.geometry)
    goal = palm_centre(tj) + float(uniform(rng, 0.008, 0.014)) * palm_normal(tj, target)
    shape = point_shape(rng, "index")
    rot = np.array([uniform(rng, 0, 20), uniform(rng, -5, 10), uniform(rng, 50, 75)])
    tip0 = forward_kinematics(_contact_pose(shape, rot, np.zeros(3)), acting, scene.geometry)[TIPS["index"]]
    travel = float(uniform(rng, 0.08, 0.16))
    aplan.pose0[ROT_SLICE] = np.deg2rad(rot)
    aplan.pose0[POS_SLICE] = goal - tip0 - [inward * travel, 0.0, 0.0]
    separate = bool(rng.random() < 0.5)
    spans = schedule(rng, (0, FRAMES), [(6, 14), (10, 22), (6, 20)] + ([(8, 16)] if separate else []))
    aplan.move_shape(*spans[0], shape)
    aplan.event("point", *spans[0], primitive="tip_to_palm", fingers=["index"])
    _approach(scene, spans[1], {acting: travel}, "tip_to_palm")
    end = spans[3][0] + 1 if separate else FRAMES
    if separate:
        _approach(scene, spans[3], {acting: travel}, "tip_to_palm", back=True)
    tplan.event("hold_still", 0, FRAMES, primitive="tip_to_palm", palm=palm_facing(tplan.pose0))
    aplan.expect.append(Expectation("tip_palm", (f"{acting}_index_tip", f"{target}_palm"), spans[1][1] - 1, end,
                                    spans[1][0]))
    scene.relation.append(Event("both", "tip_to_palm", spans[1][0], spans[3][1] if separate else FRAMES,
                                {"acting": acting, "target": target, "fingers": ["index"], "separate": separate}))


def mirror_plan(plan: HandPlan, plane_x: float) -> HandPlan:
    """The mirror image of a hand's plan in the plane ``x = plane_x``: same anatomical angles, the other side.

    Wrist x positions become ``2·plane_x − x``; events and contact expectations swap left and right.
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
        out.events.append(Event(side, ev.action, ev.start, ev.end, params))
    for ex in plan.expect:
        between = tuple(n.replace(f"{plan.side}_", f"{side}_", 1) for n in ex.between)
        out.expect.append(dataclasses.replace(ex, between=between))
    return out


def _interaction_mirrored(scene: Scene, rng: np.random.Generator, budget: float) -> None:
    name = str(rng.choice([p for p in PRIMITIVES if p != "hold_still"]))
    sep = scene.right.pose0[POSE["wrist_x"]] - scene.left.pose0[POSE["wrist_x"]]
    ctx = PrimitiveContext(inward_budget=budget, geometry=scene.geometry)
    build_primitive(name, scene.right, rng, ctx)
    scene.left = mirror_plan(scene.right, scene.right.pose0[POSE["wrist_x"]] - sep / 2)
    starts = [e.start for e in scene.right.events]
    ends = [e.end for e in scene.right.events]
    scene.relation.append(Event("both", "mirrored", min(starts), max(ends), {"primitive": name}))


def _interaction_hold_and_act(scene: Scene, rng: np.random.Generator, budget: float) -> None:
    holding = "left" if rng.random() < 0.5 else "right"
    acting = OTHER[holding]
    name = str(rng.choice([p for p in PRIMITIVES if p != "hold_still"]))
    build_primitive("hold_still", scene.plan(holding), rng, PrimitiveContext(geometry=scene.geometry))
    build_primitive(name, scene.plan(acting), rng, PrimitiveContext(inward_budget=budget, geometry=scene.geometry))
    ev = scene.plan(acting).events
    scene.relation.append(Event("both", "hold_and_act", min(e.start for e in ev), max(e.end for e in ev),
                                {"holding": holding, "acting": acting, "primitive": name}))


def _independent(scene: Scene, rng: np.random.Generator, budget: float, forced: str | None = None) -> None:
    names = [str(rng.choice(PRIMITIVES)), str(rng.choice(PRIMITIVES))]
    if forced is not None:
        names[int(rng.integers(0, 2))] = forced
    for side, name in zip(("left", "right"), names):
        build_primitive(name, scene.plan(side), rng, PrimitiveContext(inward_budget=budget, geometry=scene.geometry))
    scene.relation.append(Event("both", "independent", 0, FRAMES, {}))


def build_scene(rng: np.random.Generator, kind: str) -> Scene:
    """A full two-hand scene: ``kind`` is an interaction, a per-hand primitive (that one hand performs while
    the other does something random) or ``"independent"`` (each hand a random primitive)."""
    scene, budget = base_scene(rng, kind)
    if kind == "clap":
        _interaction_clap(scene, rng)
    elif kind == "palms_together":
        _interaction_palms_together(scene, rng)
    elif kind == "tip_to_tip":
        _interaction_tip_to_tip(scene, rng)
    elif kind == "tip_to_palm":
        _interaction_tip_to_palm(scene, rng)
    elif kind == "mirrored":
        _interaction_mirrored(scene, rng, budget)
    elif kind == "hold_and_act":
        _interaction_hold_and_act(scene, rng, budget)
    elif kind == "independent":
        _independent(scene, rng, budget)
    elif kind in PRIMITIVES:
        scene.kind = "independent"
        _independent(scene, rng, budget, forced=kind)
    else:
        raise ValueError(f"unknown kind {kind!r}; expected 'independent', one of {', '.join(INTERACTIONS)} "
                         f"or one of {', '.join(PRIMITIVES)}")
    return scene
