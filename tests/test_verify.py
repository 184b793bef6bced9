"""Tests of the faithfulness verifier (reference §3 rule (a) and the left/right split).

Hand-made cases for each rule, then detection rates on template descriptions corrupted on purpose: left and
right texts swapped, contact sentences removed, false contact claims inserted, negated claims inserted.
"""

from __future__ import annotations

import dataclasses
import random
import re

import numpy as np
import pytest

from handx.annotate.base import Description, codes_hash
from handx.annotate.template import TemplateWriter
from handx.annotate.verify import (
    KINDS,
    Problem,
    as_validator,
    claims,
    contacts,
    flexing_fingers,
    is_still,
    state_runs,
    verify,
    verify_all,
    wrist_directions,
)
from handx.features.codes import motion_codes_batch
from handx.synth import INTERACTIONS, generate_clip

from codes_builders import T, blank_codes, change, hold

CLIP_KINDS = ("independent", *INTERACTIONS)
FINGERS = ("thumb", "index", "middle", "ring", "pinky")


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------



def with_pinch(codes: dict, side: str, finger: str = "index", start: int = 20, last: int = 30) -> dict:
    codes[f"{side}_hand_events"]["finger_tip_contact"][f"{finger}_tip, thumb_tip"] = [
        {"start": start, "end": last, "constant_des": "Contact"}]
    return codes


def with_tip_on_palm(codes: dict, tip_side: str, finger: str = "index") -> dict:
    palm = "left" if tip_side == "right" else "right"
    codes["two_hand_relationships"]["finger_palm_distance"][f"{tip_side}_{finger}_tip, {palm}_palm"] = [
        change(5, 30, "Far", "Contact", "Fast"), change(30, 50, "Contact", "Far", "Fast")]
    return codes


def with_palm_contact(codes: dict) -> dict:
    codes["two_hand_relationships"]["palm_palm_distance"]["left_palm, right_palm"] = [
        change(5, 25, "Far", "Contact", "Fast"), change(35, 50, "Contact", "Far", "Fast")]
    return codes


def desc(left: str = "The left hand holds still.", right: str = "The right hand holds still.",
         relation: str = "The hands act independently.") -> Description:
    return Description(left, right, relation)


def kinds(problems: list[Problem]) -> set[str]:
    return {p.kind for p in problems}


# --------------------------------------------------------------------------------------------------------------
# Reading the codes
# --------------------------------------------------------------------------------------------------------------

def test_contacts_read_from_every_family():
    c = with_palm_contact(with_tip_on_palm(with_pinch(blank_codes(), "left"), "right"))
    c["two_hand_relationships"]["finger_tip_contact"]["left_index_tip, right_thumb_tip"] = [
        {"start": 40, "end": 44, "constant_des": "Contact"}]
    found = {(x.kind, x.parts) for x in contacts(c)}
    assert found == {("intra", (("left", "thumb"), ("left", "index"))),
                     ("tip_palm", (("right", "index"), ("left", "palm"))),
                     ("palm_palm", (("left", "palm"), ("right", "palm"))),
                     ("tip_tip", (("left", "index"), ("right", "thumb")))}
    assert not contacts(blank_codes())


def test_state_runs_join_reaching_and_leaving_a_state():
    events = [change(0, 23, "Far", "Contact"), change(23, 34, "Contact", "Far"), change(34, 45, "Far", "Contact")]
    assert state_runs(events, "Contact", T) == ((22, 23), (44, 59))
    assert state_runs(hold("Contact"), "Contact", T) == ((0, 59),)
    assert state_runs(hold("Far"), "Contact", T) == ()


# --------------------------------------------------------------------------------------------------------------
# Hand-made cases, one rule at a time
# --------------------------------------------------------------------------------------------------------------

def test_intra_contact_must_be_mentioned_in_its_hand_or_the_relation():
    c = with_pinch(blank_codes(), "left")
    assert kinds(verify(c, desc())) == {"missing_contact"}
    assert not verify(c, desc(left="The thumb touches the index fingertip mid-sequence."))
    assert not verify(c, desc(left="The left hand pinches its thumb and forefinger together."))
    assert not verify(c, desc(relation="The left thumb touches the left index fingertip; the hands stay apart."))
    problems = verify(c, desc(right="The thumb touches the index fingertip."))
    assert kinds(problems) == {"missing_contact", "wrong_hand"}


def test_two_hand_contacts_must_be_mentioned():
    c = with_palm_contact(with_tip_on_palm(blank_codes(), "right"))
    assert [p.kind for p in verify(c, desc())] == ["missing_contact", "missing_contact"]
    good = desc(relation="The right index fingertip touches the left palm early on, and the palms press together.")
    assert not verify(c, good)
    clap = desc(relation="The right index finger presses against the left palm. Later the hands clap.")
    assert not verify(c, clap)
    only_palms = desc(relation="The palms meet mid-sequence.")
    assert [p.kind for p in verify(c, only_palms)] == ["missing_contact"]


def test_two_hand_contact_told_in_a_hand_text_counts():
    c = with_tip_on_palm(blank_codes(), "right")
    assert not verify(c, desc(left="The left hand holds still while its palm is touched by the other hand's "
                                   "index fingertip."))
    assert not verify(c, desc(right="Its index fingertip touches the other hand's palm."))


def test_false_contacts_are_flagged():
    c = with_pinch(blank_codes(), "left")
    assert kinds(verify(c, desc(left="The thumb and ring finger touch at the end. The thumb touches the index "
                                     "fingertip."))) == {"false_contact"}
    palms = verify(c, desc(left="The thumb touches the index fingertip.", relation="The palms press together."))
    assert kinds(palms) == {"false_contact"}
    tips = verify(c, desc(left="The thumb touches the index fingertip.",
                          relation="The left index fingertip touches the right middle fingertip."))
    assert kinds(tips) == {"false_contact"}
    assert kinds(verify(blank_codes(), desc(relation="The hands make contact."))) == {"false_contact"}


def test_wrong_hand_actor_and_actions():
    c = blank_codes()
    assert kinds(verify(c, desc(left="The right hand closes into a fist."))) == {"wrong_hand"}
    assert kinds(verify(c, desc(right="The left index finger curls."))) == {"wrong_hand"}
    assert not verify(c, desc(left="The hand moves to the right and then holds still."))
    # a thumb contact that only the other hand makes
    c = with_pinch(blank_codes(), "right")
    problems = verify(c, desc(left="The thumb and index finger pinch together.",
                              right="The thumb touches the index fingertip."))
    assert kinds(problems) == {"wrong_hand"}
    # a wrist translation only the other hand makes
    c = blank_codes()
    c["right_hand_events"]["wrist_trajectory"] = {"left-right": [
        {"start": 5, "end": 30, "direction": "left-to-right", "v_des": "Fast"}]}
    assert kinds(verify(c, desc(left="The hand moves quickly to the right.", right="It moves to the right."))) \
        == {"wrong_hand"}
    assert not verify(c, desc(left="The hand holds still.", right="The right hand moves quickly to the right."))
    # a finger that only bends on the other hand
    c = blank_codes()
    c["right_hand_events"]["finger_flexing"]["index_pip"] = [change(10, 30, "Fully extended", "Fully bent")]
    assert kinds(verify(c, desc(left="The index finger curls fully.", right="The index finger curls."))) \
        == {"wrong_hand"}
    # two-hand contact with the roles swapped
    c = with_tip_on_palm(blank_codes(), "right")
    assert kinds(verify(c, desc(relation="The left index fingertip touches the right palm."))) >= {"wrong_hand"}


def test_other_hand_may_be_named_as_the_object_of_a_contact():
    c = with_tip_on_palm(blank_codes(), "left")
    assert not verify(c, desc(left="Mid-sequence its index fingertip touches the right palm."))


def test_still_claim_for_the_moving_hand():
    c = blank_codes()
    c["right_hand_events"]["wrist_trajectory"] = {"down-up": [
        {"start": 5, "end": 30, "direction": "down-to-up", "v_des": "Fast"}]}
    assert kinds(verify(c, desc(left="The hand rises quickly.", right="The hand stays still throughout."))) \
        == {"wrong_hand"}


def test_negated_contacts_are_not_claims():
    c = blank_codes()
    for text in ("The hands never touch.", "The thumb does not touch the ring fingertip.",
                 "The hands move apart without contact.", "There is no contact between the palms.",
                 "The index fingertips almost touch.", "No part of one hand touches the other."):
        assert not verify(c, desc(relation=text)), text
        assert not claims(text, "relation"), text


def test_vocabulary_edges():
    c = with_pinch(with_pinch(blank_codes(), "left"), "left", "middle", 40, 45)
    # "middle of the clip" is not the middle finger; a verb-less continuation keeps its contact verb
    assert not verify(c, desc(left="In the middle of the clip the thumb touches the index fingertip, then the "
                                   "middle fingertip."))
    assert not verify(c, desc(left="The thumb taps the index and middle fingertips one after another."))
    assert kinds(verify(c, desc(left="The thumb taps the index, middle and ring fingertips."))) == {"false_contact"}
    c = with_pinch(blank_codes(), "left", "pinky")
    assert not verify(c, desc(left="The thumb touches the little fingertip right at the start."))
    c = with_pinch(with_pinch(c, "left", "ring", 30, 33), "left", "index", 40, 44)
    assert not verify(c, desc(left="The thumb meets the little, ring and index fingertips in turn."))
    assert kinds(verify(c, desc(left="The index finger relaxes a little and the thumb touches the index "
                                     "fingertip, the ring and the little fingertips."))) == set()


def test_hyperextension_must_be_mentioned():
    c = blank_codes()
    c["left_hand_events"]["finger_flexing"]["ring_mcp"] = hold("Hyper extend")
    assert kinds(verify(c, desc())) == {"missing_hyperextension"}
    assert not verify(c, desc(left="The ring finger stays bent back at the knuckle."))
    assert not verify(c, desc(left="The ring finger hyperextends throughout."))
    assert kinds(verify(c, desc(right="The ring finger hyperextends throughout."))) >= {"wrong_hand"}


def test_problem_and_validator_shapes():
    c = with_pinch(blank_codes(), "left")
    problems = verify_all(c, [desc(), desc(left="The thumb touches the index fingertip.")])
    assert len(problems) == 1 and problems[0].message.startswith("variant 1:")
    assert problems[0].kind in KINDS and problems[0].text == "left"
    with pytest.raises(dataclasses.FrozenInstanceError):
        problems[0].kind = "x"  # type: ignore[misc]
    validator = as_validator()
    assert validator(c, (desc(),)) == [str(problems[0])] and str(problems[0]).startswith("missing_contact: ")
    assert validator(c, (desc(left="The thumb touches the index fingertip."),)) == []


# --------------------------------------------------------------------------------------------------------------
# Corrupted template output
# --------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus() -> tuple[list[dict], list[tuple[Description, ...]]]:
    clips = [generate_clip(23, i, kind=CLIP_KINDS[i % len(CLIP_KINDS)]) for i in range(30 * len(CLIP_KINDS))]
    codes = motion_codes_batch(np.stack([c.motion for c in clips]))
    writer = TemplateWriter(seed=5)
    return codes, [writer.describe(c, key=codes_hash(c)) for c in codes]


def _intra(codes: dict, side: str) -> set[str]:
    return {c.parts[1][1] for c in contacts(codes) if c.kind == "intra" and c.parts[0][0] == side}


def _hands_differ(codes: dict) -> bool:
    return (_intra(codes, "left") != _intra(codes, "right")
            or flexing_fingers(codes, "left") != flexing_fingers(codes, "right")
            or wrist_directions(codes, "left") != wrist_directions(codes, "right")
            or is_still(codes, "left") != is_still(codes, "right"))


def _drop_contact_sentences(text: str, filler: str) -> str:
    kept = [s for s in re.split(r"(?<=\.)\s+", text) if not re.search(r"touch|pinch|meet|press|clap|contact|tap",
                                                                         s.lower())]
    return " ".join(kept) or filler


def test_template_output_is_clean(corpus):
    codes, written = corpus
    clean = sum(not verify_all(c, d) for c, d in zip(codes, written)) / len(codes)
    print(f"verifier: {clean:.2%} of {len(codes)} template-described clips have no problem")
    assert clean >= 0.99


def test_swapped_hand_texts_are_wrong_hand(corpus):
    codes, written = corpus
    unnamed = re.compile(r"\b(?:on the )?(?:left|right) hand(?:'s)?,? ?", re.I)
    clips = caught = caught_unnamed = 0
    for c, descriptions in zip(codes, written):
        if not _hands_differ(c):
            continue
        clips += 1
        swapped = [Description(d.right, d.left, d.two_hands_relation) for d in descriptions]
        caught += any("wrong_hand" in kinds(verify(c, d)) for d in swapped)
        # the same without naming the hand, so only what the texts say the hand does can give it away
        anonymous = [Description(unnamed.sub("", d.right) or "It moves.", unnamed.sub("", d.left) or "It moves.",
                                 d.two_hands_relation) for d in descriptions]
        caught_unnamed += any("wrong_hand" in kinds(verify(c, d)) for d in anonymous)
    rate, rate_unnamed = caught / clips, caught_unnamed / clips
    print(f"swapped left/right texts: wrong_hand in {rate:.1%} of {clips} clips whose hands differ "
          f"({rate_unnamed:.1%} with the hand names removed)")
    assert clips >= 150
    assert rate >= 0.9
    assert rate_unnamed >= 0.6


def test_removed_contact_sentences_are_missing_contact(corpus):
    codes, written = corpus
    total = caught = 0
    for c, descriptions in zip(codes, written):
        if not contacts(c):
            continue
        for d in descriptions:
            cut = Description(_drop_contact_sentences(d.left, "The left hand moves."),
                              _drop_contact_sentences(d.right, "The right hand moves."),
                              _drop_contact_sentences(d.two_hands_relation, "The hands move."))
            total += 1
            caught += "missing_contact" in kinds(verify(c, cut))
    rate = caught / total
    print(f"removed contact sentences: missing_contact in {rate:.1%} of {total} descriptions")
    assert total >= 500 and rate >= 0.9


def _false_claims(codes: dict, rng: random.Random) -> list[tuple[str, str, str]]:
    """(text, claim, negated claim) triples that are false for this clip."""
    out = []
    for side in ("left", "right"):
        free = [f for f in FINGERS[1:] if f not in _intra(codes, "left") | _intra(codes, "right")]
        if free:
            f = rng.choice(free)
            out.append((side, f"The thumb and {f} finger touch mid-sequence.",
                        f"The thumb and {f} finger do not touch."))
    found = contacts(codes)
    if not any(x.kind == "palm_palm" for x in found):
        out.append(("relation", "The palms press together towards the end.", "The palms never press together."))
    touching = {p for x in found if x.kind in ("tip_tip", "tip_palm") for p in x.parts}
    pairs = [(a, b) for a in FINGERS for b in FINGERS if ("left", a) not in touching and ("right", b) not in touching]
    if pairs:
        a, b = rng.choice(pairs)
        out.append(("relation", f"The left {a} fingertip touches the right {b} fingertip early on.",
                    f"The left {a} fingertip never touches the right {b} fingertip."))
    return out


def _insert(d: Description, where: str, sentence: str) -> Description:
    field = {"left": "left", "right": "right", "relation": "two_hands_relation"}[where]
    return dataclasses.replace(d, **{field: f"{getattr(d, field)} {sentence}"})


def test_inserted_false_contacts_are_flagged_and_negated_ones_are_not(corpus):
    codes, written = corpus
    rng = random.Random(0)
    total = caught = negated_total = negated_quiet = 0
    for c, descriptions in zip(codes, written):
        for where, claim, negated in _false_claims(c, rng):
            d = descriptions[rng.randrange(len(descriptions))]
            before = verify(c, d)
            total += 1
            caught += "false_contact" in kinds(verify(c, _insert(d, where, claim)))
            negated_total += 1
            negated_quiet += verify(c, _insert(d, where, negated)) == before
    rate, quiet = caught / total, negated_quiet / negated_total
    print(f"inserted false contacts: false_contact in {rate:.1%} of {total}; negated claims left alone in "
          f"{quiet:.1%} of {negated_total}")
    assert total >= 300 and rate >= 0.9
    assert quiet == 1.0
