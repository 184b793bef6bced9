"""The annotation prompt: motion codes in, five descriptions out (reference §3; input schema §2.3–2.5).

Our own prompt, written for handx, following the rules of reference §3: the model describes only physical
motion; it answers with ``{"descriptions": [...]}``, exactly five ``{"left", "right", "two_hands_relation"}``
objects, concise (1–2) → moderate (3–4) → detailed with frame ranges (5); contacts and hyperextension are always
reported, events are placed in time, flexion is described per whole finger, alike fingers are merged,
repetitions summarised, two-hand relations emphasise contact and fast approach / separation, and the hands are
never swapped. Two hand-made worked examples (few-shot) follow the rules.

The clip's motion codes reach the model in a compact text rendering (:func:`render_codes`), not as the JSON of
§2.5: signals held in their default state (joints straight, fingers closed, fingertips and palms far apart) are
left out, states and speeds are single words, and joints and fingers whose events are identical are merged
into one line, as rule (c) of §3 asks the model to describe them. A real 2-second clip takes 100–550 tokens this
way instead of 1,900–3,300 as indented JSON.

**Budget.** The system message (role, input legend, output format, rules, the first ``n`` worked examples) is
the same for every clip of a run, so servers that cache prompt prefixes reuse it; :func:`plan_prompt` picks
``n``, the most examples for which the system message, :data:`CLIP_ALLOWANCE` tokens for the clip and the
reply budget fit the context. Tokens are counted with :func:`estimate_tokens` (or a server's tokenizer).

``PROMPT_VERSION`` names this exact text; it is part of the LLM writer's cache key, so any change to the
wording, the rules, the rendering or the examples must come with a new version (``tests/test_llm_writer.py``
pins the text to its version).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

PROMPT_VERSION = "handx-annotate-v3"

#: Context size assumed when neither the user nor the server gives one (llama.cpp's default per slot).
DEFAULT_CONTEXT = 8192
#: Prompt tokens set aside for one clip's rendered codes and the request line when planning the examples.
#: The largest real clip in ../shared/data takes about 600 (``tests/test_prompt_budget.py``).
CLIP_ALLOWANCE = 1000
#: The design target: system message + one clip, measured on the real captures, never above this.
PROMPT_TARGET = 4000

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
_JOINTS = {"thumb": ("mcp", "ip"), **{f: ("mcp", "pip", "dip") for f in _FINGERS[1:]}}
_FINGER_PALM_KEYS = (tuple(f"left_{f}_tip, right_palm" for f in _FINGERS)
                     + tuple(f"right_{f}_tip, left_palm" for f in _FINGERS))
_RIGHT_OF = "The right hand is to the RIGHT of the left hand."
_ALIGNED = "The right hand is ALIGNED with the left hand."
_UP = "The right hand is UP from the left hand."

SYSTEM_PROMPT_HEAD = """\
You are an expert in hand kinematics. You get the motion codes of one 2-second clip of two human hands \
(30 frames per second, frames numbered from 0), computed from 3D joint positions. Write five different \
descriptions of the motion, concise to detailed, as alternative text labels of the clip. Describe only \
physical motion: how fingers bend, straighten, spread and close, which tips touch, how the wrists travel, \
where the hands are relative to each other. Never guess the gesture, an object or an intention.

# Motion codes
Blocks LEFT HAND, RIGHT HAND and TWO HANDS; one line per signal, "a-b" is a frame range, "x>y" a change of \
state from x to y, "held x" a state kept for the whole clip; speeds are slow, medium or fast. Anything not \
listed stays in its default state: joints extended, fingers closed, no contact, fingertips and palms far from \
the other hand, wrist still.
- fingers: flexion of thumb, index, middle, ring and pinky; mcp is the knuckle, pip the middle joint, dip the \
joint next to the tip (thumb: mcp, ip). A line without joint names is the whole finger; fingers listed \
together behave alike. States: hyperextended (bent backwards past 20 degrees), extended (straight, under \
30), half-bent (30 to 60), bent (over 60).
- spread: the gap between two neighbouring fingers, closed (together) or open (spread apart).
- thumb touches: the thumb tip touching that fingertip of the same hand, frames inclusive.
- wrist: travel of the wrist, left/right (the person's own), forward (away from the body)/back, up/down.
- tips touch: a left fingertip touching a right fingertip, frames inclusive.
- tip to palm: a fingertip's distance to the other hand's palm: contact (under 2.5 cm), near (under 3.5 cm), \
far.
- palms: distance between the palms: contact (under 4 cm), near (under 8 cm), medium (under 12 cm), far.
- right hand vs left: where the right hand is relative to the left: side left/right, depth front/back, \
height up/down; level means within 2 cm on that axis.

# Reply
One JSON object {"descriptions": [five objects]} and nothing else. Each object has exactly three non-empty \
string keys: "left" (the left hand alone), "right" (the right hand alone), "two_hands_relation" (where the \
hands are relative to each other and how they interact). Objects 1 and 2: one short sentence per key, the \
most significant motion only. Objects 3 and 4: the main events, their order and rough timing. Object 5: \
every notable event with speeds and frame ranges ("from frame 12 to 20"). Word the five differently; all \
must agree with the codes.

# Rules
1. Report every contact and every hyperextension; a fingertip in contact touches, it is not merely near.
2. Place every event in time: at the start, early on, mid-sequence, towards the end, again later, throughout.
3. Describe flexion per whole finger ("the index finger curls"); name a joint only when it differs in a way \
that matters, such as a knuckle bent backwards while the joints above it bend.
4. Merge fingers that behave alike ("the middle, ring and little fingers stay curled").
5. Summarise repetitions ("curls and straightens twice"); only object 5 gives each its frame range.
6. For the two hands, emphasise contact, fast approaches and separations, and changes of relative position; \
spend no words on distances that stay far; if the hands never interact, say so briefly.
7. Write with confidence: no "might", "seems", "appears", "probably", "possibly".
8. Never swap the hands: "left" describes only LEFT HAND, "right" only RIGHT HAND. Describe only motion in \
the codes.
9. Write natural English; never copy code words such as "mcp", "pip" or "half-bent>bent".
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
                  "The middle finger bends partway from frame 24 to 38, touches the thumb tip from "
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


# ------------------------------------------------------------------------------------------ compact rendering

_FLEX_WORDS = {"Hyper extend": "hyperextended", "Fully extended": "extended", "Partially bent": "half-bent",
               "Fully bent": "bent"}
_SPACING_WORDS = {"Closed": "closed", "Open": "open"}
_DISTANCE_WORDS = {"Contact": "contact", "Near": "near", "Medium": "medium", "Far": "far"}
_POSITION_WORDS = {"LEFT": "left", "RIGHT": "right", "FRONT": "front", "BACK": "back", "UP": "up", "DOWN": "down",
                   "ALIGNED": "level"}
_POSITION_AXES = (("left-right", "side"), ("front-back", "depth"), ("up-down", "height"))
_WRIST_WORDS = {"left-to-right": "right", "right-to-left": "left", "back-to-front": "forward",
                "front-to-back": "back", "down-to-up": "up", "up-to-down": "down"}
#: Signals in these states for the whole clip are left out of the rendering (the legend names the defaults).
_DEFAULTS = {"finger_flexing": "Fully extended", "finger_spacing": "Closed", "finger_palm_distance": "Far",
             "palm_palm_distance": "Far"}


def _position_word(label: str) -> str:
    found = [w for w in re.findall(r"[A-Z]{2,}", label) if w in _POSITION_WORDS]
    return _POSITION_WORDS[found[0]] if found else label


def _word(words: Mapping[str, str] | Callable[[str], str], label: Any) -> str:
    if callable(words):
        return words(str(label))
    return words.get(label, str(label))


def _speed(event: Mapping[str, Any]) -> str:
    return f" {str(event['v_des']).lower()}" if "v_des" in event else ""


def _events(events: Sequence[Mapping[str, Any]], words: Any, frames: int) -> str:
    """One signal's events, in order: ``held x``, ``a-b x>y speed``, ``a-b x``; ``a-b`` alone for a contact."""
    parts = []
    for event in events:
        span = f"{event.get('start')}-{event.get('end')}"
        if "start_des" in event or "end_des" in event:
            parts.append(f"{span} {_word(words, event.get('start_des'))}>{_word(words, event.get('end_des'))}"
                         f"{_speed(event)}")
        elif event.get("constant_des") == "Contact" and words is None:
            parts.append(span)
        elif "constant_des" in event:
            state = _word(words or {}, event["constant_des"])
            whole = event.get("start") == 0 and event.get("end") == frames
            parts.append(f"held {state}" if whole else f"{span} {state}")
        else:  # not in the schema: shown as it is rather than dropped
            parts.append(json.dumps(dict(event), separators=(",", ":")))
    return ", ".join(parts)


def _is_default(events: Sequence[Mapping[str, Any]], feature: str, frames: int) -> bool:
    default = _DEFAULTS.get(feature)
    return (default is not None and len(events) == 1 and events[0].get("constant_des") == default
            and events[0].get("start") == 0 and events[0].get("end") == frames)


def _merge(items: Sequence[tuple[str, str]]) -> list[tuple[list[str], str]]:
    """(name, text) pairs → (names, text) groups of equal text, in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for name, text in items:
        groups.setdefault(text, []).append(name)
    return [(names, text) for text, names in groups.items()]


def _flexion_lines(flexing: Mapping[str, Any], frames: int) -> list[str]:
    """Per-finger lines: a finger's joints with equal events merged (the joint names dropped when all agree),
    then fingers with equal lines merged (rule (c) of reference §3)."""
    fingers = []
    for finger, joints in _JOINTS.items():
        texts = [(joint, _events(flexing[f"{finger}_{joint}"], _FLEX_WORDS, frames)) for joint in joints
                 if f"{finger}_{joint}" in flexing
                 and not _is_default(flexing[f"{finger}_{joint}"], "finger_flexing", frames)]
        if not texts:
            continue
        groups = _merge(texts)
        if len(groups) == 1 and len(groups[0][0]) == len(joints):
            fingers.append((finger, groups[0][1]))
        else:
            fingers.append((finger, "; ".join(f"{','.join(names)} {text}" for names, text in groups)))
    known = {f"{f}_{j}" for f, js in _JOINTS.items() for j in js}
    lines = [f"fingers {','.join(names)}: {text}" for names, text in _merge(fingers)]
    lines += [f"fingers {key}: {_events(events, _FLEX_WORDS, frames)}" for key, events in flexing.items()
              if key not in known and events]
    return lines


def _keyed_line(title: str, signals: Mapping[str, Any], feature: str, words: Any, frames: int,
                name: Callable[[str], str]) -> list[str]:
    """``title: name1 events; name2 events`` over the signals not in their default state, names with equal
    events merged; no line when every signal is at its default."""
    texts = [(name(key), _events(events, words, frames)) for key, events in signals.items()
             if events and not _is_default(events, feature, frames)]
    if not texts:
        return []
    return [f"{title}: " + "; ".join(f"{','.join(names)} {text}" for names, text in _merge(texts))]


def _pair(key: str) -> str:
    """``"index, middle"`` → ``index-middle``; ``"index_tip, thumb_tip"`` → ``index``."""
    parts = [p.strip().replace("_tip", "") for p in key.split(",")]
    return "-".join(p for p in parts if p != "thumb") if "thumb" in parts else "-".join(parts)


def _hand_lines(hand: Mapping[str, Any], frames: int) -> list[str]:
    lines = _flexion_lines(hand.get("finger_flexing", {}), frames)
    lines += _keyed_line("spread", hand.get("finger_spacing", {}), "finger_spacing", _SPACING_WORDS, frames, _pair)
    lines += _keyed_line("thumb touches", hand.get("finger_tip_contact", {}), "finger_tip_contact", None, frames,
                         _pair)
    moves = sorted((event.get("start", 0), event.get("end", 0), _word(_WRIST_WORDS, event.get("direction")),
                    _speed(event)) for events in hand.get("wrist_trajectory", {}).values() for event in events)
    if moves:
        lines.append("wrist: " + ", ".join(f"{a}-{b} {d}{v}" for a, b, d, v in moves))
    return lines


def _tip_palm(key: str) -> str:
    """``"right_index_tip, left_palm"`` → ``right index``."""
    return key.split(",")[0].replace("_tip", "").replace("_", " ").strip()


def _tip_pair(key: str) -> str:
    """``"left_index_tip, right_thumb_tip"`` → ``left index-right thumb``."""
    return "-".join(p.strip().replace("_tip", "").replace("_", " ") for p in key.split(","))


def render_codes(codes: Mapping[str, Any]) -> str:
    """A clip's motion codes (reference §2.5) as the compact text the model reads (legend in the system prompt).

    Nothing that differs from a default is dropped: every change, contact, hyperextension, wrist move and
    non-default held state appears, with its frames; joints of a finger and fingers with identical events
    share one line, and tip-to-palm signals of fingers with identical events share one entry.
    """
    frames = codes.get("frame_count")
    out = []
    for title, key in (("LEFT HAND", "left_hand_events"), ("RIGHT HAND", "right_hand_events")):
        lines = _hand_lines(codes.get(key, {}), frames)
        out.append(f"{title}:" + ("".join(f"\n{line}" for line in lines) if lines else " all defaults"))
    both = codes.get("two_hand_relationships", {})
    lines = _keyed_line("tips touch", both.get("finger_tip_contact", {}), "finger_tip_contact", None, frames,
                        _tip_pair)
    for side in ("left", "right"):
        other = "right" if side == "left" else "left"
        signals = {k: v for k, v in both.get("finger_palm_distance", {}).items() if k.startswith(f"{side}_")}
        lines += _keyed_line(f"tip to {other} palm", signals, "finger_palm_distance", _DISTANCE_WORDS, frames,
                             _tip_palm)
    lines += _keyed_line("palms", both.get("palm_palm_distance", {}), "palm_palm_distance", _DISTANCE_WORDS,
                         frames, lambda key: "distance")
    axes = dict(_POSITION_AXES)
    lines += _keyed_line("right hand vs left", both.get("palm_palm_relative_position", {}),
                         "palm_palm_relative_position", _position_word, frames, lambda key: axes.get(key, key))
    out.append("TWO HANDS:" + ("".join(f"\n{line}" for line in lines) if lines else " all defaults"))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------- messages

#: The JSON schema of a reply, sent as ``response_format`` where the server can constrain its output to it.
#: The root is an object because OpenAI's structured outputs require one.
REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"descriptions": {
        "type": "array", "minItems": 5, "maxItems": 5,
        "items": {"type": "object",
                  "properties": {key: {"type": "string"} for key in ("left", "right", "two_hands_relation")},
                  "required": ["left", "right", "two_hands_relation"], "additionalProperties": False}}},
    "required": ["descriptions"],
    "additionalProperties": False,
}


def response_format(style: str = "json_schema") -> dict[str, Any]:
    """The ``response_format`` field asking an OpenAI-compatible server for :data:`REPLY_SCHEMA`: ``json_schema``
    (OpenAI, vLLM, llama.cpp's own server) or ``json_object`` with a ``schema`` (llama-cpp-python's server, which
    accepts only ``text`` and ``json_object`` and constrains the reply by that schema's grammar)."""
    if style == "json_object":
        return {"type": "json_object", "schema": REPLY_SCHEMA}
    if style != "json_schema":
        raise ValueError(f"response_format: style must be json_schema or json_object, got {style!r}")
    return {"type": "json_schema",
            "json_schema": {"name": "handx_descriptions", "schema": REPLY_SCHEMA, "strict": True}}


def system_prompt(n_examples: int | None = None) -> str:
    """The system message: role, legend, output format, rules and the first ``n_examples`` worked examples
    (all of them by default). Its text depends on ``n_examples`` only, never on the clip."""
    n = len(EXAMPLES) if n_examples is None else n_examples
    if not isinstance(n, int) or not 0 <= n <= len(EXAMPLES):
        raise ValueError(f"system_prompt: n_examples must be 0..{len(EXAMPLES)}, got {n_examples!r}")
    parts = [SYSTEM_PROMPT_HEAD]
    if n:
        parts.append("\n# Examples\n")
    for k, (codes, reply) in enumerate(EXAMPLES[:n], start=1):
        reply_json = json.dumps({"descriptions": reply}, ensure_ascii=False)
        parts.append(f"## Example {k} ({codes['frame_count']} frames)\n{render_codes(codes)}\nReply: {reply_json}\n")
    return "".join(parts)


SYSTEM_PROMPT = system_prompt()


def user_prompt(codes: Mapping[str, Any]) -> str:
    """The user message: the clip's rendered motion codes and the request for the reply."""
    frames = codes.get("frame_count", "?")
    return (f"Motion codes of the clip to describe ({frames} frames):\n{render_codes(codes)}\n"
            'Reply with the JSON object {"descriptions": [...]} only.')


def build_messages(codes: dict[str, Any], n_examples: int | None = None) -> list[dict[str, str]]:
    """Chat messages (system, user) asking for five descriptions of one clip's motion codes (reference §3)."""
    if not isinstance(codes, dict):
        raise TypeError(f"build_messages: codes must be a dict in the schema of reference §2.5, got "
                        f"{type(codes).__name__}")
    return [{"role": "system", "content": system_prompt(n_examples)}, {"role": "user", "content": user_prompt(codes)}]


# ----------------------------------------------------------------------------------------------- the budget

_PIECES = re.compile(r"[A-Za-z]+|[0-9]+|\n|[^\sA-Za-z0-9]")
#: Tokens a chat template adds around each message (role markers, separators); generous for ChatML and Llama 3.
MESSAGE_OVERHEAD = 8

TokenCounter = Callable[[str], int]


def estimate_tokens(text: str) -> int:
    """A conservative token count of ``text`` without a tokenizer.

    One token per punctuation mark or symbol, per newline, per run of up to 3 digits and per up to 6 letters
    of a word; other whitespace is free. Byte-level BPE and WordPiece vocabularies hold nearly every English
    word of 6 letters or fewer whole, split numbers into groups of at most 3 digits (or single digits, which
    only matters for frame numbers of at most 2 digits) and rarely merge a punctuation mark with a neighbour,
    so this rarely counts low. Measured against the MiniLM WordPiece tokenizer shipped with handx
    (``tests/test_prompt_budget.py``): never below it; 5–13 % above it on this prompt, its examples and the
    real clips, 17–23 % on the v2 prompt (indented JSON, whose newlines WordPiece does not count). On the v2
    system prompt it gives 10,396 where SmolLM2's tokenizer counted about 8,500 and WordPiece 8,851. A plain
    characters / 3 rule is not safe: it counts 34 % fewer tokens than WordPiece on compact JSON.
    """
    n = 0
    for match in _PIECES.finditer(text):
        piece = match.group()
        if piece[0].isalpha():
            n += math.ceil(len(piece) / 6)
        elif piece[0].isdigit():
            n += math.ceil(len(piece) / 3)
        else:
            n += 1
    return n


def message_tokens(messages: Sequence[Mapping[str, str]], count: TokenCounter = estimate_tokens) -> int:
    """Prompt tokens of chat ``messages``: their contents plus :data:`MESSAGE_OVERHEAD` each."""
    return sum(count(m["content"]) + MESSAGE_OVERHEAD for m in messages)


@dataclasses.dataclass(frozen=True)
class PromptPlan:
    """The prompt of a run: how many worked examples fit the context, and the system message they give.

    Attributes:
        context_tokens: the model's context (prompt + reply), in tokens.
        reply_tokens: the reply budget (``max_tokens``) reserved in that context.
        n_examples: worked examples in the system message.
        system: the system message, identical for every clip.
        system_tokens: its tokens (by ``counted_by``), chat-template overhead included.
        counted_by: ``"estimate"`` (:func:`estimate_tokens`) or ``"server"`` (the server's tokenizer).
    """

    context_tokens: int
    reply_tokens: int
    n_examples: int
    system: str
    system_tokens: int
    counted_by: str = "estimate"

    @property
    def prompt_limit(self) -> int:
        """The most prompt tokens a clip may take: what the context leaves after the reply budget."""
        return self.context_tokens - self.reply_tokens

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "system"}


def plan_prompt(context_tokens: int = DEFAULT_CONTEXT, reply_tokens: int = 2048, *,
                count: TokenCounter = estimate_tokens, counted_by: str = "estimate") -> PromptPlan:
    """The most worked examples (all, then fewer, down to none) whose system message leaves room for
    :data:`CLIP_ALLOWANCE` clip tokens and ``reply_tokens`` within ``context_tokens``.

    Raises ``ValueError`` when even the message without examples does not fit, naming the numbers.
    """
    if not isinstance(context_tokens, int) or context_tokens < 1:
        raise ValueError(f"plan_prompt: context_tokens must be a positive integer, got {context_tokens!r}")
    need = None
    for n in range(len(EXAMPLES), -1, -1):
        system = system_prompt(n)
        tokens = count(system) + MESSAGE_OVERHEAD
        need = tokens + CLIP_ALLOWANCE + MESSAGE_OVERHEAD + reply_tokens
        if need <= context_tokens:
            return PromptPlan(context_tokens, reply_tokens, n, system, tokens, counted_by)
    raise ValueError(f"a context of {context_tokens} tokens is too small: the prompt without worked examples "
                     f"needs {need - reply_tokens} tokens (instructions and up to {CLIP_ALLOWANCE} for the clip) "
                     f"plus max_tokens={reply_tokens} for the reply; use a larger context (--context) or a "
                     f"smaller max_tokens")
