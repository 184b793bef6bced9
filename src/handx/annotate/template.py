"""The offline template writer: motion codes → five description triplets without an LLM (reference §3).

:class:`TemplateWriter` follows the annotation rules of reference §3 with a small grammar instead of a language
model, so a dataset can be annotated offline, fast and reproducibly:

* (a) every contact (thumb–finger contacts of each hand, tip–tip, tip on palm and palm on palm contacts
  between the hands) and every hyperextension ("Hyper extend" flexion state) is reported in every variant;
* (b) events are placed in time: initially / early / mid-sequence / towards the end / throughout, relative to
  ``frame_count``; variant 5 gives frame ranges ("frames 12–30") and speeds;
* (c) flexion is described per whole finger (mcp/pip/dip, thumb mcp/ip together: "the index finger curls
  fully"), except a base knuckle that hyperextends while the upper joints bend; fingers that move alike are
  merged ("the middle, ring and pinky fingers bend"); repetitions are counted ("closes and opens twice");
  wrist translations get direction and speed words, finger spacing "spreads apart" / "come together";
* (d) the relation text stresses contact, fast approach and separation (``palm_palm_distance`` and
  ``finger_palm_distance`` state changes) and changes of relative position
  (``palm_palm_relative_position``); constant far distances are skipped, and hands that never relate are said
  to act independently.

Variants 1–2 are concise (the most significant changes), 3–4 moderate, 5 detailed. The left text describes the
left hand only (it may name "the other hand" in a contact), likewise the right. There are no hedging words.
Wording (synonyms, sentence plans, connectors) is drawn from ``random.Random`` seeded with
``(seed, content_hash)``, so the same codes and seed always give the same texts. The texts are written in the
vocabulary that :mod:`handx.annotate.verify` reads.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from handx.annotate.base import MAX_TEXT_CHARS, NUM_VARIANTS, Description, WriteRequest, WriteResult
from handx.annotate.verify import Contact, concurrent, contacts, follows, hyperextensions, merge_runs

logger = logging.getLogger(__name__)

FINGER_ORDER = ("thumb", "index", "middle", "ring", "pinky")
LONG_FINGERS = FINGER_ORDER[1:]
FLEX_LEVEL = {"Hyper extend": -1, "Fully extended": 0, "Partially bent": 1, "Fully bent": 2}
SPEED_LEVEL = {"Slow": 0, "Medium": 1, "Fast": 2}
DISTANCE_LEVEL = {"Contact": 0, "Near": 1, "Medium": 2, "Far": 3}
SPACING_PAIRS = (("index", "middle"), ("middle", "ring"), ("ring", "pinky"))
#: (detail, number of optional facts per hand) of each variant: 0 concise, 1 moderate, 2 detailed.
VARIANTS = ((0, 1), (0, 2), (1, 3), (1, 4), (2, 7))
if len(VARIANTS) != NUM_VARIANTS:
    raise RuntimeError(f"template.VARIANTS has {len(VARIANTS)} entries, base.NUM_VARIANTS is {NUM_VARIANTS}")
_COUNT = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times", 6: "six times"}
_SPEED_WORDS = {2: ("quickly", "rapidly", "swiftly", "fast"), 1: ("steadily", "at a moderate pace", "smoothly",
                                                                    "at a steady pace"),
                0: ("slowly", "gradually", "gently")}
_DIRECTION_PHRASES = {"left-to-right": ("to the right", "rightward"), "right-to-left": ("to the left", "leftward"),
                      "back-to-front": ("forward", "away from the body"),
                      "front-to-back": ("backward", "towards the body"),
                      "down-to-up": ("up", "upward"), "up-to-down": ("down", "downward")}
_POSITION = {"LEFT": "to the left of", "RIGHT": "to the right of", "BACK": "behind", "FRONT": "in front of",
             "DOWN": "below", "UP": "above"}
_ALIGNED = {"left-right": "level with", "front-back": "level with", "up-down": "at the same height as"}
_HYPER = "Hyper extend"
CONTACT_STATE = "Contact"
_AXIS = {"left-to-right": "x", "right-to-left": "x", "back-to-front": "y", "front-to-back": "y", "down-to-up": "z",
         "up-to-down": "z"}
_JOINT = {"mcp": "base knuckle", "pip": "middle joint", "dip": "end joint", "ip": "end joint"}


# --------------------------------------------------------------------------------------------------------------
# Facts: what the codes say, grouped the way rule (c) asks
# --------------------------------------------------------------------------------------------------------------

class Move(NamedTuple):
    """One whole-finger (or finger-pair, or wrist) movement: ``kind`` bend/straighten, spread/close, or a
    wrist direction tuple; ``level`` the flexion level reached; frames ``start``..``end`` inclusive. (A
    NamedTuple rather than a frozen dataclass: it is built tens of times per clip and this is 5x faster.)"""

    kind: Any
    level: int
    speed: int
    start: int
    end: int


@dataclasses.dataclass(frozen=True)
class Fact:
    """One thing to say. ``side``: left/right/relation; frames ``start``..``end`` inclusive; ``must``: said in
    every variant (rule (a)); ``weight``: significance for the concise variants; ``data``: kind-specific."""

    kind: str
    side: str
    start: int
    end: int
    weight: float
    must: bool
    data: Any


def _sequential(moves: Sequence[Move]) -> bool:
    """Does every move follow the one before (:func:`~handx.annotate.verify.follows`)?"""
    return all(follows((a.start, a.end), (b.start, b.end)) for a, b in zip(moves, moves[1:]))


def _timeline(moves: Iterable[Move]) -> list[Move]:
    """One finger's (or finger pair's) moves as a sequence that can be told with "then": consecutive moves of the
    same kind join (bend+bend → one bend reaching the deeper level); of two opposite moves that overlap (one
    joint bends while another straightens) the longer is kept, the finger's dominant motion."""
    out: list[Move] = []
    for m in sorted(moves, key=lambda m: (m.start, m.end)):
        while out:
            p = out[-1]
            if p.kind == m.kind:
                level = max(p.level, m.level) if m.kind in ("bend", "spread") else min(p.level, m.level)
                speed = p.speed if p.end - p.start >= m.end - m.start else m.speed  # the longer part's speed
                m = Move(m.kind, level, speed, p.start, max(p.end, m.end))
                out.pop()
            elif not follows((p.start, p.end), (m.start, m.end)):
                if p.end - p.start >= m.end - m.start:
                    m = None
                    break
                out.pop()
            else:
                break
        if m is not None:
            out.append(m)
    return out


def _groups(members: Iterable[tuple[Any, list[Move]]], frames: int) -> list[list[tuple[Any, list[Move]]]]:
    """Fingers (or pairs) that move alike: the same kinds of moves in the same order, starting in the same third
    of the clip, and whose moves still follow each other once combined (so "then" stays true for the group)."""
    groups: dict[tuple, list[list[tuple[Any, list[Move]]]]] = {}
    for member in members:
        signature = (tuple(m.kind for m in member[1]), _phase(member[1][0].start, frames))
        for group in groups.setdefault(signature, []):
            if _sequential(_combine([ms for _, ms in group] + [member[1]])):
                group.append(member)
                break
        else:
            groups[signature].append([member])
    return [g for gs in groups.values() for g in gs]


def _combine(columns: Sequence[Sequence[Move]]) -> list[Move]:
    """The moves of several fingers that move alike, as one: the k-th move spans every finger's k-th move."""
    out = []
    for column in zip(*columns):
        kind = column[0].kind
        levels = [m.level for m in column]
        level = max(levels) if kind in ("bend", "spread") else min(levels)
        out.append(Move(kind, level, max(m.speed for m in column), min(m.start for m in column),
                        max(m.end for m in column)))
    return out


def _phase(frame: int, frames: int) -> int:
    return min(2, 3 * frame // max(frames, 1))


def _finger_facts(side: str, hand: Mapping[str, Any], frames: int) -> tuple[list[Fact], bool]:
    """Whole-finger flexion facts (fingers that move alike merged), and whether any joint hyperextends."""
    moves: dict[str, list[Move]] = {}
    hyper = False
    for key, evs in hand.get("finger_flexing", {}).items():
        finger = key.partition("_")[0]
        for ev in evs:
            start_des = ev.get("start_des")
            if start_des is None:
                hyper = hyper or ev.get("constant_des") == _HYPER
                continue
            a, b = FLEX_LEVEL[start_des], FLEX_LEVEL[ev["end_des"]]
            if a < 0 or b < 0:
                hyper = True  # told by the hyperextension fact (rule (c): the knuckle, apart from the finger)
                continue
            if a != b:
                moves.setdefault(finger, []).append(Move("bend" if b > a else "straighten", b,
                                                         SPEED_LEVEL[ev["v_des"]], ev["start"], ev["end"] - 1))
    members = [(finger, _timeline(moves[finger])) for finger in FINGER_ORDER if finger in moves]
    facts = []
    for group in _groups(members, frames):
        fingers = tuple(f for f, _ in group)
        combined = _combine([ms for _, ms in group])
        whole = len(fingers) >= 4 and fingers[-4:] == LONG_FINGERS
        deep = any(m.level == 2 or (m.kind == "straighten" and m.level <= 0) for m in combined)
        weight = (1.0 + 0.5 * len(fingers) + 0.5 * min(len(combined), 3) + 0.7 * deep
                  + 0.5 * (max(m.speed for m in combined) == 2) + 1.5 * whole)
        facts.append(Fact("fingers", side, min(m.start for m in combined), max(m.end for m in combined), weight, False,
                          (fingers, tuple(combined))))
    return facts, hyper


def _spacing_facts(side: str, hand: Mapping[str, Any], frames: int) -> list[Fact]:
    members = []
    for i, key in enumerate(f"{a}, {b}" for a, b in SPACING_PAIRS):
        raw = [Move("spread" if ev["end_des"] == "Open" else "close", 0, SPEED_LEVEL[ev["v_des"]], ev["start"],
                    ev["end"] - 1) for ev in hand.get("finger_spacing", {}).get(key, []) if "start_des" in ev]
        if raw:
            members.append((i, _timeline(raw)))
    facts = []
    for group in _groups(members, frames):
        pairs = tuple(i for i, _ in group)
        moves = tuple(_combine([ms for _, ms in group]))
        weight = 1.2 + 0.3 * len(pairs) + 0.3 * (max(m.speed for m in moves) == 2)
        facts.append(Fact("spacing", side, moves[0].start, moves[-1].end, weight, False, (pairs, moves)))
    return facts


def _wrist_fact(side: str, hand: Mapping[str, Any]) -> list[Fact]:
    """The wrist's translations as moves in time order. Translations along different axes that overlap (by more
    than the sequence tolerance, and by at least half the shorter one) are one move in several directions
    ("shifts down, left and backward"); a move may still overlap the next one (a shorter overlap, or the same
    axis in both), and is then told with "while"."""
    events = sorted((ev for evs in hand.get("wrist_trajectory", {}).values() for ev in evs),
                    key=lambda e: (e["start"], e["end"]))
    if not events:
        return []
    moves: list[Move] = []
    for ev in events:
        axis = _AXIS[ev["direction"]]
        s, e, v = ev["start"], ev["end"] - 1, SPEED_LEVEL[ev["v_des"]]
        if moves:
            p = moves[-1]
            shared = min(p.end, e) - max(p.start, s) + 1
            if not follows((p.start, p.end), (s, e)) and shared >= 0.5 * min(p.end - p.start + 1, e - s + 1) \
                    and all(_AXIS[d] != axis for d in p.kind):
                moves[-1] = Move((*p.kind, ev["direction"]), 0, max(p.speed, v), min(p.start, s), max(p.end, e))
                continue
        moves.append(Move((ev["direction"],), 0, v, s, e))
    top = max(m.speed for m in moves)
    weight = (1.2, 2.2, 3.0)[top] + 0.3 * min(len(moves), 3)
    return [Fact("wrist", side, min(m.start for m in moves), max(m.end for m in moves), weight, False,
                 tuple(moves))]


def _hyper_fact(side: str, codes: Mapping[str, Any]) -> list[Fact]:
    found = hyperextensions(codes, side)
    if not found:
        return []
    flex = codes[f"{side}_hand_events"].get("finger_flexing", {})
    entries = []
    for finger in FINGER_ORDER:
        if finger not in found:
            continue
        joints = tuple(sorted({j for j, _, _ in found[finger]}, key=["mcp", "ip", "pip", "dip"].index))
        start = min(s for _, s, _ in found[finger])  # hyperextension spans, see verify.hyperextensions
        end = max(e for _, _, e in found[finger]) - 1
        upper_bent = joints == ("mcp",) and any(  # pip/dip bent while the knuckle is hyperextended
            FLEX_LEVEL.get(ev.get("constant_des") or ev.get("end_des") or "", 0) >= 1
            and ev["start"] <= end and start < ev["end"]
            for j in ("pip", "dip") for ev in flex.get(f"{finger}_{j}", []))
        entries.append((finger, joints, upper_bent, start, end))
    return [Fact("hyper", side, min(e[3] for e in entries), max(e[4] for e in entries), 10.0, True, tuple(entries))]


def _intra_fact(side: str, found: Sequence[Contact]) -> list[Fact]:
    mine = [c for c in found if c.kind == "intra" and c.parts[0][0] == side]
    if not mine:
        return []
    data = tuple((c.parts[1][1], c.episodes) for c in mine)
    return [Fact("intra", side, mine[0].start, max(c.episodes[-1][1] for c in mine), 10.0, True, data)]


def _inter_facts(found: Sequence[Contact]) -> list[Fact]:
    """Two-hand contacts, grouped: tip–tip contacts that overlap in time, tip–palm contacts per tip hand and
    time, palm–palm contact."""
    facts: list[Fact] = []
    for kind in ("tip_tip", "tip_palm"):
        clusters: list[list[Contact]] = []
        for c in (c for c in found if c.kind == kind):
            for cluster in clusters:
                if (kind == "tip_palm" and cluster[0].parts[0][0] != c.parts[0][0]):
                    continue
                if any(a <= y and x <= b for k in cluster for a, b in k.episodes for x, y in c.episodes):
                    cluster.append(c)
                    break
            else:
                clusters.append([c])
        for cluster in clusters:
            episodes = cluster[0].episodes if len(cluster) == 1 else merge_runs(r for k in cluster for r in k.episodes)
            facts.append(Fact(kind, "relation", episodes[0][0], episodes[-1][1], 10.0, True,
                              (tuple(cluster), episodes)))
    for c in found:
        if c.kind == "palm_palm":
            facts.append(Fact("palm_palm", "relation", c.start, c.episodes[-1][1], 10.0, True, ((c,), c.episodes)))
    return facts


def _relation_facts(codes: Mapping[str, Any], found: Sequence[Contact]) -> list[Fact]:
    rel = codes.get("two_hand_relationships", {})
    facts = _inter_facts(found)
    touching = {(c.parts[0][0], c.parts[0][1]) for c in found if c.kind == "tip_palm"}
    for evs in rel.get("palm_palm_distance", {}).values():
        for ev in evs:
            if "start_des" in ev and CONTACT_STATE not in (ev["start_des"], ev["end_des"]):
                closer = DISTANCE_LEVEL[ev["end_des"]] < DISTANCE_LEVEL[ev["start_des"]]
                v = SPEED_LEVEL[ev["v_des"]]
                facts.append(Fact("approach" if closer else "separate", "relation", ev["start"], ev["end"] - 1,
                                  1.0 + v, False, v))
    for key, evs in rel.get("finger_palm_distance", {}).items():
        tip, palm = (k.strip().split("_") for k in key.split(","))
        if (tip[0], tip[1]) in touching:
            continue  # contact overrides proximity (rule (a))
        for ev in evs:
            if ev.get("end_des") == "Near":
                facts.append(Fact("near", "relation", ev["start"], ev["end"] - 1, 0.8, False,
                                  (tip[0], tip[1], palm[0])))
    for axis, evs in rel.get("palm_palm_relative_position", {}).items():
        for ev in evs:
            if "start_des" in ev:
                a, b = _position_word(axis, ev["start_des"]), _position_word(axis, ev["end_des"])
                weight = 2.0 + 0.5 * SPEED_LEVEL[ev["v_des"]]
                facts.append(Fact("position", "relation", ev["start"], ev["end"] - 1, weight, False, (a, b)))
            elif ev.get("constant_des") and ev["end"] - ev["start"] >= 0.85 * codes["frame_count"]:
                word = _label_word(ev["constant_des"])
                if word != "ALIGNED" and not (axis == "left-right" and word == "RIGHT"):
                    facts.append(Fact("static", "relation", ev["start"], ev["end"] - 1, 0.6, False,
                                      _position_word(axis, ev["constant_des"])))
    return facts


def _label_word(label: str) -> str:
    return next((w for w in label.replace(".", "").split() if w.isupper() and len(w) > 1), "ALIGNED")


def _position_word(axis: str, label: str) -> str:
    word = _label_word(label)
    return _ALIGNED.get(axis, "level with") if word == "ALIGNED" else _POSITION[word]


def analyse(codes: Mapping[str, Any]) -> dict[str, list[Fact]]:
    """All facts of a clip: ``{"left": [...], "right": [...], "relation": [...]}``, each sorted by time."""
    frames = int(codes["frame_count"])
    found = contacts(codes)
    out: dict[str, list[Fact]] = {}
    for side in ("left", "right"):
        hand = codes[f"{side}_hand_events"]
        fingers, hyper = _finger_facts(side, hand, frames)
        out[side] = (_intra_fact(side, found) + (_hyper_fact(side, codes) if hyper else []) + fingers
                     + _spacing_facts(side, hand, frames) + _wrist_fact(side, hand))
    out["relation"] = _relation_facts(codes, found)
    for facts in out.values():
        facts.sort(key=lambda f: (f.start, f.end, f.kind))
    return out


# --------------------------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------------------------

class _Say:
    """Word choices for one variant: a seeded ``random.Random``, the detail level and the clip length."""

    def __init__(self, rng: random.Random, detail: int, frames: int) -> None:
        self.rng, self.detail, self.frames = rng, detail, frames
        self.random = rng.random

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.random() * len(options))]

    def chance(self, p: float) -> bool:
        return self.random() < p

    def speed(self, level: int, always: bool = False) -> str:
        if always or self.detail == 2 or (self.detail == 1 and level != 1) or (level == 2 and self.chance(0.5)):
            return " " + self.pick(_SPEED_WORDS[level])
        return ""

    def frames_phrase(self, start: int, end: int) -> str:
        if end <= start:
            return f"at frame {start}"
        return self.pick((f"over frames {start}\u2013{end}", f"from frame {start} to {end}",
                          f"between frames {start} and {end}", f"in frames {start}\u2013{end}"))

    def relative(self, start: int, end: int) -> str:
        t = self.frames
        if end - start + 1 >= 0.85 * t:
            return self.pick(("throughout", "over the whole clip", "across the entire clip", "for the whole sequence"))
        mid = (start + end + 1) / 2 / t
        if end - start + 1 >= 0.6 * t:
            return self.pick(("over most of the clip", "for most of the sequence"))
        if start <= 0.08 * t and end < 0.4 * t:
            return self.pick(("initially", "at the start", "at the beginning", "in the opening frames"))
        if mid < 0.36:
            return self.pick(("early on", "early in the clip", "in the first part of the clip",
                              "early in the sequence"))
        if mid < 0.64:
            return self.pick(("mid-sequence", "midway through", "in the middle of the clip", "halfway through"))
        if start >= 0.7 * t and end >= t - 3:
            return self.pick(("at the very end", "in the final frames", "at the end of the clip"))
        return self.pick(("towards the end", "later on", "late in the clip", "near the end"))

    def when(self, start: int, end: int) -> str:
        """A time phrase: relative (variants 1–4) or with frames (variant 5)."""
        if self.detail < 2:
            return self.relative(start, end)
        if self.chance(0.5):
            return f"{self.relative(start, end)} ({_episode(start, end)})"
        return self.frames_phrase(start, end)

    def count(self, n: int) -> str:
        return _COUNT.get(n, f"{n} times")

    def finger(self, finger: str) -> str:
        return self.pick(("pinky", "little")) if finger == "pinky" else finger

    def fingers(self, fingers: Sequence[str], noun: str = "finger") -> tuple[str, bool]:
        """``("middle, ring and pinky fingers", plural)`` without an article."""
        words = [self.finger(f) for f in fingers]
        if len(words) == 1:
            return (words[0] if words[0] == "thumb" and noun == "finger" else
                    "thumb tip" if words[0] == "thumb" else f"{words[0]} {noun}"), False
        listed = ", ".join(words[:-1]) + " and " + words[-1]
        return (f"{listed} {noun}" if fingers[0] == "thumb" and len(fingers) == 2 and noun == "finger"
                else f"{listed} {noun}s"), True


_VERBS_3RD = frozenset({"curls", "bends", "folds", "flexes", "straightens", "extends", "stretches", "uncurls",
                        "relaxes", "comes", "returns", "closes", "opens", "makes", "clenches", "spreads", "fans",
                        "brings", "draws", "touches", "meets", "pinches", "presses", "stays", "hyperextends", "is",
                        "has", "does", "goes", "moves", "half-closes", "taps", "remains"})


def plural(phrase: str) -> str:
    """Third-person singular verb phrase → plural ("curls fully and then straightens" → "curl fully and then
    straighten"): every verb of :data:`_VERBS_3RD` is changed."""
    special = {"is": "are", "has": "have", "does": "do", "goes": "go"}
    words = phrase.split(" ")
    for i, w in enumerate(words):
        if w not in _VERBS_3RD:
            continue
        if w in special:
            words[i] = special[w]
        elif w.endswith(("ches", "shes", "sses", "xes")):
            words[i] = w[:-2]
        else:
            words[i] = w[:-1]
    return " ".join(words)


_BEND = {2: ("curls fully", "bends fully", "folds all the way in", "curls in tightly"),
         1: ("bends partway", "bends slightly", "flexes partway", "curls a little")}
_STRAIGHTEN = {0: ("straightens fully", "extends fully", "straightens out", "stretches out straight"),
               1: ("straightens partly", "uncurls partway", "relaxes a little", "extends partway")}
_HAND_BEND = {2: ("closes into a fist", "curls into a fist", "makes a fist", "clenches its fingers into a fist"),
              1: ("half-closes", "curls its fingers partway", "closes partway")}
_HAND_STRAIGHTEN = {0: ("opens fully", "opens up", "opens flat", "extends all its fingers"),
                    1: ("opens partway", "uncurls its fingers partway", "relaxes its fingers a little")}


# --------------------------------------------------------------------------------------------------------------
# Hand phrases: a subject (or the hand itself) and a verb phrase
# --------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Phrase:
    """One clause of a hand text before it is placed in a sentence (``timed``: it already says when)."""

    subject: str | None  # without article; None: the hand itself
    plural: bool
    predicate: str  # third-person singular unless plural
    timed: bool = False
    article: str = "the"
    first: tuple[int, int] | None = None  # frames of the first and last things the predicate tells in order
    last: tuple[int, int] | None = None  # ("bends ... and then straightens ..."); None: the fact's frames


def _ends(moves: Sequence[Move]) -> dict[str, tuple[int, int]]:
    """``Phrase`` keywords for a predicate that tells ``moves`` in order."""
    return {"first": (moves[0].start, moves[0].end), "last": (moves[-1].start, moves[-1].end)}


def _moves_phrase(say: _Say, moves: Sequence[Move], whole_hand: bool) -> tuple[str, bool]:
    """Verb phrase of a finger group's (or the whole hand's) moves, and whether it carries its own times. Two
    moves are joined by "then" (they follow each other, see :func:`_timeline`)."""
    bend, straighten = (_HAND_BEND, _HAND_STRAIGHTEN) if whole_hand else (_BEND, _STRAIGHTEN)

    def one(m: Move) -> str:
        table = bend if m.kind == "bend" else straighten
        return say.pick(table.get(m.level) or table[2 if m.kind == "bend" else 0]) + say.speed(m.speed)

    if len(moves) == 1:
        return one(moves[0]), False
    if len(moves) == 2:
        a, b = moves
        first, second = one(a), one(b) + " again"
        link = say.pick((" and then ", " and afterwards ", ", then "))
        if say.detail > 0:
            when_a, when_b = say.when(a.start, a.end), say.when(b.start, b.end)
            if when_a != when_b:
                return f"{first} {when_a}{link}{second} {when_b}", True
        return f"{first}{link}{second} {say.when(a.start, b.end)}", True
    n = sum(m.kind == moves[0].kind for m in moves)
    speed = say.speed(max(m.speed for m in moves))
    if whole_hand:
        pair = "closes and opens" if moves[0].kind == "bend" else "opens and closes"
        return f"{pair} {say.count(n)}{speed}", False
    pair = say.pick(("bends and straightens", "curls and uncurls", "flexes and extends") if moves[0].kind == "bend"
                    else ("straightens and bends again", "extends and curls back"))
    return f"{pair} {say.count(n)}{speed}", False


def _phrases(say: _Say, fact: Fact, side: str) -> list[Phrase]:
    k = fact.kind
    if k == "fingers":
        fingers, moves = fact.data
        if set(LONG_FINGERS) <= set(fingers):
            phrase, timed = _moves_phrase(say, moves, True)
            return [Phrase(None, False, phrase, timed, **_ends(moves))]
        subject, many = say.fingers(fingers)
        phrase, timed = _moves_phrase(say, moves, False)
        return [Phrase(subject, many, plural(phrase) if many else phrase, timed, **_ends(moves))]
    if k == "spacing":
        pairs, moves = fact.data
        n = sum(m.kind == moves[0].kind for m in moves)
        speed = say.speed(max(m.speed for m in moves))
        if len(pairs) == 3:
            spread = say.pick(("spreads its fingers apart", "fans its fingers out", "spreads its fingers wide"))
            close = say.pick(("brings its fingers together", "draws its fingers together"))
            if len(moves) == 1:
                return [Phrase(None, False, (spread if moves[0].kind == "spread" else close) + speed)]
            if len(moves) == 2:
                again = (" and then brings them together again" if moves[0].kind == "spread"
                         else " and then spreads them apart again")
                return [Phrase(None, False, (spread if moves[0].kind == "spread" else close) + again + speed,
                               **_ends(moves))]
            both = "spreads and closes" if moves[0].kind == "spread" else "closes and spreads"
            return [Phrase(None, False, f"{both} its fingers {say.count(n)}{speed}")]
        fingers = sorted({f for i in pairs for f in SPACING_PAIRS[i]}, key=FINGER_ORDER.index)
        subject, _ = say.fingers(fingers)
        spread = say.pick(("spread apart", "move apart", "fan apart"))
        close = say.pick(("come together", "draw together", "close up"))
        first, second = (spread, close) if moves[0].kind == "spread" else (close, spread)
        if len(moves) == 1:
            return [Phrase(subject, True, first + speed)]
        tail = f" {say.count(n)}" if len(moves) > 2 else " again"
        return [Phrase(subject, True, f"{first} and {second}{tail}{speed}")]
    if k == "wrist":
        phrase, told = _wrist_phrase(say, fact.data)
        return [Phrase(None, False, phrase, say.detail == 2, **_ends(told))]
    if k == "hyper":
        return _hyper_clauses(say, fact.data)
    if k == "intra":
        return [_intra_clause(say, fact.data)]
    if k in ("tip_tip", "tip_palm", "palm_palm"):
        return [_hand_contact_clause(say, fact, side)]
    raise ValueError(f"no hand clause for fact kind {k!r}")


def _merge_wrist(moves: Iterable[Move]) -> list[Move]:
    out: list[Move] = []
    for m in moves:
        if out and out[-1].kind == m.kind:
            p = out[-1]
            out[-1] = Move(m.kind, 0, max(p.speed, m.speed), p.start, max(p.end, m.end))
        else:
            out.append(m)
    return out


_WRIST_VERBS = {0: ("drifts", "moves", "glides"), 1: ("moves", "shifts", "travels"), 2: ("sweeps", "moves", "darts")}
_WRIST_GERUNDS = {0: ("drifting", "moving", "gliding"), 1: ("moving", "shifting", "travelling"),
                  2: ("sweeping", "moving", "darting")}


def _wrist_phrase(say: _Say, moves: Sequence[Move]) -> tuple[str, list[Move]]:
    """Verb phrase of the wrist's moves, and the moves it tells (in order). A move that follows the one before
    is joined with "then"; one that overlaps it (the same axis in both, so not merged) with "while"."""
    moves = _merge_wrist(moves)
    axes = {_AXIS[d] for m in moves for d in m.kind}
    if len(moves) >= 3 and all(len(m.kind) == 1 for m in moves) and len(axes) == 1:
        n = (len(moves) + 1) // 2
        motion = {"x": "sways from side to side", "y": "moves back and forth",
                  "z": "moves up and down"}[next(iter(axes))]
        when = say.when(moves[0].start, moves[-1].end) if say.detail == 2 else ""
        whole = [Move(moves[0].kind, 0, 0, moves[0].start, max(m.end for m in moves))]
        return f"{motion} {say.count(n)}{say.speed(max(m.speed for m in moves))}{' ' + when if when else ''}", whole
    if say.detail < 2 and len(moves) > 2 + say.detail:
        keep = sorted(moves, key=lambda m: -(m.speed * 100 + m.end - m.start))[:2 + say.detail]
        moves = _merge_wrist(sorted(keep, key=lambda m: m.start))

    def one(m: Move, link: str) -> str:
        words = [say.pick(_DIRECTION_PHRASES[d]) for d in m.kind]
        where = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
        if link == "then":
            verb = say.pick(("then moves", "then goes", "then shifts"))
        elif link == "while":
            verb = "while " + say.pick(_WRIST_GERUNDS[m.speed])
        else:
            verb = say.pick(_WRIST_VERBS[m.speed])
        when = f" {say.frames_phrase(m.start, m.end)}" if say.detail == 2 else ""
        return f"{verb} {where}{say.speed(m.speed)}{when}"

    links = [""] + ["then" if follows((a.start, a.end), (b.start, b.end)) else "while" for a, b in zip(moves, moves[1:])]
    parts = [one(m, link) for m, link in zip(moves, links)]
    if len(parts) == 1:
        return parts[0], moves
    glue = [(", " if link == "while" else (" and " if i == len(parts) - 1 else ", ")) for i, link in
            enumerate(links)]
    return parts[0] + "".join(g + p for g, p in zip(glue[1:], parts[1:])), moves


def _hyper_clauses(say: _Say, entries: Sequence[tuple]) -> list[Phrase]:
    groups: dict[tuple, list[str]] = {}
    for finger, joints, upper_bent, _, _ in entries:
        groups.setdefault((joints, upper_bent, finger == "thumb"), []).append(finger)
    out = []
    for (joints, upper_bent, _), fingers in groups.items():
        subject, many = say.fingers(fingers)
        where = " and ".join(_JOINT[j] for j in joints)
        where_s = where + ("s" if many else "")
        if upper_bent:
            phrase = say.pick((f"hyperextends at the {where_s} with the upper joints bent",
                               f"is hyperextended at the {where_s} while the upper joints stay bent"))
        elif say.detail == 0:
            phrase = say.pick(("hyperextends", "bends back past straight (hyperextends)"))
        else:
            phrase = say.pick((f"hyperextends at the {where_s}",
                               f"bends back past straight at the {where_s} (hyperextension)"))
        start = min(e[3] for e in entries if e[0] in fingers)
        end = max(e[4] for e in entries if e[0] in fingers)
        out.append(Phrase(subject, many, (plural(phrase) if many else phrase) + " " + say.when(start, end), True))
    return out


def _intra_clause(say: _Say, data: Sequence[tuple[str, tuple[tuple[int, int], ...]]]) -> Phrase:
    frames = say.frames
    if len(data) == 1:
        finger, episodes = data[0]
        f = say.finger(finger)
        n = len(episodes)
        longest = max(b - a + 1 for a, b in episodes)
        brief = " briefly" if longest <= 2 and say.detail > 0 else ""
        if n == 1 and longest >= 0.5 * frames:
            options = [("thumb", False, f"stays in contact with the {f} fingertip"),
                       ("thumb and {f} finger", True, "stay pinched together")]
        elif n == 1:
            options = [("thumb", False, f"touches the {f} fingertip{brief}"),
                       ("thumb and {f} finger", True, f"pinch together{brief}"),
                       ("thumb tip", False, f"meets the {f} fingertip{brief}"),
                       (None, False, f"pinches its thumb and {f} finger together{brief}"),
                       ("{f} fingertip", False, f"touches the thumb{brief}")]
        else:
            cnt = say.count(n)
            options = [("thumb", False, f"touches the {f} fingertip {cnt}"),
                       ("thumb and {f} finger", True, f"pinch together {cnt}"),
                       (None, False, f"pinches its thumb and {f} finger together {cnt}")]
            if longest <= 4:
                options.append(("thumb", False, f"taps the {f} fingertip {cnt}"))
        subject, many, pred = options[int(say.random() * len(options))]
        subject = subject.format(f=f) if subject else None
        when = say.when(episodes[0][0], episodes[-1][1])
        if say.detail == 2 and n > 1:
            when = "(" + ", ".join(_episode(a, b) for a, b in episodes) + ")"
        return Phrase(subject, many, f"{pred} {when}", True)
    names = [say.finger(f) for f, _ in data]
    start, end = data[0][1][0][0], max(e[-1][1] for _, e in data)
    if say.detail == 2:
        listed = [f"the {n} fingertip ({', '.join(_episode(a, b) for a, b in eps)})"
                  for n, (_, eps) in zip(names, data)]
        return Phrase("thumb", False, "touches " + ", ".join(listed[:-1]) + " and " + listed[-1], True)
    spans = [(e[0][0], e[-1][1]) for _, e in data]
    in_turn = all(follows(a, b) for a, b in zip(spans, spans[1:]))  # "in turn" only when they follow each other
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    if len(names) == 2 and in_turn and say.chance(0.5):
        pred = f"touches the {names[0]} fingertip and later the {names[1]} fingertip"
        return Phrase("thumb", False, f"{pred} {say.when(start, end)}", True, first=spans[0], last=spans[1])
    if in_turn:
        pred = say.pick((f"touches the {listed} fingertips in turn",
                         f"meets the {listed} fingertips one after another"))
    else:
        pred = say.pick((f"touches the {listed} fingertips", f"meets the {listed} fingertips"))
    return Phrase("thumb", False, f"{pred} {say.when(start, end)}", True)


def _episode(a: int, b: int) -> str:
    return f"frame {a}" if a == b else f"frames {a}\u2013{b}"


def _tips(say: _Say, fingers: Sequence[str]) -> tuple[str, bool]:
    ordered = sorted(set(fingers), key=FINGER_ORDER.index)
    if ordered == ["thumb"]:
        return "thumb tip", False
    return say.fingers(ordered, "fingertip")


def _hand_contact_clause(say: _Say, fact: Fact, side: str) -> Phrase:
    """A two-hand contact told from one hand's text, naming the other hand only as "the other hand"."""
    group, episodes = fact.data
    when = say.when(episodes[0][0], episodes[-1][1])
    if len(episodes) > 1:
        when = say.count(len(episodes)) + " " + (
            "(" + ", ".join(_episode(a, b) for a, b in episodes) + ")" if say.detail == 2 else when)
    if fact.kind == "palm_palm":
        return Phrase("palm", False, say.pick(("presses against the other hand's palm",
                                               "touches the other hand's palm")) + f" {when}", True, "its")
    mine = sorted({p for c in group for s, p in c.parts[:1 if fact.kind == "tip_palm" else 2] if s == side},
                  key=FINGER_ORDER.index)
    theirs = sorted({p for c in group for s, p in c.parts if s != side and p != "palm"}, key=FINGER_ORDER.index)
    if fact.kind == "tip_palm" and not mine:
        tips, _ = _tips(say, theirs)
        return Phrase("palm", False, f"is touched by the other hand's {tips} {when}", True, "its")
    tips, many = _tips(say, mine)
    target = "palm" if fact.kind == "tip_palm" else _tips(say, theirs)[0]
    verb = "touch" if many else "touches"
    return Phrase(tips, many, f"{verb} the other hand's {target} {when}", True, "its")


# --------------------------------------------------------------------------------------------------------------
# Relation clauses (full sentences' bodies with their own subjects)
# --------------------------------------------------------------------------------------------------------------

def _relation_clause(say: _Say, fact: Fact) -> str:
    k = fact.kind
    if k in ("tip_tip", "tip_palm", "palm_palm"):
        group, episodes = fact.data
        n = len(episodes)
        longest = max(b - a + 1 for a, b in episodes)
        when = say.when(episodes[0][0], episodes[-1][1])
        if say.detail == 2 and n > 1:
            when = "(" + ", ".join(_episode(a, b) for a, b in episodes) + ")"
        times = f" {say.count(n)}" if n > 1 else ""
        if k == "palm_palm":
            if longest <= 4:
                body = say.pick(("the hands clap together", "the palms clap together")) + times
            elif n == 1 and longest >= 0.5 * say.frames:
                body = say.pick(("the palms stay pressed together", "the hands stay in palm-to-palm contact"))
            else:
                body = say.pick(("the palms press together", "the hands meet palm to palm",
                                 "the palms come into contact", "the hands press their palms together")) + times
            return f"{body} {when}"
        if k == "tip_palm":
            tip_side = group[0].parts[0][0]
            palm_side = group[0].parts[1][0]
            tips, many = _tips(say, [c.parts[0][1] for c in group])
            options = [f"the {tip_side} {tips} {'touch' if many else 'touches'} the {palm_side} palm",
                       f"the {tip_side} {tips} {'make' if many else 'makes'} contact with the {palm_side} palm",
                       f"the {tip_side} {tips} {'press' if many else 'presses'} against the {palm_side} palm"]
            if not many:
                options.append(f"the {tip_side} hand touches the {palm_side} palm with its {tips}")
            return f"{say.pick(options)}{times} {when}"
        lefts = [c.parts[0][1] for c in group]
        rights = [c.parts[1][1] for c in group]
        if len(group) == 1 and lefts == rights:
            tips, _ = _tips(say, lefts)
            body = say.pick((f"the two {tips}s meet", f"the {tips}s of both hands touch",
                             f"the left and right {tips}s touch"))
        else:
            ltips, lmany = _tips(say, lefts)
            rtips, _ = _tips(say, rights)
            body = say.pick((f"the left {ltips} {'touch' if lmany else 'touches'} the right {rtips}",
                             f"the left {ltips} and the right {rtips} make contact"))
        return f"{body}{times} {when}"
    if k in ("approach", "separate"):
        speed = say.speed(fact.data)
        body = say.pick(("the hands approach each other", "the hands move towards each other",
                         "the hands draw closer") if k == "approach" else
                        ("the hands move apart", "the hands separate", "the hands pull apart"))
        return f"{body}{speed} {say.when(fact.start, fact.end)}"
    if k == "near":
        tip_side, finger, palm_side = fact.data
        tips, _ = _tips(say, [finger])
        return f"the {tip_side} {tips} comes close to the {palm_side} palm {say.when(fact.start, fact.end)}"
    if k == "position":
        a, b = fact.data
        when = say.when(fact.start, fact.end)
        return say.pick((f"the right hand ends up {b} the left hand after being {a} it {when}",
                         f"{when}, the right hand, at first {a} the left hand, ends up {b} it",
                         f"the right hand ends up {b} the left hand {when}"))
    if k == "static":
        return say.pick((f"the right hand stays {fact.data} the left hand throughout",
                         f"the right hand remains {fact.data} the left hand for the whole clip"))
    raise ValueError(f"no relation clause for fact kind {k!r}")


_INDEPENDENT = ("the two hands act independently and stay apart", "the hands move independently and never touch",
                "there is no interaction between the hands, which stay apart",
                "each hand acts on its own and the hands stay well apart",
                "the hands work separately without touching")


# --------------------------------------------------------------------------------------------------------------
# Texts
# --------------------------------------------------------------------------------------------------------------

def _select(facts: Sequence[Fact], budget: int) -> list[Fact]:
    optional = sorted((f for f in facts if not f.must), key=lambda f: -f.weight)[:budget]
    keep = {id(f) for f in optional}
    return [f for f in facts if f.must or id(f) in keep]


def _capital(s: str) -> str:
    return s[:1].upper() + s[1:]


def _still_text(say: _Say, side: str, codes: Mapping[str, Any], name: str) -> str:
    flex = codes[f"{side}_hand_events"].get("finger_flexing", {})
    levels = [FLEX_LEVEL.get(ev.get("constant_des", ""), 0) for f in LONG_FINGERS for j in ("mcp", "pip")
              for ev in flex.get(f"{f}_{j}", [])[:1]]
    mean = sum(levels) / max(len(levels), 1)
    pose = ("with its fingers extended" if mean < 0.5 else "with its fingers partly bent" if mean < 1.5
            else "with its fingers curled")
    still = say.pick(("holds still", "stays still", "remains motionless", "does not move", "keeps still"))
    when = say.pick(("throughout", "for the whole clip")) if say.detail < 2 else f"for all {say.frames} frames"
    if say.detail == 0 and say.chance(0.5):
        return f"{name} {still} {when}."
    return f"{name} {still} {when}, {pose}."


def _hand_text(say: _Say, side: str, facts: list[Fact], codes: Mapping[str, Any]) -> str:
    movement = [f for f in facts if f.kind in ("fingers", "spacing", "wrist", "hyper")]
    name = say.pick((f"the {side} hand", f"the {side} hand", f"the {side} hand", "the hand"))
    if not facts:
        return _still_text(say, side, codes, _capital(name))
    clauses: list[tuple[Phrase, Fact]] = [(c, f) for f in facts for c in _phrases(say, f, side)]
    plan = int(say.random() * 3)
    pieces: list[tuple[str, Phrase | None, Fact | None]] = []
    hand_named = False
    if not movement and say.chance(0.7):
        pieces.append((f"{name} {say.pick(('keeps its overall pose', 'barely changes its pose'))}", None, None))
        hand_named = True
    for i, (clause, fact) in enumerate(clauses):
        when = "" if clause.timed else say.when(fact.start, fact.end)
        front = plan == 1 or (plan == 2 and say.chance(0.4))
        if clause.subject is None:
            subject = say.pick(("it", "the hand")) if hand_named else name
            hand_named = True
        elif not hand_named and say.chance(0.6):
            subject = say.pick((f"the {side} hand's {clause.subject}", f"on the {side} hand, the {clause.subject}",
                                f"the {clause.subject} of the {side} hand"))
            hand_named = True
        else:
            article = clause.article if clause.article != "the" else say.pick(("the", "its") if i else ("the",))
            subject = f"{article} {clause.subject}"
        body = f"{subject} {clause.predicate}"
        if when and front:
            body = f"{when}, {body}"
        elif when:
            body = f"{body} {when}"
        pieces.append((body, clause, fact))
    return _join(say, pieces, plan)


def _link(say: _Say, a: tuple[str, Phrase | None, Fact | None], b: tuple[str, Phrase | None, Fact | None]) -> str:
    """The connector between two clauses, from their frames: "then" when all of ``b`` follows all of ``a``
    (:func:`~handx.annotate.verify.follows`), "while" when what ``a`` tells last overlaps what ``b`` tells
    first, else a new sentence."""
    (_, pa, fa), (_, pb, fb) = a, b
    if fa is None or fb is None:  # "the hand keeps its overall pose": throughout
        return say.pick((", while ", "; meanwhile, "))
    if follows((fa.start, fa.end), (fb.start, fb.end)):
        return say.pick((", then ", ", and then ", ", after which "))
    last = pa.last if pa is not None and pa.last else (fa.start, fa.end)
    first = pb.first if pb is not None and pb.first else (fb.start, fb.end)
    if concurrent(last, first, tolerance=0):
        return say.pick((", while ", "; meanwhile, ", ", and at the same time "))
    return ". "


def _join(say: _Say, pieces: Sequence[tuple[str, Phrase | None, Fact | None]], plan: int) -> str:
    """Sentences from clause bodies: pairs linked by a connector that fits their timing (plan 0, see
    :func:`_link`), one clause per sentence (plan 1), or one sentence with semicolons (plan 2)."""
    if plan == 0 and len(pieces) > 1:
        sentences, i = [], 0
        while i < len(pieces):
            if i + 1 < len(pieces):
                link = _link(say, pieces[i], pieces[i + 1])
                b = pieces[i + 1][0]
                sentences.append(pieces[i][0] + link + (_capital(b) if link == ". " else b))
                i += 2
            else:
                sentences.append(pieces[i][0])
                i += 1
        return " ".join(_capital(s) + "." for s in sentences)
    if plan == 2 and len(pieces) > 1:
        return _capital("; ".join(p for p, _, _ in pieces)) + "."
    return " ".join(_capital(p) + "." for p, _, _ in pieces)


def _relation_text(say: _Say, facts: list[Fact]) -> str:
    contact_facts = [f for f in facts if f.must]
    others = [f for f in facts if not f.must and f.kind != "static"]
    static = [f for f in facts if f.kind == "static"]
    if not contact_facts and not others:
        text = say.pick(_INDEPENDENT)
        if static and say.detail > 0:
            text += "; " + _relation_clause(say, static[0])
        elif say.detail == 2:
            text += f" for all {say.frames} frames"
        return _capital(text) + "."
    extra = (1, 2, 3)[say.detail]  # optional facts besides the contacts; concise variants count contacts in
    if say.detail == 0:
        extra = max(0, extra - len(contact_facts))
    chosen = contact_facts + sorted(others, key=lambda f: -f.weight)[:extra]
    if say.detail > 0:
        chosen += static[:1]
        chosen.sort(key=lambda f: (f.kind == "static", f.start))  # in time order; concise: contacts first
    pieces = [_relation_clause(say, f) for f in chosen]
    if say.chance(0.5) and len(pieces) > 1:
        return _capital("; ".join(pieces)) + "."
    return " ".join(_capital(p) + "." for p in pieces)


def write_descriptions(codes: Mapping[str, Any], rng: random.Random) -> tuple[Description, ...]:
    """Five descriptions (concise → detailed) of one clip's motion codes, word choices drawn from ``rng``."""
    frames = int(codes["frame_count"])
    facts = analyse(codes)
    contact_facts = [f for f in facts["relation"] if f.must]
    out = []
    for detail, budget in VARIANTS:
        while True:
            say = _Say(rng, detail, frames)
            texts = {}
            for side in ("left", "right"):
                own = _select(facts[side], budget)
                if detail > 0:
                    own += [f for f in contact_facts if any(s == side for c in f.data[0] for s, _ in c.parts)]
                    own.sort(key=lambda f: (f.start, f.end))
                texts[side] = _hand_text(say, side, own, codes)
            texts["relation"] = _relation_text(say, facts["relation"])
            if max(map(len, texts.values())) <= MAX_TEXT_CHARS or budget == 0:
                break
            budget -= 1
        out.append(Description(texts["left"], texts["right"], texts["relation"]))
    return tuple(out)


class TemplateWriter:
    """Offline description writer (reference §3 rules with a seeded grammar); see the module docstring."""

    name = "template"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def describe(self, codes: Mapping[str, Any], *, key: str) -> tuple[Description, ...]:
        """Five descriptions of one clip; ``key`` (normally the codes' content hash) seeds the word choices."""
        return write_descriptions(codes, random.Random(f"{self.seed}:{key}"))

    def write_many(self, requests: Iterable[WriteRequest]) -> Iterator[WriteResult]:
        """One result per request, in order; a clip whose codes cannot be read gets a result with ``error``."""
        for request in requests:
            try:
                yield WriteResult(request.clip_id, self.describe(request.codes, key=request.content_hash))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                logger.warning("template writer: clip %s skipped: %s: %s", request.clip_id, type(exc).__name__, exc)
                yield WriteResult(request.clip_id, error=f"{type(exc).__name__}: {exc}")
