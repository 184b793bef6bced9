"""Faithfulness checks of a description against its motion codes (reference §3, rules (a) and the left/right split).

``verify(codes, description)`` reads the three English texts of one :class:`~handx.annotate.base.Description`
with a small fixed vocabulary and compares what they claim with the motion codes (reference §2.5):

* ``missing_contact``: a contact in the codes is not mentioned. Thumb–finger contacts of one hand must appear in
  that hand's text or in the relation text; two-hand contacts (tip–tip, tip on palm, palm on palm) in the
  relation text, or in a hand text that says it touches the other hand. Rule (a) of reference §3.
* ``false_contact``: a sentence claims a contact that did not happen ("the thumb and ring finger touch" with no
  such contact, "the palms press together" with no palm contact).
* ``wrong_hand``: the left text describes the right hand as the actor ("the right hand closes ..."), or claims
  an action that only the other hand performed: a thumb–finger contact, a two-hand contact with the roles
  swapped, a finger flexion or hyperextension of a finger that only moves on the other hand, a wrist
  translation in a direction only the other hand takes, or holding still when this hand moves and only the
  other hand is still.
  Likewise for the right text.
* ``missing_hyperextension``: a hand hyperextends a finger joint ("Hyper extend" flexion state) and neither its
  text nor the relation text says so (rule (a) of reference §3).
* ``wrong_order``: a text states an order that the events' frames contradict (rule (b)): "A, then B" (also
  "A and then / and afterwards / , after which / and later B", "A before B", "B after A", "after A, B", a
  sentence opening with "Then"/"Afterwards"/"Next") needs some event B can refer to to start no earlier than
  :data:`SEQUENCE_TOLERANCE` (2) frames before some event A can refer to ends; "A while B" (also "meanwhile",
  "at the same time", "simultaneously", ", as the/its/it ...", "while A, B") needs the frame hulls of their
  events to overlap or lie within the tolerance. A stretch of text refers to the events of its kind (contact
  words → contacts of the fingers it names; hyperextension; wrist verbs with directions → wrist translations
  in those directions; spread/apart/together → finger spacing; bend/curl/fist vs straighten/extend/open →
  flexion of the fingers it names, or of the fingers of the stretch before when it has no subject; in the
  relation text, approach/apart → palm distance changes). When a side refers to no event, the frame ranges the
  text states ("frames 3–20", "frame 7", "between frames 3 and 20") are compared instead.

Vocabulary (lower-cased tokens):

* fingers: ``thumb``; ``index``, ``forefinger``, ``pointer``; ``middle`` (not in "middle of"); ``ring`` (not in
  "ring of"); ``pinky``, ``pinkie``, ``little finger``, ``small finger``; generic ``fingertip(s)``/``tip(s)``;
  ``palm(s)``.
* hands and sides: ``left``/``right`` count as a side only directly before a body word (hand, thumb, finger
  names, palm, fingertip, wrist) or in "left and right ..."; "of the left hand" / "of both hands" after a noun
  phrase; ``other`` (the other hand), ``its``/``own`` (the text's hand), ``both``/``each``/``their``/``two``
  (both hands). A side marker covers the whole noun-phrase list after it ("the left index and middle
  fingertips"). ``hands``, ``each other``, ``one another`` refer to both hands without naming a part.
* contact words (claims): touch, contact, pinch, tap, meet, press, clap, brush in any inflection. Weaker words
  (jab, onto, against, land/rest on, and "palms ... together") count as mentioning a contact but are never
  taken as claims.
* negation: a contact word preceded in its clause by not, no, never, without, nor, neither, n't forms, or
  directly by almost/nearly, is not a claim ("the hands never touch", "without contact").
* clauses: sentences split at ``. ; : ! ?``, then at ``, then``, ``, while``, ``, but``, ``, and`` + a new
  subject or time phrase, and at bare ``while``/``whereas``/``but``/``meanwhile``; a verb-less fragment
  ("..., then the middle fingertip") is joined back to the previous clause.
* finger flexion verbs: bend, curl, straighten, extend, flex, fold, unfold, uncurl (present forms);
  hyperextension: hyperextend(s/ed/ing), "bent back", "bends back", "past straight".
* wrist translation: move, shift, travel, drift, glide, slide, sweep, swing, sway, reach, dart, pull, push,
  rise, lift, raise, climb, lower, drop, sink, descend, with left(ward), right(ward), forward, backward,
  "towards the body", up(ward), down(ward).

Limits: the parser is a bag of clause-level keywords, not a grammar. It reads one clause at a time, so a claim
split over several sentences ("The thumb moves to the index finger. They touch.") is taken as a generic claim;
"but not the middle finger" style exclusions are dropped; "hands" without a named part counts as any two-hand
contact; relative time words ("early on", "towards the end") are not checked, and stated frames only where a
side refers to no event; wrist, flexion and stillness claims are only used to detect the wrong hand, never
reported as false on their own. The temporal check is lenient by design: a stretch refers to every event of its
kind and fingers, so an order is flagged only when no reading of it fits; it does not see the order of clauses
without a connective, "later on" at a sentence's start (a time phrase, not a link), "when"/"until"/"once", nor
the order of events inside one stretch ("bends and straightens twice").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from handx.annotate.base import Description

LONG_FINGERS = ("index", "middle", "ring", "pinky")
FINGER_NAMES = ("thumb", *LONG_FINGERS)
SIDES = ("left", "right")
KINDS = ("missing_contact", "false_contact", "wrong_hand", "missing_hyperextension", "wrong_order")
HYPER = "Hyper extend"
CONTACT = "Contact"
_TEXT_FIELDS = {"left": "left", "right": "right", "relation": "two_hands_relation"}
_OTHER = {"left": "right", "right": "left"}


@dataclasses.dataclass(frozen=True)
class Problem:
    """One faithfulness problem: ``kind`` is one of :data:`KINDS`; ``text`` the field it concerns."""

    kind: str
    message: str
    text: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


# --------------------------------------------------------------------------------------------------------------
# What happened: contacts, hyperextension, movement, read from the codes (reference §2.5)
# --------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Contact:
    """One contact of the codes.

    ``kind``: ``intra`` (thumb tip on another tip of one hand), ``tip_tip`` (a left tip on a right tip),
    ``tip_palm`` (a tip on the other hand's palm) or ``palm_palm``. ``parts``: ``(side, part)`` pairs, part a
    finger name or ``"palm"``. ``episodes``: inclusive frame ranges of contact, in time order.
    """

    kind: str
    parts: tuple[tuple[str, str], ...]
    episodes: tuple[tuple[int, int], ...]

    @property
    def start(self) -> int:
        return self.episodes[0][0]

    @property
    def side(self) -> str:
        """The hand that acts: the hand of an intra contact, the tip's hand of a tip–palm contact, else both."""
        return self.parts[0][0] if self.kind in ("intra", "tip_palm") else "both"

    def describe(self) -> str:
        names = " and ".join(f"{s} {p}" if p == "palm" else f"{s} {p} tip" for s, p in self.parts)
        frames = ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in self.episodes)
        return f"{self.kind.replace('_', '-')} contact {names} (frames {frames})"


def merge_runs(runs: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, merged inclusive frame ranges (touching ranges join)."""
    out: list[list[int]] = []
    for a, b in sorted(runs):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def state_runs(events: Sequence[Mapping[str, Any]], label: str, frame_count: int) -> tuple[tuple[int, int], ...]:
    """Inclusive frame ranges in which a state-banded signal is in ``label`` (e.g. ``"Contact"``).

    A change event that ends in the state opens a run at its last frame; the next event that starts in the state
    closes it at its first frame; a run still open at the end lasts to the clip's last frame. Constant events
    give their whole range.
    """
    runs: list[tuple[int, int]] = []
    open_at: int | None = None
    for ev in sorted(events, key=lambda e: (e["start"], e["end"])):
        if ev.get("constant_des") == label:
            runs.append((ev["start"], max(ev["start"], ev["end"] - 1)))
            continue
        if ev.get("start_des") == label:
            runs.append((ev["start"] if open_at is None else open_at, ev["start"]))
            open_at = None
        if ev.get("end_des") == label:
            open_at = max(ev["start"], ev["end"] - 1)
    if open_at is not None:
        runs.append((open_at, max(open_at, frame_count - 1)))
    return merge_runs(runs)


def contacts(codes: Mapping[str, Any]) -> list[Contact]:
    """Every contact in the codes, in time order (intra, tip–tip, tip–palm and palm–palm)."""
    t = int(codes.get("frame_count", 0))
    out: list[Contact] = []
    for side in SIDES:
        for key, evs in codes[f"{side}_hand_events"].get("finger_tip_contact", {}).items():
            runs = merge_runs((e["start"], e["end"]) for e in evs if e.get("constant_des") == CONTACT)
            if runs:
                finger = key.split("_")[0]
                out.append(Contact("intra", ((side, "thumb"), (side, finger)), runs))
    rel = codes.get("two_hand_relationships", {})
    for key, evs in rel.get("finger_tip_contact", {}).items():
        runs = merge_runs((e["start"], e["end"]) for e in evs if e.get("constant_des") == CONTACT)
        if runs:
            a, b = (k.strip().split("_") for k in key.split(","))
            out.append(Contact("tip_tip", ((a[0], a[1]), (b[0], b[1])), runs))
    for key, evs in rel.get("finger_palm_distance", {}).items():
        if not any(CONTACT in (e.get("constant_des"), e.get("start_des"), e.get("end_des")) for e in evs):
            continue
        runs = state_runs(evs, CONTACT, t)
        if runs:
            tip, palm = (k.strip().split("_") for k in key.split(","))
            out.append(Contact("tip_palm", ((tip[0], tip[1]), (palm[0], "palm")), runs))
    for evs in rel.get("palm_palm_distance", {}).values():
        runs = state_runs(evs, CONTACT, t)
        if runs:
            out.append(Contact("palm_palm", (("left", "palm"), ("right", "palm")), runs))
    out.sort(key=lambda c: (c.start, c.kind))
    return out


def hyperextensions(codes: Mapping[str, Any], side: str) -> dict[str, list[tuple[str, int, int]]]:
    """Flexion events of one hand into, out of or in "Hyper extend": finger → ``[(joint, start, end_exclusive)]``."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    for key, evs in codes[f"{side}_hand_events"].get("finger_flexing", {}).items():
        finger, joint = key.split("_")
        for ev in evs:
            if HYPER in (ev.get("start_des"), ev.get("end_des"), ev.get("constant_des")):
                out.setdefault(finger, []).append((joint, ev["start"], ev["end"]))
    return out


def flexing_fingers(codes: Mapping[str, Any], side: str) -> set[str]:
    """Fingers of one hand with at least one change of flexion state."""
    flex = codes[f"{side}_hand_events"].get("finger_flexing", {})
    return {key.split("_")[0] for key, evs in flex.items() if any("start_des" in e for e in evs)}


def wrist_directions(codes: Mapping[str, Any], side: str) -> set[str]:
    """Directions of the wrist translations of one hand (``"left-to-right"``, ``"down-to-up"``, ...)."""
    return {e["direction"] for evs in codes[f"{side}_hand_events"].get("wrist_trajectory", {}).values()
            for e in evs}


def moves(codes: Mapping[str, Any], side: str) -> bool:
    """True when a hand changes a flexion or spacing state or translates its wrist."""
    hand = codes[f"{side}_hand_events"]
    changes = any("start_des" in e for group in ("finger_flexing", "finger_spacing")
                  for evs in hand.get(group, {}).values() for e in evs)
    return changes or any(hand.get("wrist_trajectory", {}).values())


def is_still(codes: Mapping[str, Any], side: str) -> bool:
    """True when a hand neither moves (:func:`moves`) nor makes a thumb contact."""
    return not moves(codes, side) and not any(codes[f"{side}_hand_events"].get("finger_tip_contact", {}).values())


# --------------------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------------------

def _forms(*stems: str) -> frozenset[str]:
    out: set[str] = set()
    for stem in stems:
        base, _, extra = stem.partition("|")
        out.add(base)
        out.update(extra.split(",") if extra else ())
    return frozenset(out)


CONTACT_WORDS = _forms("touch|touches,touching,touched", "contact|contacts,contacting,contacted",
                       "pinch|pinches,pinching,pinched", "tap|taps,tapping,tapped", "meet|meets,meeting,met",
                       "press|presses,pressing,pressed", "clap|claps,clapping,clapped",
                       "brush|brushes,brushing,brushed")
WEAK_CONTACT_WORDS = _forms("jab|jabs,jabbing,jabbed", "onto", "against")
_WEAK_ON = _forms("land|lands,landing,landed", "rest|rests,resting,rested")
NEGATIONS = frozenset({"not", "no", "never", "without", "nor", "neither", "doesn't", "don't", "isn't", "aren't",
                       "didn't", "cannot", "can't", "won't", "nothing", "none"})
_NEAR_MISS = frozenset({"almost", "nearly"})
FLEX_VERBS = _forms("bend|bends,bending", "curl|curls,curling", "straighten|straightens,straightening",
                    "extend|extends,extending", "flex|flexes,flexing", "fold|folds,folding",
                    "unfold|unfolds,unfolding", "uncurl|uncurls,uncurling")
HYPER_RE = re.compile(r"hyper-?extend|hyperextension|hyper-extension|\bben(?:t|ds?|ding) back|past straight")
_UP_VERBS = _forms("rise|rises,rising,rose", "lift|lifts,lifting", "raise|raises,raising", "climb|climbs,climbing")
_DOWN_VERBS = _forms("lower|lowers,lowering", "drop|drops,dropping", "sink|sinks,sinking",
                     "descend|descends,descending")
WRIST_VERBS = _forms("move|moves,moving", "shift|shifts,shifting", "travel|travels,travelling,traveling",
                     "drift|drifts,drifting", "glide|glides,gliding", "slide|slides,sliding",
                     "sweep|sweeps,sweeping", "swing|swings,swinging", "sway|sways,swaying",
                     "reach|reaches,reaching", "dart|darts,darting", "pull|pulls,pulling", "push|pushes,pushing",
                     "go|goes,going", "come|comes,coming") | _UP_VERBS | _DOWN_VERBS
STILL_WORDS = frozenset({"still", "static", "motionless", "stationary", "immobile"})
_AUX_VERBS = _forms("is", "are", "stay|stays,staying", "remain|remains,remaining", "hold|holds,holding",
                    "keep|keeps,keeping", "make|makes,making", "bring|brings,bringing", "do|does", "has", "have",
                    "open|opens,opening", "close|closes,closing", "spread|spreads,spreading", "point|points",
                    "return|returns", "separate|separates", "approach|approaches", "part|parts", "end|ends",
                    "hyperextend|hyperextends,hyperextending", "release|releases", "wave|waves", "clench|clenches")
VERBS = CONTACT_WORDS | WEAK_CONTACT_WORDS | FLEX_VERBS | WRIST_VERBS | _AUX_VERBS
_FINGER_TOKENS = {"thumb": "thumb", "thumbs": "thumb", "index": "index", "forefinger": "index",
                  "forefingers": "index", "pointer": "index", "middle": "middle", "ring": "ring", "pinky": "pinky",
                  "pinkie": "pinky", "pinkies": "pinky"}
_FINGER_NOUNS = frozenset({"finger", "fingers", "fingertip", "fingertips", "tip", "tips", "finger's"})
_TIP_NOUNS = frozenset({"fingertip", "fingertips", "tip", "tips"})
_BODY = frozenset({"hand", "hands", "hand's", "palm", "palms", "wrist", "thumb", "thumbs", "index", "middle", "ring",
                   "pinky", "pinkie", "little", "small", "forefinger", "pointer", "fingertip", "fingertips",
                   "finger", "fingers", "tip", "tips"})
_NP = _BODY | {",", "and", "the", "a", "its", "their", "of", "each", "both", "two", "four", "other", "'s", "own"}
_SUBJECT_START = frozenset({"the", "its", "it", "both", "each", "then", "later", "finally", "meanwhile", "afterwards",
                            "next", "towards", "toward", "early", "at", "in", "over", "from", "between", "during",
                            "they", "this", "mid", "midway", "near", "throughout", "halfway"})
_DIRECTION_WORDS = {"leftward": "right-to-left", "leftwards": "right-to-left", "rightward": "left-to-right",
                    "rightwards": "left-to-right", "forward": "back-to-front", "forwards": "back-to-front",
                    "backward": "front-to-back", "backwards": "front-to-back", "up": "down-to-up",
                    "upward": "down-to-up", "upwards": "down-to-up", "down": "up-to-down",
                    "downward": "up-to-down", "downwards": "up-to-down"}
_NOT_DIRECTION_AFTER_RIGHT = frozenset({"away", "after", "before", "at", "from", "on", "when", "as", "then", "there",
                                        "now", "into", "until", "of", "in"})
#: Words a verb-less continuation ("..., then the middle fingertip at frame 33") may consist of.
_FRAGMENT = _NP | {"then", "later", "again", "also", "afterwards", "finally", "next", "too", "once", "twice",
                   "times", "three", "five", "frame", "frames", "to", "from", "between", "at", "in", "on", "over",
                   "around", "during", "briefly", "with", "early", "mid", "sequence", "clip", "start", "end",
                   "beginning", "first", "second", "last", "final", "instead", "one", "after", "another", "by",
                   "turn", "-", "\u2013", "(", ")", "'", "until", "near", "towards", "toward", "midway", "halfway",
                   "through", "whole", "entire", "shortly", "moment", "moments"}
_TOKEN_RE = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+|[^\sa-z\d]")
_BOUNDARY = frozenset({".", ";", ":", "!", "?"})


# --------------------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Clause:
    """One clause of a text: its tokens and the parts it names, each ``(side, part)``.

    ``side`` is ``left``/``right``/``both`` or None (not said; in a hand text it is that hand). ``part`` is a
    finger name, ``palm`` or ``tip`` (a fingertip without a finger name).
    """

    tokens: tuple[str, ...]
    parts: tuple[tuple[str | None, str], ...]
    side_marks: tuple[tuple[int, str], ...]  # (token index, side) of explicit left/right side markers

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def first(self, words: frozenset[str]) -> int | None:
        return next((i for i, t in enumerate(self.tokens) if t in words), None)


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text.lower().replace("\u2019", "'"))


def _is_verb(tok: str) -> bool:
    return tok in VERBS


def split_clauses(text: str) -> list[list[str]]:
    """Tokens of each clause (see the module docstring for the rules)."""
    tokens = tokenize(text)
    clauses: list[list[str]] = []
    cur: list[str] = []

    def close() -> None:
        if cur:
            clauses.append(list(cur))
            cur.clear()

    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        nxt2 = tokens[i + 2] if i + 2 < len(tokens) else ""
        if tok in _BOUNDARY:
            close()
            continue
        if tok == "," and (nxt in ("then", "while", "whereas", "but", "meanwhile", "after", "before", "afterwards",
                                   "later", "finally", "next")
                           or (nxt == "and" and nxt2 in _SUBJECT_START)):
            close()
            continue
        if tok in ("while", "whereas", "but", "meanwhile") and cur:
            close()
        cur.append(tok)
    close()
    merged: list[list[str]] = []
    for clause in clauses:
        fragment = all(t in _FRAGMENT or t.isdigit() for t in clause) and any(
            t in _FINGER_TOKENS or t in _TIP_NOUNS for t in clause)
        if fragment and merged and any(t in CONTACT_WORDS | WEAK_CONTACT_WORDS for t in merged[-1]):
            merged[-1].extend(clause)
        else:
            merged.append(clause)
    return merged


def parse_clause(tokens: Sequence[str], own: str | None) -> Clause:
    """Find the parts a clause names and resolve their sides; ``own`` is the text's hand (None: relation)."""
    parts: list[tuple[str | None, str]] = []
    marks: list[tuple[int, str]] = []
    marker: str | None = None
    np_start = 0  # index into parts where the current noun phrase began
    n = len(tokens)
    i = 0
    while i < n:
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < n else ""
        if tok not in _NP and tok not in ("left", "right"):
            marker, np_start = None, len(parts)
            i += 1
            continue
        if tok in ("left", "right"):
            if nxt == "and" and i + 2 < n and tokens[i + 2] in ("left", "right") and tokens[i + 2] != tok:
                marker, np_start = "both", len(parts)
                marks.append((i, "both"))
                i += 3
                continue
            if nxt in _BODY:
                marker, np_start = tok, len(parts)
                marks.append((i, tok))
            else:
                marker, np_start = None, len(parts)
            i += 1
            continue
        if tok == "other" or (tok == "each" and nxt == "other"):
            if tok == "each":
                marker = "both"
                i += 2
                continue
            marker = _OTHER[own] if own else None
            np_start = len(parts)
        elif tok in ("its", "own") and own:
            marker, np_start = own, len(parts)
        elif tok in ("both", "their", "two") and (nxt in _BODY or nxt in _FINGER_TOKENS):
            marker, np_start = "both", len(parts)
        elif tok == "of":
            # postfix owner: "... of the left hand", "... of both hands", "... of the other hand"
            rest = [t for t in tokens[i + 1:i + 4] if t != "the"]
            owner = None
            if len(rest) >= 2 and rest[1] in ("hand", "hands", "hand's"):
                owner = {"left": "left", "right": "right", "both": "both", "each": "both", "two": "both",
                         "other": _OTHER[own] if own else None}.get(rest[0])
            if owner:
                parts[np_start:] = [(owner if s is None else s, p) for s, p in parts[np_start:]]
        finger = _FINGER_TOKENS.get(tok)
        if tok in ("little", "small") and (i == 0 or tokens[i - 1] != "a"):
            j = i + 1
            while j < n and tokens[j] in _NP and tokens[j] not in _FINGER_NOUNS:
                j += 1
            if j < n and tokens[j] in _FINGER_NOUNS:
                finger = "pinky"
        if tok in ("middle", "ring") and nxt == "of":
            finger = None
        if finger:
            parts.append((marker, finger))
        elif tok in ("palm", "palms"):
            parts.append((marker, "palm"))
        elif tok in _TIP_NOUNS and not any(p in FINGER_NAMES for _, p in parts[np_start:]):
            parts.append((marker, "tip"))
        i += 1
    return Clause(tuple(tokens), tuple(parts), tuple(marks))


# --------------------------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Claim:
    """A (non-negated) contact statement of one clause, with the sides resolved for its text."""

    text: str  # "left" | "right" | "relation"
    clause: str
    parts: tuple[tuple[str | None, str], ...]
    strong: bool  # a claim (True) or only a mention (weak words)
    hands: bool  # names the hands / each other / the other hand without a part
    palm_pair: bool  # palm on palm: clap, "palms", two palms
    pinch: bool

    @property
    def fingers(self) -> list[tuple[str | None, str]]:
        return [(s, p) for s, p in self.parts if p in FINGER_NAMES]

    @property
    def palms(self) -> list[str | None]:
        return [s for s, p in self.parts if p == "palm"]

    @property
    def inter(self) -> bool:
        """Is this about the two hands touching (rather than a thumb contact within one hand)?"""
        if self.hands or self.palm_pair or self.palms:
            return True
        sides = {s for s, _ in self.parts if s is not None}
        if self.text != "relation":
            return bool(sides - {self.text})
        return len(sides) > 1 or "both" in sides or not any(p == "thumb" for _, p in self.parts)


def _negated(clause: Clause, at: int) -> bool:
    before = clause.tokens[:at]
    return any(t in NEGATIONS for t in before) or any(t in _NEAR_MISS for t in before[-2:])


def claims(text: str, which: str) -> list[Claim]:
    """The contact statements of one text; ``which`` is ``left``, ``right`` or ``relation``."""
    own = which if which in SIDES else None
    out: list[Claim] = []
    for tokens in split_clauses(text):
        clause = parse_clause(tokens, own)
        strong_at = clause.first(CONTACT_WORDS)
        weak_at = clause.first(WEAK_CONTACT_WORDS)
        if weak_at is None:
            for i, t in enumerate(tokens[:-1]):
                if t in _WEAK_ON and tokens[i + 1] in ("on", "onto"):
                    weak_at = i
                    break
        together = "palms" in tokens and "together" in tokens
        if weak_at is None and together:
            weak_at = tokens.index("together")
        at = strong_at if strong_at is not None else weak_at
        if at is None or _negated(clause, at):
            continue
        parts = tuple((own if s is None and own else s, p) for s, p in clause.parts)
        hands = any(t in ("hands", "other") for t in tokens) or "one another" in clause.text.replace(
            "after one another", "")
        palms = [s for s, p in parts if p == "palm"]
        fingers = [p for _, p in parts if p in FINGER_NAMES]
        palm_pair = (any(t.startswith("clap") for t in tokens)
                     or (not fingers and ("palms" in tokens or len(palms) >= 2 or together)))
        out.append(Claim(which, clause.text, parts, strong_at is not None, hands, palm_pair,
                         any(t.startswith("pinch") for t in tokens)))
    return out


def _side_ok(claimed: str | None, actual: str) -> bool:
    return claimed is None or claimed == "both" or claimed == actual


def _intra_ok(claim: Claim, side: str, intra: Mapping[str, set[str]]) -> bool:
    fingers = [(s, f) for s, f in claim.fingers if f != "thumb"]
    if any(not _side_ok(s, side) for s, _ in claim.fingers):
        return False
    if not fingers:
        return bool(intra[side])
    return all(f in intra[side] for _, f in fingers)


def _inter_ok(claim: Claim, inter: Sequence[Contact]) -> bool:
    if claim.palm_pair:
        return any(c.kind == "palm_palm" for c in inter)
    palms = claim.palms
    if claim.fingers:
        for s, f in claim.fingers:
            ok = False
            for c in inter:
                if c.kind == "palm_palm":
                    continue
                if palms and c.kind != "tip_palm":
                    continue
                hit = any(p == f and _side_ok(s, cs) for cs, p in c.parts)
                if hit and palms:
                    hit = any(_side_ok(ps, c.parts[1][0]) for ps in palms)
                ok = ok or hit
            if not ok:
                return False
        return True
    if palms:
        return any(c.kind == "palm_palm" or (c.kind == "tip_palm" and any(_side_ok(s, c.parts[1][0]) for s in palms))
                   for c in inter)
    if any(p == "tip" for _, p in claim.parts):
        return any(c.kind in ("tip_tip", "tip_palm") for c in inter)
    return bool(inter)


def _swap(claim: Claim) -> Claim:
    swapped = tuple((_OTHER.get(s, s) if s else s, p) for s, p in claim.parts)  # type: ignore[arg-type]
    return dataclasses.replace(claim, parts=swapped)


def _covers(claim: Claim, contact: Contact) -> bool:
    """Does a (positive) statement mention this contact?"""
    if contact.kind == "intra":
        side, finger = contact.parts[1]
        if claim.text in SIDES and claim.text != side:
            return False
        if claim.text in SIDES and claim.inter:
            return False
        named = [f for s, f in claim.fingers if _side_ok(s, side)]
        if finger in named:
            return claim.text != "relation" or "thumb" in named or not claim.inter
        return claim.pinch and finger == "index" and not claim.fingers and claim.text == side
    if claim.text in SIDES and not claim.inter:
        return False
    if contact.kind == "palm_palm":
        return claim.palm_pair or (bool(claim.palms) and not claim.fingers) or not claim.parts
    if claim.palm_pair:
        return False
    named = [(s, f) for s, f in claim.fingers]
    if named:
        return any(p == f and _side_ok(s, cs) for s, f in named for cs, p in contact.parts)
    if contact.kind == "tip_palm" and claim.palms:
        return any(_side_ok(s, contact.parts[1][0]) for s in claim.palms)
    return not claim.parts or all(p == "tip" for _, p in claim.parts)


# --------------------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------------------

def _directions(clause: Clause) -> set[str]:
    toks = clause.tokens
    if clause.first(WRIST_VERBS) is None or any(p in FINGER_NAMES for _, p in clause.parts):
        return set()
    out = {_DIRECTION_WORDS[t] for t in toks if t in _DIRECTION_WORDS}
    marked = {i for i, _ in clause.side_marks}
    for i, t in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        if t in ("left", "right") and i not in marked and nxt not in _BODY and nxt != "of" \
                and not (i > 1 and toks[i - 1] == "and" and toks[i - 2] in ("left", "right")) \
                and not (t == "right" and nxt in _NOT_DIRECTION_AFTER_RIGHT):
            out.add("right-to-left" if t == "left" else "left-to-right")
        if t in _UP_VERBS:
            out.add("down-to-up")
        if t in _DOWN_VERBS:
            out.add("up-to-down")
    if "towards the body" in clause.text or "toward the body" in clause.text:
        out.add("front-to-back")
    if "away from the body" in clause.text:
        out.add("back-to-front")
    return out


def _hand_text_problems(codes: Mapping[str, Any], side: str, text: str) -> list[Problem]:
    """The wrong-hand checks of one hand text that do not concern contacts."""
    other = _OTHER[side]
    field = _TEXT_FIELDS[side]
    problems: list[Problem] = []
    clauses = [parse_clause(t, side) for t in split_clauses(text)]
    flexing = {s: flexing_fingers(codes, s) for s in SIDES}
    hyper = {s: set(hyperextensions(codes, s)) for s in SIDES}
    wrist = {s: wrist_directions(codes, s) for s in SIDES}
    any_motion = False
    for clause in clauses:
        verb_at = next((i for i, t in enumerate(clause.tokens) if _is_verb(t)), None)
        contact_at = clause.first(CONTACT_WORDS | WEAK_CONTACT_WORDS)
        for i, mark in clause.side_marks:
            object_of = [a for a in (contact_at, verb_at) if a is not None and a < i]
            if mark == other and not object_of:
                problems.append(Problem("wrong_hand", f"the {side} text describes the {other} hand as the actor: "
                                        f"'{clause.text}'", field))
                break
        fingers = {p for s, p in clause.parts if p in FINGER_NAMES and s in (side, None)}
        is_flex = clause.first(FLEX_VERBS) is not None and contact_at is None
        is_hyper = bool(HYPER_RE.search(clause.text))
        any_motion = any_motion or is_flex or clause.first(WRIST_VERBS) is not None or contact_at is not None
        if is_hyper:
            for f in sorted(fingers):
                if f not in hyper[side] and f in hyper[other]:
                    problems.append(Problem("wrong_hand", f"the {side} text says the {f} hyperextends, which only "
                                            f"the {other} hand does: '{clause.text}'", field))
        elif is_flex:
            for f in sorted(fingers):
                if f not in flexing[side] and f in flexing[other]:
                    problems.append(Problem("wrong_hand", f"the {side} text moves the {f} finger, which only moves "
                                            f"on the {other} hand: '{clause.text}'", field))
        for d in sorted(_directions(clause)):
            if d not in wrist[side] and d in wrist[other]:
                problems.append(Problem("wrong_hand", f"the {side} text moves the wrist {d}, which only the "
                                        f"{other} hand does: '{clause.text}'", field))
    still = any(t in STILL_WORDS for c in clauses for t in c.tokens)
    if still and not any_motion and is_still(codes, other) and moves(codes, side):
        problems.append(Problem("wrong_hand", f"the {side} text says the hand holds still, but only the {other} "
                                "hand does", field))
    return problems


# --------------------------------------------------------------------------------------------------------------
# Time: does the order a text states agree with the events' frames?
# --------------------------------------------------------------------------------------------------------------

#: Frames by which "A, then B" may overlap: B may start up to this many frames before A's last frame. Events of
#: different joints or axes that the segmentation cuts at slightly different frames still read as a sequence;
#: the template writer uses the same tolerance, so its texts pass this check by construction.
SEQUENCE_TOLERANCE = 2

Span = tuple[int, int]  # inclusive frame range


def follows(first: Span, second: Span, tolerance: int = SEQUENCE_TOLERANCE) -> bool:
    """May ``second`` be said to come after ``first`` ("first, then second")? It starts at most ``tolerance``
    frames before ``first``'s last frame."""
    return second[0] >= first[1] - tolerance


def concurrent(a: Span, b: Span, tolerance: int = SEQUENCE_TOLERANCE) -> bool:
    """May two spans be said to happen at the same time ("a while b")? They overlap, or the gap between them
    is at most ``tolerance`` frames."""
    return max(a[0], b[0]) - min(a[1], b[1]) <= tolerance


@dataclasses.dataclass(frozen=True)
class Event:
    """One event of the codes that a clause may describe. ``family``: flex, hyper, spacing, wrist, contact or
    distance; ``what``: bend/straighten, spread/close, a wrist direction, the contact kind, approach/separate;
    ``fingers``: the fingers (or ``palm``) involved; ``start``..``end`` inclusive."""

    family: str
    what: str
    fingers: frozenset[str]
    start: int
    end: int
    label: str

    @property
    def span(self) -> Span:
        return self.start, self.end

    def describe(self) -> str:
        return f"{self.label} (frames {self.start}\u2013{self.end})"


_FLEX_LEVEL = {HYPER: -1, "Fully extended": 0, "Partially bent": 1, "Fully bent": 2}
_DISTANCE_LEVEL = {CONTACT: 0, "Near": 1, "Medium": 2, "Far": 3}


def events(codes: Mapping[str, Any], which: str) -> list[Event]:
    """The events a text may place in time: a hand's flexion, hyperextension, spacing, wrist and contact events
    for ``left``/``right``; contacts and palm approaches and separations for ``relation``."""
    t = int(codes.get("frame_count", 0))
    out: list[Event] = []
    for c in contacts(codes):
        involved = {s for s, _ in c.parts}
        if which == "relation" or which in involved:
            parts = frozenset(p for _, p in c.parts)
            out.extend(Event("contact", c.kind, parts, a, b, c.describe().split(" (")[0]) for a, b in c.episodes)
    if which == "relation":
        for evs in codes.get("two_hand_relationships", {}).get("palm_palm_distance", {}).values():
            for ev in evs:
                if "start_des" in ev and ev["start_des"] != ev["end_des"]:
                    closer = _DISTANCE_LEVEL[ev["end_des"]] < _DISTANCE_LEVEL[ev["start_des"]]
                    what = "approach" if closer else "separate"
                    out.append(Event("distance", what, frozenset({"palm"}), ev["start"], max(ev["start"], ev["end"] - 1),
                                     f"the palms {'approach' if closer else 'separate'}"))
        return out
    hand = codes[f"{which}_hand_events"]
    for key, evs in hand.get("finger_flexing", {}).items():
        finger, joint = key.split("_")
        for ev in evs:
            if ev.get("constant_des") == HYPER:
                out.append(Event("hyper", "hyper", frozenset({finger}), 0, max(0, t - 1),
                                 f"{which} {finger} {joint} hyperextended"))
            if "start_des" not in ev:
                continue
            a, b = _FLEX_LEVEL[ev["start_des"]], _FLEX_LEVEL[ev["end_des"]]
            span = ev["start"], max(ev["start"], ev["end"] - 1)
            if a < 0 or b < 0:
                out.append(Event("hyper", "hyper", frozenset({finger}), *span, f"{which} {finger} {joint} "
                                 f"{ev['start_des'].lower()} \u2192 {ev['end_des'].lower()}"))
            elif a != b:
                what = "bend" if b > a else "straighten"
                out.append(Event("flex", what, frozenset({finger}), *span, f"{which} {finger} {joint} {what}s"))
    for key, evs in hand.get("finger_spacing", {}).items():
        pair = frozenset(k.strip() for k in key.split(","))
        for ev in evs:
            if "start_des" in ev and ev["start_des"] != ev["end_des"]:
                what = "spread" if ev["end_des"] == "Open" else "close"
                out.append(Event("spacing", what, pair, ev["start"], max(ev["start"], ev["end"] - 1),
                                 f"{which} {key} fingers {'spread' if what == 'spread' else 'close'}"))
    for evs in hand.get("wrist_trajectory", {}).values():
        for ev in evs:
            out.append(Event("wrist", ev["direction"], frozenset(), ev["start"], max(ev["start"], ev["end"] - 1),
                             f"{which} wrist moves {ev['direction']}"))
    return out


_BEND_WORDS = _forms("bend|bends,bending", "curl|curls,curling", "fold|folds,folding", "flex|flexes,flexing",
                     "fist", "clench|clenches,clenching", "half-closes", "close|closes,closing")
_STRAIGHTEN_WORDS = _forms("straighten|straightens,straightening", "extend|extends,extending",
                           "stretch|stretches,stretching", "uncurl|uncurls,uncurling", "relax|relaxes,relaxing",
                           "open|opens", "unfold|unfolds,unfolding")
_SPREAD_WORDS = frozenset({"spread", "spreads", "spreading", "fan", "fans", "fanning", "apart", "wide"})
_CLOSE_RE = re.compile(r"\btogether\b|\bclos(?:e|es|ing) up\b|\b(?:spread|spreads|fan|fans)\b.* \bclos(?:e|es|ing)\b"
                       r"|\bclos(?:e|es|ing)\b.* \b(?:spread|spreads)\b")
#: Words a verb-less continuation of a contact ("..., and later the middle fingertip") may consist of.
_CONTINUATION = _FRAGMENT | {"opening", "part", "very", "most", "on", "of", "clip", "times", "four", "six"}
_APPROACH_RE = re.compile(r"\bapproach|\btowards? each other|\bcloser\b|\bdraw near|\bcome near")
_SEPARATE_RE = re.compile(r"\bapart\b|\bseparat|\bpull away|\bmove away from each other")
_FRAMES_RE = re.compile(r"\bframes? (\d+)(?:\s*(?:\u2013|-|to|and)\s*(\d+))?")
#: Connectives inside a sentence: "A, then B" (B after A), "A before B", "A after B", "A while B" (overlap).
_CONNECTIVE_RE = re.compile(
    r"(?P<then>,?\s*\band (?:then|afterwards|later|after that)\b|,\s*(?:then|afterwards|after which|later|"
    r"after that|followed by)\b|\s\bthen\b)"
    r"|(?P<before>\s\bbefore\b(?! (?:being|having)\b))"
    r"|(?P<after>\s\bafter\b(?! (?:being|having|which|another|one another|each other|the other)\b))"
    r"|(?P<while>,?\s*\b(?:while|whilst)\b|,?\s*\band (?:at the same time|meanwhile|simultaneously)\b|"
    r",\s*(?:meanwhile|at the same time|simultaneously)\b|,\s*as (?=the |its |it |they |both |each ))")
#: What a sentence may open with to place itself relative to the sentence before.
_LEADING_RE = re.compile(r"^(?:(?P<then>then|afterwards|after that|next|subsequently)"
                         r"|(?P<while>meanwhile|at the same time|simultaneously))\b,?\s*")
_SUBORDINATE_RE = re.compile(r"^(?P<word>after|before|while|as)\s(?!(?:being|having|well)\b)(?P<sub>[^,]+),\s*")


@dataclasses.dataclass(frozen=True)
class Mention:
    """A stretch of a text that describes something: the words, the events of the codes they can refer to, and
    the frame ranges the words state."""

    words: str
    events: tuple[Event, ...]
    frames: tuple[Span, ...]
    fingers: frozenset[str] = frozenset()  # the fingers it names (or inherits)
    family: str = ""  # "contact" when it states a contact


@dataclasses.dataclass(frozen=True)
class Order:
    """A stated ordering: ``relation`` ``after`` (``second`` comes after ``first``) or ``overlap``."""

    first: Mention
    second: Mention
    relation: str


def _mention(words: str, which: str, catalogue: Sequence[Event], carried: frozenset[str],
             after_contact: bool) -> Mention:
    """The events one stretch of text can refer to. ``carried``: the fingers named by the stretch before, for a
    stretch without a subject ("the middle finger curls, then extends"); ``after_contact``: the stretch before
    was a contact, for a verb-less continuation ("touches the index fingertip and later the middle fingertip")."""
    own = which if which in SIDES else None
    tokens = tokenize(words)
    tokset = set(tokens)
    clause = parse_clause(tokens, own)
    named = frozenset(p for _, p in clause.parts if p in FINGER_NAMES)
    palms = frozenset({"palm"}) if any(p == "palm" for _, p in clause.parts) else frozenset()
    frames = tuple((int(a), int(b) if b else int(a)) for a, b in _FRAMES_RE.findall(words))
    fingers = named or (frozenset() if tokset & {"hand", "hands", "it", "fingers"} else carried)

    def pick(family: str, whats: Iterable[str] | None = None, by: frozenset[str] = frozenset()) -> Mention:
        found = [e for e in catalogue if e.family == family and (whats is None or e.what in whats)]
        if by:
            found = [e for e in found if e.fingers & by] or ([] if family == "contact" else found)
        return Mention(words, tuple(found), frames, fingers)

    contact_at = clause.first(CONTACT_WORDS)
    verbless = all(t in _CONTINUATION or t.isdigit() for t in tokens)
    if (contact_at is not None and not _negated(clause, contact_at)) or (verbless and after_contact and named):
        return dataclasses.replace(pick("contact", by=(named - {"thumb"}) or named or palms), family="contact")
    if HYPER_RE.search(words):
        return pick("hyper", by=fingers)
    if own is None:
        if _APPROACH_RE.search(words):
            return pick("distance", ("approach",))
        if _SEPARATE_RE.search(words):
            return pick("distance", ("separate",))
        return Mention(words, (), frames, fingers)
    directions = _directions(clause)
    if directions and not named:
        return dataclasses.replace(pick("wrist", directions), fingers=carried)
    spacing = ({"spread"} if tokset & _SPREAD_WORDS else set()) | ({"close"} if _CLOSE_RE.search(words) else set())
    if spacing:
        return pick("spacing", spacing, by=fingers)
    flex = ({"bend"} if tokset & _BEND_WORDS else set()) | ({"straighten"} if tokset & _STRAIGHTEN_WORDS else set())
    if flex:
        return pick("flex", flex, by=fingers)
    return Mention(words, (), frames, fingers)


#: How a connective orders the stretch after it: "then" (it comes after the one before), "after" ("A after B":
#: it comes first) or "overlap".
_RELATION = {"then": "then", "before": "then", "after": "after", "while": "overlap"}
_SUBORDINATE = {"after": "then", "before": "after", "while": "overlap", "as": "overlap"}


def orderings(text: str, which: str, catalogue: Sequence[Event]) -> list[Order]:
    """Every ordering a text states between two stretches of it (see the module docstring)."""
    out: list[Order] = []
    previous: Mention | None = None
    for sentence in re.split(r"[.;!?]+", text.lower().replace("\u2019", "'")):
        sentence = sentence.strip(" ,")
        if not sentence:
            continue
        relation = None
        lead = _LEADING_RE.match(sentence)
        if lead:
            relation = "then" if lead.group("then") else "overlap"
            sentence = sentence[lead.end():]
        pieces: list[tuple[str, str | None]] = []
        sub = _SUBORDINATE_RE.match(sentence)
        if sub:  # "after A, B" = A then B; "before A, B" = B then A; "while A, B" = together
            pieces.append((sub.group("sub"), relation))
            relation = _SUBORDINATE[sub.group("word")]
            sentence = sentence[sub.end():]
        pos = 0
        for m in _CONNECTIVE_RE.finditer(sentence):
            pieces.append((sentence[pos:m.start()], relation))
            relation, pos = _RELATION[m.lastgroup or "then"], m.end()
        pieces.append((sentence[pos:], relation))
        for words, relation in pieces:
            if not words.strip():
                continue
            carried = previous.fingers if previous else frozenset()
            mention = _mention(words, which, catalogue, carried, previous is not None and previous.family == "contact")
            if previous is not None and relation is not None:
                if relation == "after":
                    out.append(Order(mention, previous, "after"))
                else:
                    out.append(Order(previous, mention, "after" if relation == "then" else "overlap"))
            previous = mention
    return out


def _order_problem(order: Order, field: str) -> str | None:
    """Why a stated ordering contradicts the events (or, when the words name no event, the frames the text
    itself states), or None. Lenient: "A, then B" holds when some event B can refer to starts no earlier than
    :data:`SEQUENCE_TOLERANCE` frames before some event A can refer to ends; "A while B" holds when the hulls
    of their events overlap (within the tolerance)."""
    a, b = order.first, order.second
    for source in ("events", "frames"):
        xs = [e.span for e in a.events] if source == "events" else list(a.frames)
        ys = [e.span for e in b.events] if source == "events" else list(b.frames)
        if not xs or not ys:
            continue
        if order.relation == "after":
            x, y = min(xs, key=lambda s: s[1]), max(ys, key=lambda s: s[0])
            if follows(x, y):
                return None
            said = f"'{a.words.strip()}', then '{b.words.strip()}'"
        else:
            x = (min(s[0] for s in xs), max(s[1] for s in xs))
            y = (min(s[0] for s in ys), max(s[1] for s in ys))
            if concurrent(x, y):
                return None
            said = f"'{a.words.strip()}' at the same time as '{b.words.strip()}'"
        if source == "events":
            ea = next(e for e in a.events if e.span == x) if order.relation == "after" else a.events[0]
            eb = next(e for e in b.events if e.span == y) if order.relation == "after" else b.events[0]
            if order.relation == "overlap":
                facts = (f"{ea.label} (frames {x[0]}\u2013{x[1]} in all) and {eb.label} "
                         f"(frames {y[0]}\u2013{y[1]} in all)")
            else:
                facts = f"{ea.describe()} and {eb.describe()}"
        else:
            facts = f"the text's own frames {x[0]}\u2013{x[1]} and {y[0]}\u2013{y[1]}"
        return f"the {field} text says {said}, but the events are {facts}"
    return None


def order_problems(codes: Mapping[str, Any], which: str, text: str) -> list[Problem]:
    """``wrong_order`` problems of one text (``which``: left, right or relation)."""
    field = _TEXT_FIELDS[which]
    catalogue = events(codes, which)
    found = (_order_problem(order, field) for order in orderings(text, which, catalogue))
    return [Problem("wrong_order", message, field) for message in found if message]


def verify(codes: Mapping[str, Any], description: Description) -> list[Problem]:
    """Faithfulness problems of one description against its motion codes (see the module docstring)."""
    texts = {"left": description.left, "right": description.right, "relation": description.two_hands_relation}
    all_contacts = contacts(codes)
    inter = [c for c in all_contacts if c.kind != "intra"]
    intra: dict[str, set[str]] = {s: set() for s in SIDES}
    for c in all_contacts:
        if c.kind == "intra":
            intra[c.parts[0][0]].add(c.parts[1][1])
    found = {which: claims(text, which) for which, text in texts.items()}
    problems: list[Problem] = []

    for which, items in found.items():
        field = _TEXT_FIELDS[which]
        for claim in items:
            if not claim.strong:
                continue
            if which in SIDES and not claim.inter:
                if _intra_ok(claim, which, intra):
                    continue
                if _intra_ok(dataclasses.replace(claim, parts=tuple((_OTHER[which], p) for _, p in claim.parts)),
                             _OTHER[which], intra):
                    problems.append(Problem("wrong_hand", f"the {which} text claims a thumb contact that only the "
                                            f"{_OTHER[which]} hand makes: '{claim.clause}'", field))
                else:
                    problems.append(Problem("false_contact", f"the {which} text claims a contact that does not "
                                            f"happen: '{claim.clause}'", field))
                continue
            ok = _inter_ok(claim, inter)
            if not ok and which == "relation" and not claim.inter:
                ok = any(_intra_ok(claim, s, intra) for s in SIDES)
            if ok:
                continue
            if _inter_ok(_swap(claim), inter):
                problems.append(Problem("wrong_hand", f"the {field} text swaps the hands of a contact: "
                                        f"'{claim.clause}'", field))
            else:
                problems.append(Problem("false_contact", f"the {field} text claims a contact that does not happen: "
                                        f"'{claim.clause}'", field))

    for c in all_contacts:
        where = ("relation", c.parts[0][0]) if c.kind == "intra" else ("relation", "left", "right")
        if not any(_covers(claim, c) for w in where for claim in found[w]):
            target = f"the {c.parts[0][0]} text or the relation text" if c.kind == "intra" else "the relation text"
            problems.append(Problem("missing_contact", f"{target} does not mention the {c.describe()}",
                                    _TEXT_FIELDS["relation" if c.kind != "intra" else c.parts[0][0]]))

    for side in SIDES:
        problems.extend(_hand_text_problems(codes, side, texts[side]))
        fingers = hyperextensions(codes, side)
        if fingers and not (HYPER_RE.search(texts[side].lower()) or HYPER_RE.search(texts["relation"].lower())):
            problems.append(Problem("missing_hyperextension", f"the {side} hand hyperextends "
                                    f"({', '.join(sorted(fingers))}) but no text says so", _TEXT_FIELDS[side]))
    for which, text in texts.items():
        problems.extend(order_problems(codes, which, text))
    return problems


def verify_all(codes: Mapping[str, Any], descriptions: Iterable[Description]) -> list[Problem]:
    """Problems of every variant; messages start with the variant number (1-based)."""
    out: list[Problem] = []
    for k, description in enumerate(descriptions, 1):
        out.extend(dataclasses.replace(p, message=f"variant {k}: {p.message}") for p in verify(codes, description))
    return out


def as_validator() -> Callable[[dict[str, Any], tuple[Description, ...]], list[str]]:
    """``validator(codes, descriptions) -> list[str]`` for :class:`handx.annotate.llm.LLMWriter`."""

    def validator(codes: dict[str, Any], descriptions: tuple[Description, ...]) -> list[str]:
        return [str(p) for p in verify_all(codes, descriptions)]

    return validator
