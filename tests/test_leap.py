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



# ---------------------------------------------------------------- gaps and limits

def test_a_long_gap_splits_the_recording_and_nothing_is_invented_across_it(tmp_path, caplog):
    """Samples at 0-0.1 s, one lone sample at 10 s, then 0-0.1 s again 50 minutes later: three segments."""
    later = 3000.0
    # (time of the sample, time its positions are taken from): the hands stay where the device sees them
    stamps = [*((t, t) for t in TIMES_S), (10.0, 0.05), *((later + t, t) for t in TIMES_S)]
    frames = [{**_frame(at, ("right", "left")), "timestamp": CLOCK_US + round(t * 1e6)} for t, at in stamps]
    document = {"metadata": {}, "frames": frames}
    path = _write(tmp_path / "gaps.json.lz", document)
    with caplog.at_level("WARNING"):
        segments = leap.read_leap_segments(path)
    np.testing.assert_allclose([(s.start_s, s.end_s) for s in segments], [(0, 0.1), (10, 10), (later, later + 0.1)])
    assert [s.sequence.num_frames for s in segments] == [4, 1, 4]  # bounded by the 0.2 s really captured
    assert [s.start_frame for s in segments] == [0, 300, round(later * 30)]
    for segment in segments:
        assert segment.sequence.present.all() and segment.sequence.source.sequence == "gaps"
    # the lone sample is that sample, not an interpolation
    alone = segments[1].sequence.joints[0, skeleton.RIGHT, skeleton.JOINT_INDEX["middle_tip"]]
    np.testing.assert_allclose(alone, _expected_canonical(_finger_points("right", 0.05)[2, 3]), atol=1e-6)
    message = " ".join(r.getMessage() for r in caplog.records)
    assert str(path) in message and "0.100 s to 10.000 s" in message and "10.000 s to 3000.000 s" in message
    with pytest.raises(HandxInputError, match="2 gap"):
        leap.read_leap(path)


def test_small_irregular_steps_are_not_gaps(tmp_path):
    times = np.cumsum(np.r_[0.0, np.full(20, 0.2)])  # 5 Hz, every step below the 0.25 s limit
    seq = leap.read_leap(_write(tmp_path / "slow.json.lz", {"frames": [_frame(t, ("right",)) for t in times]}))
    assert seq.num_frames == 121


def _frames_with(edit) -> dict:
    document = _document(absent_right_at=None)
    edit(document)
    return document


@pytest.mark.parametrize("edit, problem", [
    (lambda d: d["frames"][2]["pointables"][3].update(tipPosition=[1e300, 0.0, 0.0]), "within ±10000 mm"),
    (lambda d: d["frames"][1]["hands"][0].update(direction=[0.0, -1e300, 0.0]), "within ±10000 mm"),
    (lambda d: d["frames"][4].update(timestamp=10**400), "2^53"),
    (lambda d: d["metadata"].update(frames=3_000_000_000), "declares 3000000000 frames but the file has 5"),
    (lambda d: d["frames"][0]["pointables"][0].update(type=[0]), "pointable type must be a whole number"),
    (lambda d: d["frames"][0]["hands"][0].update(type=["left"]), "no hands in any frame|"),
    (lambda d: d["frames"][0]["hands"][0].update(confidence="high"), "confidence must be a number"),
], ids=["coordinate", "direction", "timestamp", "declared-frames", "finger-type", "hand-type", "confidence"])
def test_absurd_numbers_are_refused_up_front(tmp_path, edit, problem):
    path = _write(tmp_path / "absurd.json.lz", _frames_with(edit))
    if problem.endswith("|"):  # a hand of unknown type is skipped (with a warning), never a crash
        leap.read_leap(path)
        return
    assert problem in _problem(path).problem


def test_json_nested_too_deep_is_an_error(tmp_path):
    path = tmp_path / "deep.json.lz"
    path.write_text('{"frames": ' + "[" * 100_000)  # plain JSON text is read as is
    assert "JSON" in _problem(path).problem
    # nesting the JSON parser takes, but too deep to unpack as a packed layout
    path.write_text('{"frames": [' + "[" * 950 + '"a"' + "]" * 950 + ", " + "[" * 950 + "1" + "]" * 950 + "]}")
    assert "packing structure" in _problem(path).problem


def _lz_bomb(codes: int) -> str:
    """LZ-String base64 whose every code repeats the previous output plus one character: the output grows with
    the square of the input (``codes`` codes give about codes² / 2 characters)."""
    bits = [0, 0] + [(ord("a") >> k) & 1 for k in range(8)]  # a first 8-bit character, least significant bit first
    size, num_bits, enlarge_in = 4, 3, 4
    for code in [*range(4, 4 + codes), 2]:
        code = 2 if code == 2 else size  # "the entry one past the dictionary": previous entry + its first char
        bits += [(code >> k) & 1 for k in range(num_bits)]
        size += 1
        enlarge_in -= 1
        if enlarge_in == 0:
            enlarge_in, num_bits = 1 << num_bits, num_bits + 1
    bits += [0] * (6 - len(bits) % 6)
    chars = [leap._BASE64[int("".join(map(str, bits[i:i + 6])), 2)] for i in range(0, len(bits), 6)]
    return "".join(chars) + "=" * (-len(chars) % 4)


def test_lz_string_decompression_bomb_is_refused(tmp_path):
    small = _lz_bomb(10)
    assert leap.decompress_base64(small) == lzstring.LZString().decompressFromBase64(small) == "".join(
        "a" * k for k in range(1, 12))
    path = tmp_path / "bomb.json.lz"
    path.write_text(_lz_bomb(20_000))  # 40 kB that would decompress to 200 million characters
    assert path.stat().st_size < 50_000
    assert "decompression bomb" in _problem(path).problem
