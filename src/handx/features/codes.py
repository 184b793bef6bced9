"""Motion codes: the kinematic events of a two-hand clip, in the JSON schema of reference §2.5.

``motion_codes(clip)`` describes one ``(T, 2, 21, 3)`` clip; ``motion_codes_batch(clips)`` describes many at
once, computing every signal for the whole batch with numpy and segmenting all signals of a family together
(:mod:`handx.features.segment`). Definitions, bands and thresholds follow reference §2.3–2.4, with the
deviations of DESIGN.md: fixed palm samples, a detectable "Hyper extend" flexion band (< −20°), and the same
segmentation parameters for left-tip and right-tip palm distances (the reference code used the defaults for
right tips by mistake).

Schema::

    {"frame_count": T,
     "left_hand_events": {"finger_flexing": {key: [event]}, "finger_spacing": {...},
                          "finger_tip_contact": {...}, "wrist_trajectory": {axis: [event]}},
     "right_hand_events": {...},
     "two_hand_relationships": {"finger_tip_contact": {...}, "finger_palm_distance": {...},
                                "palm_palm_distance": {...}, "palm_palm_relative_position": {...}}}

An event is ``{start, end, start_des, end_des, v_des}`` (a change of state; ``end`` exclusive),
``{start, end, constant_des}`` (no change over the clip), ``{start, end, constant_des: "Contact"}`` (a contact;
``end`` inclusive) or, for the wrist, ``{start, end, direction, v_des}``. Contact keys and wrist axes without
events are absent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from handx.features import signals
from handx.features.segment import Bands, SegmentSpec, Segments, contact_runs, segment
from handx.motion import FPS
from handx.skeleton import FINGERS, HAND_NAMES

SPEEDS_ANGLE = Bands((0.15, 1.3), ("Slow", "Medium", "Fast"))
FLEXION = SegmentSpec(
    values=Bands((-math.pi / 9, math.pi / 6, math.pi / 3), ("Hyper extend", "Fully extended", "Partially bent",
                                                             "Fully bent")),
    speeds=SPEEDS_ANGLE, delta=math.pi / 6, min_duration=6)
SPACING = SegmentSpec(values=Bands((math.pi / 9,), ("Closed", "Open")),
                      speeds=Bands((0.03, 1.3), ("Slow", "Medium", "Fast")), delta=math.pi / 10, min_duration=6)
WRIST = SegmentSpec(values=None, speeds=Bands((0.03, 0.15), ("Slow", "Medium", "Fast")), delta=0.03, min_duration=4)
SPEEDS_DISTANCE = Bands((0.025, 0.07), ("Slow", "Medium", "Fast"))
FINGER_PALM = SegmentSpec(values=Bands((0.025, 0.035), ("Contact", "Near", "Far")), speeds=SPEEDS_DISTANCE,
                          delta=0.03, min_duration=6)
PALM_PALM = SegmentSpec(values=Bands((0.04, 0.08, 0.12), ("Contact", "Near", "Medium", "Far")),
                        speeds=SPEEDS_DISTANCE, delta=0.05, min_duration=6)
RELATIVE = SegmentSpec(values=Bands((-0.02, 0.02), ("below", "aligned", "above")), speeds=SPEEDS_DISTANCE,
                       delta=0.05, min_duration=4)
TIP_CONTACT = 0.020

WRIST_AXES = ("left-right", "front-back", "down-up")
WRIST_DIRECTIONS = (("right-to-left", "left-to-right"), ("front-to-back", "back-to-front"),
                    ("up-to-down", "down-to-up"))
RELATIVE_AXES = ("left-right", "front-back", "up-down")
RELATIVE_LABELS = (
    ("The right hand is to the LEFT of the left hand.", "The right hand is ALIGNED with the left hand.",
     "The right hand is to the RIGHT of the left hand."),
    ("The right hand is BACK from the left hand.", "The right hand is ALIGNED with the left hand.",
     "The right hand is in FRONT of the left hand."),
    ("The right hand is DOWN from the left hand.", "The right hand is ALIGNED with the left hand.",
     "The right hand is UP from the left hand."),
)
INTER_TIP_KEYS = tuple(f"left_{a}_tip, right_{b}_tip" for a in FINGERS for b in FINGERS)
FINGER_PALM_KEYS = (tuple(f"left_{f}_tip, right_palm" for f in FINGERS)
                    + tuple(f"right_{f}_tip, left_palm" for f in FINGERS))


def _state_events(seg: Segments, spec: SegmentSpec, n_signals: int, labels: tuple[str, ...] | None = None
                  ) -> list[list[dict[str, Any]]]:
    """Per-signal event lists from a :class:`Segments` of state-banded signals."""
    names = labels or spec.values.labels
    speeds = spec.speeds.labels
    out: list[list[dict[str, Any]]] = [[] for _ in range(n_signals)]
    for k, s, e, a, b, v, c in zip(seg.signal.tolist(), seg.start.tolist(), seg.end.tolist(),
                                   seg.start_state.tolist(), seg.end_state.tolist(), seg.speed.tolist(),
                                   seg.constant.tolist()):
        if c:
            out[k].append({"start": s, "end": e, "constant_des": names[a]})
        else:
            out[k].append({"start": s, "end": e, "start_des": names[a], "end_des": names[b], "v_des": speeds[v]})
    return out


def _wrist_events(seg: Segments, n_signals: int) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[] for _ in range(n_signals)]
    speeds = WRIST.speeds.labels
    for k, s, e, v, p in zip(seg.signal.tolist(), seg.start.tolist(), seg.end.tolist(), seg.speed.tolist(),
                             seg.positive.tolist()):
        out[k].append({"start": s, "end": e, "direction": WRIST_DIRECTIONS[k % 3][int(p)], "v_des": speeds[v]})
    return out


def _contact_events(distance: np.ndarray) -> list[list[dict[str, Any]]]:
    sig, start, last = contact_runs(distance, TIP_CONTACT)
    out: list[list[dict[str, Any]]] = [[] for _ in range(distance.shape[0])]
    for k, s, e in zip(sig.tolist(), start.tolist(), last.tolist()):
        out[k].append({"start": s, "end": e, "constant_des": "Contact"})
    return out


def _keyed(keys: tuple[str, ...], events: list[list[dict[str, Any]]], offset: int, *, drop_empty: bool
           ) -> dict[str, list[dict[str, Any]]]:
    return {key: events[offset + i] for i, key in enumerate(keys) if events[offset + i] or not drop_empty}


def motion_codes_batch(motions: np.ndarray, fps: float = FPS) -> list[dict[str, Any]]:
    """Motion codes of a batch of clips ``(B, T, 2, 21, 3)`` → one JSON-ready dict per clip (reference §2.5)."""
    motions = np.asarray(motions, dtype=np.float64)
    if motions.ndim != 5 or motions.shape[2:] != (2, 21, 3):
        raise ValueError(f"motion_codes_batch expects (B, T, 2, 21, 3), got {motions.shape}")
    if not np.isfinite(motions).all():
        raise ValueError("motion_codes_batch: clips contain non-finite values")
    b, t = motions.shape[:2]
    hands = np.moveaxis(motions, 2, 1)  # (B, 2, T, 21, 3)

    local = signals.local_coordinates(hands)  # (B, 2, T, 21, 3)
    flex = np.stack([signals.flexion(hands[:, h], h, local[:, h]) for h in range(2)], axis=1)  # (B, 2, 14, T)
    spacing = signals.spacing(hands, local)  # (B, 2, 3, T)
    intra = signals.intra_tip_distances(hands)  # (B, 2, 4, T)
    wrist = np.moveaxis(hands[..., 0, :], -1, -2)  # (B, 2, 3, T)
    inter = signals.inter_tip_distances(motions)  # (B, 5, 5, T)
    # Signals that stay beyond the last band edge only need to be known to be there (see signals.py).
    tip_palm, _ = signals.tip_palm_distances(motions, far=FINGER_PALM.values.edges[-1])  # (B, 2, 5, T)
    palm_palm, _ = signals.palm_palm_distance(motions, far=PALM_PALM.values.edges[-1])  # (B, T)
    relative = signals.palm_relative_position(motions)  # (B, 3, T)

    n_flex, n_space, n_intra = 2 * len(signals.FLEXION_KEYS), 2 * 3, 2 * 4
    flex_ev = _state_events(segment(flex.reshape(-1, t), FLEXION, fps), FLEXION, b * n_flex)
    space_ev = _state_events(segment(spacing.reshape(-1, t), SPACING, fps), SPACING, b * n_space)
    intra_ev = _contact_events(intra.reshape(-1, t))
    wrist_ev = _wrist_events(segment(wrist.reshape(-1, t), WRIST, fps), b * 6)
    inter_ev = _contact_events(inter.reshape(-1, t))
    palm_ev = _state_events(segment(tip_palm.reshape(-1, t), FINGER_PALM, fps), FINGER_PALM, b * 10)
    pp_ev = _state_events(segment(palm_palm, PALM_PALM, fps), PALM_PALM, b)
    rel_seg = segment(relative.reshape(-1, t), RELATIVE, fps)
    rel_ev = [_state_events(rel_seg, RELATIVE, b * 3, RELATIVE_LABELS[axis]) for axis in range(3)]

    out = []
    for i in range(b):
        clip: dict[str, Any] = {"frame_count": t}
        for h, name in enumerate(HAND_NAMES):
            clip[f"{name}_hand_events"] = {
                "finger_flexing": _keyed(signals.FLEXION_KEYS, flex_ev, i * n_flex + h * 14, drop_empty=False),
                "finger_spacing": _keyed(signals.SPACING_KEYS, space_ev, i * n_space + h * 3, drop_empty=False),
                "finger_tip_contact": _keyed(signals.INTRA_TIP_KEYS, intra_ev, i * n_intra + h * 4, drop_empty=True),
                "wrist_trajectory": _keyed(WRIST_AXES, wrist_ev, i * 6 + h * 3, drop_empty=True),
            }
        clip["two_hand_relationships"] = {
            "finger_tip_contact": _keyed(INTER_TIP_KEYS, inter_ev, i * 25, drop_empty=True),
            "finger_palm_distance": _keyed(FINGER_PALM_KEYS, palm_ev, i * 10, drop_empty=False),
            "palm_palm_distance": {"left_palm, right_palm": pp_ev[i]},
            "palm_palm_relative_position": {axis: rel_ev[a][i * 3 + a] for a, axis in enumerate(RELATIVE_AXES)},
        }
        out.append(clip)
    return out


def motion_codes(motion: np.ndarray, fps: float = FPS) -> dict[str, Any]:
    """Motion codes of one clip ``(T, 2, 21, 3)`` (reference §2.5)."""
    return motion_codes_batch(np.asarray(motion)[None], fps)[0]
