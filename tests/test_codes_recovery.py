"""Motion codes recover the synthetic corpus's ground-truth programs (reference §2; acceptance of the motion-code
issue): fingertip contacts with precision and recall ≥ 0.95, flexion state changes and wrist translations ≥ 0.9,
an event matching when it overlaps the programmed frames within ±3 frames.

The truth comes from the generator, not from the motion: contact runs it measured, the flexion bands of its own
joint angles at the start and end of each finger event (``flexion_changes``), and its wrist moves.
"""

from __future__ import annotations

import numpy as np
import pytest

from handx.features.codes import motion_codes_batch
from handx.synth import generate_clip

TOL = 3
MOVE_DIRECTION = {"left": ("left-right", "right-to-left"), "right": ("left-right", "left-to-right"),
                  "forward": ("front-back", "back-to-front"), "back": ("front-back", "front-to-back"),
                  "up": ("down-up", "down-to-up"), "down": ("down-up", "up-to-down")}
MIN_MOVE = 0.04  # wrist moves shorter than this are near the 3 cm segmentation delta and are not scored


def overlaps(a, b) -> bool:
    """Inclusive frame ranges ``a`` and ``b`` overlap within ±TOL frames."""
    return a[0] <= b[1] + TOL and b[0] <= a[1] + TOL


def precision_recall(truth: list[tuple], found: list[tuple]) -> tuple[int, int, int, int]:
    """Counts (found matched, found, truth matched, truth) for items ``(key, (first, last))``."""
    hit_found = sum(any(k == tk and overlaps(r, tr) for tk, tr in truth) for k, r in found)
    hit_truth = sum(any(k == fk and overlaps(r, fr) for fk, fr in found) for k, r in truth)
    return hit_found, len(found), hit_truth, len(truth)


def contacts(clip, codes):
    truth = [(frozenset(e["between"]), (e["start"], e["end"] - 1)) for e in clip.program
             if e["action"] == "contact" and e["kind"] == "tip_tip"]
    found = []
    for hand in ("left", "right"):
        for key, events in codes[f"{hand}_hand_events"]["finger_tip_contact"].items():
            finger = key.split("_")[0]
            found += [(frozenset({f"{hand}_thumb_tip", f"{hand}_{finger}_tip"}), (e["start"], e["end"])) for e in events]
    for key, events in codes["two_hand_relationships"]["finger_tip_contact"].items():
        found += [(frozenset(k.strip() for k in key.split(",")), (e["start"], e["end"])) for e in events]
    return truth, found


def flexion(clip, codes):
    truth, found = [], []
    for hand in ("left", "right"):
        truth += [((hand, c["joint"]), (e["start"], e["end"] - 1)) for e in clip.program if e["hand"] == hand
                  for c in e.get("flexion_changes", [])]
        found += [((hand, key), (e["start"], e["end"] - 1))
                  for key, events in codes[f"{hand}_hand_events"]["finger_flexing"].items()
                  for e in events if "start_des" in e]
    return truth, found


def wrist(clip, codes):
    truth, found = [], []
    for hand in ("left", "right"):
        truth += [((hand, *MOVE_DIRECTION[e["direction"]]), (e["start"], e["end"] - 1)) for e in clip.program
                  if e["hand"] == hand and e["action"] == "move" and e["distance"] >= MIN_MOVE]
        found += [((hand, axis, e["direction"]), (e["start"], e["end"] - 1))
                  for axis, events in codes[f"{hand}_hand_events"]["wrist_trajectory"].items() for e in events]
    return truth, found


@pytest.fixture(scope="module")
def corpus():
    clips = [generate_clip(3, i) for i in range(200)]
    return clips, motion_codes_batch(np.stack([c.motion for c in clips]))


@pytest.mark.parametrize("family,extract,floor", [("fingertip contacts", contacts, 0.95),
                                                   ("flexion state changes", flexion, 0.9),
                                                   ("wrist translations", wrist, 0.9)])
def test_codes_recover_the_programs(corpus, family, extract, floor, record_property):
    totals = np.zeros(4, dtype=int)
    for clip, codes in zip(*corpus):
        totals += precision_recall(*extract(clip, codes))
    precision, recall = totals[0] / totals[1], totals[2] / totals[3]
    record_property(family, f"precision {precision:.3f} ({totals[1]} events), recall {recall:.3f} ({totals[3]})")
    print(f"{family}: precision {precision:.3f} over {totals[1]} events, recall {recall:.3f} over {totals[3]}")
    assert totals[3] > 100, f"too few {family} in the corpus to score"
    assert precision >= floor and recall >= floor, (family, precision, recall)
