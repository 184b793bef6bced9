"""Motion codes: agreement with the plain implementation, invariances, hand-computed cases, segmentation edge
cases, contact labels and statistics (reference §2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from handx import skeleton
from handx.features import codes as C
from handx.features import signals
from handx.features.contacts import LABEL_NAMES, contact_frames, contact_labels, contact_stats
from handx.features.naive import motion_codes_naive, split_events
from handx.features.segment import Bands, SegmentSpec, segment
from handx.synth import generate_clip


@pytest.fixture(scope="module")
def synth_clips():
    kinds = [None, None, "clap", "tip_to_tip", "tip_to_palm", "palms_together", "mirrored", "hold_and_act"]
    return [generate_clip(11, i, kind=k) for i, k in enumerate(kinds)]


def test_vectorised_codes_equal_the_plain_definition(synth_clips):
    motions = np.stack([c.motion for c in synth_clips])
    fast = C.motion_codes_batch(motions)
    for clip, codes in zip(synth_clips, fast):
        assert codes == motion_codes_naive(clip.motion), clip.kind


def test_codes_of_real_capture_equal_the_plain_definition(shared_data):
    from handx.io.bvh import read_bvh_pair
    from handx.motion import centre_on_right_wrist

    seq = read_bvh_pair(shared_data / "manipnet" / "cup1" / "leftHand.bvh",
                        shared_data / "manipnet" / "cup1" / "rightHand.bvh")
    clips = np.stack([centre_on_right_wrist(seq.joints[s:s + 60]) for s in (300, 900)])
    assert C.motion_codes_batch(clips) == [motion_codes_naive(c) for c in clips]


def test_schema_has_the_reference_keys(synth_clips):
    codes = C.motion_codes(synth_clips[0].motion)
    assert set(codes) == {"frame_count", "left_hand_events", "right_hand_events", "two_hand_relationships"}
    assert codes["frame_count"] == 60
    for hand in ("left", "right"):
        events = codes[f"{hand}_hand_events"]
        assert set(events) == {"finger_flexing", "finger_spacing", "finger_tip_contact", "wrist_trajectory"}
        assert list(events["finger_flexing"]) == list(signals.FLEXION_KEYS)
        assert list(events["finger_spacing"]) == list(signals.SPACING_KEYS)
    relations = codes["two_hand_relationships"]
    assert set(relations) == {"finger_tip_contact", "finger_palm_distance", "palm_palm_distance",
                              "palm_palm_relative_position"}
    assert len(relations["finger_palm_distance"]) == 10
    allowed = {"start", "end", "start_des", "end_des", "constant_des", "v_des", "direction"}
    for group in (codes["left_hand_events"], codes["right_hand_events"], relations):
        for feature in group.values():
            for evs in feature.values():
                for ev in evs:
                    assert set(ev) <= allowed and 0 <= ev["start"] <= ev["end"] <= 60


# ----------------------------------------------------------------------------------------- invariances

def _swap_keys(mapping):
    out = {}
    for key, value in mapping.items():
        out[key.replace("left", "@").replace("right", "left").replace("@", "right")] = value
    return out


def _flip_wrist(events):
    flip = {"left-to-right": "right-to-left", "right-to-left": "left-to-right"}
    return {axis: [{**e, "direction": flip.get(e["direction"], e["direction"])} if axis == "left-right" else e
                   for e in evs] for axis, evs in events.items()}


def test_mirroring_swaps_left_and_right_events(synth_clips):
    for clip in synth_clips:
        codes = C.motion_codes(clip.motion)
        mirrored = C.motion_codes(skeleton.mirror(clip.motion))
        for ours, theirs in (("left", "right"), ("right", "left")):
            a, b = mirrored[f"{ours}_hand_events"], codes[f"{theirs}_hand_events"]
            assert a["finger_flexing"] == b["finger_flexing"]
            assert a["finger_spacing"] == b["finger_spacing"]
            assert a["finger_tip_contact"] == b["finger_tip_contact"]
            assert a["wrist_trajectory"] == _flip_wrist(b["wrist_trajectory"])
        m, o = mirrored["two_hand_relationships"], codes["two_hand_relationships"]
        swapped_tips = {", ".join(sorted(k.split(", "))): v for k, v in _swap_keys(o["finger_tip_contact"]).items()}
        assert {", ".join(sorted(k.split(", "))): v for k, v in m["finger_tip_contact"].items()} == swapped_tips
        assert m["finger_palm_distance"] == _swap_keys(o["finger_palm_distance"])
        # palm_palm_distance is directional (each left sample's nearest right sample, reference §2.4), so it
        # is not expected to be mirror-symmetric and is not compared here.
        # right − left along x is unchanged by a reflection that also swaps the hands
        assert m["palm_palm_relative_position"]["left-right"] == o["palm_palm_relative_position"]["left-right"]


def test_translating_both_hands_changes_no_event(synth_clips):
    for clip in synth_clips[:4]:
        shifted = clip.motion.astype(np.float64) + np.array([0.375, -0.25, 0.125])
        assert C.motion_codes(shifted) == C.motion_codes(clip.motion.astype(np.float64))


def test_a_clip_at_rest_gives_constant_events_only(synth_clips):
    still = np.repeat(synth_clips[0].motion[20:21], 60, axis=0)
    codes = C.motion_codes(still)
    for hand in ("left", "right"):
        events = codes[f"{hand}_hand_events"]
        assert events["wrist_trajectory"] == {}
        for feature in ("finger_flexing", "finger_spacing"):
            for evs in events[feature].values():
                assert len(evs) == 1 and set(evs[0]) == {"start", "end", "constant_des"} and evs[0]["end"] == 60
        for evs in events["finger_tip_contact"].values():
            assert evs == [{"start": 0, "end": 59, "constant_des": "Contact"}]
    for feature in ("finger_palm_distance", "palm_palm_distance", "palm_palm_relative_position"):
        for evs in codes["two_hand_relationships"][feature].values():
            assert len(evs) == 1 and "constant_des" in evs[0]


# ----------------------------------------------------------------------------------- hand-computed cases

def _straight_hand(offset=(0.0, 0.0, 0.0)):
    """A flat right hand: palm in the x–y plane, fingers along +y, joints spaced along each finger."""
    hand = np.zeros((21, 3))
    xs = {"thumb": 0.04, "index": 0.02, "middle": 0.0, "ring": -0.02, "pinky": -0.04}
    for finger, chain in skeleton.CHAINS.items():
        base_y = 0.03 if finger == "thumb" else 0.09
        for k, joint in enumerate(chain[1:]):
            hand[joint] = [-xs[finger], base_y + 0.03 * k, 0.0]
    return hand + np.asarray(offset)


def _bend_index_pip(hand, degrees):
    """Rotate the index finger's distal part about the PIP joint's local axis (palm down: towards −z)."""
    out = hand.copy()
    pip = out[skeleton.JOINT_INDEX["index_pip"]]
    a = math.radians(degrees)
    for name in ("index_dip", "index_tip"):
        rel = out[skeleton.JOINT_INDEX[name]] - pip
        out[skeleton.JOINT_INDEX[name]] = pip + [rel[0], rel[1] * math.cos(a), -rel[1] * math.sin(a)]
    return out


def test_known_bend_angle():
    hand = _bend_index_pip(_straight_hand(), 45.0)
    angles = signals.flexion(hand[None], skeleton.RIGHT)[:, 0]  # (14,)
    k = signals.FLEXION_KEYS.index("index_pip")
    assert abs(angles[k]) == pytest.approx(math.radians(45.0), abs=1e-9)
    assert angles[signals.FLEXION_KEYS.index("middle_pip")] == 0.0
    # 10 degrees is below the 11 degree floor and reads as straight
    small = signals.flexion(_bend_index_pip(_straight_hand(), 10.0)[None], skeleton.RIGHT)[k, 0]
    assert small == 0.0


def test_known_fingertip_distance_and_contact_run():
    hand = _straight_hand()
    t = 20
    motion = np.repeat(np.stack([hand - [0.2, 0, 0], hand])[None], t, axis=0)  # (T, 2, 21, 3)
    thumb, index = skeleton.TIPS["thumb"], skeleton.TIPS["index"]
    motion[5:9, 1, thumb] = motion[5:9, 1, index] + [0.0, 0.0, 0.015]  # 1.5 cm: contact
    motion[9, 1, thumb] = motion[9, 1, index] + [0.0, 0.0, 0.025]  # 2.5 cm: not
    d = signals.intra_tip_distances(np.moveaxis(motion, 1, 0))[1, 0]  # right hand, index–thumb
    assert d[5] == pytest.approx(0.015) and d[9] == pytest.approx(0.025)
    codes = C.motion_codes(motion)
    assert codes["right_hand_events"]["finger_tip_contact"]["index_tip, thumb_tip"] == [
        {"start": 5, "end": 8, "constant_des": "Contact"}]
    assert "index_tip, thumb_tip" not in codes["left_hand_events"]["finger_tip_contact"]


def test_known_palm_distance():
    right = _straight_hand()
    left = right * [-1, 1, 1] + [0.0, 0.0, 0.05]  # the mirrored palm 5 cm straight above
    motion = np.stack([left, right])[None]  # (1, 2, 21, 3)
    mean30, minimum = signals.palm_palm_distance(motion)
    assert minimum[0] == pytest.approx(0.05, abs=1e-6) and mean30[0] == pytest.approx(0.05, abs=1e-6)
    rel = signals.palm_relative_position(motion)[:, 0]
    np.testing.assert_allclose(rel, [0.0, 0.0, -0.05], atol=1e-9)


@pytest.mark.parametrize("speed,band", [(0.02, None), (0.10, "Medium"), (0.30, "Fast")])
def test_known_wrist_speed_band(speed, band):
    hand = _straight_hand()
    t = 30
    motion = np.repeat(np.stack([hand - [0.2, 0, 0], hand])[None], t, axis=0)
    motion[:, 1] += (np.arange(t) / 30.0 * speed)[:, None, None] * np.array([1.0, 0.0, 0.0])
    wrist = C.motion_codes(motion)["right_hand_events"]["wrist_trajectory"]
    if band is None:  # 2 cm/s for 1 s moves 1.9 cm < delta 3 cm: no event
        assert wrist == {}
    else:
        (event,) = wrist["left-right"]
        assert event["direction"] == "left-to-right" and event["v_des"] == band and event["end"] == t


# ---------------------------------------------------------------------------------- segmentation edges

SPEC = SegmentSpec(values=Bands((1.0,), ("low", "high")), speeds=Bands((0.5,), ("slow", "fast")), delta=0.5,
                   min_duration=3, unit_len=1)


def _check(x, spec=SPEC):
    seg = segment(np.asarray([x], float), spec, fps=1.0)
    events = [{"start": int(s), "end": int(e)} for s, e in zip(seg.start, seg.end)]
    expected = split_events(list(map(float, x)), spec, fps=1.0)
    assert events == [{"start": e["start"], "end": e["end"]} for e in expected]
    return seg, expected


def test_no_qualifying_segment_gives_one_constant_event_with_the_mean_label():
    seg, expected = _check([0.2, 0.3, 0.2, 0.3, 0.2, 0.3])
    assert expected == [{"start": 0, "end": 6, "constant_des": "low"}]
    assert seg.constant.tolist() == [True]


def test_segments_shorter_than_the_minimum_are_not_emitted():
    # A jump over two frames qualifies on delta and sign but is shorter than min_duration 3 once the search
    # has moved past the long window; a 3-frame rise is emitted.
    _, expected = _check([0.0, 0.0, 2.0, 2.0])
    assert [e["start"] for e in expected if "start_des" in e] == [0]
    _, short = _check([0.0, 2.0])
    assert short == [{"start": 0, "end": 2, "constant_des": "high"}]


def test_longest_window_wins_ties_and_the_eighty_percent_rule():
    # Rising then flat: the longest consistent window [0, 6) wins over the shorter ones ending earlier.
    _, expected = _check([0.0, 0.5, 1.0, 1.5, 1.5, 1.5])
    assert expected[0]["start"] == 0 and expected[0]["end"] == 6
    # 4 of 5 velocities >= 0 (exactly 80 %) is consistent; 3 of 5 is not.
    _check([0.0, 0.6, 1.2, 1.0, 1.6])
    _check([0.0, 0.6, 0.4, 0.2, 1.6])


def test_unit_len_grid_matches_the_plain_search():
    rng = np.random.default_rng(5)
    spec = SegmentSpec(values=Bands((0.3,), ("a", "b")), speeds=Bands((1.0,), ("s", "f")), delta=0.2,
                       min_duration=4, unit_len=3)
    for _ in range(50):
        _check(np.cumsum(rng.normal(0, 0.1, 40)), spec)


def test_random_signals_match_the_plain_search():
    rng = np.random.default_rng(6)
    for spec in (C.FLEXION, C.SPACING, C.WRIST, C.FINGER_PALM, C.PALM_PALM, C.RELATIVE):
        x = np.cumsum(rng.normal(0, spec.delta / 4, (30, 60)), axis=1)
        seg = segment(x, spec)
        for n in range(30):
            mine = [(int(s), int(e)) for k, s, e in zip(seg.signal, seg.start, seg.end) if k == n]
            plain = [(e["start"], e["end"]) for e in split_events(list(x[n]), spec)]
            assert mine == plain


# ----------------------------------------------------------------------------------------------- contacts

def test_contact_labels_on_known_contacts():
    hand = _straight_hand()
    t = 10
    left = hand * [-1, 1, 1] - [0.3, 0, 0]
    motion = np.repeat(np.stack([left, hand])[None], t, axis=0)  # hands 30 cm apart: no contact
    motion[2:5, 1, skeleton.TIPS["thumb"]] = motion[2:5, 1, skeleton.TIPS["ring"]] + [0, 0, 0.01]
    motion[6:8, 0, skeleton.TIPS["index"]] = hand[skeleton.JOINT_INDEX["middle_mcp"]] + [0, 0, 0.02]
    labels = contact_labels(motion)  # (T, 19)
    assert labels.shape == (t, 19) and len(LABEL_NAMES) == 19
    on = {LABEL_NAMES[c]: np.flatnonzero(labels[:, c]).tolist() for c in range(19) if labels[:, c].any()}
    assert on == {"right ring tip - thumb tip": [2, 3, 4], "left index tip - right palm": [6, 7]}
    assert (contact_labels(motion) == labels).all()  # deterministic


def test_contact_statistics_by_hand():
    masks = np.zeros((2, 60), bool)
    masks[0, 10:20] = True  # 10 frames
    masks[0, 30:35] = True  # 5 frames
    masks[1, 0:15] = True  # 15 frames
    stats = contact_stats([masks], fps=30)
    assert stats.segments == 3 and stats.frames == 120
    assert stats.ratio == pytest.approx(30 / 120)
    assert stats.mean_duration_s == pytest.approx(30 / 3 / 30)
    assert stats.frequency_hz == pytest.approx(3 / 4.0)
    assert stats.score == pytest.approx(0.4 * 0.25 + 0.3 * (1 / 3) / 5 + 0.3 * 0.75 / 5)


def test_contact_frames_follow_the_statistics_rule():
    hand = _straight_hand()
    motion = np.repeat(np.stack([hand * [-1, 1, 1] - [0.3, 0, 0], hand])[None], 6, axis=0)
    motion[1, 0, skeleton.TIPS["pinky"]] = hand[skeleton.TIPS["index"]] + [0, 0, 0.019]  # tip-tip < 2 cm
    motion[3, 0, skeleton.TIPS["pinky"]] = hand[skeleton.JOINT_INDEX["ring_pip"]] + [0, 0, 0.024]  # tip-joint
    motion[5, 0, skeleton.TIPS["pinky"]] = hand[skeleton.JOINT_INDEX["ring_pip"]] + [0, 0, 0.026]  # too far
    assert contact_frames(motion).tolist() == [False, True, False, True, False, False]
