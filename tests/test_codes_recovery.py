"""Motion codes recover the synthetic corpus's ground-truth programs (reference §2; acceptance of the motion-code
issue): fingertip contacts with precision and recall ≥ 0.95, flexion state changes and wrist translations ≥ 0.9,
an event matching when it overlaps the programmed frames within ±3 frames.

The truth comes from the generator, not from the motion: contact runs it measured, the flexion bands of its own
joint angles at the start and end of each finger event (``flexion_changes``), and its wrist moves.
"""

from __future__ import annotations

import json

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


# ---------------------------------------------------------------------------------------------------------------
# The codes.jsonl side file: a bad line is skipped and reported, the lines after it are kept
# ---------------------------------------------------------------------------------------------------------------

def test_a_garbage_line_in_codes_jsonl_loses_only_itself(tmp_path, caplog):
    import logging

    from handx.annotate.pipeline import CODES_FILE, compute_codes, read_codes
    from handx.synth.corpus import write_synthetic

    store = tmp_path / "s"
    write_synthetic(8, 0, store, progress=False)
    compute_codes(store, batch_size=3, progress=False)
    codes = read_codes(store)
    path = store / CODES_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    damaged = [*lines[:2], b"\x00\xffgarbage{\n", lines[2][:40] + b"\n", b'{"id": "x"}\n', b"[1, 2]\n", *lines[3:]]
    path.write_bytes(b"".join(damaged))

    with caplog.at_level(logging.WARNING, logger="handx.annotate.pipeline"):
        kept = read_codes(store)
    ids = [json.loads(line)["id"] for line in lines]
    assert kept == {i: codes[i] for i in ids if i != ids[2]}  # every good line, the ones after the garbage too
    assert path.read_bytes() == b"".join(damaged)  # the file is not cut short
    reported = [r.getMessage() for r in caplog.records]
    assert [m for m in reported if "line 3:" in m] and [m for m in reported if "line 4:" in m]
    assert [m for m in reported if "line 5:" in m] and [m for m in reported if "line 6:" in m]
    assert all(str(path) in m for m in reported)

    again = compute_codes(store, batch_size=3, progress=False)  # only the clip of the bad line is computed again
    assert (again.existing, again.computed) == (7, 1)
    assert read_codes(store) == codes
