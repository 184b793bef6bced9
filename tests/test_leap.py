"""Leap Motion playback importer: real recordings, hand-made recordings with known positions, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import lzstring
import numpy as np
import pytest

from conftest import assert_plausible_anatomy
from handx import skeleton
from handx.errors import HandxInputError
from handx.io import leap

ALL = ("confidence2", "flapping", "grab", "pinch", "three-claps", "wave")
TWO_HANDS = ("three-claps", "flapping", "confidence2")
ONE_HAND = ("pinch", "grab", "wave")


@pytest.fixture(scope="module")
def recordings(shared_data):
    """name → (raw timestamps in µs, sequence); each file is decompressed once for the whole module."""
    out = {}
    for path in leap.discover(shared_data / "leap"):
        document = leap.load_document(path)
        stamps = np.array([frame["timestamp"] for frame in document["frames"]], dtype=np.float64)
        out[path.name[: -len(leap.SUFFIX)]] = (stamps, leap.sequence_from_document(document, path))
    return out


# ---------------------------------------------------------------- real recordings

def test_every_recording_imports_at_30_fps(recordings):
    assert sorted(recordings) == sorted(ALL)
    for name, (stamps, seq) in recordings.items():
        assert seq.joints.dtype == np.float32 and seq.joints.shape[1:] == (2, 21, 3)
        assert seq.source.sequence == name and seq.source.space == "metric"
        assert seq.source.dataset == "leap-playback" and seq.source.license == "Apache-2.0"
        duration = (stamps[-1] - stamps[0]) * 1e-6
        assert abs(seq.num_frames - (duration * 30 + 1)) <= 1, (name, seq.num_frames, duration)
        # joints are finite exactly where a hand is present, NaN elsewhere
        np.testing.assert_array_equal(np.isfinite(seq.joints).all(axis=(2, 3)), seq.present)
        assert np.isnan(seq.joints[~seq.present]).all()


@pytest.mark.parametrize("name", TWO_HANDS)
def test_two_hand_recordings_are_anatomically_plausible(recordings, name):
    seq = recordings[name][1]
    assert seq.present.all(), "both hands are tracked in every frame of these clips"
    assert_plausible_anatomy(seq.joints, seq.present, label=name)


@pytest.mark.parametrize("name", ONE_HAND)
def test_single_hand_recordings_mark_the_left_hand_absent(recordings, name):
    seq = recordings[name][1]
    assert not seq.present[:, skeleton.LEFT].any()
    assert seq.present[:, skeleton.RIGHT].all()
    right = seq.joints[:, skeleton.RIGHT]  # (T, 21, 3)
    bones = skeleton.bone_lengths(right)  # (T, 20)
    assert np.abs(bones / np.median(bones, axis=0) - 1).max() <= 0.05
    lengths = skeleton.hand_length(right)
    assert 0.15 <= lengths.min() and lengths.max() <= 0.22
    tips = np.linalg.norm(right[:, skeleton.TIP_BONES[:, 1]] - right[:, skeleton.TIP_BONES[:, 0]], axis=-1)
    assert 0.015 <= tips.min() and tips.max() <= 0.035


def test_estimated_wrist_sits_behind_every_finger_base(recordings):
    """The wrist rule gives a wrist proximal of all five finger bases, at anatomical distances."""
    names = skeleton.JOINT_INDEX
    bases = [names["thumb_cmc"], names["index_mcp"], names["middle_mcp"], names["ring_mcp"], names["pinky_mcp"]]
    for name, (_, seq) in recordings.items():
        hands = seq.joints[seq.present].astype(np.float64)  # (F, 21, 3)
        wrist = hands[:, skeleton.WRIST]  # (F, 3)
        axis = hands[:, names["middle_mcp"]] - wrist
        to_middle = np.linalg.norm(axis, axis=-1)
        axis /= to_middle[:, None]
        assert 0.070 <= to_middle.min() and to_middle.max() <= 0.100, name
        along = np.einsum("fjc,fc->fj", hands[:, bases] - wrist[:, None], axis)  # (F, 5)
        assert along.min() > 0.003, f"{name}: a finger base is not ahead of the wrist ({along.min():.4f} m)"
        to_cmc = np.linalg.norm(hands[:, names["thumb_cmc"]] - wrist, axis=-1)
        assert 0.015 <= to_cmc.min() and to_cmc.max() <= 0.045, name


def test_device_to_canonical_is_a_proper_rotation():
    rot = leap.DEVICE_TO_CANONICAL
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_array_equal(rot @ [1, 0, 0], [1, 0, 0])  # the user's right stays right
    np.testing.assert_array_equal(rot @ [0, 1, 0], [0, 0, 1])  # up from the device is up
    np.testing.assert_array_equal(rot @ [0, 0, 1], [0, -1, 0])  # towards the user is backwards


def test_decoder_agrees_with_lzstring_public_api(shared_data, tmp_path):
    text = json.dumps({"frames": [{"hands": [], "note": "ünïcode ✋ " * 50, "values": list(range(300))}]})
    packed = lzstring.LZString().compressToBase64(text)
    assert leap.decompress_base64(packed) == text
    real = (shared_data / "leap" / "wave.json.lz").read_text().strip()
    assert leap.decompress_base64(real) == lzstring.LZString().decompressFromBase64(real)


# ---------------------------------------------------------------- hand-made recordings

SEGMENTS_MM = (40.0, 25.0, 20.0)  # mcp→pip, pip→dip, dip→tip, every finger
VELOCITY_MM_S = np.array([100.0, -50.0, 200.0])  # rigid translation of both hands (device frame)
TIMES_S = (0.0, 0.02, 0.05, 0.07, 0.1)  # irregular sampling
CLOCK_US = 123_456_789  # the device clock does not start at zero


#: The documented mapping, Leap finger type 0-4 × (mcp, pip, dip, tip) → our joint names.
JOINTS_BY_LEAP_FINGER = (
    ("thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip"),
    ("index_mcp", "index_pip", "index_dip", "index_tip"),
    ("middle_mcp", "middle_pip", "middle_dip", "middle_tip"),
    ("ring_mcp", "ring_pip", "ring_dip", "ring_tip"),
    ("pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip"),
)


def _finger_points(side: str, t: float) -> np.ndarray:
    """Known device-frame positions (mm): a flat hand pointing away from the user, (5 fingers, 4 points, 3)."""
    sign = -1.0 if side == "left" else 1.0
    base = np.array([sign * 150.0, 180.0, 20.0]) + VELOCITY_MM_S * t
    points = np.empty((5, 4, 3))
    for finger, lateral in enumerate((-40.0, -25.0, -5.0, 15.0, 32.0)):
        mcp = base + np.array([sign * lateral, 0.0, -10.0 if finger else 30.0])
        offsets = np.concatenate([[0.0], np.cumsum(SEGMENTS_MM)])  # (4,)
        points[finger] = mcp + offsets[:, None] * np.array([0.0, 0.0, -1.0])
    return points


def _frame(t: float, sides: tuple[str, ...]) -> dict:
    hands, pointables = [], []
    for hand_id, side in enumerate(sides, start=7):
        hands.append({"id": hand_id, "type": side, "confidence": 0.9, "direction": [0.0, 0.0, -1.0],
                      "palmNormal": [0.0, -1.0, 0.0], "palmPosition": [0.0, 180.0, 0.0]})
        for finger, pts in enumerate(_finger_points(side, t)):
            pointables.append({"id": hand_id * 10 + finger, "handId": hand_id, "type": finger, "tool": False,
                               **{field: p.tolist() for field, p in zip(leap.POSITION_FIELDS, pts)}})
    # a tool pointable on the first hand must be ignored
    pointables.append({"id": 99, "handId": 7, "type": 1, "tool": True,
                       **{field: [0.0, 0.0, 0.0] for field in leap.POSITION_FIELDS}})
    return {"id": int(t * 1000), "timestamp": CLOCK_US + round(t * 1e6), "hands": hands, "pointables": pointables}


def _document(absent_right_at: int | None = 2) -> dict:
    frames = [_frame(t, ("left",) if i == absent_right_at else ("right", "left")) for i, t in enumerate(TIMES_S)]
    return {"metadata": {"formatVersion": 0.1}, "frames": frames}


def _write(path: Path, document: dict | str) -> Path:
    text = document if isinstance(document, str) else json.dumps(document)
    path.write_text(lzstring.LZString().compressToBase64(text))
    return path


def _expected_canonical(device_mm: np.ndarray) -> np.ndarray:
    """Device (x right, y up, z towards the user) mm → canonical (x right, y forward, z up) m, by hand."""
    return np.stack([device_mm[..., 0], -device_mm[..., 2], device_mm[..., 1]], axis=-1) / 1000.0


def test_known_positions_survive_units_axes_and_resampling(tmp_path):
    seq = leap.read_leap(_write(tmp_path / "tiny.json.lz", _document()))
    grid = np.arange(4) / 30.0  # 0 … 0.1 s at 30 fps
    assert seq.num_frames == 4 and seq.source.sequence == "tiny"
    # the right hand is missing at 0.05 s, so the two output frames bracketed by that sample lose it
    np.testing.assert_array_equal(seq.present, [[True, True], [True, False], [True, False], [True, True]])
    for hand, side in enumerate(("left", "right")):
        for k, t in enumerate(grid):
            if not seq.present[k, hand]:
                assert np.isnan(seq.joints[k, hand]).all()
                continue
            device = _finger_points(side, t)  # (5, 4, 3): linear motion, so interpolation is exact
            expected = np.full((21, 3), np.nan)
            for finger, names in enumerate(JOINTS_BY_LEAP_FINGER):
                expected[[skeleton.JOINT_INDEX[n] for n in names]] = _expected_canonical(device[finger])
            # wrist: behind the middle MCP, along -direction (device +z), 0.9 × middle finger length (85 mm)
            wrist_device = device[2, 0] + np.array([0.0, 0.0, 0.9 * sum(SEGMENTS_MM)])
            expected[skeleton.WRIST] = _expected_canonical(wrist_device)
            np.testing.assert_allclose(seq.joints[k, hand], expected, atol=1e-6, err_msg=f"{side} at {t:.3f} s")


def test_known_hand_lands_on_the_correct_side_pointing_forward(tmp_path):
    seq = leap.read_leap(_write(tmp_path / "tiny.json.lz", _document(absent_right_at=None)))
    assert seq.present.all()
    left, right = seq.joints[:, skeleton.LEFT], seq.joints[:, skeleton.RIGHT]
    assert (left[:, skeleton.WRIST, 0] < right[:, skeleton.WRIST, 0]).all()
    fingers = seq.joints[..., skeleton.JOINT_INDEX["middle_tip"], :] - seq.joints[..., skeleton.WRIST, :]
    assert (fingers[..., 1] > 0).all() and np.abs(fingers[..., [0, 2]]).max() < 1e-6


def test_packed_format_reads_like_the_object_format(tmp_path):
    document = _document()
    hand_keys = ["id", "type", "confidence", "direction", "palmNormal", "palmPosition"]
    finger_keys = ["id", "handId", "type", "tool", *leap.POSITION_FIELDS]
    structure = ["id", "timestamp", {"hands": [hand_keys]}, {"pointables": [finger_keys]}]
    packed = [[f["id"], f["timestamp"], [[h[k] for k in hand_keys] for h in f["hands"]],
               [[p[k] for k in finger_keys] for p in f["pointables"]]] for f in document["frames"]]
    packed_doc = {"metadata": {"formatVersion": 2}, "frames": [structure, *packed]}
    plain = leap.read_leap(_write(tmp_path / "plain.json.lz", document))
    unpacked = leap.read_leap(_write(tmp_path / "packed.json.lz", packed_doc))
    np.testing.assert_array_equal(unpacked.present, plain.present)
    np.testing.assert_array_equal(unpacked.joints, plain.joints)


def test_single_hand_recording_marks_the_other_hand_absent(tmp_path):
    document = {"metadata": {}, "frames": [_frame(t, ("right",)) for t in TIMES_S]}
    seq = leap.read_leap(_write(tmp_path / "right.json.lz", document))
    assert not seq.present[:, skeleton.LEFT].any() and seq.present[:, skeleton.RIGHT].all()
    assert np.isnan(seq.joints[:, skeleton.LEFT]).all() and np.isfinite(seq.joints[:, skeleton.RIGHT]).all()


# ---------------------------------------------------------------- bad input

def _problem(path: Path) -> HandxInputError:
    with pytest.raises(HandxInputError) as info:
        leap.read_leap(path)
    assert str(path) in str(info.value) and info.value.path == str(path)
    return info.value


def test_recording_without_hands_is_an_error(tmp_path):
    frames = [{"timestamp": CLOCK_US + i * 10_000, "hands": [], "pointables": []} for i in range(5)]
    error = _problem(_write(tmp_path / "empty-scene.json.lz", {"metadata": {}, "frames": frames}))
    assert "no hands in any frame" in error.problem


@pytest.mark.parametrize("content", ["not base64 @@@", "N4Igtg", "", "abc"])
def test_corrupt_compressed_data_is_an_error(tmp_path, content):
    path = tmp_path / "corrupt.json.lz"
    path.write_text(content)
    _problem(path)


def test_invalid_json_is_an_error(tmp_path):
    assert "JSON" in _problem(_write(tmp_path / "bad.json.lz", '{"frames": [1, 2')).problem
    assert "frames" in _problem(_write(tmp_path / "list.json.lz", "[1, 2, 3]")).problem


def test_malformed_frames_are_errors_naming_the_frame(tmp_path):
    document = _document(absent_right_at=None)
    document["frames"][3]["pointables"][4]["tipPosition"] = [1.0, "x"]
    assert _problem(_write(tmp_path / "bad-point.json.lz", document)).item.startswith("frame 3")
    document = _document(absent_right_at=None)
    document["frames"][2]["timestamp"] = document["frames"][1]["timestamp"]
    assert _problem(_write(tmp_path / "bad-time.json.lz", document)).item == "frame 2"


def test_discover(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.json.lz", "sub/a.json.lz", "notes.txt", "c.json"):
        (tmp_path / name).write_text("x")
    assert leap.discover(tmp_path) == [tmp_path / "b.json.lz", tmp_path / "sub" / "a.json.lz"]
    assert leap.discover(tmp_path / "b.json.lz") == [tmp_path / "b.json.lz"]
    with pytest.raises(HandxInputError):
        leap.discover(tmp_path / "missing")

