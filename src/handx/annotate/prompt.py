"""The annotation prompt: motion codes in, five descriptions out (reference §3; input schema §2.3–2.5).

Our own prompt, written for handx, following the rules of reference §3: the model describes only physical
motion; it is told what every key and event field of the motion codes means; it answers with a JSON array of
exactly five ``{"left", "right", "two_hands_relation"}`` objects, concise (1–2) → moderate (3–4) → detailed with
frame ranges (5); contacts and hyperextension are always reported, events are placed in time, flexion is
described per whole finger, alike fingers are merged, repetitions summarised, two-hand relations emphasise
contact and fast approach / separation, and the hands are never swapped. Two hand-made worked examples
(few-shot) follow the rules.

``PROMPT_VERSION`` names this exact text; it is part of the LLM writer's cache key, so any change to the
wording, the rules or the examples must come with a new version (``tests/test_llm_writer.py`` pins the text
to its version).
"""

from __future__ import annotations

import json
from typing import Any

PROMPT_VERSION = "handx-annotate-v2"

_T = 60  # frames in each worked example (2 s at 30 fps)

_FLEXION_KEYS = (
    "thumb_mcp", "thumb_ip",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
)
_SPACING_KEYS = ("index, middle", "middle, ring", "ring, pinky")
_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
_FINGER_PALM_KEYS = (tuple(f"left_{f}_tip, right_palm" for f in _FINGERS)
                     + tuple(f"right_{f}_tip, left_palm" for f in _FINGERS))
_RIGHT_OF = "The right hand is to the RIGHT of the left hand."
_ALIGNED = "The right hand is ALIGNED with the left hand."
_UP = "The right hand is UP from the left hand."

SYSTEM_PROMPT_HEAD = """\
You are an expert in hand kinematics. You receive the motion codes of one short clip of two human hands: a \
structured summary of how the fingers, wrists and the two hands relative to each other change over time, \
computed automatically from 3D joint positions captured at 30 frames per second. Write five different \
descriptions of that motion, from concise to detailed. They serve as alternative text labels of the same clip.

Describe only physical motion: how fingers bend and straighten, spread and close, which fingertips touch, how \
the wrists travel, where the hands are relative to each other, and when they come into or out of contact. Do \
not guess what the hands are doing, which gesture or sign they form, what object they might hold, or why.

# The input: motion codes
One JSON object with four top-level keys:
- "frame_count": the number of frames in the clip. Frames are numbered from 0; 30 frames are one second.
- "left_hand_events": features of the left hand alone, under four keys: "finger_flexing", "finger_spacing", \
"finger_tip_contact" and "wrist_trajectory".
- "right_hand_events": the same four features for the right hand.
- "two_hand_relationships": features relating the two hands, under four keys: "finger_tip_contact", \
"finger_palm_distance", "palm_palm_distance" and "palm_palm_relative_position".

Each feature maps a signal name to a list of events in time order. Every event has "start" and "end" frame \
numbers and some of these fields:
- "start_des" and "end_des": a change of state, from the state at "start" to the state reached at the end; \
"end" is the first frame after the change.
- "constant_des": the signal keeps this state over the whole interval (usually the whole clip: "start" 0, \
"end" frame_count).
- "v_des": the speed of a change or a movement: "Slow", "Medium" or "Fast".
- "direction": wrist events only: the direction of travel.
Frames not covered by any event of a signal hold no change worth reporting.

Per-hand features (in "left_hand_events" and "right_hand_events"):
- "finger_flexing": how bent each finger joint is. Keys "thumb_mcp" and "thumb_ip" for the thumb; "<finger>_mcp" \
(the knuckle), "<finger>_pip" (the middle joint) and "<finger>_dip" (the joint next to the tip) for the index, \
middle, ring and pinky fingers. States: "Hyper extend" (bent backwards by more than 20 degrees), "Fully \
extended" (straight, less than 30 degrees of bend), "Partially bent" (30 to 60 degrees), "Fully bent" (more \
than 60 degrees).
- "finger_spacing": the spread between neighbouring fingers. Keys "index, middle", "middle, ring" and "ring, \
pinky". States: "Closed" (the two fingers lie together, less than 20 degrees apart) and "Open" (spread apart).
- "finger_tip_contact": the thumb tip touching another fingertip of the same hand. Keys "index_tip, thumb_tip", \
"middle_tip, thumb_tip", "ring_tip, thumb_tip" and "pinky_tip, thumb_tip". Each event is one period of contact \
(tips within 2 cm) with "constant_des": "Contact"; for contacts "end" is the last frame of the contact \
(inclusive). A key is absent when that contact never happens.
- "wrist_trajectory": movements of the wrist along three axes, keys "left-right", "front-back" and "down-up". \
Each event has "direction" ("left-to-right" or "right-to-left", "back-to-front" or "front-to-back", \
"down-to-up" or "up-to-down") and "v_des". Left and right are the person's own left and right, front is away \
from the body. An axis is absent when the wrist does not travel along it.

Two-hand features (in "two_hand_relationships"):
- "finger_tip_contact": a fingertip of the left hand touching a fingertip of the right hand, keys such as \
"left_index_tip, right_thumb_tip". Events as for the per-hand contacts ("constant_des": "Contact", "end" \
inclusive); absent keys never touch.
- "finger_palm_distance": the distance from each fingertip to the palm of the other hand, keys \
"left_<finger>_tip, right_palm" and "right_<finger>_tip, left_palm". States: "Contact" (under 2.5 cm), "Near" \
(2.5 to 3.5 cm), "Far" (farther).
- "palm_palm_distance": the distance between the two palms, key "left_palm, right_palm". States: "Contact" \
(under 4 cm), "Near" (4 to 8 cm), "Medium" (8 to 12 cm), "Far" (farther).
- "palm_palm_relative_position": where the right palm is relative to the left palm, keys "left-right", \
"front-back" and "up-down". States are sentences such as "The right hand is to the RIGHT of the left hand." \
or "The right hand is ALIGNED with the left hand." (within 2 cm along that axis).

# The output
Reply with one JSON array of exactly five objects and nothing else: no code fence, no heading, no remark before \
or after it. Each object has exactly three keys, each a non-empty string:
- "left": what the left hand does on its own;
- "right": what the right hand does on its own;
- "two_hands_relation": where the hands are relative to each other and how they interact.
The five objects grow in detail:
- objects 1 and 2 are concise: one short sentence per key, the most significant motion only;
- objects 3 and 4 have moderate detail: the main events, their order and rough timing;
- object 5 is the most detailed: every notable event including subtle ones, with speeds and frame ranges \
("from frame 12 to 20").
Word the five differently (vary vocabulary and sentence structure); all of them must agree with the codes.

# Rules
1. Always report every contact (fingertip to fingertip, fingertip to palm, palm to palm) and every \
hyperextension. When a fingertip is in contact, say that it touches; do not describe it as merely near.
2. Place every event in time: "at the start", "early on", "mid-sequence", "towards the end", "again later", \
"throughout".
3. Describe flexion per whole finger ("the index finger curls", "the ring finger straightens"), not joint by \
joint. Name single joints only when they differ in a way that matters, such as a knuckle bent backwards while \
the joints above it bend.
4. Merge fingers that behave alike ("the middle, ring and little fingers stay curled").
5. Summarise repetitions ("curls and straightens twice", "taps the palm three times"); only object 5 gives each \
repetition its frame range.
6. For the relation of the two hands, emphasise contact, fast approaches and separations, and changes of \
relative position. Do not spend words on distances that stay far and constant; if the hands never interact, \
say so briefly and give their relative placement.
7. Write directly and with confidence: no "might", "seems", "appears", "probably" or "possibly".
8. Never swap the hands: "left" describes only the left hand (left_hand_events), "right" only the right hand \
(right_hand_events). Describe only motion present in the codes.
9. Write natural English sentences; do not copy JSON keys or field names (such as "index_pip" or "v_des") into \
the descriptions.

# Worked examples
"""


def _hold(label: str) -> list[dict[str, Any]]:
    """A signal that keeps one state for the whole example clip."""
    return [{"start": 0, "end": _T, "constant_des": label}]


def _change(start: int, end: int, before: str, after: str, speed: str) -> dict[str, Any]:
    return {"start": start, "end": end, "start_des": before, "end_des": after, "v_des": speed}


def _touch(start: int, last: int) -> dict[str, Any]:
    return {"start": start, "end": last, "constant_des": "Contact"}


def _move(start: int, end: int, direction: str, speed: str) -> dict[str, Any]:
    return {"start": start, "end": end, "direction": direction, "v_des": speed}


def _hand(flexing: dict[str, list[dict[str, Any]]], spacing: tuple[str, str, str],
          contacts: dict[str, list[dict[str, Any]]], wrist: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One hand's events; ``flexing`` must name every flexion key, ``spacing`` the state of each finger pair."""
    if set(flexing) != set(_FLEXION_KEYS):
        raise ValueError(f"worked example: flexing keys {sorted(flexing)} are not the 14 flexion keys")
    return {
        "finger_flexing": {key: flexing[key] for key in _FLEXION_KEYS},
        "finger_spacing": {key: _hold(state) for key, state in zip(_SPACING_KEYS, spacing)},
        "finger_tip_contact": contacts,
        "wrist_trajectory": wrist,
    }


def _finger(finger: str, events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The same events on the mcp, pip and dip joints of one non-thumb finger."""
    return {f"{finger}_{joint}": list(events) for joint in ("mcp", "pip", "dip")}


def _example_busy_fingers() -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Example 1: the left index and middle curl twice; the right thumb touches two fingertips in turn."""
    curl_twice = [_change(4, 14, "Fully extended", "Fully bent", "Fast"),
                  _change(16, 26, "Fully bent", "Fully extended", "Fast"),
                  _change(30, 40, "Fully extended", "Fully bent", "Fast"),
                  _change(44, 54, "Fully bent", "Fully extended", "Fast")]
    left = _hand(
        {"thumb_mcp": _hold("Fully extended"), "thumb_ip": _hold("Fully extended"),
         **_finger("index", curl_twice), **_finger("middle", curl_twice),
         **_finger("ring", _hold("Partially bent")), **_finger("pinky", _hold("Partially bent"))},
        ("Closed", "Closed", "Closed"), {}, {})
    index_bend = [_change(8, 22, "Fully extended", "Partially bent", "Medium"),
                  _change(30, 46, "Partially bent", "Fully extended", "Medium")]
    middle_bend = [_change(24, 38, "Fully extended", "Partially bent", "Medium"),
                   _change(44, 58, "Partially bent", "Fully extended", "Medium")]
    right = _hand(
        {"thumb_mcp": _hold("Partially bent"), "thumb_ip": _hold("Partially bent"),
         "index_mcp": _hold("Fully extended"), "index_pip": index_bend, "index_dip": index_bend,
         "middle_mcp": _hold("Fully extended"), "middle_pip": middle_bend, "middle_dip": middle_bend,
         "ring_mcp": _hold("Hyper extend"), "ring_pip": _hold("Partially bent"), "ring_dip": _hold("Partially bent"),
         "pinky_mcp": _hold("Hyper extend"), "pinky_pip": _hold("Partially bent"),
         "pinky_dip": _hold("Partially bent")},
        ("Closed", "Open", "Closed"),
        {"index_tip, thumb_tip": [_touch(22, 29)], "middle_tip, thumb_tip": [_touch(38, 43)]},
        {"down-up": [_move(40, 58, "down-to-up", "Medium")]})
    codes = {
        "frame_count": _T,
        "left_hand_events": left,
        "right_hand_events": right,
        "two_hand_relationships": {
            "finger_tip_contact": {},
            "finger_palm_distance": {key: _hold("Far") for key in _FINGER_PALM_KEYS},
            "palm_palm_distance": {"left_palm, right_palm": _hold("Far")},
            "palm_palm_relative_position": {
                "left-right": _hold(_RIGHT_OF),
                "front-back": _hold(_ALIGNED),
                "up-down": [_change(42, 58, _ALIGNED, _UP, "Fast")],
            },
        },
    }
    annotations = [
        {"left": "The index and middle fingers curl fully into the palm and straighten again, twice.",
         "right": "The ring and little knuckles stay hyperextended throughout. Mid-sequence the thumb touches the "
                  "index fingertip, then the middle fingertip.",
         "two_hands_relation": "The hands stay apart, the right hand beside the left and rising above it at the "
                               "end."},
        {"left": "The left hand quickly closes and opens its index and middle fingers two times.",
         "right": "The thumb meets the index tip and then the middle tip, while the ring and little fingers stay "
                  "bent backwards at the knuckles.",
         "two_hands_relation": "The hands never touch; the right hand stays to the right of the left and lifts "
                               "towards the end."},
        {"left": "The index and middle fingers move together, curling fast into a full bend and extending again "
                 "in two quick cycles across the clip, while the ring and little fingers remain half bent and the "
                 "thumb stays straight.",
         "right": "Early on the index finger bends partway until its tip meets the thumb around the middle of the "
                  "clip; as it straightens, the middle finger bends and touches the thumb instead. The ring and "
                  "little fingers are hyperextended at the knuckles with their upper joints partly bent "
                  "throughout, and the wrist rises near the end.",
         "two_hands_relation": "The hands act separately, the right hand to the right of the left; towards the "
                               "end the right hand moves up until it is above the left hand."},
        {"left": "Two fast curl-and-release cycles of the index and middle fingers dominate the motion; the other "
                 "fingers keep a steady half bend and the thumb is held straight.",
         "right": "The thumb makes two brief contacts in turn, first with the partly bent index finger and then "
                  "with the partly bent middle finger, each finger straightening afterwards. The ring and little "
                  "fingers stay bent back at the knuckle the whole time, and the hand lifts in the last part.",
         "two_hands_relation": "No part of one hand touches the other. The right hand is to the right of the "
                               "left at the same height until the last third, when it climbs above it."},
        {"left": "The index and middle fingers act as one: they bend from fully extended to fully bent from frame "
                 "4 to 14, straighten fully from frame 16 to 26, bend fully again from frame 30 to 40 and "
                 "straighten again from frame 44 to 54, each time at high speed. The ring and little fingers hold "
                 "a partial bend for the whole clip, the thumb stays extended and the fingers stay close "
                 "together.",
         "right": "The index finger bends from straight to partly bent at moderate speed from frame 8 to 22, its "
                  "tip touches the thumb tip from frame 22 to 29, and it straightens from frame 30 to 46. "
                  "Meanwhile the middle finger bends partway from frame 24 to 38, touches the thumb tip from "
                  "frame 38 to 43 and extends again from frame 44 to 58. The ring and little fingers are "
                  "hyperextended at the knuckles with their middle and end joints partly bent throughout, the "
                  "thumb stays partly bent, the middle and ring fingers are spread apart, and the wrist moves "
                  "upwards at medium speed from frame 40 to 58.",
         "two_hands_relation": "The hands never touch and every fingertip stays far from the other palm. The "
                               "right hand is to the right of the left hand at the same depth; level in height "
                               "until frame 42, it then rises quickly and is above the left hand by frame 58."},
    ]
    return codes, annotations


def _example_palm_taps() -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Example 2: a flat left hand; the pointing right index taps the left palm twice."""
    left = _hand(
        {key: _hold("Fully extended") for key in _FLEXION_KEYS},
        ("Closed", "Closed", "Closed"), {},
        {"down-up": [_move(0, 40, "down-to-up", "Slow")]})
    curled = {**{f"{f}_{j}": _hold("Fully bent") for f in ("middle", "ring", "pinky") for j in ("mcp", "pip")},
              **{f"{f}_dip": _hold("Partially bent") for f in ("middle", "ring", "pinky")}}
    right = _hand(
        {"thumb_mcp": _hold("Partially bent"), "thumb_ip": _hold("Partially bent"),
         **_finger("index", _hold("Fully extended")), **curled},
        ("Open", "Closed", "Closed"), {},
        {"left-right": [_move(2, 14, "right-to-left", "Fast"), _move(16, 26, "left-to-right", "Fast"),
                        _move(30, 42, "right-to-left", "Fast"), _move(44, 56, "left-to-right", "Fast")]})
    tip_palm = {key: _hold("Far") for key in _FINGER_PALM_KEYS}
    tip_palm["right_index_tip, left_palm"] = [_change(4, 14, "Far", "Contact", "Fast"),
                                              _change(17, 27, "Contact", "Far", "Fast"),
                                              _change(31, 42, "Far", "Contact", "Fast"),
                                              _change(44, 56, "Contact", "Far", "Fast")]
    codes = {
        "frame_count": _T,
        "left_hand_events": left,
        "right_hand_events": right,
        "two_hand_relationships": {
            "finger_tip_contact": {},
            "finger_palm_distance": tip_palm,
            "palm_palm_distance": {"left_palm, right_palm": [_change(3, 14, "Far", "Medium", "Fast"),
                                                             _change(17, 28, "Medium", "Far", "Fast"),
                                                             _change(31, 42, "Far", "Medium", "Fast"),
                                                             _change(44, 56, "Medium", "Far", "Fast")]},
            "palm_palm_relative_position": {
                "left-right": _hold(_RIGHT_OF),
                "front-back": _hold(_ALIGNED),
                "up-down": _hold(_UP),
            },
        },
    }
    annotations = [
        {"left": "The left hand is held flat and open, rising slowly during the first part of the clip.",
         "right": "The right index finger points while the other fingers are curled, and the hand darts left and "
                  "back twice.",
         "two_hands_relation": "The right index fingertip jabs into the left palm twice, pulling away quickly "
                               "after each touch."},
        {"left": "The flat left hand stays still apart from a slow upward drift early on.",
         "right": "With the index finger extended and the rest curled, the right hand makes two quick sideways "
                  "strikes.",
         "two_hands_relation": "Twice, the right hand quickly brings its index tip onto the left palm and "
                               "withdraws it."},
        {"left": "All left fingers stay straight and close together like a flat plate, and the wrist moves slowly "
                 "upwards over the first two-thirds of the clip before holding still.",
         "right": "The right hand keeps a pointing shape: index finger straight and spread from the middle "
                  "finger, middle, ring and little fingers tightly curled, thumb half bent. The wrist moves "
                  "quickly to the left and back to the right, and repeats this in the second half.",
         "two_hands_relation": "The right hand is above and to the right of the left hand. Early on it "
                               "approaches fast until the index fingertip touches the left palm, then separates "
                               "quickly; mid-sequence it comes back for a second touch and moves away again "
                               "towards the end."},
        {"left": "A flat, extended left hand with closed fingers rises gently and then holds its position.",
         "right": "The right hand stays in a pointing pose throughout while its wrist travels left, right, left "
                  "and right again at high speed.",
         "two_hands_relation": "Two rapid taps: the right index fingertip comes onto the left palm, leaves it, "
                               "returns mid-sequence and leaves again near the end, the palms closing in and "
                               "separating in step."},
        {"left": "The left hand holds every finger, thumb included, fully extended and close together for the "
                 "whole clip. The wrist moves slowly upwards from frame 0 to 40 and then stays in place.",
         "right": "The right hand holds a pointing shape for the whole clip: the index finger fully extended and "
                  "spread apart from the middle finger, the middle, ring and little fingers fully bent at the "
                  "knuckle and middle joints and partly bent at the tips, and the thumb partly bent. The wrist "
                  "moves fast to the left from frame 2 to 14, back to the right from frame 16 to 26, to the left "
                  "again from frame 30 to 42 and to the right from frame 44 to 56.",
         "two_hands_relation": "The right hand stays above and to the right of the left hand at the same depth. "
                               "From frame 4 to 14 the right index fingertip closes in fast on the left palm and "
                               "touches it, while the palms come to a medium distance; it pulls away fast from "
                               "frame 17 to 27. A second fast approach from frame 31 to 42 brings the fingertip "
                               "back into contact with the left palm, and from frame 44 to 56 it separates "
                               "quickly again, leaving the palms far apart."},
    ]
    return codes, annotations


#: The few-shot examples: (motion codes, five annotations) pairs written by hand for this prompt.
EXAMPLES: tuple[tuple[dict[str, Any], list[dict[str, str]]], ...] = (_example_busy_fingers(), _example_palm_taps())


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def system_prompt() -> str:
    """The full system message: role, input format, output format, rules and the two worked examples."""
    parts = [SYSTEM_PROMPT_HEAD]
    for n, (codes, reply) in enumerate(EXAMPLES, start=1):
        parts.append(f"## Example {n}\nMotion codes:\n{_dump(codes)}\n\nReply:\n{_dump(reply)}\n\n")
    return "".join(parts).rstrip() + "\n"


SYSTEM_PROMPT = system_prompt()


def user_prompt(codes: dict[str, Any]) -> str:
    """The user message: the clip's motion codes (indent 2) and the request for the reply."""
    frames = codes.get("frame_count", "?")
    return (f"Motion codes of the clip to describe ({frames} frames):\n{_dump(codes)}\n\n"
            "Reply with the JSON array of five descriptions only.")


def build_messages(codes: dict[str, Any]) -> list[dict[str, str]]:
    """Chat messages (system, user) asking for five descriptions of one clip's motion codes (reference §3)."""
    if not isinstance(codes, dict):
        raise TypeError(f"build_messages: codes must be a dict in the schema of reference §2.5, got "
                        f"{type(codes).__name__}")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_prompt(codes)}]
