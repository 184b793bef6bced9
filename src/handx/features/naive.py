"""The motion-code definitions written the plain way: one clip, one frame and one signal at a time.

This is the literal reading of reference §2.1–2.4 (per-frame numpy for the palm distance tables, Python loops
everywhere else) (with handx's deviations: fixed palm samples, detectable
hyperextension, symmetric tip–palm parameters). It is slow on purpose and shares no code with the vectorised
path except the band tables and palm weights, so the tests can check :func:`handx.features.codes.motion_codes`
against it and the benchmark can measure the speed-up side by side.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from handx.features import codes as C
from handx.features.segment import Bands, SegmentSpec
from handx.features.signals import FLEXION_KEYS, INTRA_TIP_FINGERS, PALM_WEIGHTS, SPACING_PAIRS
from handx.skeleton import CHAINS, FINGERS, HAND_NAMES, JOINT_INDEX, PALM_TRIANGLES, TIPS

J = JOINT_INDEX


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-8)


def _local(frame: np.ndarray) -> np.ndarray:
    """One hand's joints (21, 3) in its local frame (reference §2.1)."""
    origin = frame[J["wrist"]]
    x = _unit(frame[J["middle_mcp"]] - origin)
    y = _unit(frame[J["index_mcp"]] - origin)
    z = _unit(np.cross(x, y))
    y = _unit(np.cross(z, x))
    return np.array([[np.dot(p - origin, x), np.dot(p - origin, y), np.dot(p - origin, z)] for p in frame])


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.dot(a, b)) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
    return math.acos(min(1.0, max(-1.0, cos)))


def _flexion_angle(local: np.ndarray, key: str, left: bool) -> float:
    finger = key.split("_")[0]
    chain = CHAINS[finger]
    k = chain.index(J[key])
    p1, p2, p3 = local[chain[k - 1]], local[chain[k]], local[chain[k + 1]]
    v12, v23 = p2 - p1, p3 - p2
    cross = np.cross(v12, v23)
    if key == "thumb_mcp":
        angle = -_angle(v12, v23) * float(np.sign(cross[2]))
    elif key == "thumb_ip":
        angle = _angle(v12, v23)
    else:
        flat12, flat23 = v12 * [1, 0, 1], v23 * [1, 0, 1]
        angle = _angle(flat12, flat23) * float(np.sign(cross[1])) * (-1.0 if left else 1.0)
    return 0.0 if abs(angle) < math.radians(11) else angle


def _palm(frame: np.ndarray) -> list[np.ndarray]:
    points = []
    for a, b, c in PALM_TRIANGLES:
        for wa, wb, wc in PALM_WEIGHTS:
            points.append(wa * frame[a] + wb * frame[b] + wc * frame[c])
    return points


def split_events(x: list[float], spec: SegmentSpec, fps: float = 30.0) -> list[dict[str, Any]]:
    """The greedy segmentation of reference §2.2, one signal, plain loops."""
    t = len(x)
    v = [0.0] + [(x[k] - x[k - 1]) * fps for k in range(1, t)]
    events: list[dict[str, Any]] = []
    i = 0
    while i + spec.min_duration <= t:
        found = None
        for j in range(t, i, -spec.unit_len):
            if abs(x[j - 1] - x[i]) < spec.delta:
                continue
            if j - i < spec.min_duration:
                break
            window = v[i:j]
            nonneg = sum(1 for s in window if s >= 0)
            nonpos = sum(1 for s in window if s <= 0)
            if 5 * max(nonneg, nonpos) >= 4 * len(window):
                found = j
                break
        if found is None:
            i += spec.unit_len
            continue
        j = found
        speed = spec.speeds.label(abs(sum(v[i:j]) / (j - i)))
        if spec.values is None:
            events.append({"start": i, "end": j, "positive": x[j - 1] >= x[i], "v_des": speed})
        else:
            a, b = spec.values.label(x[i]), spec.values.label(x[j - 1])
            if a != b:
                events.append({"start": i, "end": j, "start_des": a, "end_des": b, "v_des": speed})
        i = j
    if spec.values is not None and not events:
        events.append({"start": 0, "end": t, "constant_des": spec.values.label(sum(x) / t)})
    return events


def _contacts(d: list[float], threshold: float) -> list[dict[str, Any]]:
    out, start = [], None
    for k, value in enumerate(d + [math.inf]):
        if value <= threshold and start is None:
            start = k
        elif value > threshold and start is not None:
            out.append({"start": start, "end": k - 1, "constant_des": "Contact"})
            start = None
    return out


def _relabel(events: list[dict[str, Any]], bands: Bands, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    names = dict(zip(bands.labels, labels))
    return [{k: names.get(v, v) if k.endswith("_des") and k != "v_des" else v for k, v in e.items()} for e in events]


def motion_codes_naive(motion: np.ndarray, fps: float = 30.0) -> dict[str, Any]:
    """Motion codes of one clip ``(T, 2, 21, 3)``, computed frame by frame and signal by signal."""
    motion = np.asarray(motion, dtype=np.float64)
    t = motion.shape[0]
    out: dict[str, Any] = {"frame_count": t}
    for h, name in enumerate(HAND_NAMES):
        hand = motion[:, h]
        locals_ = [_local(hand[f]) for f in range(t)]
        flexing = {key: split_events([_flexion_angle(locals_[f], key, h == 0) for f in range(t)], C.FLEXION, fps)
                   for key in FLEXION_KEYS}
        spacing = {}
        for a, b in SPACING_PAIRS:
            series = [_angle(lc[J[f"{a}_pip"]] - lc[J[f"{a}_mcp"]], lc[J[f"{b}_pip"]] - lc[J[f"{b}_mcp"]])
                      for lc in locals_]
            spacing[f"{a}, {b}"] = split_events(series, C.SPACING, fps)
        tips = {}
        for finger in INTRA_TIP_FINGERS:
            d = [float(np.linalg.norm(hand[f, TIPS[finger]] - hand[f, TIPS["thumb"]])) for f in range(t)]
            events = _contacts(d, C.TIP_CONTACT)
            if events:
                tips[f"{finger}_tip, thumb_tip"] = events
        wrist = {}
        for axis, (neg, pos) in enumerate(C.WRIST_DIRECTIONS):
            events = split_events([float(hand[f, 0, axis]) for f in range(t)], C.WRIST, fps)
            if events:
                wrist[C.WRIST_AXES[axis]] = [{"start": e["start"], "end": e["end"],
                                              "direction": pos if e["positive"] else neg, "v_des": e["v_des"]}
                                             for e in events]
        out[f"{name}_hand_events"] = {"finger_flexing": flexing, "finger_spacing": spacing,
                                      "finger_tip_contact": tips, "wrist_trajectory": wrist}

    palms = [[_palm(motion[f, h]) for h in range(2)] for f in range(t)]
    inter = {}
    for a in FINGERS:
        for b in FINGERS:
            d = [float(np.linalg.norm(motion[f, 0, TIPS[a]] - motion[f, 1, TIPS[b]])) for f in range(t)]
            events = _contacts(d, C.TIP_CONTACT)
            if events:
                inter[f"left_{a}_tip, right_{b}_tip"] = events
    finger_palm = {}
    for h, name in enumerate(HAND_NAMES):
        other = HAND_NAMES[1 - h]
        for finger in FINGERS:
            series = []
            for f in range(t):
                d = np.sort(np.linalg.norm(np.array(palms[f][1 - h]) - motion[f, h, TIPS[finger]], axis=1))
                series.append(float(d[:5].mean()))
            finger_palm[f"{name}_{finger}_tip, {other}_palm"] = split_events(series, C.FINGER_PALM, fps)
    palm_palm = []
    for f in range(t):
        left, right = np.array(palms[f][0]), np.array(palms[f][1])
        nearest = np.sort(np.linalg.norm(left[:, None, :] - right[None, :, :], axis=-1).min(axis=1))
        palm_palm.append(float(nearest[:30].mean()))
    relative = {}
    for axis, name in enumerate(C.RELATIVE_AXES):
        series = [float(np.mean([q[axis] for q in palms[f][1]]) - np.mean([p[axis] for p in palms[f][0]]))
                  for f in range(t)]
        relative[name] = _relabel(split_events(series, C.RELATIVE, fps), C.RELATIVE.values, C.RELATIVE_LABELS[axis])
    out["two_hand_relationships"] = {
        "finger_tip_contact": inter,
        "finger_palm_distance": finger_palm,
        "palm_palm_distance": {"left_palm, right_palm": split_events(palm_palm, C.PALM_PALM, fps)},
        "palm_palm_relative_position": relative,
    }
    return out
