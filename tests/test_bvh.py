"""Tests for handx.io.bvh: the BVH parser, forward kinematics and the ManipNet pair importer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_plausible_anatomy
from scipy.spatial.transform import Rotation

from handx import skeleton
from handx.errors import HandxInputError
from handx.io import bvh as bvh_io
from handx.io.bvh import BvhFile, discover, forward_kinematics, parse_bvh, read_bvh_pair
from handx.motion import canonical_flips

# ----------------------------------------------------------------------------------------------------------------
# Helpers


def write_bvh(path: Path, b: BvhFile, *, offsets: np.ndarray | None = None, end_sites: np.ndarray | None = None,
              motion: np.ndarray | None = None) -> Path:
    """Write ``b`` (optionally with replaced offsets, End Site offsets or motion) as a BVH file."""
    offsets = b.offsets if offsets is None else offsets
    end_sites = b.end_site_offsets if end_sites is None else end_sites
    motion = b.motion if motion is None else motion
    lines = ["HIERARCHY"]

    def fmt(v) -> str:
        return " ".join(format(float(x), ".12g") for x in v)

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        lines.append(f"{pad}{'ROOT' if b.parents[j] < 0 else 'JOINT'} {b.names[j]}")
        lines.append(pad + "{")
        lines.append(f"{pad}\tOFFSET {fmt(offsets[j])}")
        lines.append(f"{pad}\tCHANNELS {len(b.channels[j])} {' '.join(b.channels[j])}")
        for child in np.flatnonzero(b.parents == j):
            emit(int(child), depth + 1)
        for e in np.flatnonzero(b.end_site_parents == j):
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {fmt(end_sites[e])}", f"{pad}\t}}"])
        lines.append(pad + "}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {len(motion)}", f"Frame Time: {b.frame_time:.9g}"]
    lines += [fmt(row) for row in motion]
    path.write_text("\n".join(lines) + "\n")
    return path


def position_columns(b: BvhFile) -> np.ndarray:
    """Motion columns that hold position channels."""
    return np.array([start + k for start, chans in zip(b.channel_starts, b.channels)
                     for k, ch in enumerate(chans) if ch.endswith("position")], dtype=np.int64)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------------------------------------------
# The real ManipNet capture


@pytest.fixture(scope="module")
def manipnet(shared_data) -> dict[str, tuple[object, int]]:
    """Every pair below shared/data/manipnet, imported once: clip name → (Sequence, frames in the BVH)."""
    pairs = discover(shared_data / "manipnet")
    return {left.parent.name: (read_bvh_pair(left, right), parse_bvh(left).num_frames) for left, right in pairs}


@pytest.fixture(scope="module")
def short_pair(shared_data, tmp_path_factory) -> tuple[BvhFile, BvhFile]:
    """The first 2 s of one real pair, parsed (a small input for rewriting tests)."""
    folder = shared_data / "manipnet" / "teapot2"
    out = []
    for name in ("leftHand.bvh", "rightHand.bvh"):
        b = parse_bvh(folder / name)
        path = write_bvh(tmp_path_factory.mktemp("short") / name, b, motion=b.motion[:240])
        out.append(parse_bvh(path))
    return out[0], out[1]


def test_discover_finds_every_manipnet_pair(shared_data, manipnet):
    pairs = discover(shared_data / "manipnet")
    assert len(pairs) == len(manipnet) >= 5
    for left, right in pairs:
        assert left.parent == right.parent
        assert "left" in left.name.lower() and "right" in right.name.lower()


def test_manipnet_pairs_are_plausible_hands(manipnet):
    for name, (seq, bvh_frames) in manipnet.items():
        assert seq.joints.dtype == np.float32 and seq.joints.shape[1:] == (2, 21, 3)
        assert seq.present.all()
        assert seq.source.dataset == "manipnet" and seq.source.sequence == name
        assert seq.source.license == "CC BY-NC 4.0"
        assert abs(seq.num_frames - bvh_frames / 4) <= 1, f"{name}: {seq.num_frames} frames from {bvh_frames}"
        assert_plausible_anatomy(seq.joints, seq.present, label=name)


def test_manipnet_thumb_cmc_is_fixed_in_the_palm(manipnet):
    """Our thumb_cmc (THUMB_CMC_FE) is rigid with the palm, like MANO's thumb CMC and the other knuckle bases."""
    j = skeleton.JOINT_INDEX
    palm = [j["wrist"], j["index_mcp"], j["middle_mcp"], j["ring_mcp"], j["pinky_mcp"]]
    for name, (seq, _) in manipnet.items():
        x = seq.joints.astype(np.float64)
        d = np.linalg.norm(x[:, :, palm] - x[:, :, [j["thumb_cmc"]]], axis=-1)  # (T, 2, 5)
        drift = np.abs(d / np.median(d, axis=0) - 1).max()
        assert drift < 0.01, f"{name}: thumb_cmc moves relative to the palm ({drift:.1%})"


def test_manipnet_hands_keep_their_chirality(manipnet):
    """Fingers flex towards the palm: (f × s) · flexion is > 0 for a left hand and < 0 for a right hand.

    f = wrist → middle_mcp, s = pinky_mcp → index_mcp (towards the thumb). For a right hand palm-down with
    fingers along +y the thumb is on −x, so f × s = +z is the back of the hand and flexion points to −z.
    """
    j = skeleton.JOINT_INDEX
    for name, (seq, _) in manipnet.items():
        x = seq.joints.astype(np.float64)
        f = x[:, :, j["middle_mcp"]] - x[:, :, j["wrist"]]  # (T, 2, 3)
        s = x[:, :, j["index_mcp"]] - x[:, :, j["pinky_mcp"]]
        flexion = np.mean([x[:, :, skeleton.CHAINS[k][3]] - x[:, :, skeleton.CHAINS[k][1]]
                           for k in ("index", "middle", "ring", "pinky")], axis=0)  # (T, 2, 3) mcp → dip
        sign = np.einsum("thc,thc->th", np.cross(f, s), flexion)  # (T, 2)
        assert (sign[:, skeleton.LEFT] > 0).mean() > 0.9, f"{name}: left hand does not look like a left hand"
        assert (sign[:, skeleton.RIGHT] < 0).mean() > 0.9, f"{name}: right hand does not look like a right hand"


def test_manipnet_frame_is_canonical(manipnet):
    """Left → right wrist along +x and fingers along +y within 45° on average (a wrong quarter turn is ≥ 45°
    off), the reference's flip rule finds nothing to flip, and the backs of the hands mostly face +z (up)."""
    j = skeleton.JOINT_INDEX
    dorsal_up = []
    for name, (seq, _) in manipnet.items():
        assert canonical_flips(seq.joints) == (False, False, False), name
        x = seq.joints.astype(np.float64)
        across = unit(x[:, skeleton.RIGHT, j["wrist"], :2] - x[:, skeleton.LEFT, j["wrist"], :2]).mean(axis=0)  # (2,)
        along = unit(x[:, :, j["middle_mcp"], :2] - x[:, :, j["wrist"], :2]).mean(axis=(0, 1))  # (2,)
        assert abs(np.degrees(np.arctan2(across[1], across[0]))) < 45, f"{name}: hands not side by side along x"
        assert abs(np.degrees(np.arctan2(-along[0], along[1]))) < 45, f"{name}: fingers not pointing +y"
        f = unit(x[:, :, j["middle_mcp"]] - x[:, :, j["wrist"]])  # (T, 2, 3)
        flexion = np.mean([x[:, :, skeleton.CHAINS[k][3]] - x[:, :, skeleton.CHAINS[k][1]]
                           for k in ("index", "middle", "ring", "pinky")], axis=0)
        palmar = flexion - np.einsum("thc,thc->th", flexion, f)[..., None] * f
        dorsal_up.append((palmar[..., 2] < 0).ravel())
    assert np.concatenate(dorsal_up).mean() > 0.65


def test_fk_bone_lengths_equal_offsets(short_pair):
    for b in short_pair:
        pos = forward_kinematics(b)  # (F, J, 3)
        child = np.flatnonzero(b.parents >= 0)
        lengths = np.linalg.norm(pos[:, child] - pos[:, b.parents[child]], axis=-1)  # (F, J-1)
        np.testing.assert_allclose(lengths, np.broadcast_to(np.linalg.norm(b.offsets[child], axis=-1), lengths.shape),
                                   rtol=1e-9)


def test_fingertip_rule(short_pair, tmp_path):
    """Tip segments are TIP_RATIO × the incoming bone, and equal End Sites written at that offset."""
    left, right = short_pair
    paths = [write_bvh(tmp_path / f"{n}.bvh", b) for n, b in (("leftHand", left), ("rightHand", right))]
    seq = read_bvh_pair(*paths)
    x = seq.joints.astype(np.float64)
    for finger in skeleton.FINGERS:
        chain = skeleton.CHAINS[finger]
        tip = x[:, :, chain[4]] - x[:, :, chain[3]]  # (T, 2, 3) distal joint → tip
        phalanx = x[:, :, chain[3]] - x[:, :, chain[2]]  # (T, 2, 3) the bone entering the distal joint
        np.testing.assert_allclose(np.linalg.norm(tip, axis=-1), bvh_io.TIP_RATIO * np.linalg.norm(phalanx, axis=-1),
                                   rtol=1e-4)
        # The tip bends away from the incoming bone by the distal joint's own rotation: the angle between the
        # incoming OFFSET and that OFFSET rotated by the joint's Euler angles (scipy, in channel order), read at
        # the 120 fps frames that the 30 fps grid lands on.
        bend = np.degrees(np.arccos(np.clip(np.einsum("thc,thc->th", unit(tip), unit(phalanx)), -1, 1)))  # (T, 2)
        for hand, b in enumerate((left, right)):
            distal = b.names.index(bvh_io.MANIPNET_JOINTS[skeleton.JOINT_NAMES[chain[3]]])
            start, chans = b.channel_starts[distal], b.channels[distal]
            order = "".join(ch[0] for ch in chans)
            angles = b.motion[:: 4, start:start + len(chans)][: len(bend)]  # (T, 3)
            rotated = Rotation.from_euler(order, angles, degrees=True).apply(b.offsets[distal])  # (T, 3)
            expected = np.degrees(np.arccos(np.clip(unit(rotated) @ unit(b.offsets[distal]), -1, 1)))  # (T,)
            np.testing.assert_allclose(bend[:, hand], expected, atol=0.5, err_msg=f"{finger} hand {hand}")
    with_sites = tmp_path / "sites"
    with_sites.mkdir()
    site_paths = []
    for n, b in (("leftHand", left), ("rightHand", right)):
        sites = bvh_io.TIP_RATIO * b.offsets[b.end_site_parents]  # (E, 3)
        site_paths.append(write_bvh(with_sites / f"{n}.bvh", b, end_sites=sites))
    np.testing.assert_allclose(read_bvh_pair(*site_paths).joints, seq.joints, atol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Forward kinematics against an independent computation

TINY = """HIERARCHY
ROOT Hips
{
\tOFFSET 0 0 0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT A
\t{
\t\tOFFSET 1 0 0
\t\tCHANNELS 3 Xrotation Yrotation Zrotation
\t\tJOINT B
\t\t{
\t\t\tOFFSET 0 2 0
\t\t\tCHANNELS 6 Zposition Xposition Yposition Yrotation Zrotation Xrotation
\t\t\tEnd Site
\t\t\t{
\t\t\t\tOFFSET 0 0 3
\t\t\t}
\t\t}
\t}
}
MOTION
Frames: 3
Frame Time: 0.1
{rows}
"""


def tiny_motion() -> np.ndarray:
    rng = np.random.default_rng(0)
    motion = np.zeros((3, 15))
    motion[0, :6] = [1, 2, 3, 90, 0, 0]  # root at (1, 2, 3), 90° about Z; everything else still
    motion[1:] = rng.uniform(-170, 170, size=(2, 15))
    motion[1:, [0, 1, 2, 9, 10, 11]] = rng.uniform(-2, 2, size=(2, 6))  # positions
    return motion


def tiny_text() -> str:
    return TINY.replace("{rows}", "\n".join(" ".join(f"{v:.10g}" for v in row) for row in tiny_motion()))


def tiny_file(tmp_path: Path, text: str | None = None) -> Path:
    path = tmp_path / "tiny.bvh"
    path.write_text(tiny_text() if text is None else text)
    return path


def test_fk_hand_computed_frame(tmp_path):
    pos = forward_kinematics(parse_bvh(tiny_file(tmp_path)))
    # Root at (1, 2, 3) turned 90° about z: A = root + Rz(1, 0, 0) = (1, 3, 3); B = A + Rz(0, 2, 0) = (-1, 3, 3).
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [1, 3, 3], [-1, 3, 3]], atol=1e-12)


def test_fk_honours_channel_order(tmp_path):
    b = parse_bvh(tiny_file(tmp_path))
    assert b.channels[0] == ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
    assert b.channels[2] == ("Zposition", "Xposition", "Yposition", "Yrotation", "Zrotation", "Xrotation")
    m = tiny_motion()

    def expected(root_order: str) -> np.ndarray:
        out = np.zeros((3, 3, 3))
        for f in range(3):
            r0 = Rotation.from_euler(root_order, m[f, 3:6], degrees=True).as_matrix()  # uppercase = intrinsic
            r1 = Rotation.from_euler("XYZ", m[f, 6:9], degrees=True).as_matrix()
            p0 = m[f, 0:3]
            p1 = p0 + r0 @ np.array([1.0, 0, 0])
            t2 = np.array([0.0, 2, 0]) + np.array([m[f, 10], m[f, 11], m[f, 9]])  # listed Z X Y
            out[f] = [p0, p1, p1 + r0 @ r1 @ t2]
        return out

    pos = forward_kinematics(b)
    np.testing.assert_allclose(pos, expected("ZXY"), atol=1e-9)
    assert not np.allclose(pos[1:], expected("XYZ")[1:], atol=1e-3)  # the order matters for these angles


def test_parse_round_trip(tmp_path, short_pair):
    for b in short_pair:
        again = parse_bvh(write_bvh(tmp_path / "copy.bvh", b))
        assert again.names == b.names and again.channels == b.channels
        np.testing.assert_array_equal(again.parents, b.parents)
        np.testing.assert_allclose(again.offsets, b.offsets)
        np.testing.assert_allclose(again.motion, b.motion)
        assert again.frame_time == pytest.approx(b.frame_time)


# ----------------------------------------------------------------------------------------------------------------
# Unit inference


def scaled_pair(folder: Path, pair: tuple[BvhFile, BvhFile], factor: float) -> list[Path]:
    folder.mkdir()
    out = []
    for name, b in zip(("leftHand.bvh", "rightHand.bvh"), pair):
        motion = b.motion.copy()
        motion[:, position_columns(b)] *= factor
        out.append(write_bvh(folder / name, b, offsets=b.offsets * factor, end_sites=b.end_site_offsets * factor,
                             motion=motion))
    return out


def test_unit_inference_is_scale_invariant(tmp_path, short_pair):
    reference = read_bvh_pair(*scaled_pair(tmp_path / "dm", short_pair, 1.0)).joints
    for factor in (0.1, 10.0, 100.0):  # metres, centimetres, millimetres
        joints = read_bvh_pair(*scaled_pair(tmp_path / f"x{factor:g}", short_pair, factor)).joints
        np.testing.assert_allclose(joints, reference, atol=1e-6)
    wrist_to_mcp = np.linalg.norm(reference[:, :, skeleton.JOINT_INDEX["middle_mcp"]] - reference[:, :, 0], axis=-1)
    assert 0.09 < np.median(wrist_to_mcp) < 0.12


def test_implausible_unit_is_refused(tmp_path, short_pair):
    left, _ = scaled_pair(tmp_path / "x1000", short_pair, 1000.0)  # 1.07 dm written as 1070: no unit fits
    with pytest.raises(HandxInputError, match="cannot infer the length unit") as err:
        read_bvh_pair(left, left.parent / "rightHand.bvh")
    assert err.value.path == str(left)


# ----------------------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda t: t.replace("CHANNELS 3 Xrotation Yrotation Zrotation", "CHANNELS 3 Xrotation Yrotation"),
         r"joint A: CHANNELS says 3 channels but lists 2"),
        (lambda t: t.replace("Frames: 3", "Frames: 5"), r"'Frames: 5' but the file has 3 frame rows"),
        (lambda t: t.rstrip("\n").rsplit(" ", 1)[0] + "\n", r"frame 2 has 14 values, expected 15"),
        (lambda t: t[: t.index("JOINT B")], r"missing MOTION"),
        (lambda t: t[: t.rindex("\n", 0, len(t) - 1) + 20], r"frame 2 has \d+ values, expected 15"),
        (lambda t: t.replace("HIERARCHY", "HIERARCY"), r"missing HIERARCHY"),
        (lambda t: t.replace("Zrotation Xrotation Yrotation", "Zrotation Xrotation Wrotation"),
         r"unknown channel 'Wrotation'"),
        (lambda t: t.replace("Frame Time: 0.1\n1 2 3", "Frame Time: 0.1\n1 x 3"), r"frame 0: non-numeric value 'x'"),
    ],
    ids=["channels-count", "frames-count", "missing-value", "truncated-hierarchy", "truncated-row",
         "no-hierarchy", "unknown-channel", "non-numeric"],
)
def test_bad_bvh_names_file_and_problem(tmp_path, edit, problem):
    path = tiny_file(tmp_path, edit(tiny_text()))
    with pytest.raises(HandxInputError, match=problem) as err:
        parse_bvh(path)
    assert err.value.path == str(path)
    assert str(path) in str(err.value)


def test_bad_row_error_gives_line_number(tmp_path):
    text = tiny_text()
    path = tiny_file(tmp_path, text.rstrip("\n").rsplit(" ", 1)[0] + "\n")
    with pytest.raises(HandxInputError) as err:
        parse_bvh(path)
    assert err.value.item == f"line {len(text.rstrip(chr(10)).splitlines())}"


def test_pair_with_different_frame_counts(tmp_path, short_pair):
    left, right = short_pair
    lp = write_bvh(tmp_path / "leftHand.bvh", left, motion=left.motion[:100])
    rp = write_bvh(tmp_path / "rightHand.bvh", right, motion=right.motion[:120])
    with pytest.raises(HandxInputError, match="left/right pair does not match") as err:
        read_bvh_pair(lp, rp)
    assert str(lp) in str(err.value) and str(rp) in str(err.value)
    assert "100 frames" in str(err.value) and "120 frames" in str(err.value)


def test_non_hand_bvh_is_refused(tmp_path):
    path = tiny_file(tmp_path)
    with pytest.raises(HandxInputError, match="not a ManipNet hand: missing joint") as err:
        read_bvh_pair(path, path)
    assert err.value.path == str(path)


@pytest.mark.parametrize("frame_time", [1e9, 1.0, 1e-9])
def test_absurd_frame_time_is_refused_before_resampling(tmp_path, short_pair, frame_time):
    """1e9 s per frame used to ask for 10^13 output frames (MemoryError); 1 s per frame would interpolate a
    second of motion between every two frames; 1e-9 s is no capture rate."""
    paths = [write_bvh(tmp_path / name, dataclasses.replace(b, frame_time=frame_time))
             for name, b in zip(("leftHand.bvh", "rightHand.bvh"), short_pair)]
    with pytest.raises(HandxInputError, match=r"frame time .* is outside 0.0001-0.25 s") as err:
        read_bvh_pair(*paths)
    assert err.value.path == str(paths[0])


def _chain(depth: int) -> str:
    """A hierarchy of ``depth`` joints, each the only child of the one before."""
    opening = "".join(f"JOINT J{k}\n{{\nOFFSET 0 1 0\nCHANNELS 1 Xrotation\n" for k in range(1, depth))
    return ("HIERARCHY\nROOT J0\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\n" + opening + "}\n" * depth
            + f"MOTION\nFrames: 1\nFrame Time: 0.01\n{' '.join(['0'] * depth)}\n")


def test_deep_hierarchy_is_refused_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.bvh"
    path.write_text(_chain(10_000))
    with pytest.raises(HandxInputError, match="hierarchy deeper than 64 joints") as err:
        parse_bvh(path)
    assert err.value.path == str(path) and err.value.item == f"line {2 + 4 * 64}"  # joint J64, the 65th level
    path.write_text(_chain(64))  # the limit itself is fine
    assert parse_bvh(path).parents.tolist() == list(range(-1, 63))


def test_too_many_joints_are_refused(tmp_path):
    siblings = "".join(f"JOINT J{k}\n{{\nOFFSET 1 0 0\n}}\n" for k in range(1, 1100))
    path = tmp_path / "wide.bvh"
    path.write_text(f"HIERARCHY\nROOT J0\n{{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\n{siblings}}}\n"
                    "MOTION\nFrames: 1\nFrame Time: 0.01\n0\n")
    with pytest.raises(HandxInputError, match="more than 1024 joints"):
        parse_bvh(path)


# ----------------------------------------------------------------------------------------------------------------
# discover


def test_discover_pairs_orphans_and_files(tmp_path):
    text = tiny_text()
    for rel in ("a/leftHand.bvh", "a/rightHand.bvh", "b/sub/LEFT_hand.BVH", "b/sub/Right_Hand.bvh",
                "c/leftHand.bvh", "d/cup.bvh"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    expected = [(tmp_path / "a/leftHand.bvh", tmp_path / "a/rightHand.bvh"),
                (tmp_path / "b/sub/LEFT_hand.BVH", tmp_path / "b/sub/Right_Hand.bvh")]

    with pytest.raises(HandxInputError, match="no matching right-hand file") as err:
        discover(tmp_path)
    assert err.value.path == str(tmp_path / "c")

    errors: list[HandxInputError] = []
    assert discover(tmp_path, errors=errors) == expected
    assert [e.path for e in errors] == [str(tmp_path / "c")]

    assert discover(tmp_path / "a" / "rightHand.bvh") == expected[:1]
    assert discover(tmp_path / "d") == []
    with pytest.raises(HandxInputError, match="no such file"):
        discover(tmp_path / "missing")
