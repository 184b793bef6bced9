"""handx.representations: exact round trips on real and synthetic clips, the layouts of joints168 and local288
(checked against the reference's slices and, independently, by moving one hand), the registry, and the
invariances of local288 (reference §1.5, §1.6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handx.io.bvh import discover as discover_bvh
from handx.io.bvh import read_bvh_pair
from handx.io.leap import discover as discover_leap
from handx.io.leap import read_leap
from handx.kinematics import local_frame
from handx.motion import Sequence, Window, iter_windows
from handx.representations import BOTH, REPRESENTATIONS, FeatureStats, Layout, Representation, get_representation
from handx.representations import joints168, local288
from handx.skeleton import JOINT_INDEX, LEFT, NUM_JOINTS, RIGHT, TIP_INDICES, WRIST, mirror
from handx.synth import generate_clip

MODULES = {"joints168": joints168, "local288": local288}
ROUND_TRIP_M = 1e-5


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def random_clips(seed: int, n: int = 3, frames: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.1, size=(n, frames, 2, 21, 3)) + rng.normal(scale=1.0, size=(n, 1, 1, 1, 3))


@pytest.fixture(scope="module")
def real_recordings(shared_data) -> dict[str, Sequence]:
    """Every real recording with both hands in every frame, as imported (float32, world placement, 94 to 1153
    frames): the five ManipNet pairs and the three two-hand Leap recordings."""
    recordings = {f"manipnet/{left.parent.name}": read_bvh_pair(left, right)
                  for left, right in discover_bvh(shared_data / "manipnet")}
    for path in discover_leap(shared_data / "leap"):
        seq = read_leap(path)
        if seq.present.all():
            recordings[f"leap/{path.name}"] = seq
    assert len(recordings) == 8
    return recordings


@pytest.fixture(scope="module")
def real_windows(real_recordings) -> np.ndarray:
    """The dataset windows of the real recordings (60 frames, right wrist at the origin at frame 0): ``(N, 60, 2,
    21, 3)`` float32."""
    return np.stack([w.motion for seq in real_recordings.values() for w in iter_windows(seq) if isinstance(w, Window)])


@pytest.fixture(scope="module")
def synth_clips() -> np.ndarray:
    return np.stack([generate_clip(0, i).motion for i in range(4)]).astype(np.float64)  # (4, 60, 2, 21, 3)


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", sorted(MODULES))
def test_round_trip_on_real_recordings(name, real_recordings):
    module = MODULES[name]
    for label, seq in real_recordings.items():
        joints = seq.joints  # (T, 2, 21, 3) float32
        features, extras = module.encode(joints)
        assert features.dtype == np.float32 and features.shape == (joints.shape[0], module.NUM_FEATURES)
        error = np.abs(module.decode(features, extras) - joints).max()
        assert error < ROUND_TRIP_M, f"{name} on {label}: {error:.2e} m"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_round_trip_on_real_windows_batched(name, real_windows):
    module = MODULES[name]
    features, extras = module.encode(real_windows)  # (N, 60, F): one vectorised call for all windows
    assert len(real_windows) >= 80
    np.testing.assert_allclose(module.decode(features, extras), real_windows, rtol=0, atol=ROUND_TRIP_M)
    # dataset windows are in the canonical placement, so they also come back without extras
    np.testing.assert_allclose(module.decode(features), real_windows, rtol=0, atol=ROUND_TRIP_M)
    one, one_extras = module.encode(real_windows[5])
    np.testing.assert_allclose(one, features[5], rtol=0, atol=1e-6)
    np.testing.assert_allclose(one_extras, extras[5], rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_on_synthetic_and_random_clips(name, dtype, synth_clips):
    module = MODULES[name]
    for clips in (synth_clips.astype(dtype), random_clips(1).astype(dtype)):
        features, extras = module.encode(clips)
        assert features.dtype == dtype and extras.dtype == dtype and extras.shape == clips.shape[:1] + (3,)
        np.testing.assert_allclose(module.decode(features, extras), clips, rtol=0, atol=1e-5)
        got = module.decode(torch.from_numpy(features), torch.from_numpy(extras))
        assert isinstance(got, torch.Tensor) and got.dtype == torch.from_numpy(features).dtype
        np.testing.assert_allclose(got.numpy(), clips, rtol=0, atol=1e-5)
    shifted = clips - clips[:, :1, RIGHT:RIGHT + 1, WRIST:WRIST + 1]  # without extras: canonical placement
    np.testing.assert_allclose(module.decode(module.encode(clips)[0]), shifted, rtol=0, atol=1e-5)


def test_local288_decode_reads_only_roots_rotations_and_local_positions(synth_clips):
    features, origin = local288.encode(synth_clips)
    redundant = local288.LAYOUT.columns(channels=("bend", "local_vel"))
    scrambled = features.copy()
    scrambled[..., redundant] = np.random.default_rng(0).normal(size=scrambled[..., redundant].shape)
    np.testing.assert_allclose(local288.decode(scrambled, origin), synth_clips, rtol=0, atol=1e-9)
    x = torch.tensor(features, requires_grad=True)  # torch decode is differentiable (losses on joints)
    local288.decode(x, torch.from_numpy(origin)).square().sum().backward()
    assert x.grad is not None and bool(x.grad[..., local288.LAYOUT.columns(channels=("local_pos",))].abs().sum() > 0)


# ------------------------------------------------------------------------------------------------- registry


def test_registry():
    assert sorted(REPRESENTATIONS) == ["joints168", "local288"]
    for name, module in MODULES.items():
        rep = get_representation(name)
        assert isinstance(rep, Representation)
        assert rep.name == name and rep.features == rep.layout.features == module.NUM_FEATURES
        clips = random_clips(2, n=1, frames=5)
        features, extras = rep.encode(clips)
        assert features.shape == (1, 5, rep.features)
        np.testing.assert_allclose(rep.decode(features, extras), clips, atol=1e-9)
    assert (get_representation("joints168").features, get_representation("local288").features) == (168, 288)
    expected = r"unknown representation 'joints'; expected one of \['joints168', 'local288'\]"
    with pytest.raises(ValueError, match=expected):
        get_representation("joints")


# --------------------------------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_column_has_one_hand_joint_channel_and_component(name):
    layout = MODULES[name].LAYOUT
    keys = list(zip(layout.hand.tolist(), layout.joint.tolist(), layout.channel, layout.component))
    assert len(keys) == len(set(keys)) == len(set(layout.names)) == layout.features
    groups = [layout.columns(hand=h) for h in (LEFT, RIGHT, BOTH)]
    np.testing.assert_array_equal(np.sort(np.concatenate(groups)), np.arange(layout.features))  # a partition
    channels = sorted(set(layout.channel))
    by_channel = [layout.columns(channels=(c,)) for c in channels]
    np.testing.assert_array_equal(np.sort(np.concatenate(by_channel)), np.arange(layout.features))
    # the hands are described alike, but for the one root whose motion is absolute (local288's right wrist)
    right = [c for c in groups[1] if layout.channel[c] != "root_vel"]
    assert [layout.names[c].replace("left/", "right/", 1) for c in groups[0]] == [layout.names[c] for c in right]


def test_joints168_layout_reads_the_features(synth_clips):
    layout = joints168.LAYOUT
    assert layout.names[:5] == ("left/wrist/pos/x", "left/wrist/pos/y", "left/wrist/pos/z", "left/wrist/bend",
                                "left/index_mcp/pos/x")
    assert len(layout.columns(hand=BOTH)) == 0
    features, centre = joints168.encode(synth_clips)
    pos = layout.columns(channels=("pos",))
    axis = np.array(["xyz".index(layout.component[c]) for c in pos])
    expected = synth_clips[:, :, layout.hand[pos], layout.joint[pos], axis] - centre[:, None, axis]  # (n, T, 126)
    np.testing.assert_allclose(features[..., pos], expected, atol=1e-12)
    bend = layout.columns(channels=("bend",))
    s = joints168.scalar_bend(synth_clips)  # (n, T, 2, 21)
    np.testing.assert_allclose(features[..., bend], s[:, :, layout.hand[bend], layout.joint[bend]], atol=1e-12)
    # the inpainting convention: joint j of the 42 (hand-major) owns columns 4j..4j+3
    np.testing.assert_array_equal(layout.columns(hand=RIGHT, joints=[5]), 4 * (21 + 5) + np.arange(4))


def test_local288_layout_is_the_reference_table():
    layout = local288.LAYOUT
    assert layout.features == 288
    table = {  # reference §1.6: (hand, channel) → columns
        (RIGHT, "root_vel"): range(0, 3), (BOTH, "wrist_offset"): range(3, 6),
        (LEFT, "rot6d"): range(6, 12), (RIGHT, "rot6d"): range(12, 18),
        (LEFT, "bend"): range(18, 33), (RIGHT, "bend"): range(33, 48),
        (LEFT, "local_pos"): range(48, 108), (RIGHT, "local_pos"): range(108, 168),
        (LEFT, "local_vel"): range(168, 228), (RIGHT, "local_vel"): range(228, 288),
    }
    for (hand, channel), cols in table.items():
        np.testing.assert_array_equal(layout.columns(hand=hand, channels=(channel,)), np.arange(cols.start, cols.stop))
    assert sum(len(c) for c in table.values()) == 288
    np.testing.assert_array_equal(layout.joint[18:33], np.arange(1, 16))  # bends of joints 1..15
    np.testing.assert_array_equal(layout.joint[48:108:3], np.arange(1, 21))  # local positions of joints 1..20
    assert layout.component[48:51] == ("x", "y", "z")
    assert layout.names[6:12] == tuple(f"left/wrist/rot6d/r{i}{j}" for i in range(2) for j in range(3))
    np.testing.assert_array_equal(layout.columns(joints=[WRIST]), np.arange(18))  # the roots


def _structural_constants(module) -> set[str]:
    """Names of columns that hold the same value in every frame of any clip."""
    features, _ = module.encode(random_clips(3, n=4))
    flat = features.reshape(-1, module.NUM_FEATURES)
    return {module.LAYOUT.names[c] for c in np.flatnonzero(np.ptp(flat, axis=0) < 1e-12)}


def test_structural_constant_columns():
    tips = [name for name, j in JOINT_INDEX.items() if j in TIP_INDICES]
    assert _structural_constants(joints168) == {f"{h}/{j}/bend" for h in ("left", "right") for j in ["wrist", *tips]}
    assert _structural_constants(local288) == {
        f"{h}/{joint}/{channel}/{axis}" for h in ("left", "right") for channel in ("local_pos", "local_vel")
        for joint, axis in (("middle_mcp", "y"), ("middle_mcp", "z"), ("index_mcp", "z"))}


def _move_one_hand(clips: np.ndarray, hand: int, rng: np.random.Generator) -> np.ndarray:
    """Move only ``hand``: a translation with zero time-mean (so joints168's centre stays put), a rotation about
    its wrist that changes over time, and noise on every finger joint (so bends and hand frames change)."""
    out = clips.copy()
    frames = clips.shape[1]
    shift = rng.normal(scale=0.05, size=(frames, 3))
    shift -= shift.mean(axis=0)  # (T, 3)
    wrist = out[:, :, hand, WRIST:WRIST + 1]  # (n, T, 1, 3)
    turns = np.stack([random_rotation(rng) for _ in range(frames)])  # (T, 3, 3)
    out[:, :, hand] = wrist + np.einsum("tij,nthj->nthi", turns, out[:, :, hand] - wrist)
    out[:, :, hand, 1:] += rng.normal(scale=0.01, size=out[:, :, hand, 1:].shape)
    out[:, :, hand] += shift[None, :, None, :]
    return out


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize("hand", [LEFT, RIGHT])
def test_moving_one_hand_changes_exactly_its_columns(name, hand, synth_clips):
    """An independent check of the layout: the columns that change when only one hand moves are that hand's
    columns and the two-hand ones, less the columns that never change at all."""
    module = MODULES[name]
    layout = module.LAYOUT
    before, _ = module.encode(synth_clips)
    after, _ = module.encode(_move_one_hand(synth_clips, hand, np.random.default_rng(hand)))
    changed = np.flatnonzero(np.abs(after - before).max(axis=(0, 1)) > 1e-9)
    constant = [layout.names.index(n) for n in _structural_constants(module)]
    expected = np.setdiff1d(layout.columns(hand=[hand, BOTH]), constant)
    np.testing.assert_array_equal(changed, expected)


def test_layout_validation():
    with pytest.raises(ValueError, match="more than one column"):
        Layout.grid([LEFT], [WRIST, WRIST], [("pos", ("x",))])
    with pytest.raises(ValueError, match="hand must hold"):
        Layout.grid([2], [WRIST], [("pos", ("x",))])
    with pytest.raises(ValueError, match="joint must lie"):
        Layout.grid([LEFT], [NUM_JOINTS], [("pos", ("x",))])
    with pytest.raises(ValueError, match=r"unknown channel\(s\) \['position'\]; this layout has \['pos', 'bend'\]"):
        joints168.LAYOUT.columns(channels=("position",))
    with pytest.raises(ValueError, match="joints must lie"):
        joints168.LAYOUT.columns(joints=[21])
    assert joints168.LAYOUT.columns(channels="bend").shape == (42,)  # one name or several
    with pytest.raises(ValueError):
        joints168.LAYOUT.hand[0] = 1  # read-only


# ------------------------------------------------------------------------------------------ local288 details


def test_local288_global_translation_changes_only_the_origin(synth_clips):
    features, origin = local288.encode(synth_clips)
    shift = np.array([0.4, -1.5, 0.7])
    moved, moved_origin = local288.encode(synth_clips + shift)
    np.testing.assert_allclose(moved, features, atol=1e-9)  # every column, root ones included
    np.testing.assert_allclose(moved_origin, origin + shift, atol=1e-12)
    np.testing.assert_allclose(origin, synth_clips[:, 0, RIGHT, WRIST], atol=0)


def test_local288_global_rotation_turns_only_the_root_channels(synth_clips):
    rotation = random_rotation(np.random.default_rng(4))
    features, _ = local288.encode(synth_clips)
    turned, _ = local288.encode(synth_clips @ rotation.T)
    layout = local288.LAYOUT
    hand_local = layout.columns(channels=("bend", "local_pos", "local_vel"))
    np.testing.assert_allclose(turned[..., hand_local], features[..., hand_local], atol=1e-9)
    for channel in ("root_vel", "wrist_offset"):
        cols = layout.columns(channels=(channel,))
        np.testing.assert_allclose(turned[..., cols], features[..., cols] @ rotation.T, atol=1e-9)
    for hand in (LEFT, RIGHT):  # R → Q R: the 6D rows are the first two rows of Q R
        cols = layout.columns(hand=hand, channels=("rot6d",))
        r = local288.rotation_from_6d(torch.from_numpy(features[..., cols])).numpy()  # (n, T, 3, 3)
        np.testing.assert_allclose(turned[..., cols], (rotation @ r)[..., :2, :].reshape(*r.shape[:2], 6), atol=1e-9)


def test_local288_hand_computed_case():
    """Both hands glide at a constant velocity with their local frames equal to the world axes."""
    hand = np.zeros((21, 3))
    rng = np.random.default_rng(5)
    hand[1:] = rng.normal(scale=0.05, size=(20, 3))
    hand[JOINT_INDEX["middle_mcp"]] = [0.09, 0.0, 0.0]  # x̂ = +x
    hand[JOINT_INDEX["index_mcp"]] = [0.08, 0.02, 0.0]  # in the x–y plane on +y: ŷ = +y, ẑ = +z
    np.testing.assert_allclose(local_frame(hand), np.eye(3), atol=1e-12)
    velocity, frames = np.array([0.01, -0.02, 0.005]), 6
    steps = np.arange(frames)[:, None, None, None] * velocity  # (T, 1, 1, 3)
    wrists = np.array([[-0.3, 0.1, 0.05], [0.2, 0.0, 0.0]])[None, :, None, :]  # (1, 2, 1, 3)
    clip = hand[None, None] + wrists + steps  # (T, 2, 21, 3)
    features, origin = local288.encode(clip)
    layout = local288.LAYOUT
    col = {c: layout.columns(channels=(c,)) for c in set(layout.channel)}
    np.testing.assert_allclose(features[:-1, col["root_vel"]], np.broadcast_to(velocity, (frames - 1, 3)), atol=1e-12)
    np.testing.assert_allclose(features[-1, col["root_vel"]], 0.0, atol=0)
    np.testing.assert_allclose(features[:, col["wrist_offset"]], np.broadcast_to([-0.5, 0.1, 0.05], (frames, 3)),
                               atol=1e-12)
    np.testing.assert_allclose(features[:, col["rot6d"]], np.tile([1.0, 0, 0, 0, 1, 0], (frames, 2)), atol=1e-12)
    np.testing.assert_allclose(features[:, col["local_pos"]], np.tile(hand[1:].reshape(-1), (frames, 2)), atol=1e-12)
    np.testing.assert_allclose(features[:, col["local_vel"]], 0.0, atol=1e-12)
    np.testing.assert_allclose(origin, [0.2, 0.0, 0.0], atol=0)


def test_local288_mirror(synth_clips):
    """Mirroring swaps the hands; a reflected hand's frame is (x̂, ŷ, −ẑ) of the original, so its local
    positions are the other hand's with z negated."""
    features, _ = local288.encode(synth_clips)
    mirrored, _ = local288.encode(mirror(synth_clips))
    layout = local288.LAYOUT
    flip = np.array([1.0 if k != "z" else -1.0 for k in layout.component])
    for channel in ("local_pos", "local_vel", "bend"):
        left = layout.columns(hand=LEFT, channels=(channel,))
        right = layout.columns(hand=RIGHT, channels=(channel,))
        np.testing.assert_allclose(mirrored[..., left], features[..., right] * flip[right], atol=1e-5)
        np.testing.assert_allclose(mirrored[..., right], features[..., left] * flip[left], atol=1e-5)


def test_local288_stats_floor_the_constant_columns(synth_clips):
    features, _ = local288.encode(synth_clips)
    stats = FeatureStats.fit([features])
    constant = [local288.LAYOUT.names.index(n) for n in _structural_constants(local288)]
    np.testing.assert_array_equal(stats.std[constant], 1.0)
    assert np.isfinite(stats.normalize(features)).all()


def test_local288_shape_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 2, 21, 3\)"):
        local288.encode(np.zeros((60, 42, 3)))
    with pytest.raises(ValueError, match="288"):
        local288.decode(np.zeros((60, 168)))
    with pytest.raises(ValueError, match=r"origin of shape \(2, 3\)"):
        local288.decode(np.zeros((2, 60, 288)), np.zeros((3,)))
