"""Tests of the offline template writer (reference §3 annotation rules) on synthetic clips of every kind.

Properties, not fixed outputs: five valid descriptions per clip, determinism, varied wording, detail growing
from variant 1 to 5, contacts and hyperextension reported in every variant, whole-finger phrasing, the left
text never about the right hand, no hedging, throughput, and agreement with the faithfulness verifier.
"""

from __future__ import annotations

import copy
import re
import statistics
import time

import numpy as np
import pytest

from handx.annotate.base import NUM_VARIANTS, Description, WriteRequest, codes_hash
from handx.annotate.template import TemplateWriter, plural
from handx.annotate.verify import contacts, verify_all
from handx.features.codes import RELATIVE_LABELS, motion_codes_batch
from handx.features.signals import SPACING_KEYS
from handx.synth import INTERACTIONS, generate_clip

from codes_builders import blank_codes, change, hold

KINDS = ("independent", *INTERACTIONS)
PER_KIND = 40  # 280 clips
CONTACT_RE = re.compile(r"touch|pinch|meet|press|clap|contact|tap")
FINGER_RE = {"thumb": "thumb", "index": "index", "middle": r"middle(?! of)", "ring": "ring",
             "pinky": "pinky|little"}
HEDGES = re.compile(r"\b(might|may|seems?|seemingly|possibly|perhaps|maybe|appears?|apparently|probably|likely|"
                    r"somewhat)\b", re.I)
TIME_RE = re.compile(r"initially|at the start|beginning|opening frames|early|first part|mid-sequence|midway|middle of the clip|"
                     r"halfway|towards the end|later on|late in the clip|near the end|very end|final frames|"
                     r"end of the clip|throughout|whole|entire|most of")


# --------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus() -> tuple[list, list[dict]]:
    clips = [generate_clip(11, i, kind=KINDS[i % len(KINDS)]) for i in range(PER_KIND * len(KINDS))]
    codes = motion_codes_batch(np.stack([c.motion for c in clips]))
    return clips, codes


@pytest.fixture(scope="module")
def written(corpus) -> list[tuple[Description, ...]]:
    _, codes = corpus
    requests = [WriteRequest(f"clip{i}", c, codes_hash(c)) for i, c in enumerate(codes)]
    results = list(TemplateWriter(seed=0).write_many(requests))
    assert [r.clip_id for r in results] == [r.clip_id for r in requests]
    assert all(r.error is None for r in results), [r.error for r in results if r.error][:3]
    return [r.descriptions for r in results]




def describe(codes: dict, seed: int = 0) -> tuple[Description, ...]:
    return TemplateWriter(seed).describe(codes, key=codes_hash(codes))


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.;])\s+", text.lower()) if s]


def mentions_contact(text: str, *fingers: str) -> bool:
    """Some sentence of ``text`` has a contact word and (if given) one of the fingers."""
    for s in sentences(text):
        if CONTACT_RE.search(s) and (not fingers or any(re.search(FINGER_RE[f], s) for f in fingers)):
            return True
    return False


# --------------------------------------------------------------------------------------------------------------
# Every clip
# --------------------------------------------------------------------------------------------------------------

def test_corpus_covers_every_kind(corpus):
    clips, _ = corpus
    assert {c.kind for c in clips} == set(KINDS)
    assert len(clips) >= 200


def test_five_valid_descriptions(written):
    for descriptions in written:
        assert len(descriptions) == NUM_VARIANTS
        for d in descriptions:
            assert isinstance(d, Description)
            for text in (d.left, d.right, d.two_hands_relation):
                assert text.strip() and text[0].isupper() and text.rstrip()[-1] in ".)"


def test_deterministic_for_same_codes_and_seed(corpus, written):
    _, codes = corpus
    again = [TemplateWriter(seed=0).describe(c, key=codes_hash(c)) for c in codes[:60]]
    assert again == written[:60]
    other = [TemplateWriter(seed=1).describe(c, key=codes_hash(c)) for c in codes[:60]]
    assert sum(a != b for a, b in zip(other, written[:60])) >= 55


def test_varied_phrasing_across_clips(written):
    firsts = {sentences(d[0].left)[0] for d in written}
    relation_firsts = {sentences(d[2].two_hands_relation)[0] for d in written}
    openings = {" ".join(d[k].left.split()[:2]) for d in written for k in range(NUM_VARIANTS)}
    assert len(firsts) >= 0.8 * len(written), len(firsts)
    assert len(relation_firsts) >= 50, len(relation_firsts)
    assert len(openings) >= 15, sorted(openings)


def test_detail_grows_from_concise_to_detailed(written):
    length = [statistics.mean(len(d[k].left) + len(d[k].right) + len(d[k].two_hands_relation) for d in written)
              for k in range(NUM_VARIANTS)]
    assert length[0] < length[2] < length[4], length
    assert length[4] > 2 * length[0], length
    frames = re.compile(r"\bframes? \d+")
    for d in written:
        assert frames.search(d[4].left + d[4].right + d[4].two_hands_relation)
        assert not frames.search(" ".join(x for v in d[:4] for x in (v.left, v.right, v.two_hands_relation)))


def test_events_are_placed_in_time(written):
    for d in written:
        for variant in d:
            for text in (variant.left, variant.right):
                assert TIME_RE.search(text.lower()) or re.search(r"frames? \d+", text), text


def test_every_contact_reported_in_every_variant(corpus, written):
    _, codes = corpus
    checked = 0
    for c, descriptions in zip(codes, written):
        for contact in contacts(c):
            checked += 1
            for d in descriptions:
                if contact.kind == "intra":
                    side, finger = contact.parts[1]
                    assert mentions_contact(getattr(d, side), finger), (contact.describe(), getattr(d, side))
                elif contact.kind == "palm_palm":
                    assert re.search(r"palm|clap", d.two_hands_relation.lower()) \
                        and mentions_contact(d.two_hands_relation), (contact.describe(), d.two_hands_relation)
                else:
                    fingers = {p for _, p in contact.parts if p != "palm"}
                    assert mentions_contact(d.two_hands_relation, *fingers), (contact.describe(),
                                                                              d.two_hands_relation)
    assert checked > 200


def test_contact_free_relation_says_hands_act_independently(corpus, written):
    _, codes = corpus
    seen = 0
    for c, descriptions in zip(codes, written):
        rel = c["two_hand_relationships"]
        busy = any(contacts(c)) or any("start_des" in e for group in rel.values() for evs in group.values()
                                       for e in evs)
        if busy:
            continue
        seen += 1
        for d in descriptions:
            text = d.two_hands_relation.lower()
            assert re.search(r"independent|separately|on its own|no interaction", text), text
            assert not re.search(r"\b(touch|touches|meet|meets|press|presses)\b", text.replace("never touch", ""))
    assert seen >= 10


def test_no_hedging_and_no_left_right_mix_up(written):
    right_actor = re.compile(r"\bright (hand|thumb|index|middle|ring|pinky|little|palm|fingertip|finger|wrist)")
    left_actor = re.compile(r"\bleft (hand|thumb|index|middle|ring|pinky|little|palm|fingertip|finger|wrist)")
    for descriptions in written:
        for d in descriptions:
            for text in (d.left, d.right, d.two_hands_relation):
                assert not HEDGES.search(text), text
            assert not right_actor.search(d.left.lower()), d.left
            assert not left_actor.search(d.right.lower()), d.right


def test_whole_finger_phrasing(written):
    for descriptions in written:
        for d in descriptions:
            for text in (d.left, d.right):
                assert not re.search(r"\b(mcp|pip|dip|ip)\b", text.lower()), text
                for s in sentences(text):
                    if "joint" in s or "knuckle" in s:
                        assert "hyperext" in s, s


# --------------------------------------------------------------------------------------------------------------
# Hand-made codes for single rules
# --------------------------------------------------------------------------------------------------------------

def test_hyperextension_always_reported(corpus):
    _, codes = corpus
    for c in codes[:35]:
        c = copy.deepcopy(c)
        c["right_hand_events"]["finger_flexing"]["ring_mcp"] = [change(12, 30, "Fully extended", "Hyper extend")]
        for d in describe(c):
            assert "hyperext" in d.right.lower(), d.right
            assert "hyperext" not in d.left.lower(), d.left
            assert any("ring" in s and "hyperext" in s for s in sentences(d.right)), d.right
        assert not verify_all(c, describe(c))


def test_hyperextended_knuckle_with_bent_upper_joints_is_said_apart():
    c = blank_codes()
    flex = c["left_hand_events"]["finger_flexing"]
    flex["index_mcp"] = hold("Hyper extend")
    flex["index_pip"] = hold("Partially bent")
    flex["index_dip"] = hold("Partially bent")
    for d in describe(c):
        s = next(s for s in sentences(d.left) if "hyperext" in s)
        assert "index" in s and "knuckle" in s and "bent" in s, s


def test_fingers_that_move_alike_are_merged_and_repetitions_counted():
    c = blank_codes()
    flex = c["left_hand_events"]["finger_flexing"]
    for f in ("middle", "ring", "pinky"):
        for j in ("mcp", "pip", "dip"):
            flex[f"{f}_{j}"] = [change(5 + j.__len__(), 25, "Fully extended", "Fully bent", "Fast")]
    cycles = [change(2, 12, "Fully extended", "Fully bent", "Fast"), change(14, 24, "Fully bent", "Fully extended"),
              change(30, 40, "Fully extended", "Fully bent"), change(44, 54, "Fully bent", "Fully extended")]
    for j in ("mcp", "pip", "dip"):
        c["right_hand_events"]["finger_flexing"][f"index_{j}"] = list(cycles)
    for d in describe(c):
        assert re.search(r"middle, ring and (pinky|little) fingers", d.left), d.left
        assert d.left.count("middle") == 1, d.left
        assert "index" in d.right and "twice" in d.right, d.right


def test_whole_hand_closing_is_a_fist():
    c = blank_codes()
    for f in ("index", "middle", "ring", "pinky"):
        for j in ("mcp", "pip", "dip"):
            c["right_hand_events"]["finger_flexing"][f"{f}_{j}"] = [change(10, 30, "Fully extended", "Fully bent")]
    assert all("fist" in d.right for d in describe(c))


def test_wrist_trajectory_and_spacing_words():
    c = blank_codes()
    c["left_hand_events"]["wrist_trajectory"] = {"left-right": [
        {"start": 5, "end": 25, "direction": "left-to-right", "v_des": "Fast"}]}
    for k in SPACING_KEYS:
        c["right_hand_events"]["finger_spacing"][k] = [change(20, 40, "Closed", "Open")]
    descriptions = describe(c)
    for d in descriptions:
        assert re.search(r"to the right|rightward", d.left), d.left
        assert re.search(r"spread|fan", d.right), d.right
    assert re.search(r"quickly|rapidly|swiftly|fast", descriptions[4].left)
    assert not verify_all(c, descriptions)


def test_hand_without_events_holds_still():
    c = blank_codes()
    c["right_hand_events"]["wrist_trajectory"] = {"down-up": [
        {"start": 5, "end": 25, "direction": "down-to-up", "v_des": "Medium"}]}
    for d in describe(c):
        assert re.search(r"still|motionless|does not move", d.left), d.left
        assert re.search(r"\bup\b|upward", d.right), d.right


def test_relation_reports_contact_approach_and_position_change():
    c = blank_codes()
    rel = c["two_hand_relationships"]
    rel["finger_palm_distance"]["right_index_tip, left_palm"] = [change(5, 30, "Far", "Contact", "Fast"),
                                                                 change(30, 50, "Contact", "Far", "Fast")]
    rel["palm_palm_distance"]["left_palm, right_palm"] = [change(5, 30, "Far", "Near", "Fast"),
                                                          change(30, 50, "Near", "Far", "Fast")]
    rel["palm_palm_relative_position"]["up-down"] = [change(10, 40, RELATIVE_LABELS[2][1], RELATIVE_LABELS[2][2])]
    descriptions = describe(c)
    for d in descriptions:
        assert re.search(r"right index fingertip .*(touch|contact|press).* left palm|right hand touches the left "
                         r"palm", d.two_hands_relation), d.two_hands_relation
    detailed = descriptions[4].two_hands_relation
    assert "above" in detailed and re.search(r"approach|towards each other|closer", detailed), detailed
    assert not verify_all(c, descriptions)


def test_plural_agreement():
    assert plural("curls fully and then straightens again") == "curl fully and then straighten again"
    assert plural("touches the thumb") == "touch the thumb"
    assert plural("flexes and extends twice") == "flex and extend twice"


def test_bad_codes_give_an_error_result_not_an_exception(corpus):
    _, codes = corpus
    requests = [WriteRequest("ok", codes[0], codes_hash(codes[0])), WriteRequest("bad", {"frame_count": 60}, "x")]
    results = {r.clip_id: r for r in TemplateWriter().write_many(requests)}
    assert results["ok"].descriptions is not None and results["ok"].error is None
    assert results["bad"].descriptions is None and "KeyError" in results["bad"].error


# --------------------------------------------------------------------------------------------------------------
# Throughput and agreement with the verifier
# --------------------------------------------------------------------------------------------------------------

def test_throughput(corpus):
    _, codes = corpus
    writer = TemplateWriter()
    requests = [WriteRequest(str(i), c, codes_hash(c)) for i, c in enumerate(codes)]
    best = min(_timed(lambda: list(writer.write_many(requests))) for _ in range(3))
    rate = len(requests) / best
    print(f"template writer throughput: {rate:.0f} clips/s ({len(requests)} clips, best of 3, one process)")
    assert rate >= 300, f"template writer too slow: {rate:.0f} clips/s"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_verifier_agrees_with_template_output(corpus, written):
    _, codes = corpus
    failures = [(i, verify_all(c, d)) for i, (c, d) in enumerate(zip(codes, written))]
    failures = [(i, p) for i, p in failures if p]
    agreement = 1 - len(failures) / len(codes)
    print(f"verifier agreement on template output: {agreement:.2%} of {len(codes)} clips with zero problems")
    assert agreement >= 0.99, f"agreement {agreement:.2%}; first problems: {failures[:3]}"
