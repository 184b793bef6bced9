"""Hand-made motion codes for the writer and verifier tests (the schema of reference §2.5)."""

from __future__ import annotations

from handx.features.codes import FINGER_PALM_KEYS, RELATIVE_AXES, RELATIVE_LABELS
from handx.features.signals import FLEXION_KEYS, SPACING_KEYS

T = 60


def hold(label: str) -> list[dict]:
    return [{"start": 0, "end": T, "constant_des": label}]


def change(start: int, end: int, a: str, b: str, speed: str = "Medium") -> dict:
    return {"start": start, "end": end, "start_des": a, "end_des": b, "v_des": speed}


def blank_codes() -> dict:
    """Codes of a clip in which nothing happens: both hands still and open, far apart."""
    def hand() -> dict:
        return {"finger_flexing": {k: hold("Fully extended") for k in FLEXION_KEYS},
                "finger_spacing": {k: hold("Closed") for k in SPACING_KEYS},
                "finger_tip_contact": {}, "wrist_trajectory": {}}
    return {"frame_count": T, "left_hand_events": hand(), "right_hand_events": hand(),
            "two_hand_relationships": {
                "finger_tip_contact": {},
                "finger_palm_distance": {k: hold("Far") for k in FINGER_PALM_KEYS},
                "palm_palm_distance": {"left_palm, right_palm": hold("Far")},
                "palm_palm_relative_position": {a: hold(RELATIVE_LABELS[i][2 if i == 0 else 1])
                                                for i, a in enumerate(RELATIVE_AXES)}}}
