"""Time in the template writer and the verifier's temporal check (reference §3 rule (b)).

Properties: on real capture (ManipNet, Leap) and a synthetic corpus, the template texts never join with "then"
two things whose frames overlap (read from the frame ranges the detailed variant states) and pass the temporal
check; the check flags the texts of the issue (concurrent events chained with "then") and template texts whose
two "then"-joined clauses are swapped, and flags nothing the template writer writes.
"""

from __future__ import annotations

import numpy as np
import pytest

from handx.annotate.base import Description, codes_hash
from handx.annotate.template import TemplateWriter
from handx.annotate.verify import (
    SEQUENCE_TOLERANCE,
    concurrent,
    events,
    follows,
    order_problems,
    orderings,
    verify,
)
from handx.features.codes import motion_codes_batch
from handx.motion import WINDOW, centre_on_right_wrist

from codes_builders import blank_codes, change

MAX_REAL_CLIPS = 60
SYNTH_CLIPS = 120
TEXTS = ("left", "right", "relation")


def _texts(d: Description) -> dict[str, str]:
    return {"left": d.left, "right": d.right, "relation": d.two_hands_relation}


@pytest.fixture(scope="module")
def real_codes(shared_data) -> list[dict]:
    """Codes of non-overlapping 60-frame windows (both hands tracked) of the ManipNet and Leap captures."""
    from handx.io.importer import iter_sequences

    clips = []
    for fmt, folder in (("bvh", "manipnet"), ("leap", "leap")):
        for seq in iter_sequences(fmt, [shared_data / folder]):
            for start in range(0, seq.num_frames - WINDOW + 1, WINDOW):
                if seq.present[start:start + WINDOW].all():
                    clips.append(centre_on_right_wrist(seq.joints[start:start + WINDOW]))
    step = max(1, len(clips) // MAX_REAL_CLIPS)
    return motion_codes_batch(np.stack(clips[::step][:MAX_REAL_CLIPS]))


@pytest.fixture(scope="module")
def synth_codes(tmp_path_factory) -> list[dict]:
    from handx.io.store import Store
    from handx.synth.corpus import write_synthetic

    root = tmp_path_factory.mktemp("synth")
    write_synthetic(SYNTH_CLIPS, 7, root, progress=False)
    store = Store(root)
    return motion_codes_batch(np.stack([store.motion(i) for i in range(len(store))]))


@pytest.fixture(scope="module", params=["real", "synthetic"])
def written(request) -> list[tuple[dict, tuple[Description, ...]]]:
    codes = request.getfixturevalue("real_codes" if request.param == "real" else "synth_codes")
    writer = TemplateWriter(seed=3)
    return [(c, writer.describe(c, key=codes_hash(c))) for c in codes]


# --------------------------------------------------------------------------------------------------------------
# The writer keeps time straight
# --------------------------------------------------------------------------------------------------------------

def test_then_never_joins_overlapping_frame_ranges(written):
    """In the detailed variant, every "A, then B" whose two sides state frames has B starting no earlier than
    SEQUENCE_TOLERANCE frames before A's last stated frame; every "A while B" has overlapping ranges."""
    then = overlap = 0
    for codes, descriptions in written:
        for which, text in _texts(descriptions[4]).items():
            for order in orderings(text, which, []):
                a, b = order.first.frames, order.second.frames
                if not a or not b:
                    continue
                if order.relation == "after":
                    then += 1
                    assert min(s for s, _ in b) >= max(e for _, e in a) - SEQUENCE_TOLERANCE, (order, text)
                else:
                    overlap += 1
                    assert concurrent((min(s for s, _ in a), max(e for _, e in a)),
                                      (min(s for s, _ in b), max(e for _, e in b))), (order, text)
    assert then >= 10 and overlap >= 3, (then, overlap)


def test_template_texts_pass_the_temporal_check(written):
    """False-positive rate 0: no template text of any variant gets a wrong_order problem."""
    checked = 0
    for codes, descriptions in written:
        for d in descriptions:
            for which, text in _texts(d).items():
                checked += len(orderings(text, which, events(codes, which)))
                assert order_problems(codes, which, text) == [], (which, text)
    assert checked >= 50


def test_overlapping_wrist_axes_are_one_movement():
    c = blank_codes()
    c["left_hand_events"]["wrist_trajectory"] = {
        "up-down": [{"start": 0, "end": 21, "direction": "up-to-down", "v_des": "Medium"}],
        "left-right": [{"start": 0, "end": 21, "direction": "right-to-left", "v_des": "Medium"}],
        "front-back": [{"start": 0, "end": 22, "direction": "front-to-back", "v_des": "Medium"}]}
    for d in TemplateWriter(0).describe(c, key=codes_hash(c)):
        assert "then" not in d.left and "while" not in d.left and d.left.count(".") == 1, d.left
        assert ", " in d.left and "down" in d.left and ("back" in d.left or "towards the body" in d.left), d.left
        assert not verify(c, d)


def test_opposite_moves_of_one_finger_are_not_chained():
    """Base knuckle bends over the whole clip while the middle joint straightens: one finger, no "then"."""
    c = blank_codes()
    flex = c["left_hand_events"]["finger_flexing"]
    flex["middle_mcp"] = [change(0, 59, "Fully extended", "Partially bent")]
    flex["middle_pip"] = [change(10, 33, "Partially bent", "Fully extended", "Fast")]
    for d in TemplateWriter(0).describe(c, key=codes_hash(c)):
        assert "then" not in d.left and "afterwards" not in d.left, d.left
        assert not verify(c, d)


# --------------------------------------------------------------------------------------------------------------
# The check flags wrong orders
# --------------------------------------------------------------------------------------------------------------

def _issue_codes() -> dict:
    c = blank_codes()
    c["left_hand_events"]["wrist_trajectory"] = {
        "up-down": [{"start": 0, "end": 21, "direction": "up-to-down", "v_des": "Medium"}],
        "left-right": [{"start": 0, "end": 21, "direction": "right-to-left", "v_des": "Medium"},
                       {"start": 32, "end": 60, "direction": "right-to-left", "v_des": "Medium"}],
        "front-back": [{"start": 0, "end": 22, "direction": "front-to-back", "v_des": "Medium"}]}
    flex = c["right_hand_events"]["finger_flexing"]
    flex["middle_mcp"] = [change(0, 59, "Fully extended", "Partially bent")]
    flex["middle_pip"] = [change(10, 33, "Partially bent", "Fully extended", "Fast")]
    return c


def test_the_issue_examples_are_flagged():
    c = _issue_codes()
    left = ("The left hand shifts down and leftward at a steady pace over frames 0\u201320, then shifts backward at a "
            "steady pace in frames 0\u201321, then moves to the left at a steady pace between frames 32 and 59.")
    right = ("The middle finger curls a little steadily for the whole sequence (frames 0\u201358) and then extends "
             "fully quickly again in the first part of the clip (frames 10\u201332).")
    problems = [p for p in verify(c, Description(left, right, "The hands act independently.")) if p.kind == "wrong_order"]
    assert [p.text for p in problems] == ["left", "right"], problems
    assert "down and leftward" in problems[0].message and "backward" in problems[0].message
    assert "frames 0\u201320" in problems[0].message and "front-to-back (frames 0\u201321)" in problems[0].message
    assert "curls a little" in problems[1].message and "extends fully" in problems[1].message
    assert "middle pip straightens (frames 10\u201332)" in problems[1].message
    # the same events told in the right order, or as simultaneous, are not flagged
    good_left = ("The left hand shifts down, left and backward at a steady pace over frames 0\u201321, then moves to "
                 "the left between frames 32 and 59.")
    good_right = "The middle finger curls a little throughout, while its middle joint extends fully early on."
    assert not verify(c, Description(good_left, good_right, "The hands act independently."))


@pytest.mark.parametrize("text", [
    "After the hand moves to the left, it shifts down.",  # after A, B
    "The hand moves to the left after it shifts down.",  # B after A, reversed
    "The hand moves to the left before it shifts down.",
    "Before it shifts down, the hand moves to the left.",
    "The hand moves to the left. Then it shifts down.",
    "The hand shifts down while it moves to the left.",  # no overlap at all
])
def test_connectives_are_read(text):
    c = blank_codes()
    c["left_hand_events"]["wrist_trajectory"] = {
        "up-down": [{"start": 0, "end": 15, "direction": "up-to-down", "v_des": "Medium"}],
        "left-right": [{"start": 40, "end": 60, "direction": "right-to-left", "v_des": "Medium"}]}
    reading = [p.kind for p in order_problems(c, "left", text)]
    wrong = text.startswith("After") or " before " in text or "Then" in text or "Before" in text or "while" in text
    assert reading == (["wrong_order"] if wrong else []), text
    # the states of "after being" and "one after another" are no orderings
    assert not orderings("The right hand ends up behind the left hand after being level with it.", "relation", [])
    assert not orderings("The thumb meets the index and middle fingertips one after another.", "left", [])


def test_swapped_then_clauses_are_flagged(written):
    """Swap the two sides of every "A, then B" of the template texts whose events are strictly sequential (the
    swapped claim is false by the events): every swap is flagged."""
    swapped = flagged = 0
    for codes, descriptions in written:
        for d in descriptions:
            for which, text in _texts(d).items():
                catalogue = events(codes, which)
                lower = text.lower()
                for order in orderings(text, which, catalogue):
                    a, b = order.first, order.second
                    if order.relation != "after" or not a.events or not b.events:
                        continue
                    a_words, b_words = a.words.strip(), b.words.strip()
                    at, bt = lower.find(a_words), lower.find(b_words)
                    if at < 0 or bt <= at:
                        continue
                    between = lower[at + len(a_words):bt]
                    if "then" not in between and "afterwards" not in between:
                        continue
                    new = lower[:at] + b_words + between + a_words + lower[bt + len(b_words):]
                    after = [o for o in orderings(new, which, catalogue)
                             if o.first.words.strip() == b_words and o.second.words.strip() == a_words]
                    if len(after) != 1 or {e.span for e in after[0].first.events} != {e.span for e in b.events} \
                            or {e.span for e in after[0].second.events} != {e.span for e in a.events}:
                        continue  # the swapped clause reads differently without its old neighbour
                    if follows(min((e.span for e in b.events), key=lambda s: s[1]),
                               max((e.span for e in a.events), key=lambda s: s[0])):
                        continue  # both orders agree with the events (long, interleaved events)
                    swapped += 1
                    flagged += any(b_words in p.message for p in order_problems(codes, which, new))
    print(f"swapped 'then' clauses: {flagged} of {swapped} flagged")
    assert swapped >= 20 and flagged == swapped
