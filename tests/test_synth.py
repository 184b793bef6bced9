"""Properties of the synthetic corpus (handx.synth): its programs must be true of its motion.

Contact thresholds follow reference §2.3–2.4 / §2.9 (tips 2 cm, tip–palm 2.5 cm, palm–palm 2.5 cm).
"""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest
from conftest import assert_plausible_anatomy

from handx import skeleton
from handx.features.codes import FLEXION
from handx.features.quality import QualityConfig, quality_stats
from handx.features.signals import FLEXION_KEYS, flexion
from handx.synth import (
    INTERACTIONS,
    PRIMITIVES,
    SequenceConfig,
    SynthClip,
    SynthConfig,
    generate,
    generate_clip,
)
from handx.synth.hand import (
    POSE,
    POSE_DIM,
    POSE_LOWER,
    POSE_UPPER,
    HandGeometry,
    clip_to_limits,
    forward_kinematics,
    forward_kinematics_pair,
    palm_palm_distance,
    point_triangle_distance,
    tip_palm_distance,
    wrist_rotation,
)
from handx.synth.program import FINGER_ACTIONS, add_flexion_changes, contact_signals
from handx.synth.shapes import pinch_shape

SEEDS = (0, 1, 2)
NOISE = 0.003  # metres: what the smooth pose noise may move a joint, with margin
J = skeleton.JOINT_INDEX


# ----------------------------------------------------------------------------------------------- helpers

def _clips(kind: str, seeds=SEEDS, index: int = 0) -> list[SynthClip]:
    return [generate_clip(s, index, kind=kind) for s in seeds]


def _events(clip: SynthClip, primitive: str) -> list[dict]:
    """The non-return events a primitive wrote."""
    return [e for e in clip.program if e.get("primitive") == primitive and not e.get("reverse")]


def _hand(e: dict) -> int:
    return skeleton.HAND_NAMES.index(e["hand"])


def _straightness(joints: np.ndarray, finger: str) -> np.ndarray:
    """|tip − mcp| / (sum of the finger's three segments): 1 for a straight finger. ``(..., 21, 3)`` → ``(...)``."""
    chain = skeleton.CHAINS[finger][1:]
    seg = np.linalg.norm(np.diff(joints[..., chain, :], axis=-2), axis=-1).sum(-1)
    return np.linalg.norm(joints[..., chain[-1], :] - joints[..., chain[0], :], axis=-1) / seg


def _mcp_angle(joints: np.ndarray, finger: str) -> np.ndarray:
    """Angle (degrees) between the metacarpal and the proximal phalanx."""
    w, m, p = (joints[..., j, :] for j in skeleton.CHAINS[finger][:3])
    a, b = m - w, p - m
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _bone_angle(joints: np.ndarray, f1: str, f2: str) -> np.ndarray:
    """Angle (degrees) between the proximal phalanges (pip − mcp) of two fingers (reference §2.3 spacing)."""
    def bone(f):
        c = skeleton.CHAINS[f]
        v = joints[..., c[2], :] - joints[..., c[1], :]
        return v / np.linalg.norm(v, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip((bone(f1) * bone(f2)).sum(-1), -1, 1)))


def _palm_normal(joints: np.ndarray, hand: int) -> np.ndarray:
    """Unit normal out of the palm, from the wrist, index MCP and pinky MCP."""
    a = joints[..., J["index_mcp"], :] - joints[..., 0, :]
    b = joints[..., J["pinky_mcp"], :] - joints[..., 0, :]
    n = np.cross(a, b) if hand == skeleton.RIGHT else np.cross(b, a)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def _static(x: np.ndarray) -> float:
    """Largest displacement of any joint from its mean position, ``(T, 21, 3)`` → metres."""
    return float(np.linalg.norm(x - x.mean(axis=0), axis=-1).max())


# --------------------------------------------------------------------------------------- hand model (FK)

def test_fk_bones_constant_and_adult_sized():
    rng = np.random.default_rng(0)
    poses = clip_to_limits(rng.uniform(-1.5, 1.5, (200, POSE_DIM)))
    for side in ("left", "right"):
        for scale in (0.92, 1.0, 1.08):
            joints = forward_kinematics(poses, side, HandGeometry().scaled(scale))  # (200, 21, 3)
            bones = skeleton.bone_lengths(joints)  # (200, 20)
            np.testing.assert_allclose(bones, np.broadcast_to(bones[0], bones.shape), atol=1e-12)
            length = skeleton.hand_length(joints)
            assert 0.15 <= length.min() and length.max() <= 0.22
    tips = np.linalg.norm(np.diff(forward_kinematics(np.zeros(POSE_DIM), "right")[skeleton.TIP_BONES], axis=1), axis=-1)
    assert 0.018 <= tips.min() and tips.max() <= 0.025
    assert 0.18 <= float(skeleton.hand_length(forward_kinematics(np.zeros(POSE_DIM), "right"))) <= 0.19


def test_fk_chirality_thumbs_point_inwards():
    pose = np.zeros(POSE_DIM)
    pose[POSE["thumb_cmc_yaw"]] = np.radians(40)
    right, left = forward_kinematics(pose, "right"), forward_kinematics(pose, "left")
    # Palms down, fingers +y: the right thumb is on the -x side of its palm, the left thumb on +x.
    assert right[J["thumb_tip"], 0] < right[J["middle_mcp"], 0]
    assert left[J["thumb_tip"], 0] > left[J["middle_mcp"], 0]
    assert (right[skeleton.TIP_INDICES, 1] > 0).all() and (left[skeleton.TIP_INDICES, 1] > 0).all()
    np.testing.assert_allclose(_palm_normal(right, skeleton.RIGHT)[2], -1, atol=0.02)
    np.testing.assert_allclose(_palm_normal(left, skeleton.LEFT)[2], -1, atol=0.02)


def test_fk_left_is_mirror_of_right():
    rng = np.random.default_rng(1)
    poses = clip_to_limits(rng.uniform(-1, 1, (50, POSE_DIM)))
    mirrored = poses.copy()
    mirrored[:, POSE["wrist_x"]] *= -1
    right = forward_kinematics(poses, "right")
    left = forward_kinematics(mirrored, "left")
    np.testing.assert_allclose(left, right * [-1, 1, 1], atol=1e-12)
    pair = forward_kinematics_pair(np.stack([mirrored, poses], axis=1))  # (50, 2, 21, 3)
    np.testing.assert_allclose(pair[:, 0], left, atol=1e-12)
    np.testing.assert_allclose(pair[:, 1], right, atol=1e-12)


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
    """Elementary rotations about x (0), y (1) or z (2): ``(N,)`` → ``(N, 3, 3)``."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out = np.zeros((len(angle), 3, 3))
    out[:, axis, axis] = 1
    out[:, i, i], out[:, i, j], out[:, j, i], out[:, j, j] = c, -s, s, c
    return out


def test_wrist_rotation_is_the_product_of_elementary_rotations():
    rot = np.random.default_rng(2).uniform(-3, 3, (20, 3))
    expected = _rot(2, rot[:, 2]) @ _rot(1, rot[:, 0]) @ _rot(0, -rot[:, 1])
    np.testing.assert_allclose(wrist_rotation(rot, "right"), expected, atol=1e-12)
    expected = _rot(2, -rot[:, 2]) @ _rot(1, -rot[:, 0]) @ _rot(0, -rot[:, 1])
    np.testing.assert_allclose(wrist_rotation(rot, "left"), expected, atol=1e-12)
    r = wrist_rotation(rot, "right")
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)


def test_joint_limits_clip_and_allow_small_hyperextension():
    pose = np.full(POSE_DIM, 10.0)
    assert (clip_to_limits(pose)[:23] <= POSE_UPPER[:23]).all()
    assert np.degrees(POSE_LOWER[POSE["index_mcp_flex"]]) < 0  # hyperextension at the MCP
    assert np.degrees(POSE_LOWER[POSE["index_pip"]]) >= -5


def test_distance_functions_match_brute_force():
    rng = np.random.default_rng(3)
    tri = rng.normal(size=(30, 3, 3)) * 0.05
    pts = rng.normal(size=(30, 3)) * 0.08
    w = rng.dirichlet(np.ones(3), 20000)  # (S, 3) dense barycentric samples
    samples = np.einsum("sk,nkc->nsc", w, tri)  # (30, S, 3)
    brute = np.linalg.norm(samples - pts[:, None], axis=-1).min(axis=1)
    exact = point_triangle_distance(pts, tri[:, 0], tri[:, 1], tri[:, 2])
    assert (exact <= brute + 1e-9).all() and np.abs(exact - brute).max() < 2e-3
    # Palm to palm: the exact distance never exceeds the distance between dense surface samples.
    a = forward_kinematics(clip_to_limits(rng.uniform(-1, 1, (4, POSE_DIM)) * 0.5), "left")
    b = a * [-1, 1, 1] + [0.04, 0.0, 0.0]
    ws = rng.dirichlet(np.ones(3), 300)
    sa = np.einsum("sk,ntkc->ntsc", ws, a[:, skeleton.PALM_TRIANGLES]).reshape(4, -1, 3)
    sb = np.einsum("sk,ntkc->ntsc", ws, b[:, skeleton.PALM_TRIANGLES]).reshape(4, -1, 3)
    sampled = np.linalg.norm(sa[:, :, None] - sb[:, None], axis=-1).min(axis=(1, 2))
    exact = palm_palm_distance(a, b)
    assert (exact <= sampled + 1e-9).all() and np.abs(exact - sampled).max() < 5e-3


@pytest.mark.parametrize("finger", ["index", "middle", "ring", "pinky"])
@pytest.mark.parametrize("scale", [0.92, 1.08])
def test_pinch_solution_brings_tips_together(finger, scale):
    geometry = HandGeometry().scaled(scale)
    pose = np.zeros(POSE_DIM)
    pose[:20] = pinch_shape(np.random.default_rng(0), finger, geometry)
    joints = forward_kinematics(clip_to_limits(pose), "right", geometry)
    d = np.linalg.norm(joints[skeleton.TIPS["thumb"]] - joints[skeleton.TIPS[finger]])
    assert d < 0.012
    np.testing.assert_array_equal(clip_to_limits(pose), pose)  # the solution respects the joint limits


# ----------------------------------------------------------------------------------------- per-hand events

LONGS = ("index", "middle", "ring", "pinky")


def _next_finger_event(clip: SynthClip, ev: dict) -> int:
    """Start of the next finger event of the same hand after ``ev`` (60 when none): until then the hand keeps
    the shape ``ev`` left."""
    later = [e["start"] for e in clip.program if e["hand"] == ev["hand"] and e["action"] in FINGER_ACTIONS
             and e["start"] >= ev["end"] - 1 and e is not ev]
    return min(later, default=60)


def _check_event(clip: SynthClip, ev: dict) -> None:
    """Assert that one per-hand event of a program is true of the clip's motion on its frames."""
    h = _hand(ev)
    x = clip.motion.astype(np.float64)[:, h]  # (T, 21, 3)
    s, e = ev["start"], ev["end"]
    before, after = x[s], x[e - 1]
    action = ev["action"]
    if action == "fist":
        assert (tip_palm_distance(after[skeleton.TIP_INDICES[1:]], after) < 0.03).all()
        assert all(_mcp_angle(after, f) > 60 and _straightness(after, f) < 0.6 for f in LONGS)
    elif action == "open":
        assert all(_straightness(after, f) > 0.97 and _mcp_angle(after, f) < 20 for f in LONGS)
        bent = [f for f in LONGS if _straightness(before, f) < 0.95]
        assert bent, "a hand opens only when some finger is bent"
        assert all(_straightness(before, f) < _straightness(after, f) for f in bent)
    elif action == "point":
        finger = ev["fingers"][0]
        assert _straightness(after, finger) > 0.97 and _mcp_angle(after, finger) < 20
        assert all(_straightness(after, f) < 0.6 for f in LONGS if f != finger)
    elif action == "pinch":
        finger = ev["fingers"][1]
        d = np.linalg.norm(x[:, skeleton.TIPS["thumb"]] - x[:, skeleton.TIPS[finger]], axis=-1)  # (T,)
        contacts = [c for c in clip.program if c["action"] == "contact" and c["between"] ==
                    [f"{ev['hand']}_thumb_tip", f"{ev['hand']}_{finger}_tip"] and c["start"] <= e - 1 < c["end"]]
        assert len(contacts) == 1, "the pinch reaches a programmed contact"
        c = contacts[0]
        assert (d[c["start"]:c["end"]] < 0.02).all()
        assert d[s] > 0.03, "apart when the pinch starts"
        assert (d[s:c["start"]] >= 0.02).all(), "no contact inside the event before its programmed interval"
        assert (d[e - 1:_next_finger_event(clip, ev)] < 0.02).all(), "the pinch holds until the hand moves on"
    elif action == "release":
        assert all(_straightness(after, f) > 0.85 and _mcp_angle(after, f) < 40 for f in LONGS)
        if ev.get("fingers"):
            tips = [skeleton.TIPS[f] for f in ev["fingers"]]
            assert np.linalg.norm(after[tips[0]] - after[tips[1]]) > 0.02
    elif action in ("spread", "close_fingers"):
        pairs = [("index", "middle"), ("middle", "ring"), ("ring", "pinky")]
        a0 = np.array([_bone_angle(before, *p) for p in pairs])
        a1 = np.array([_bone_angle(after, *p) for p in pairs])
        if action == "spread":
            assert (a1 > a0 + 10).all() and (a1 >= 20).all()
        else:
            assert (a1 < a0 - 10).all() and (a1 < 20).all()
    elif action == "count":
        for finger, s0, e0 in ev["steps"]:
            if finger == "thumb":
                continue
            assert _straightness(x[s0], finger) < 0.6 and _straightness(x[e0 - 1], finger) > 0.97
        order = [st[1] for st in ev["steps"]]
        assert order == sorted(order) and len(set(order)) == len(order), "fingers extend one after another"
        assert len(ev["steps"]) == ev["count"] and ev["fingers"] == [st[0] for st in ev["steps"]]
    elif action == "finger_wave":
        for finger, s0, e0 in ev["steps"]:
            mid = (s0 + e0) // 2
            assert _straightness(x[mid], finger) < _straightness(x[s0], finger) - 0.1
            assert _straightness(x[e0 - 1], finger) > 0.97
    elif action == "tap":
        finger = ev["fingers"][0]
        st = _straightness(x[s:e], finger)
        low = st < 0.5 * (st.min() + st.max())
        assert len(np.flatnonzero(np.diff(low.astype(int)) == 1)) == ev["repeats"]
    elif action == "move":
        unit = {"left": (-1, 0, 0), "right": (1, 0, 0), "forward": (0, 1, 0), "back": (0, -1, 0),
                "up": (0, 0, 1), "down": (0, 0, -1)}[ev["direction"]]
        np.testing.assert_allclose(after[0] - before[0], np.multiply(unit, ev["distance"]), atol=NOISE)
        if ev["primitive"].startswith("move_"):
            assert 0.03 <= ev["distance"] <= 0.15
            assert ev["direction"] == (ev["primitive"].split("_")[1] if not ev.get("reverse") else
                                       {"left": "right", "right": "left", "forward": "back", "back": "forward",
                                        "up": "down", "down": "up"}[ev["primitive"].split("_")[1]])
    elif action == "rotate":
        n0, n1 = _palm_normal(before, h), _palm_normal(after, h)
        turned = np.degrees(np.arccos(np.clip(n0 @ n1, -1, 1)))
        assert turned > min(ev["angle"], 360 - ev["angle"]) - 25
        if ev["direction"] == "palm_in":
            assert n1[0] * (1 if h == skeleton.LEFT else -1) > 0.9, "the palm faces the other hand"
        else:
            up = ev["direction"] == "palm_up"
            assert (n1[2] > 0.7 and n0[2] < -0.7) if up else (n1[2] < -0.7 and n0[2] > 0.7)
    elif action == "bend_wrist":
        def pitch(j):
            d = j[J["middle_mcp"]] - j[0]
            return np.degrees(np.arcsin(d[2] / np.linalg.norm(d)))
        sign = -1 if ev["direction"] == "down" else 1
        assert sign * (pitch(after) - pitch(before)) > 0.8 * ev["angle"]
    elif action == "hold_still":
        assert _static(x[s:e]) < NOISE
    else:  # pragma: no cover
        raise AssertionError(f"no property for {action}")


@pytest.mark.parametrize("kind", PRIMITIVES)
def test_primitive_program_is_true_of_motion(kind):
    checked = 0
    for clip in _clips(kind, seeds=(0, 1, 2, 3)):
        assert clip.kind == "independent"
        events = _events(clip, kind)
        assert events, f"{kind}: no event in {clip.program}"
        for ev in events:
            _check_event(clip, ev)
            checked += 1
    assert checked >= 4


@pytest.fixture(scope="module")
def corpus() -> list[SynthClip]:
    """300 clips of the default corpus (seed 0)."""
    return list(generate(300, 0))


def test_every_event_of_the_corpus_is_true_of_motion(corpus):
    """Every per-hand event of 200 default programs, in the frames the program gives it."""
    seen: dict[str, int] = {}
    for clip in corpus[:200]:
        for ev in clip.program:
            if ev["hand"] == "both" or ev["action"] == "contact":  # contacts: see the contact-run test
                continue
            _check_event(clip, ev)
            seen[ev["action"]] = seen.get(ev["action"], 0) + 1
    for action in (*FINGER_ACTIONS, "move", "rotate", "bend_wrist", "hold_still"):
        assert seen.get(action, 0) >= 5, f"only {seen.get(action, 0)} {action} events in 200 clips"


# ---------------------------------------------------------------------------- flexion ground truth (§2.3)

BANDS = FLEXION.values.labels  # "Hyper extend", "Fully extended", "Partially bent", "Fully bent"
BENT = ("Partially bent", "Fully bent")


def test_flexion_changes_on_finger_events_and_json_serialisable():
    seen = {"empty": 0, "changed": 0}
    for clip in generate(40, 4):
        program = json.loads(json.dumps(clip.program))
        assert program == clip.program
        for e in program:
            finger = e["hand"] != "both" and e["action"] in FINGER_ACTIONS
            assert ("flexion_changes" in e) == finger, e
            if not finger:
                continue
            joints = [c["joint"] for c in e["flexion_changes"]]
            assert joints == sorted(set(joints), key=FLEXION_KEYS.index), "each key once, in FLEXION_KEYS order"
            for c in e["flexion_changes"]:
                assert set(c) == {"joint", "from", "to"}
                assert c["from"] in BANDS and c["to"] in BANDS and c["from"] != c["to"]
            seen["changed" if joints else "empty"] += 1
    assert seen["changed"] >= 50 and seen["empty"] >= 3, seen


def test_flexion_changes_hand_computed_case():
    """Bands of the generator's angles on an event's first and last frames, edges inclusive from below."""
    poses = np.zeros((60, 2, POSE_DIM))
    poses[:, 1, POSE["thumb_mcp"]] = np.deg2rad(-25.0)  # Hyper extend → Fully extended
    poses[20:, 1, POSE["thumb_mcp"]] = 0.0
    poses[20:, 1, POSE["index_pip"]] = np.pi / 6  # exactly 30°: Partially bent
    poses[20:, 1, POSE["ring_mcp_flex"]] = np.pi / 3  # exactly 60°: Fully bent
    poses[10:15, 1, POSE["middle_dip"]] = np.deg2rad(80.0)  # bent and back inside the event: no change
    poses[:, 0, POSE["pinky_pip"]] = np.deg2rad(70.0)  # the other hand: not this event's
    poses[20:, 1, POSE["index_mcp_abd"]] = 0.3  # not a flexion key
    program = [
        {"hand": "right", "action": "fist", "start": 5, "end": 21, "fingers": ["thumb"]},
        {"hand": "right", "action": "move", "start": 5, "end": 21},
        {"hand": "right", "action": "contact", "start": 5, "end": 21},
        {"hand": "left", "action": "open", "start": 5, "end": 21},
        {"hand": "both", "action": "independent", "start": 0, "end": 60},
    ]
    out = add_flexion_changes(program, poses)
    assert out[0]["flexion_changes"] == [
        {"joint": "thumb_mcp", "from": "Hyper extend", "to": "Fully extended"},
        {"joint": "index_pip", "from": "Fully extended", "to": "Partially bent"},
        {"joint": "ring_mcp", "from": "Fully extended", "to": "Fully bent"},
    ]
    assert out[3]["flexion_changes"] == []
    assert [{k: v for k, v in e.items() if k != "flexion_changes"} for e in out] == program
    assert all("flexion_changes" not in e for e in out[1:3] + out[4:])
    assert all("flexion_changes" not in e for e in program), "the input program is left as it was"


def _is_open(joints: np.ndarray) -> bool:
    return all(_straightness(joints, f) > 0.97 for f in LONGS)


def _is_curled(joints: np.ndarray) -> bool:
    return all(_straightness(joints, f) < 0.6 for f in LONGS)


def test_fist_and_open_flexion_changes_agree_with_the_shapes(corpus):
    """A fist from an open hand bends every long finger's PIP out of "Fully extended"; opening a curled hand
    straightens every PIP back into it."""
    clips = corpus + [generate_clip(s, 0, kind=k) for s in range(12) for k in ("fist", "open")]
    checked = {"fist": 0, "open": 0}
    for clip in clips:
        for e in clip.program:
            if e["action"] not in checked:
                continue
            x = clip.motion.astype(np.float64)[:, _hand(e)]  # (T, 21, 3)
            before, after = x[e["start"]], x[e["end"] - 1]
            changes = {c["joint"]: (c["from"], c["to"]) for c in e["flexion_changes"]}
            if e["action"] == "fist" and _is_open(before):
                for f in LONGS:
                    assert changes.get(f"{f}_pip", ("", ""))[0] == "Fully extended", (f, e)
                    assert changes[f"{f}_pip"][1] in BENT, (f, e)
                checked["fist"] += 1
            elif e["action"] == "open" and _is_curled(before):
                assert _is_open(after)
                for f in LONGS:
                    assert changes.get(f"{f}_pip", ("", ""))[0] in BENT, (f, e)
                    assert changes[f"{f}_pip"][1] == "Fully extended", (f, e)
                checked["open"] += 1
    assert min(checked.values()) >= 50, checked


def test_flexion_changes_agree_with_position_derived_flexion(corpus):
    """Independent check on the joints: over 200 clips, the flexion angle measured from the positions
    (:func:`handx.features.signals.flexion`) moves the way each listed band change goes in >= 95 % of cases
    (measured: 10523 of 10523 on seed 0)."""
    agree = total = 0
    for clip in corpus[:200]:
        x = clip.motion.astype(np.float64)
        angles = [flexion(x[:, h], h) for h in range(2)]  # (14, T) per hand
        for e in clip.program:
            for c in e.get("flexion_changes", ()):
                k = FLEXION_KEYS.index(c["joint"])
                moved = angles[_hand(e)][k, e["end"] - 1] - angles[_hand(e)][k, e["start"]]
                agree += np.sign(moved) == np.sign(BANDS.index(c["to"]) - BANDS.index(c["from"]))
                total += 1
    assert total >= 2000
    assert agree / total >= 0.95, f"{agree} of {total} flexion changes agree with the positions"


def test_hands_perform_sequences_that_blend_without_jumps(corpus):
    counts = []
    for clip in corpus:
        for side in ("left", "right"):
            finger = sorted((e for e in clip.program if e["hand"] == side and e["action"] in FINGER_ACTIONS),
                            key=lambda e: e["start"])
            for a, b in itertools.pairwise(finger):
                assert b["start"] >= a["end"] - 1, f"finger events of one hand overlap: {a}, {b}"
            counts.append(len([e for e in finger if not e.get("reverse") and e["action"] != "release"]))
    counts = np.array(counts)
    assert (counts >= 2).mean() > 0.8, "most hands perform several finger primitives"
    assert counts.max() >= 4
    # Consecutive primitives start from the previous end pose: no joint jumps or acceleration spikes.
    motion = np.stack([c.motion for c in corpus]).astype(np.float64)  # (B, T, 2, 21, 3)
    acc = np.linalg.norm(motion[:, 2:] - 2 * motion[:, 1:-1] + motion[:, :-2], axis=-1) * 30.0**2  # m/s²
    assert acc.max() < 120


def test_default_corpus_passes_the_quality_filter(corpus):
    """Like HandX, whose clips passed the intensity filter (reference Appendix B), most default clips move both
    hands enough; every clip passes the other quality checks."""
    motion = np.stack([c.motion for c in corpus])  # (300, 60, 2, 21, 3)
    _, reasons = quality_stats(motion)
    passing = np.mean([not r for r in reasons])
    assert passing >= 0.75, f"only {passing:.0%} of clips pass the intensity filter"
    _, reasons = quality_stats(motion, QualityConfig(intensity=False))
    assert not any(reasons), [r for r in reasons if r][:3]


# ------------------------------------------------------------------------------------- two-hand interactions

def _both_contacts(clip: SynthClip, kind: str) -> list[dict]:
    return [e for e in clip.program if e["action"] == "contact" and e["hand"] == "both" and e["kind"] == kind]


@pytest.mark.parametrize("kind", INTERACTIONS)
def test_interaction_program_is_true_of_motion(kind):
    for seed in range(5):
        clip = generate_clip(seed, 1, kind=kind)
        assert clip.kind == kind
        x = clip.motion.astype(np.float64)  # (T, 2, 21, 3)
        rel = [e for e in clip.program if e["hand"] == "both" and e["action"] == kind]
        assert len(rel) == 1
        rel = rel[0]
        s = rel["start"]
        for ev in clip.program:
            if ev["hand"] != "both" and ev["action"] != "contact":
                _check_event(clip, ev)
        if kind in ("clap", "palms_together", "tip_to_tip", "tip_to_palm"):
            assert not [c for c in clip.program if c["hand"] == "both" and c["action"] == "contact"
                        and c["start"] < s], "the hands touch only in the interaction"
            for side in ("left", "right"):
                assert [e for e in clip.program if e["hand"] == side and e["action"] in FINGER_ACTIONS], \
                    "both hands move their fingers"
        if kind in ("clap", "palms_together"):
            contacts = _both_contacts(clip, "palm_palm")
            d = palm_palm_distance(x[:, 0], x[:, 1])
            assert contacts and all((d[c["start"]:c["end"]] < 0.025).all() for c in contacts)
            assert (d[:s] > 0.035).all()
            if kind == "clap":
                assert len(contacts) == rel["repeats"]
            else:
                assert max(c["end"] - c["start"] for c in contacts) >= 10, "palms stay together"
            # Mirror-image hands that face each other never cross the plane between them.
            assert (x[:, 0, :, 0].max(axis=1) < x[:, 1, :, 0].min(axis=1)).all()
        elif kind == "tip_to_tip":
            f = rel["fingers"][0]
            d = np.linalg.norm(x[:, 0, skeleton.TIPS[f]] - x[:, 1, skeleton.TIPS[f]], axis=-1)
            pair = [f"left_{f}_tip", f"right_{f}_tip"]
            contacts = [c for c in _both_contacts(clip, "tip_tip") if c["between"] == pair]
            assert contacts and all((d[c["start"]:c["end"]] < 0.02).all() for c in contacts)
            assert (d[:s] > 0.03).all()
        elif kind == "tip_to_palm":
            a, t = skeleton.HAND_NAMES.index(rel["acting"]), skeleton.HAND_NAMES.index(rel["target"])
            d = tip_palm_distance(x[:, a, skeleton.TIPS["index"]][:, None], x[:, t])[:, 0]
            contacts = [c for c in _both_contacts(clip, "tip_palm") if c["between"][0] == f"{rel['acting']}_index_tip"]
            assert contacts and all((d[c["start"]:c["end"]] < 0.025).all() for c in contacts)
            assert (d[:s] > 0.035).all()
            assert _static(x[s:rel["end"], t]) < NOISE, "the touched hand holds still while touched"
        elif kind == "mirrored":
            c = 0.5 * (x[:, 0, 0, 0] + x[:, 1, 0, 0]).mean()
            shifted = x - [c, 0.0, 0.0]
            assert np.abs(skeleton.mirror(shifted) - shifted).max() < 2 * NOISE
            assert [e["action"] for e in clip.program if e["hand"] == "left"] == \
                [e["action"] for e in clip.program if e["hand"] == "right"]
        elif kind == "hold_and_act":
            holding = skeleton.HAND_NAMES.index(rel["holding"])
            assert _static(x[s:rel["end"], holding]) < NOISE
            held = [e for e in clip.program if e["hand"] == rel["holding"] and e["action"] != "contact"]
            assert any(e["action"] == "hold_still" and e["start"] <= s and rel["end"] <= e["end"] for e in held)
            assert any(e["action"] in FINGER_ACTIONS for e in held), "the holding hand moves before or after"
            acting = [e for e in clip.program if e["hand"] == rel["acting"] and e["action"] != "contact"]
            assert acting and all(s <= e["start"] and e["end"] <= rel["end"] for e in acting)
            assert {e["primitive"] for e in acting} == set(rel["primitives"])
            assert _static(x[:s, skeleton.HAND_NAMES.index(rel["acting"])]) < NOISE if s > 1 else True


def test_hands_do_not_interpenetrate():
    for kind in ("clap", "palms_together", "tip_to_tip", "tip_to_palm"):
        for clip in _clips(kind, seeds=range(4)):
            x = clip.motion.astype(np.float64)
            d = np.linalg.norm(x[:, 0, :, None] - x[:, 1, None, :], axis=-1)  # (T, 21, 21)
            d[:, skeleton.TIP_INDICES[:, None], skeleton.TIP_INDICES[None, :]] = np.inf  # touching tips may meet
            assert d.min() > 0.006, kind


# --------------------------------------------------------------------------------- program, contacts, texts

def test_contact_events_are_exactly_the_contact_runs():
    for clip in generate(40, 11):
        x = clip.motion.astype(np.float64)
        sig = contact_signals(x)
        tips = x[:, :, skeleton.TIP_INDICES]  # (T, 2, 5, 3)
        for h, hand in enumerate(skeleton.HAND_NAMES):
            for k, finger in enumerate(skeleton.FINGERS[1:], start=1):
                d = np.linalg.norm(tips[:, h, 0] - tips[:, h, k], axis=-1)
                covered = np.zeros(60, bool)
                for c in clip.program:
                    if c["action"] == "contact" and c["between"] == [f"{hand}_thumb_tip", f"{hand}_{finger}_tip"]:
                        covered[c["start"]:c["end"]] = True
                np.testing.assert_array_equal(covered, d < 0.02)
        for c in (e for e in clip.program if e["action"] == "contact"):
            d = sig.distance(c["kind"], c["between"])
            threshold = 0.02 if c["kind"] == "tip_tip" else 0.025
            assert (d[c["start"]:c["end"]] < threshold).all()
            assert c["start"] == 0 or d[c["start"] - 1] >= threshold
            assert c["end"] == 60 or d[c["end"]] >= threshold


def test_program_is_json_and_frames_in_range():
    for clip in generate(30, 4):
        program = json.loads(json.dumps(clip.program))
        assert program == clip.program
        for e in program:
            assert e["hand"] in ("left", "right", "both")
            assert isinstance(e["start"], int) and isinstance(e["end"], int)
            assert 0 <= e["start"] < e["end"] <= 60
        assert sum(e["hand"] == "both" and e["action"] != "contact" for e in program) == 1


def test_determinism_and_independence_from_n():
    a, b = generate_clip(7, 3), generate_clip(7, 3)
    np.testing.assert_array_equal(a.motion, b.motion)
    assert a.program == b.program and a.texts == b.texts
    from_run = list(generate(5, 7))[3]
    np.testing.assert_array_equal(from_run.motion, a.motion)
    assert from_run.program == a.program
    np.testing.assert_array_equal(list(generate(9, 7))[3].motion, a.motion)
    assert not np.array_equal(generate_clip(8, 3).motion, a.motion)
    assert not np.array_equal(generate_clip(7, 4).motion, a.motion)


def test_clip_format_and_mix():
    clips = list(generate(60, 21))
    for c in clips:
        assert c.motion.dtype == np.float32 and c.motion.shape == (60, 2, 21, 3)
        np.testing.assert_array_equal(c.motion[0, 1, 0], 0.0)
    kinds = [c.kind for c in clips]
    assert 0.25 < kinds.count("independent") / len(kinds) < 0.75
    assert len(set(kinds)) >= 5


def test_texts_five_variants_and_sides_not_mixed():
    for seed in range(6):
        clip = generate_clip(seed, 0, kind="pinch_index")
        for key in ("left", "right", "two_hands_relation"):
            assert len(clip.texts[key]) == 5 and all(isinstance(t, str) and t.strip() for t in clip.texts[key])
        assert all("right hand" not in t.lower() for t in clip.texts["left"])
        assert all("left hand" not in t.lower() for t in clip.texts["right"])
        for side in ("left", "right"):
            pinches = [e for e in clip.program if e["hand"] == side and e["action"] == "pinch"]
            texts = clip.texts[side]
            if pinches:
                assert all("thumb" in t for t in texts)
            else:
                assert not any("pinch" in t for t in texts)
        assert len(clip.texts["left"][4]) > len(clip.texts["left"][0])


def test_hand_texts_tell_the_sequence_in_order(corpus):
    frames = re.compile(r"\(frames (\d+)-(\d+)\)")
    for clip in corpus:
        for side, other in (("left", "right"), ("right", "left")):
            texts = clip.texts[side]
            assert not any(f"{other} hand" in t.lower() for t in texts), "a hand's text names only that hand"
            events = sorted((e for e in clip.program if e["hand"] == side and e["action"] != "contact"),
                            key=lambda e: (e["start"], e["end"]))
            timed = [(e["start"], e["end"] - 1) for e in events if (e["start"], e["end"]) != (0, 60)]
            # The detailed text gives every event's frames, in the order of the program.
            assert [tuple(map(int, m)) for m in frames.findall(texts[4])] == timed, (texts[4], events)
            if len(events) > 1:
                assert all(" first " in t or t.startswith("First") for t in texts[1:]), texts
                assert all(", then " in t or ", after that " in t or "meanwhile" in t or "at the same time" in t
                           or "while it also" in t for t in texts[1:])
            else:
                assert not any(" first " in t for t in texts)


def test_relation_texts_say_what_the_hands_do_together():
    words = {"clap": ("clap", "strike"), "palms_together": ("palm",), "tip_to_tip": ("tip",), "tip_to_palm": ("palm",),
             "mirrored": ("both",), "hold_and_act": ("still", "motionless", "holds")}
    for kind, options in words.items():
        for seed in range(3):
            clip = generate_clip(seed, 0, kind=kind)
            rel = next(e for e in clip.program if e["hand"] == "both" and e["action"] == kind)
            for text in clip.texts["two_hands_relation"]:
                assert any(w in text.lower() for w in options), (kind, text)
                if kind == "hold_and_act":
                    assert f"{rel['holding']} hand" in text and f"{rel['acting']} hand" in text
                if kind == "tip_to_palm":
                    assert rel["acting"] in text and rel["target"] in text
    for clip in _clips("independent"):
        assert all("hand" in t for t in clip.texts["two_hands_relation"])


def test_anatomy_is_plausible():
    clips = list(generate(40, 5)) + [generate_clip(1, 0, kind=k) for k in PRIMITIVES + INTERACTIONS]
    present = np.ones((60, 2), bool)
    for c in clips:
        assert_plausible_anatomy(c.motion, present, label=f"seed {c.seed} index {c.index} {c.kind}")
        bones = skeleton.bone_lengths(c.motion.astype(np.float64))
        assert np.abs(bones - bones[0]).max() < 1e-6  # exactly constant up to float32 rounding


def test_config_shares_single_primitives_and_still_hands():
    single = SynthConfig(interaction_fraction=0.0, sequence=SequenceConfig(single_fraction=1.0, wrist_fraction=0.0,
                                                                            still_fraction=0.0))
    for clip in generate(10, 2, config=single):
        for side in ("left", "right"):
            acts = [e for e in clip.program if e["hand"] == side and e["action"] not in ("contact", "release")
                    and not e.get("reverse")]
            assert len(acts) == 1 and acts[0]["action"] in FINGER_ACTIONS, acts
    still = SynthConfig(interaction_fraction=0.0, sequence=SequenceConfig(still_fraction=1.0))
    for clip in generate(5, 2, config=still):
        assert _static(clip.motion[:, 0].astype(np.float64)) < NOISE
        assert _static(clip.motion[:, 1].astype(np.float64)) < NOISE
        assert [e["action"] for e in clip.program if e["hand"] != "both" and e["action"] != "contact"] == \
            ["hold_still", "hold_still"]


@pytest.mark.parametrize("bad, field", [
    ({"min_primitives": 3, "max_primitives": 2}, "min_primitives"),
    ({"single_fraction": 1.5}, "single_fraction"),
    ({"still_fraction": -0.1}, "still_fraction"),
    ({"max_hold": -1}, "max_hold"),
    ({"min_travel": -5.0}, "min_travel"),
])
def test_sequence_config_names_the_bad_field(bad, field):
    with pytest.raises(ValueError, match=f"SequenceConfig.{field}"):
        SequenceConfig(**bad)


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown kind"):
        generate_clip(0, 0, kind="juggle")
