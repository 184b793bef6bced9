"""Ground-truth event programs of synthetic clips: events, measured contacts and the text writer.

A program is a JSON-serialisable list of events ``{"hand", "action", "start", "end", ...params}`` with frames in
``[0, 60)`` and ``end`` exclusive (the ``[i, j)`` convention of reference §2.2). Actions of one hand have
``hand`` ``"left"``/``"right"``; two-hand relations have ``"both"``. Contacts are listed as
``{"action": "contact", "kind": "tip_tip" | "tip_palm" | "palm_palm", "between": [a, b], ...}``, measured on
the finished motion with the thresholds of reference §2.3–2.4 and §2.9: fingertips within 2 cm, a fingertip
within 2.5 cm of the other hand's palm triangles, palms within 2.5 cm (exact triangle distances).

Per-hand actions (a hand is still outside its events, up to sub-millimetre noise; ``primitive`` names the
primitive or interaction that wrote the event; ``reverse: true`` marks the way back of an action). A hand's
finger events follow one another without overlapping, each starting from the pose the previous one left;
wrist events (``move``, ``rotate``, ``bend_wrist``) may overlap them:

==================  =========================================================================================
``fist``            all fingers fully bent, thumb wrapped (``fingers``)
``open``            all fingers straightened from a hand with a bent finger
``point``           ``fingers[0]`` straight, the others bent as in a fist
``pinch``           thumb tip to ``fingers[1]`` tip (the contact follows as a ``tip_tip`` contact event and holds
                    at least until the hand's next finger event)
``release``         back to a relaxed hand (after fist, point or pinch)
``spread`` /        fingers abducted (adjacent proximal phalanges >= 20° apart, reference §2.3 "Open") /
``close_fingers``   adducted again (< 20°, "Closed")
``count``           from a fist, ``fingers`` straighten one after another; ``steps`` = [[finger, start, end]]
``finger_wave``     each finger bends and straightens in turn (``steps``), ``repeats`` waves
``tap``             ``fingers[0]`` bends halfway and straightens ``repeats`` times
``move``            the wrist translates ``distance`` metres towards ``direction`` (left, right, forward, back,
                    up, down: the axes of reference §1.2)
``rotate``          forearm rotation by ``angle`` degrees to ``direction`` ``palm_up``/``palm_down``/``palm_in``
``bend_wrist``      wrist flexion (``down``) or extension (``up``) by ``angle`` degrees
``hold_still``      the hand holds its pose over the event (the whole clip for a hand that never moves);
                    ``palm`` says where the palm faces (down, in, up)
==================  =========================================================================================

Every finger event (an action of :data:`FINGER_ACTIONS`) also carries ``flexion_changes``: the ground truth of
the finger_flexing codes of reference §2.3, taken from the generator's own joint angles (the rendered pose
trajectory, after noise and joint limits), not measured on the joints. It lists, for each of the 14 flexion keys
(``thumb_mcp``, ``thumb_ip``, then ``mcp``/``pip``/``dip`` of index, middle, ring and pinky) whose band differs
between the event's first frame and its last (``end − 1``), ``{"joint": key, "from": band, "to": band}`` with
the bands of :data:`handx.features.codes.FLEXION` ("Hyper extend" < −20° ≤ "Fully extended" < 30° ≤
"Partially bent" < 60° ≤ "Fully bent"); an event that crosses no band edge has an empty list
(:func:`add_flexion_changes`).

Two-hand relations (``hand: "both"``, one per clip): ``independent``, ``clap`` (``repeats``),
``palms_together``, ``tip_to_tip`` (``fingers``), ``tip_to_palm`` (``acting``, ``target``), ``mirrored``
(``primitives``: those of each hand, in order), ``hold_and_act`` (``holding``, ``acting``, ``primitives``: those
of the acting hand, all within the relation's frames, while the holding hand holds still); ``separate`` says
whether the hands part again before the end.

The text writer turns a program into the three description lists of reference §3 (left, right,
two_hands_relation), five variants each from concise to detailed, drawing phrasings from a small synonym
grammar with a seeded generator. Per-hand texts only describe that hand's events, in order ("first …, then
…"; an event that starts while the previous one is still going on: "and meanwhile …").
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import numpy as np

from handx.features.codes import FLEXION
from handx.features.signals import FLEXION_KEYS
from handx.motion import WINDOW
from handx.skeleton import FINGERS, HAND_NAMES, TIP_INDICES
from handx.synth.hand import PALM_CORNERS, POSE, palm_palm_distance, tip_palm_distance

TIP_TIP_THRESHOLD = 0.02  # metres, reference §2.3 / §2.4 / §2.9
TIP_PALM_THRESHOLD = 0.025
PALM_PALM_THRESHOLD = 0.025
HANDS = ("left", "right", "both")
#: Actions of per-hand events that move the finger angles (finger primitives and their ways back).
FINGER_ACTIONS: frozenset[str] = frozenset({"fist", "open", "point", "pinch", "release", "spread", "close_fingers",
                                            "count", "finger_wave", "tap"})
#: Pose channel (:data:`handx.synth.hand.POSE`) of each flexion key of reference §2.3, in
#: :data:`handx.features.signals.FLEXION_KEYS` order: thumb MCP and IP flexion, then each long finger's MCP
#: flexion, PIP and DIP.
FLEXION_CHANNELS = np.array([POSE[f"{key}_flex" if key.endswith("_mcp") and not key.startswith("thumb") else key]
                             for key in FLEXION_KEYS], dtype=np.int64)  # (14,)


@dataclasses.dataclass(frozen=True)
class Event:
    """One ground-truth event: ``hand`` does ``action`` over frames ``[start, end)``; extra ``params``."""

    hand: str
    action: str
    start: int
    end: int
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hand not in HANDS:
            raise ValueError(f"Event.hand must be one of {HANDS}, got {self.hand!r}")
        if not 0 <= self.start < self.end <= WINDOW:
            raise ValueError(f"Event frames must satisfy 0 <= start < end <= {WINDOW}, got [{self.start}, {self.end})"
                             f" for {self.action!r}")

    def to_json(self) -> dict:
        return {"hand": self.hand, "action": self.action, "start": int(self.start), "end": int(self.end),
                **self.params}


# -------------------------------------------------------------------------------------------- contacts

def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in a ``(T,)`` mask as ``[start, end)`` pairs."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


@dataclasses.dataclass(frozen=True)
class ContactSignals:
    """Per-frame contact distances of a clip (metres).

    Attributes:
        intra: ``(T, 2, 4)`` thumb tip to index, middle, ring, pinky tip, per hand.
        tip_tip: ``(T, 5, 5)`` left tip ``i`` to right tip ``j`` (fingers in :data:`handx.skeleton.FINGERS` order).
        tip_palm: ``(T, 2, 5)`` tips of hand ``h`` to the palm of the other hand.
        palm_palm: ``(T,)`` palm surface to palm surface.
    """

    intra: np.ndarray
    tip_tip: np.ndarray
    tip_palm: np.ndarray
    palm_palm: np.ndarray

    def distance(self, kind: str, between: Sequence[str]) -> np.ndarray:
        """The ``(T,)`` signal for a contact named as in a program (``"left_index_tip"``, ``"right_palm"``)."""
        a, b = between
        if kind == "palm_palm":
            return self.palm_palm
        ha, pa = a.split("_", 1)
        hb, pb = b.split("_", 1)
        fa, fb = pa.removesuffix("_tip"), pb.removesuffix("_tip")
        if kind == "tip_palm":
            return self.tip_palm[:, HAND_NAMES.index(ha), FINGERS.index(fa)]
        if ha == hb:
            other = fb if fa == "thumb" else fa
            return self.intra[:, HAND_NAMES.index(ha), FINGERS.index(other) - 1]
        left, right = (fa, fb) if ha == "left" else (fb, fa)
        return self.tip_tip[:, FINGERS.index(left), FINGERS.index(right)]


def contact_signals(joints: np.ndarray, exact_below: float = 0.05) -> ContactSignals:
    """All contact distances of a two-hand clip ``(T, 2, 21, 3)`` (see :class:`ContactSignals`).

    Tip distances are always exact. Palm distances are exact wherever they are below ``exact_below`` metres;
    elsewhere they hold a lower bound that is itself at least ``exact_below`` (distance between bounding
    spheres of the palms), which is enough to decide every threshold of reference §2.3–2.4 and keeps the cost
    low when the hands are apart.
    """
    tips = joints[:, :, TIP_INDICES]  # (T, 2, 5, 3)
    intra = np.linalg.norm(tips[:, :, 1:] - tips[:, :, :1], axis=-1)  # (T, 2, 4)
    tip_tip = np.linalg.norm(tips[:, 0, :, None] - tips[:, 1, None, :], axis=-1)  # (T, 5, 5)
    corners = joints[:, :, PALM_CORNERS]  # (T, 2, 6, 3)
    centre = corners.mean(axis=2)  # (T, 2, 3)
    radius = np.linalg.norm(corners - centre[:, :, None], axis=-1).max(axis=2)  # (T, 2)
    tip_palm = np.empty(tips.shape[:3])  # (T, 2, 5)
    for h in range(2):
        bound = np.linalg.norm(tips[:, h] - centre[:, 1 - h, None], axis=-1) - radius[:, 1 - h, None]  # (T, 5)
        tip_palm[:, h] = np.maximum(bound, exact_below)
        t_idx, k_idx = np.nonzero(bound < exact_below)
        if t_idx.size:
            exact = tip_palm_distance(tips[t_idx, h, k_idx][:, None], joints[t_idx, 1 - h])[:, 0]
            tip_palm[t_idx, h, k_idx] = exact
    bound = np.linalg.norm(centre[:, 0] - centre[:, 1], axis=-1) - radius.sum(axis=1)  # (T,)
    palm_palm = np.maximum(bound, exact_below)
    near = np.flatnonzero(bound < exact_below)
    if near.size:
        palm_palm[near] = palm_palm_distance(joints[near, 0], joints[near, 1])
    return ContactSignals(intra, tip_tip, tip_palm, palm_palm)


def contact_events(signals: ContactSignals) -> list[Event]:
    """Every contact run of a clip as ``contact`` events (intra-hand pinches, tip–tip, tip–palm, palm–palm)."""
    out: list[Event] = []

    def add(hand: str, kind: str, between: list[str], dist: np.ndarray, threshold: float) -> None:
        for s, e in runs(dist < threshold):
            out.append(Event(hand, "contact", s, e, {"kind": kind, "between": between,
                                                      "min_distance": round(float(dist[s:e].min()), 4)}))

    for h, hand in enumerate(HAND_NAMES):
        for k, finger in enumerate(FINGERS[1:]):
            if (signals.intra[:, h, k] < TIP_TIP_THRESHOLD).any():
                add(hand, "tip_tip", [f"{hand}_thumb_tip", f"{hand}_{finger}_tip"], signals.intra[:, h, k],
                    TIP_TIP_THRESHOLD)
    for i, j in zip(*np.nonzero((signals.tip_tip < TIP_TIP_THRESHOLD).any(axis=0))):
        add("both", "tip_tip", [f"left_{FINGERS[i]}_tip", f"right_{FINGERS[j]}_tip"], signals.tip_tip[:, i, j],
            TIP_TIP_THRESHOLD)
    for h, k in zip(*np.nonzero((signals.tip_palm < TIP_PALM_THRESHOLD).any(axis=0))):
        hand = HAND_NAMES[h]
        add("both", "tip_palm", [f"{hand}_{FINGERS[k]}_tip", f"{HAND_NAMES[1 - h]}_palm"], signals.tip_palm[:, h, k],
            TIP_PALM_THRESHOLD)
    add("both", "palm_palm", ["left_palm", "right_palm"], signals.palm_palm, PALM_PALM_THRESHOLD)
    return out


# -------------------------------------------------------------------------------------- flexion changes

def add_flexion_changes(program: Sequence[Mapping], poses: np.ndarray) -> list[dict]:
    """The program with ``flexion_changes`` added to every finger event (see the module docstring).

    ``poses`` ``(T, 2, 26)`` is the pose trajectory the clip was rendered from (left, right; radians). Bands
    come from :data:`handx.features.codes.FLEXION` on the frames ``start`` and ``end − 1`` of each event.
    """
    out = [dict(e) for e in program]
    finger = [e for e in out if e["hand"] in HAND_NAMES and e["action"] in FINGER_ACTIONS]
    if not finger:
        return out
    hand = np.array([HAND_NAMES.index(e["hand"]) for e in finger])  # (E,)
    frames = np.array([[int(e["start"]) for e in finger], [int(e["end"]) - 1 for e in finger]])  # (2, E)
    angles = poses[frames, hand][..., FLEXION_CHANNELS]  # (2, E, 14) first and last frame of each event
    first, last = FLEXION.values.index(angles).tolist()  # band indices, (E, 14) each
    labels = FLEXION.values.labels
    for e, a, b in zip(finger, first, last):
        e["flexion_changes"] = [{"joint": key, "from": labels[i], "to": labels[j]}
                                for key, i, j in zip(FLEXION_KEYS, a, b) if i != j]
    return out


# ------------------------------------------------------------------------------------------- text writer

_FINGER_WORDS = {"thumb": ("thumb",), "index": ("index finger",), "middle": ("middle finger",),
                 "ring": ("ring finger",), "pinky": ("little finger", "pinky")}
_DIRECTION_WORDS = {
    "left": ("to the left", "leftward"), "right": ("to the right", "rightward"),
    "forward": ("forward", "away from the body"), "back": ("backward", "back towards the body"),
    "up": ("up", "upward"), "down": ("down", "downward"),
}
_TIMES = ((8, ("at the start", "right away", "at the beginning")),
          (22, ("early on", "shortly after the start", "early in the clip")),
          (38, ("mid-sequence", "in the middle of the clip", "halfway through")),
          (WINDOW + 1, ("towards the end", "late in the clip", "near the end")))
_SPEEDS = ((8, ("quickly", "rapidly", "swiftly")),
           (16, ("smoothly", "steadily", "at a moderate pace")),
           (WINDOW + 1, ("slowly", "gradually", "unhurriedly")))
_COUNTS = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times"}
_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}
_PALM_WORDS = {"down": "with the palm facing down", "in": "with the palm turned towards the other hand",
               "up": "with the palm facing up"}

# Verb phrases in the base form; the first word is the verb. {its} becomes "its" or "their".
_PHRASES: dict[str, tuple[str, ...]] = {
    "fist": ("make a fist", "clench into a fist", "close into a tight fist", "curl all {its} fingers into a fist"),
    "open": ("open up", "extend all {its} fingers", "straighten every finger",
             "open fully, stretching out all five fingers"),
    "point": ("point with the {f}", "extend the {f} while curling the other fingers",
              "form a pointing gesture with the {f}", "straighten the {f} and ^fold the other fingers in"),
    "pinch": ("pinch the thumb and {f} together", "bring the thumb tip to the {f} tip",
              "touch the thumb to the tip of the {f}", "make the thumb and {f} tips meet in a pinch"),
    "release": ("relax again", "release the pose", "let go and ^relax {its} fingers", "return to a relaxed pose"),
    "spread": ("spread {its} fingers", "fan {its} fingers apart", "splay {its} fingers wide",
               "open the gaps between {its} fingers"),
    "close_fingers": ("bring {its} fingers together", "close the gaps between {its} fingers",
                      "draw {its} fingers back together", "squeeze {its} fingers together side by side"),
    "count": ("count to {n}", "count to {n} on {its} fingers", "raise the {list} one after another",
              "extend {n} fingers one by one from a fist"),
    "finger_wave": ("wave {its} fingers", "ripple {its} fingers from the {first} to the {last}",
                    "flex and ^extend each finger in turn", "roll {its} fingers down and up in a wave"),
    "tap": ("tap the {f} {k}", "flick the {f} up and down {k}", "bend and ^straighten the {f} {k}",
            "tap with the {f} {k}"),
    "move": ("move {dir}", "shift {dir}", "slide {dir}", "travel {dir}"),
    "move_back": ("return to its starting position", "move back to where it started", "come back",
                  "go back to where it started"),
    "approach": ("move {dir} towards the other hand", "reach {dir} towards the other hand",
                 "close in on the other hand, moving {dir}", "travel {dir} towards the other hand"),
    "withdraw": ("pull back from the other hand", "draw back from the other hand", "withdraw from the other hand",
                 "move apart from the other hand again"),
    "rotate_palm_up": ("turn the palm up", "rotate the palm to face upward", "turn over so the palm faces up",
                       "supinate, turning the palm upward"),
    "rotate_palm_down": ("turn the palm down", "rotate the palm to face downward",
                         "turn over so the palm faces down", "pronate, turning the palm downward"),
    "rotate_palm_in": ("turn the palm to face the other hand", "rotate the palm inward",
                       "turn the palm sideways towards the other hand"),
    "bend_wrist_down": ("bend the wrist down", "flex the wrist downward", "tilt the hand down at the wrist",
                        "drop the hand at the wrist"),
    "bend_wrist_up": ("bend the wrist up", "extend the wrist upward", "tilt the hand up at the wrist",
                      "raise the hand at the wrist"),
    "bend_wrist_back": ("straighten the wrist again", "return the wrist to neutral", "bring the hand back level"),
    "hold_still": ("stay still", "remain motionless", "hold {its} pose", "keep still throughout"),
    "hold_pose": ("hold {its} pose", "stay still", "pause and ^hold {its} pose", "keep still for a moment"),
}


class _Draws:
    """Uniform draws of the text writer, taken in one block from the clip's generator (deterministic)."""

    def __init__(self, rng: np.random.Generator, n: int = 512):
        self._u = rng.random(n).tolist()
        self._i = 0

    def pick(self, options: Sequence[str]) -> str:
        u = self._u[self._i % len(self._u)]
        self._i += 1
        return options[int(u * len(options))]


@functools.lru_cache(maxsize=4096)
def _conjugate(phrase: str, plural: bool = False) -> str:
    """Conjugate a base-form verb phrase: its first word and every word marked ``^`` are verbs.

    Third person singular unless ``plural``; the markers are removed either way.
    """
    words = phrase.split(" ")
    out = []
    for i, word in enumerate(words):
        is_verb = i == 0 or word.startswith("^")
        word = word.removeprefix("^")
        if is_verb and not plural:
            if word.endswith(("s", "sh", "ch", "x", "z", "o")):
                word += "es"
            elif word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
                word = word[:-1] + "ies"
            else:
                word += "s"
        out.append(word)
    return " ".join(out)


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _band(value: int, bands: tuple, draws: _Draws) -> str:
    for limit, words in bands:
        if value < limit:
            return draws.pick(words)
    return draws.pick(bands[-1][1])


def _whole_clip(ev: Mapping) -> bool:
    return int(ev["start"]) == 0 and int(ev["end"]) == WINDOW


def _verb_phrase(ev: Mapping, draws: _Draws, detail: int, plural: bool = False) -> str:
    """A base-form verb phrase describing one per-hand event at a level of detail (0 concise … 4 detailed)."""
    action, reverse = ev["action"], bool(ev.get("reverse"))
    key = action
    fields: dict[str, str] = {"its": "their" if plural else "its"}
    fingers = [f for f in ev.get("fingers", []) if f != "thumb"] or list(ev.get("fingers", []))
    if fingers:
        fields["f"] = draws.pick(_FINGER_WORDS[fingers[0]])
    two_hand = ev.get("primitive", "") in ("clap", "palms_together", "tip_to_tip", "tip_to_palm")
    if action == "move":
        key = ("withdraw" if reverse else "approach") if two_hand else ("move_back" if reverse else "move")
        fields["dir"] = draws.pick(_DIRECTION_WORDS[ev["direction"]])
    elif action == "rotate":
        key = f"rotate_{ev['direction']}"
    elif action == "bend_wrist":
        key = "bend_wrist_back" if reverse else f"bend_wrist_{ev['direction']}"
    elif action == "count":
        fields["n"] = _NUMBERS.get(int(ev["count"]), str(ev["count"]))
        fields["list"] = _join([_FINGER_WORDS[f][0].replace(" finger", "") for f in ev["fingers"]])
    elif action == "finger_wave":
        fields["first"] = _FINGER_WORDS[ev["fingers"][0]][0]
        fields["last"] = _FINGER_WORDS[ev["fingers"][-1]][0]
    elif action == "tap":
        fields["k"] = _COUNTS.get(int(ev["repeats"]), f"{ev['repeats']} times")
    elif action == "hold_still" and not _whole_clip(ev):
        key = "hold_pose"
    options = _PHRASES[key]
    phrase = draws.pick(options[:2] if detail <= 1 else options).format(**fields)
    if action == "finger_wave" and int(ev.get("repeats", 1)) > 1:
        phrase += " " + _COUNTS[int(ev["repeats"])]
    if action == "hold_still" and detail >= 2 and ev.get("palm") in _PALM_WORDS:
        phrase += " " + _PALM_WORDS[ev["palm"]]
    if detail >= 4:
        if action == "move":
            cm = round(float(ev["distance"]) * 100)
            phrase += f", {cm:d} cm {_DIRECTION_WORDS[ev['direction']][0]}" if reverse else f" by about {cm:d} cm"
        elif action in ("rotate", "bend_wrist"):
            phrase += f" by about {round(float(ev['angle'])):d} degrees"
    return _conjugate(phrase, plural)


def _timed(ev: Mapping, phrase: str, draws: _Draws, detail: int) -> str:
    if _whole_clip(ev):
        return phrase
    if detail >= 3 and ev["action"] != "hold_still":
        phrase += " " + _band(int(ev["end"]) - int(ev["start"]), _SPEEDS, draws)
    if detail >= 2:
        phrase += " " + _band(int(ev["start"]), _TIMES, draws)
    if detail >= 4:
        phrase += f" (frames {ev['start']}-{int(ev['end']) - 1})"
    return phrase


def _groups(events: list[Mapping]) -> list[list[Mapping]]:
    """Consecutive repeats of one action (e.g. the approaches of several claps) as groups, in order."""
    def signature(e: Mapping) -> tuple:
        return e["action"], e.get("direction"), tuple(e.get("fingers", ())), bool(e.get("reverse"))

    out: list[list[Mapping]] = []
    for e in events:
        if out and signature(out[-1][0]) == signature(e):
            out[-1].append(e)
        else:
            out.append([e])
    return out


def _sequence_phrase(events: list[Mapping], draws: _Draws, detail: int, plural: bool = False) -> str:
    """The events of one hand, in order, as one verb phrase: "first makes a fist, then opens up".

    An event that starts before the previous one has ended is joined with "and meanwhile"; at detail 0
    the returns are left out and repeats of an action collapse ("twice").
    """
    if detail == 0:
        events = [e for e in events if not e.get("reverse")] or events
        groups = _groups(events)
    else:
        groups = [[e] for e in events]
    clauses: list[str] = []
    previous_end = -1
    for group in groups:
        ev = group[0]
        phrase = _verb_phrase(ev, draws, detail, plural)
        if len(group) > 1:
            phrase += f" {_COUNTS.get(len(group), f'{len(group)} times')}"
        else:
            phrase = _timed(ev, phrase, draws, detail)
        if clauses:
            overlap = int(ev["start"]) < previous_end - 1
            phrase = (draws.pick(_MEANWHILE) if overlap else draws.pick(_THEN)) + phrase
        clauses.append(phrase)
        previous_end = int(group[-1]["end"])
    if len(clauses) > 1 and detail >= 1:
        clauses[0] = "first " + clauses[0]
    return "".join(clauses)


_THEN = (", then ", ", then ", ", after that ")
_MEANWHILE = (" and meanwhile ", " and at the same time ", " while it also ")


def _hand_text(side: str, events: list[Mapping], contacts: list[Mapping], draws: _Draws, detail: int) -> str:
    subject = draws.pick((f"The {side} hand", f"The {side} hand", f"{side.capitalize()} hand:"))
    if not events:
        return f"{subject} {_conjugate(draws.pick(_PHRASES['hold_still']).format(its='its'))}."
    text = f"{subject} {_sequence_phrase(events, draws, detail)}"
    last = max(int(e["end"]) for e in events)
    if detail >= 3 and events[-1]["action"] != "hold_still" and last <= WINDOW - 6:
        text += draws.pick((", and then holds still", ", and keeps that pose to the end", ", then stays still"))
    text += "."
    if detail >= 4:
        for c in contacts:
            a, b = (n.split("_", 1)[1].removesuffix("_tip") for n in c["between"])
            pair = f"The {a} and {_FINGER_WORDS[b][0].replace(' finger', '')} fingertips"
            if int(c["end"]) - int(c["start"]) == 1:
                text += f" {pair} touch briefly at frame {c['start']}."
            else:
                text += f" {pair} touch from frame {c['start']} to {int(c['end']) - 1}."
    return text


_RELATION_PHRASES = {
    "independent": ("The hands act independently.", "The two hands move independently of each other.",
                    "Each hand moves on its own, without touching the other.",
                    "There is no interaction: the hands stay apart and act independently."),
    "clap": ("The hands clap {k}.", "The palms clap together {k}.",
             "The hands come together and clap {k}, palms meeting and parting.",
             "Facing each other, the palms strike together {k}."),
    "palms_together": ("The palms press together.", "The hands press their palms together.",
                       "The hands turn their palms towards each other and press them together{sep}.",
                       "Both palms meet and stay pressed flat against each other{sep}."),
    "tip_to_tip": ("The {f} fingertips of both hands touch.", "The left and right {f} tips meet.",
                   "The hands bring their {f} fingertips together until they touch{sep}.",
                   "Pointing towards each other, the two {f} tips make contact{sep}."),
    "tip_to_palm": ("The {acting} {f} fingertip touches the {target} palm.",
                    "The {acting} hand touches the {target} palm with its {f} tip.",
                    "The {acting} hand points its {f} into the {target} palm until the tip touches it{sep}.",
                    "The {acting} {f} tip comes to rest on the palm of the {target} hand{sep}."),
    "mirrored": ("Both hands {vp}, mirroring each other.", "The hands mirror each other: both {vp}.",
                 "In mirror symmetry, both hands {vp}.", "The two hands move as mirror images; both {vp}."),
    "hold_and_act": ("The {holding} hand stays still while the {acting} hand {vp}.",
                     "While the {holding} hand holds its pose, the {acting} hand {vp}.",
                     "Only the {acting} hand moves: it {vp}, while the {holding} hand stays still.",
                     "The {holding} hand remains motionless as the {acting} hand {vp}."),
}


def _relation_text(relation: Mapping, program: list[Mapping], draws: _Draws, detail: int) -> str:
    action = relation["action"]
    per_hand = {h: [e for e in program if e["hand"] == h and e["action"] != "contact"] for h in HAND_NAMES}
    if action == "independent" and all(
            all(e["action"] == "hold_still" for e in per_hand[h]) for h in HAND_NAMES):
        return draws.pick(("Both hands stay still, apart from each other.", "Neither hand moves; they stay apart."))
    fields: dict[str, str] = {"sep": ", then separate" if relation.get("separate") else ""}
    if "repeats" in relation:
        fields["k"] = _COUNTS[int(relation["repeats"])]
    if "fingers" in relation:
        fields["f"] = _FINGER_WORDS[relation["fingers"][0]][0].replace(" finger", "")
    if action == "tip_to_palm":
        fields.update(acting=relation["acting"], target=relation["target"])
        fields["f"] = draws.pick(("index", "index finger"))
    if action in ("mirrored", "hold_and_act"):
        side = relation.get("acting", "right")
        start, end = int(relation["start"]), int(relation["end"])
        acts = [e for e in per_hand[side] if start <= int(e["start"]) and int(e["end"]) <= end]
        fields["vp"] = _sequence_phrase(acts or per_hand[side], draws, min(detail, 3), plural=action == "mirrored")
        fields.update(holding=relation.get("holding", ""), acting=side)
    options = _RELATION_PHRASES[action]
    text = draws.pick(options[:2] if detail <= 1 else options).format(**fields)
    if detail >= 2 and action not in ("independent", "mirrored", "hold_and_act"):
        text = text[:-1] + " " + _band(int(relation["start"]), _TIMES, draws) + "."
    if detail >= 4:
        contacts = [e for e in program if e["hand"] == "both" and e["action"] == "contact"]
        if contacts:
            touching = np.zeros(WINDOW, dtype=bool)
            for c in contacts:
                touching[int(c["start"]):int(c["end"])] = True
            spans = ", ".join(f"{s}-{e - 1}" for s, e in runs(touching))
            text += f" The hands are in contact during frames {spans}."
        elif action == "independent":
            text += " They never touch."
    return text


def write_texts(program: list[Mapping], rng: np.random.Generator) -> dict[str, list[str]]:
    """Five descriptions per key (``left``, ``right``, ``two_hands_relation``), concise (0) to detailed (4).

    A hand's description tells its events in order ("first …, then …"; overlapping ones "and meanwhile …")
    and never mentions the other side by name.
    """
    draws = _Draws(rng)
    out: dict[str, list[str]] = {"left": [], "right": [], "two_hands_relation": []}
    relation = next((e for e in program if e["hand"] == "both" and e["action"] != "contact"),
                    {"action": "independent", "start": 0, "end": WINDOW})
    events = {side: sorted((e for e in program if e["hand"] == side and e["action"] != "contact"),
                           key=lambda e: (e["start"], e["end"])) for side in HAND_NAMES}
    contacts = {side: [e for e in program if e["hand"] == side and e["action"] == "contact"] for side in HAND_NAMES}
    for detail in range(5):
        for side in HAND_NAMES:
            out[side].append(_hand_text(side, events[side], contacts[side], draws, detail))
        out["two_hands_relation"].append(_relation_text(relation, program, draws, detail))
    return out


__all__ = [
    "FINGER_ACTIONS",
    "FLEXION_CHANNELS",
    "PALM_PALM_THRESHOLD",
    "TIP_PALM_THRESHOLD",
    "TIP_TIP_THRESHOLD",
    "ContactSignals",
    "Event",
    "add_flexion_changes",
    "contact_events",
    "contact_signals",
    "runs",
    "write_texts",
]
