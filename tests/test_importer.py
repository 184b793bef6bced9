"""The batch import pipeline: bad files and items are reported and skipped, good clips are kept, gaps in a
recording are never bridged, and splits name only clips that exist."""

from __future__ import annotations

import json
from pathlib import Path

import lzstring
import numpy as np
import pytest

from conftest import release_entry, write_release
from handx.errors import HandxInputError
from handx.io import leap
from handx.io.importer import import_paths
from handx.io.store import Store
from handx.motion import FPS, WINDOW

CLOCK_US = 5_000_000


def _leap_frame(t: float) -> dict:
    """One Leap frame at ``t`` seconds: a flat right hand (device mm) moving slowly; both hands tracked."""
    hands, pointables = [], []
    for hand_id, (side, sign) in enumerate((("left", -1.0), ("right", 1.0)), start=1):
        hands.append({"id": hand_id, "type": side, "confidence": 1.0, "direction": [0.0, 0.0, -1.0]})
        base = np.array([sign * 120.0, 200.0 + 10.0 * np.sin(t), 0.0])
        for finger, lateral in enumerate((-40.0, -20.0, 0.0, 20.0, 40.0)):
            mcp = base + [sign * lateral, 0.0, -10.0]
            points = [mcp + [0.0, 0.0, -d] for d in (0.0, 40.0, 65.0, 85.0)]
            pointables.append({"handId": hand_id, "type": finger, "tool": False,
                               **{k: p.tolist() for k, p in zip(leap.POSITION_FIELDS, points)}})
    return {"timestamp": CLOCK_US + round(t * 1e6), "hands": hands, "pointables": pointables}


def write_leap(path: Path, times_s) -> Path:
    document = {"metadata": {"formatVersion": 0.1, "frames": len(times_s)}, "frames": [_leap_frame(t) for t in times_s]}
    path.write_text(lzstring.LZString().compressToBase64(json.dumps(document)))
    return path


def _ids_resolve(store: Path) -> None:
    s = Store(store)
    for name, ids in s.splits().items():
        for cid in ids:
            s.index_of(cid)  # raises for a split that names a clip the store does not have


# ---------------------------------------------------------------- gaps in a recording

def test_a_long_gap_is_not_bridged_and_is_reported(tmp_path, caplog):
    """Two 2.5 s bursts 50 minutes apart: two segments, one window each, the gap in the report and the log."""
    burst = np.arange(0, 2.5, 1 / 60)  # 150 samples at 60 Hz
    path = write_leap(tmp_path / "gap.json.lz", np.concatenate([burst, burst + 3000.0]))
    with caplog.at_level("WARNING"):
        report = import_paths([path], "leap", tmp_path / "store", progress=False)
    assert report.added == 2 and not report.errors  # not ~1,500 clips interpolated across 50 minutes
    assert len(report.gaps) == 1
    gap = report.gaps[0]
    assert gap["file"] == str(path)
    assert gap["from_s"] == pytest.approx(burst[-1], abs=1e-6) and gap["to_s"] == pytest.approx(3000.0, abs=1e-6)
    assert any(str(path) in r.getMessage() and "3000" in r.getMessage() for r in caplog.records)
    # output bounded by what was captured: 2 × (2.48 s × 30 + 1) frames at most, windows start at each segment
    store = Store(tmp_path / "store")
    starts = sorted(r.source["frame_start"] for r in store.records)
    assert starts == [0, round(3000.0 * FPS)]
    assert all(r.source["frame_end"] - r.source["frame_start"] == WINDOW for r in store.records)


# ---------------------------------------------------------------- a bad file among good ones

def test_one_bad_file_does_not_lose_the_good_clips_of_the_batch(tmp_path):
    """A file whose JSON breaks the reader (a finger type that is a list) sits between two good files."""
    folder = tmp_path / "in"
    folder.mkdir()
    times = np.arange(0, 2.2, 1 / 60)
    write_leap(folder / "a.json.lz", times)
    bad = json.loads(lzstring.LZString().decompressFromBase64(write_leap(folder / "b.json.lz", times).read_text()))
    bad["frames"][3]["pointables"][0]["type"] = [0]
    (folder / "b.json.lz").write_text(lzstring.LZString().compressToBase64(json.dumps(bad)))
    write_leap(folder / "c.json.lz", times)
    report = import_paths([folder], "leap", tmp_path / "store", progress=False)
    assert report.items == 3 and report.added == 2
    assert [e["file"] for e in report.errors] == [str(folder / "b.json.lz")]
    assert report.errors[0]["problem"]
    assert sorted(r.source["sequence"] for r in Store(tmp_path / "store").records) == ["a", "c"]
    with pytest.raises(HandxInputError, match="b.json.lz"):
        import_paths([folder], "leap", tmp_path / "strict", progress=False, strict=True)


# ---------------------------------------------------------------- the HandX release

def test_a_value_too_large_for_float32_refuses_that_clip_only(tmp_path):
    rng = np.random.default_rng(0)
    entries = [release_entry(rng) for _ in range(4)]
    entries[1]["motion"][7, 1, 4, 2] = 1e300  # finite in float64, inf in float32
    path = tmp_path / "train_can_pos_all_wotextfeat.npz"
    write_release(path, entries)
    out = tmp_path / "store"
    report = import_paths([path], "handx-npz", out, progress=False)
    assert report.added == 3
    assert [(e["file"], e["item"]) for e in report.errors] == [(str(path), "key '1'")]
    assert "float32" in report.errors[0]["problem"]
    assert Store(out).ids("train") == ["handx/train/0", "handx/train/2", "handx/train/3"]
    _ids_resolve(out)


def test_a_broken_release_file_keeps_the_other_files(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "release"
    folder.mkdir()
    write_release(folder / "a_can_pos_all_wotextfeat.npz", [release_entry(rng) for _ in range(2)])
    (folder / "b_can_pos_all_wotextfeat.npz").write_bytes(b"PK\x03\x04 not a zip")
    write_release(folder / "c_can_pos_all_wotextfeat.npz", [release_entry(rng) for _ in range(2)])
    report = import_paths([folder], "handx-npz", tmp_path / "store", progress=False)
    assert report.added == 4 and [e["file"] for e in report.errors] == [str(folder / "b_can_pos_all_wotextfeat.npz")]
    _ids_resolve(tmp_path / "store")
