"""Tests for handx.viz.export*: BVH (fixed skeleton + IK) and JSON export, their readers, and ``handx export``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from handx import skeleton
from handx.cli.main import main
from handx.errors import HandxInputError
from handx.features.codes import motion_codes
from handx.io.bvh import parse_bvh, read_bvh_pair
from handx.io.sources import Clip
from handx.io.store import StoreWriter
from handx.kinematics import median_bone_lengths, project_to_skeleton
from handx.motion import Texts
from handx.synth import generate_clip
from handx.viz import export_euler as euler
from handx.viz.export import export_clips, safe_name
from handx.viz.export_bvh import BVH_SCALE, bvh_from_motion, clip_from_bvh, export_bvh, read_bvh_clip
from handx.viz.export_json import ClipJson, clip_json, export_json, read_clip_json

ACCEPT_MM = 2.0


def synth(seed: int, index: int) -> np.ndarray:
    return generate_clip(seed, index).motion


def rotation_columns(bvh) -> np.ndarray:
    return np.array([start + k for start, chans in zip(bvh.channel_starts, bvh.channels)
                     for k, ch in enumerate(chans) if ch.endswith("rotation")], dtype=np.int64)


def error_mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-joint distance in mm: ``(T, 2, 21)``."""
    return np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1) * 1000.0


# ----------------------------------------------------------------------------------------------------------------
# BVH round trip (the acceptance criterion)


@pytest.mark.parametrize("seed,index", [(0, 0), (0, 1), (1, 2), (2, 3), (3, 8), (3, 14)])
def test_bvh_round_trip_synthetic(tmp_path, seed, index):
    motion = synth(seed, index)  # constant bone lengths
    result = export_bvh(motion, tmp_path / "clip.bvh")
    back = read_bvh_clip(tmp_path / "clip.bvh")  # parse_bvh + forward_kinematics, / BVH_SCALE
    assert back.shape == motion.shape
    err = error_mm(back, motion)  # every joint of every frame, tips included
    assert err.max() < ACCEPT_MM
    assert err.max() < 0.01, "a clip with constant bones must round-trip to rounding precision"
    np.testing.assert_allclose(result.joint_error_mm, err.max(axis=0), atol=1e-6)
    assert result.frames == motion.shape[0]


def test_bvh_round_trip_real_capture(shared_data, tmp_path):
    """A real ManipNet pair (imported at 30 fps), made fixed-length with project_to_skeleton."""
    folder = shared_data / "manipnet" / "teapot2"
    seq = read_bvh_pair(folder / "leftHand.bvh", folder / "rightHand.bvh")
    raw = seq.joints.astype(np.float64)
    fixed = project_to_skeleton(raw, median_bone_lengths(raw, seq.present))
    result = export_bvh(fixed, tmp_path / "teapot2.bvh")
    err = error_mm(read_bvh_clip(tmp_path / "teapot2.bvh"), fixed)
    assert err.max() < ACCEPT_MM, f"max {err.max():.3f} mm at {np.unravel_index(err.argmax(), err.shape)}"
    assert result.max_error_mm == pytest.approx(err.max(), abs=1e-6)
    # Captured bones drift a few percent: the report says how far a fixed skeleton is from the raw clip.
    drifting = export_bvh(raw, tmp_path / "raw.bvh")
    assert drifting.max_error_mm == pytest.approx(error_mm(read_bvh_clip(tmp_path / "raw.bvh"), raw).max(), abs=1e-6)
    assert drifting.max_error_mm > result.max_error_mm


def test_bones_keep_median_lengths_and_follow_observed_directions(tmp_path):
    motion = synth(0, 2).astype(np.float64)
    motion[:, :, skeleton.JOINT_INDEX["index_pip"]] += 0.002 * np.sin(np.arange(60))[:, None, None]  # drift
    export_bvh(motion, tmp_path / "c.bvh")
    back = read_bvh_clip(tmp_path / "c.bvh")
    lengths = skeleton.bone_lengths(back)  # (T, 2, 20)
    np.testing.assert_allclose(lengths, np.broadcast_to(np.median(skeleton.bone_lengths(motion), axis=0),
                                                        lengths.shape), atol=1e-7)
    bones = back[:, :, skeleton.BONES[:, 1]] - back[:, :, skeleton.BONES[:, 0]]
    observed = motion[:, :, skeleton.BONES[:, 1]] - motion[:, :, skeleton.BONES[:, 0]]
    cos = (bones * observed).sum(-1) / np.linalg.norm(bones, axis=-1) / np.linalg.norm(observed, axis=-1)
    finger_bones = ~np.isin(skeleton.BONES[:, 0], [skeleton.WRIST])
    assert cos[..., finger_bones].min() > 1 - 1e-9  # every finger bone points exactly along the observed bone


# ----------------------------------------------------------------------------------------------------------------
# The file itself


def test_bvh_file_is_blender_compatible(tmp_path):
    motion = synth(0, 0)
    path = tmp_path / "clip.bvh"
    export_bvh(motion, path, fps=30)
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    assert lines[0] == "HIERARCHY" and lines[1] == "ROOT Scene"
    # Blender's importer is line based: ROOT/JOINT, "{", OFFSET, CHANNELS on consecutive lines.
    joints = [i for i, line in enumerate(lines) if line.split()[0] in ("ROOT", "JOINT")]
    for i in joints:
        assert lines[i + 1] == "{" and lines[i + 2].startswith("OFFSET ") and lines[i + 3].startswith("CHANNELS ")
        words = lines[i + 3].split()
        assert int(words[1]) == len(words) - 2
        rotations = [w for w in words[2:] if w.endswith("rotation")]
        assert sorted(rotations) == ["Xrotation", "Yrotation", "Zrotation"], lines[i]
    end_sites = [i for i, line in enumerate(lines) if line == "End Site"]
    assert len(end_sites) == 10
    for i in end_sites:
        assert lines[i + 1] == "{" and lines[i + 2].startswith("OFFSET ") and lines[i + 3] == "}"
    motion_at = lines.index("MOTION")
    assert lines[motion_at + 1] == f"Frames: {motion.shape[0]}"
    assert lines[motion_at + 2].startswith("Frame Time: ")
    assert len(lines) - motion_at - 3 == motion.shape[0]

    bvh = parse_bvh(path)
    assert bvh.num_frames == motion.shape[0]
    assert bvh.frame_time == pytest.approx(1 / 30, rel=1e-6)
    assert bvh.parents[0] == -1 and (bvh.parents[1:] >= 0).all()
    expected = {"Scene"} | {f"{h}_{j}" for h in skeleton.HAND_NAMES for j in skeleton.JOINT_NAMES
                            if skeleton.JOINT_INDEX[j] not in skeleton.TIP_INDICES}
    assert set(bvh.names) == expected and len(bvh.names) == len(expected)
    for hand in skeleton.HAND_NAMES:
        wrist = bvh.index(f"{hand}_wrist")
        assert bvh.parents[wrist] == 0
        # A zero OFFSET under position channels: "channels add to OFFSET" (ours) = "replace OFFSET" (Blender).
        np.testing.assert_array_equal(bvh.offsets[wrist], 0.0)
        assert bvh.channels[wrist][:3] == ("Xposition", "Yposition", "Zposition")
        for finger in skeleton.FINGERS:
            distal = bvh.index(f"{hand}_{skeleton.JOINT_NAMES[skeleton.CHAINS[finger][-2]]}")
            assert (bvh.end_site_parents == distal).sum() == 1
    np.testing.assert_array_equal(bvh.motion[:, :6], 0.0)  # the static root


def test_bvh_units_and_axes(tmp_path):
    """Centimetres, Y up: file (X, Y, Z) = 100 (x, z, -y)."""
    motion = synth(1, 0)
    export_bvh(motion, tmp_path / "c.bvh")
    bvh = parse_bvh(tmp_path / "c.bvh")
    start = bvh.channel_starts[bvh.index("right_wrist")]
    wrist = motion[:, skeleton.RIGHT, skeleton.WRIST].astype(np.float64)
    np.testing.assert_allclose(bvh.motion[:, start:start + 3], BVH_SCALE * wrist[:, [0, 2, 1]] * [1, 1, -1],
                               atol=1e-5)


def test_bvh_written_equals_in_memory_document(tmp_path):
    motion = synth(2, 1)
    export_bvh(motion, tmp_path / "c.bvh")
    parsed = parse_bvh(tmp_path / "c.bvh")
    built = bvh_from_motion(motion)
    assert parsed.names == built.names and parsed.channels == built.channels
    np.testing.assert_array_equal(parsed.motion, built.motion)
    np.testing.assert_array_equal(parsed.offsets, built.offsets)
    np.testing.assert_array_equal(clip_from_bvh(parsed), clip_from_bvh(built))


# ----------------------------------------------------------------------------------------------------------------
# Euler angles


@pytest.mark.parametrize("order", euler.ORDERS)
def test_euler_decomposition_recomposes_in_every_order(order):
    rot = Rotation.random(500, random_state=3).as_matrix()  # (500, 3, 3) as a time series of jumps
    angles = euler.matrix_to_euler(rot, order)
    np.testing.assert_allclose(euler.euler_to_matrix(angles, order), rot, atol=1e-12)
    # Exactly at gimbal lock (middle angle ±90°) the rotation is still reproduced.
    lock = np.stack([np.linspace(-1, 2, 40), np.full(40, np.pi / 2) * np.sign(np.linspace(-1, 1, 40) + 1e-3),
                     np.linspace(0, 3, 40)], axis=-1)
    locked = euler.euler_to_matrix(lock, order)
    np.testing.assert_allclose(euler.euler_to_matrix(euler.matrix_to_euler(locked, order), order), locked,
                               atol=1e-9)


def test_euler_angles_are_continuous_through_wraps_and_flips():
    """A rotation turning 4° per frame about a fixed axis, through 480°: channels step by a few degrees (Euler rates
    exceed the turning rate by 1 / cos b), never by the 180° or 360° of a wrong solution or a wrap."""
    theta = np.radians(4.0 * np.arange(121))
    for axis in ([0, 0, 1], [1, 0, 0], [0, 1, 0], [1, -2, 0.5]):
        tilt = Rotation.from_euler("xyz", [10, -20, 5], degrees=True).as_matrix()
        rot = Rotation.from_rotvec(np.outer(theta, axis) / np.linalg.norm(axis)).as_matrix() @ tilt  # (121, 3, 3)
        order = euler.ORDERS[int(euler.best_orders(rot))]
        steps = np.degrees(np.abs(np.diff(euler.matrix_to_euler(rot, order), axis=0)))
        assert steps.max() < 10.0, (axis, order, steps.max())


def test_spinning_hands_export_continuous_channels(tmp_path):
    """The whole clip turning about an axis: exact positions and smooth wrist channels (no 180°/360° jumps)."""
    pose = synth(0, 0)[0].astype(np.float64)  # (2, 21, 3)
    theta = np.radians(4.0 * np.arange(121))
    for axis in ([0, 0, 1], [1, 0, 0], [0, 1, 0]):
        spin = Rotation.from_rotvec(np.outer(theta, axis)).as_matrix()  # (121, 3, 3)
        motion = np.einsum("tab,hjb->thja", spin, pose)
        bvh = bvh_from_motion(motion)
        assert error_mm(clip_from_bvh(bvh), motion).max() < 0.01
        steps = np.abs(np.diff(bvh.motion[:, rotation_columns(bvh)], axis=0))
        assert steps.max() < 4.5, (axis, steps.max())


def test_smooth_clips_have_no_channel_jumps():
    for seed, index in [(0, 0), (1, 1), (2, 5), (3, 11)]:
        bvh = bvh_from_motion(synth(seed, index))
        steps = np.abs(np.diff(bvh.motion[:, rotation_columns(bvh)], axis=0))
        assert steps.max() < 90.0


# ----------------------------------------------------------------------------------------------------------------
# JSON


def synth_clip(seed: int, index: int, cid: str = "synth/0") -> Clip:
    c = generate_clip(seed, index)
    texts = Texts(tuple(c.texts["left"]), tuple(c.texts["right"]), tuple(c.texts["two_hands_relation"]))
    return Clip(cid, c.motion, texts, "memory", {"source": {"dataset": "synth", "license": "CC0"}})


def test_json_round_trip(tmp_path):
    clip = synth_clip(0, 3)
    export_json(clip, tmp_path / "c.json")
    back = read_clip_json(tmp_path / "c.json")
    assert isinstance(back, ClipJson)
    expected = np.round(clip.motion.astype(np.float64), 4).astype(np.float32)
    np.testing.assert_array_equal(back.motion, expected)
    assert np.abs(back.motion - clip.motion).max() <= 0.5e-4 + 1e-7
    assert back.texts == clip.texts
    assert back.codes == json.loads(json.dumps(motion_codes(clip.motion)))
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["format"] == "handx-clip" and data["version"] == 1 and data["id"] == "synth/0"
    assert data["fps"] == 30 and data["frames"] == 60 and data["hands"] == ["left", "right"]
    assert data["joint_names"] == list(skeleton.JOINT_NAMES) and data["bones"] == skeleton.BONES.tolist()
    assert data["provenance"] == {"dataset": "synth", "license": "CC0"}


@pytest.mark.parametrize("change,field", [
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d["joints"][3][1].pop(), "shape"),
    (lambda d: d["joints"][5][0][2].__setitem__(1, None), "finite"),
    (lambda d: d.update(frames=59), "frames"),
    (lambda d: d["texts"]["left"].pop(), "texts"),
    (lambda d: d.update(joint_names=list(reversed(d["joint_names"]))), "joint_names"),
])
def test_json_reader_rejects_bad_files(tmp_path, change, field):
    data = clip_json(synth_clip(0, 0))
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(HandxInputError) as info:
        read_clip_json(path)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------------------------------------------
# Batch export and the CLI


@pytest.fixture()
def store(tmp_path) -> Path:
    root = tmp_path / "store"
    with StoreWriter(root) as writer:
        for i, cid in enumerate(["clip/a", "clip/b", "clip:c"]):
            c = generate_clip(5, i)
            writer.add(c.motion, clip_id=cid, source={"dataset": "synth", "sequence": cid, "license": "CC0"},
                       texts=c.texts)
    return root


def test_cli_exports_chosen_store_clips(store, tmp_path, capsys):
    out = tmp_path / "bvh"
    assert main(["export", str(store), "--clips", "clip/a,clip:c", "--format", "bvh", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip_a.bvh", "clip_c.bvh"]
    printed = capsys.readouterr().out
    assert "max round-trip error" in printed and "centimetres" in printed
    for line in printed.splitlines():
        if "round-trip error" in line:
            assert float(line.split("error ")[1].split(" mm")[0]) < ACCEPT_MM
    a = read_bvh_clip(out / "clip_a.bvh")
    assert error_mm(a, generate_clip(5, 0).motion).max() < ACCEPT_MM

    one = tmp_path / "one.json"
    assert main(["export", str(store), "--clips", "clip/b", "--format", "json", "--out", str(one)]) == 0
    back = read_clip_json(one)
    assert back.texts.left == tuple(generate_clip(5, 1).texts["left"])


def test_export_all_clips_of_a_file_into_a_folder(tmp_path):
    batch = np.stack([synth(0, i) for i in range(3)])  # (3, 60, 2, 21, 3)
    np.save(tmp_path / "gen.npy", batch)
    report = export_clips(tmp_path / "gen.npy", "json", tmp_path / "out")
    assert [w.path.name for w in report.written] == ["gen_0.json", "gen_1.json", "gen_2.json"]
    assert not report.skipped


def test_batch_skips_a_clip_that_cannot_be_exported(tmp_path):
    batch = np.stack([synth(0, i) for i in range(3)]).astype(np.float64)
    batch[1, :, 0, skeleton.JOINT_INDEX["index_pip"]] = batch[1, :, 0, skeleton.JOINT_INDEX["index_mcp"]]
    np.save(tmp_path / "gen.npy", batch)
    report = export_clips(tmp_path / "gen.npy", "bvh", tmp_path / "out")
    assert [w.id for w in report.written] == ["gen/0", "gen/2"]
    assert len(report.skipped) == 1
    assert "gen/1" in str(report.skipped[0]) and "index_mcp->index_pip" in str(report.skipped[0])
    # Alone, the same clip is an error.
    np.save(tmp_path / "one.npy", batch[1])
    with pytest.raises(HandxInputError, match="one.npy"):
        export_clips(tmp_path / "one.npy", "bvh", tmp_path / "one.bvh")


def test_bad_inputs_name_the_file(tmp_path, store, capsys):
    clip = synth(0, 0).astype(np.float64)
    np.save(tmp_path / "ok.npy", clip)
    with pytest.raises(HandxInputError, match="ok.npy.*unknown export format 'fbx'"):
        export_clips(tmp_path / "ok.npy", "fbx", tmp_path / "x.fbx")
    clip[10, 1, 4, 2] = np.nan
    np.save(tmp_path / "nan.npy", clip)
    with pytest.raises(HandxInputError, match="nan.npy.*non-finite"):
        export_clips(tmp_path / "nan.npy", "bvh", tmp_path / "x.bvh")
    batch = np.stack([clip, np.nan_to_num(clip, nan=0.05)])  # a bad clip, then a good one
    np.save(tmp_path / "batch.npy", batch)
    report = export_clips(tmp_path / "batch.npy", "bvh", tmp_path / "batch-out")
    assert [e.item for e in report.skipped] == ["batch/0"] and [w.id for w in report.written] == ["batch/1"]
    assert main(["export", str(tmp_path / "nan.npy"), "--format", "bvh", "--out", str(tmp_path / "x.bvh")]) == 2
    assert "nan.npy" in capsys.readouterr().err
    with pytest.raises(HandxInputError, match="store.*no clip with id 'nope'"):
        export_clips(store, "bvh", tmp_path / "y", ids=["clip/a", "nope"])
    with pytest.raises(HandxInputError, match="ok.npy.*no clip with id 'nope'"):
        export_clips(tmp_path / "ok.npy", "json", tmp_path / "z.json", ids=["nope"])
    with pytest.raises(HandxInputError, match="3 clips to export"):
        export_clips(store, "bvh", tmp_path / "all.bvh")
    assert not (tmp_path / "x.bvh").exists()


def test_safe_names():
    assert safe_name("gen/0") == "gen_0"
    assert safe_name("a b:c*d") == "a_b_c_d"
    assert safe_name("../..") == "clip"
