"""MediaPipe Holistic importer: real ``.pose`` files, synthetic poses with known landmarks, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_plausible_anatomy
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

from handx import skeleton
from handx.errors import HandxInputError
from handx.io import mediapipe

ALL = ("mediapipe_holistic_170f", "signing_47f", "signing_both_hands_18f")
HANDS = ("LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS")


def _component(pose: Pose, name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw pixels ``(N, points, 3)``, detection ``(N,)`` (all points unmasked) and point names of a component."""
    start = 0
    for component in pose.header.components:
        if component.name == name:
            block = pose.body.data[:, 0, start:start + len(component.points), :3]
            detected = ~np.ma.getmaskarray(block).any(axis=(1, 2))
            return np.ma.getdata(block).astype(np.float64), detected, list(component.points)
        start += len(component.points)
    raise KeyError(name)


@pytest.fixture(scope="module")
def files(shared_data):
    """name → (raw Pose, sequence)."""
    paths = mediapipe.discover(shared_data / "mediapipe")
    return {p.stem: (Pose.read(p.read_bytes()), mediapipe.read_mediapipe(p)) for p in paths}


# ---------------------------------------------------------------- real files

def test_every_file_imports_as_image_space_at_30_fps(files):
    assert sorted(files) == sorted(ALL)
    for name, (pose, seq) in files.items():
        assert seq.source.space == "image" and seq.source.sequence == name
        assert seq.source.dataset == "mediapipe" and seq.source.license == "MIT"
        assert seq.joints.dtype == np.float32 and seq.joints.shape[1:] == (2, 21, 3)
        duration = (pose.body.data.shape[0] - 1) / float(pose.body.fps)
        assert abs(seq.num_frames - (duration * 30 + 1)) <= 1, (name, seq.num_frames, duration)
        np.testing.assert_array_equal(np.isfinite(seq.joints).all(axis=(2, 3)), seq.present)
        # a hand is present only where the nearest source frame detected it
        nearest = np.clip(np.round(np.arange(seq.num_frames) / 30 * float(pose.body.fps)).astype(int),
                          0, pose.body.data.shape[0] - 1)
        for hand, component in enumerate(HANDS):
            detected = _component(pose, component)[1]
            assert not (seq.present[:, hand] & ~detected[nearest]).any(), (name, component)


def test_missing_hand_is_absent(files):
    seq = files["mediapipe_holistic_170f"][1]
    assert not seq.present[:, skeleton.LEFT].any()
    assert seq.present[:, skeleton.RIGHT].mean() > 0.8


def test_two_hand_file_is_scaled_to_the_assumed_hand_length(files, shared_data):
    seq = files["signing_both_hands_18f"][1]
    assert seq.present[:, skeleton.LEFT].all() and seq.present.all(axis=1).mean() > 0.75
    lengths = skeleton.hand_length(seq.joints)  # (T, 2)
    assert np.median(lengths[seq.present]) == pytest.approx(0.19, rel=0.01)
    for hand in (skeleton.LEFT, skeleton.RIGHT):
        assert np.median(lengths[seq.present[:, hand], hand]) == pytest.approx(0.19, rel=0.01)
    # the hand length is a pure scale: 0.17 m gives the same sequence scaled by 0.17 / 0.19
    smaller = mediapipe.read_mediapipe(shared_data / "mediapipe" / "signing_both_hands_18f.pose", hand_length_m=0.17)
    np.testing.assert_allclose(smaller.joints, seq.joints * (0.17 / 0.19), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["signing_both_hands_18f", "signing_47f"])
def test_left_hand_is_on_the_left_and_fingers_point_up(files, name):
    seq = files[name][1]
    both = seq.present.all(axis=1)
    wrists = seq.joints[both][:, :, skeleton.WRIST]  # (F, 2, 3)
    assert (wrists[:, skeleton.LEFT, 0] < wrists[:, skeleton.RIGHT, 0]).mean() > 0.8
    # signers hold their hands up: image "up" must become +z
    hands = seq.joints[seq.present]  # (F, 21, 3)
    up = hands[:, skeleton.JOINT_INDEX["middle_mcp"], 2] - hands[:, skeleton.WRIST, 2]
    assert (up > 0).mean() > 0.8


def test_left_hand_component_is_the_subjects_left_hand(files):
    """The documented reading of MediaPipe's labels: LEFT_HAND_LANDMARKS sits at the body's LEFT_WRIST.

    In most frames: in ``signing_47f`` the body model's wrists drift far from both hands in a few frames.
    """
    for name, (pose, _) in files.items():
        body, _, names = _component(pose, "POSE_LANDMARKS")
        assert (body[:, names.index("LEFT_SHOULDER"), 0] > body[:, names.index("RIGHT_SHOULDER"), 0]).all(), \
            f"{name}: the signer faces the camera (their left shoulder on the image's right)"
        for component, own, other in ((HANDS[0], "LEFT_WRIST", "RIGHT_WRIST"), (HANDS[1], "RIGHT_WRIST", "LEFT_WRIST")):
            pixels, detected, _ = _component(pose, component)
            if not detected.any():
                continue
            wrist = pixels[detected, 0, :2]  # (F, 2)
            near = np.linalg.norm(wrist - body[detected, names.index(own), :2], axis=-1)
            far = np.linalg.norm(wrist - body[detected, names.index(other), :2], axis=-1)
            assert (near < far).mean() > 0.85, f"{name}: {component}"


def test_every_hand_track_passes_the_anatomy_checks(files):
    """Projected onto a rigid skeleton, image-space hands pass the same checks as metric capture (bones constant
    within 5 %, hand length 15-22 cm, tip segments 15-35 mm); signing fingers point up, not forward."""
    for name, (_, seq) in files.items():
        if seq.present.all(axis=1).any():
            assert_plausible_anatomy(seq.joints, seq.present, fingers_forward=False, label=name)
        for hand in (skeleton.LEFT, skeleton.RIGHT):
            frames = seq.present[:, hand]
            if not frames.any():
                continue
            x = seq.joints[frames, hand]  # (F, 21, 3)
            bones = skeleton.bone_lengths(x)  # (F, 20)
            np.testing.assert_allclose(bones, np.broadcast_to(bones[0], bones.shape), rtol=1e-4)
            assert np.all((0.15 <= skeleton.hand_length(x)) & (skeleton.hand_length(x) <= 0.22)), name


def test_image_to_canonical_is_a_proper_rotation():
    rot = mediapipe.IMAGE_TO_CANONICAL
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_array_equal(rot @ [1, 0, 0], [-1, 0, 0])  # image right = the signer's left
    np.testing.assert_array_equal(rot @ [0, 1, 0], [0, 0, -1])  # image down = down
    np.testing.assert_array_equal(rot @ [0, 0, 1], [0, -1, 0])  # away from the camera = backwards


# ---------------------------------------------------------------- synthetic poses

WIDTH, HEIGHT = 640, 480


def _our_name(mediapipe_name: str) -> str:
    """MediaPipe's landmark name → ours, by name alone (``INDEX_FINGER_MCP`` → ``index_mcp``)."""
    return mediapipe_name.lower().replace("_finger", "")


def _synthetic_hand(names: list[str], size: float, centre: tuple[float, float]) -> np.ndarray:
    """A distinct landmark per MediaPipe point: (21, 3) pixels, z in image-width units relative to the wrist."""
    out = np.empty((len(names), 3))
    for i, name in enumerate(names):
        finger = ("WRIST", "THUMB", "INDEX", "MIDDLE", "RING", "PINKY").index(name.split("_")[0])
        step = 0 if finger == 0 else ("CMC", "MCP", "PIP", "IP", "DIP", "TIP").index(name.split("_")[-1])
        out[i] = [centre[0] + size * (finger - 3) * (finger > 0), centre[1] - size * (1 + step) * (finger > 0),
                  -0.01 * step * (1 + 0.1 * finger)]
    out[:, 2] += 0.3  # an arbitrary depth offset, as in pose-format 0.1 files
    return out


def _write_pose(path: Path, hands: list[np.ndarray | None], names: list[str], frames: int = 4,
                fps: float = 30.0, undetected: dict[int, list[int]] | None = None,
                components: tuple[str, ...] = HANDS) -> Path:
    header = PoseHeader(0.2, PoseHeaderDimensions(WIDTH, HEIGHT, 0),
                        [PoseHeaderComponent(c, list(names), [], [], "XYZC") for c in components])
    data = np.zeros((frames, 1, 21 * len(components), 3), dtype=np.float32)
    confidence = np.zeros((frames, 1, 21 * len(components)), dtype=np.float32)
    for hand, landmarks in enumerate(hands):
        if landmarks is not None:
            data[:, 0, 21 * hand:21 * (hand + 1)] = landmarks
            confidence[:, 0, 21 * hand:21 * (hand + 1)] = 1.0
    for hand, missing in (undetected or {}).items():
        confidence[missing, 0, 21 * hand:21 * (hand + 1)] = 0.0
    masked = np.ma.masked_array(data, mask=np.repeat(confidence[..., None] == 0, 3, axis=-1))
    buffer = io.BytesIO()
    Pose(header, NumPyPoseBody(fps, masked, confidence)).write(buffer)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def point_names(shared_data) -> list[str]:
    """The hand point names as a real file spells them."""
    pose = Pose.read((shared_data / "mediapipe" / "signing_both_hands_18f.pose").read_bytes())
    return _component(pose, HANDS[0])[2]


def _pixels_to_canonical(pixels: np.ndarray) -> np.ndarray:
    """By hand: centred image x mirrored, image up → +z, depth (image widths from the wrist) to the camera → +y."""
    return np.stack([-(pixels[..., 0] - WIDTH / 2), -(pixels[..., 2] - pixels[..., :1, 2]) * WIDTH,
                     -(pixels[..., 1] - HEIGHT / 2)], axis=-1)


def _middle_length(pixels: np.ndarray, names: list[str]) -> float:
    chain = ["WRIST", "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP"]
    points = _pixels_to_canonical(pixels)[[names.index(n) for n in chain]]
    return float(np.linalg.norm(np.diff(points, axis=0), axis=-1).sum())


def test_reorder_and_axes_on_a_known_hand(tmp_path, point_names):
    """Each MediaPipe landmark lands on the joint with the same name, mirrored, scaled and re-axed as documented."""
    hand = _synthetic_hand(point_names, size=12.0, centre=(400.0, 300.0))  # the left hand, alone
    path = _write_pose(tmp_path / "one.pose", [hand, None], point_names, undetected={0: [1]})
    seq = mediapipe.read_mediapipe(path)
    assert seq.source.space == "image" and seq.num_frames == 4
    assert not seq.present[:, skeleton.RIGHT].any()
    assert not seq.present[1, skeleton.LEFT] and seq.present[2:, skeleton.LEFT].all()
    scale = 0.19 / _middle_length(hand, point_names)
    expected = np.empty((21, 3))
    for i, name in enumerate(point_names):
        expected[skeleton.JOINT_INDEX[_our_name(name)]] = _pixels_to_canonical(hand)[i] * scale
    nominal = skeleton.NOMINAL_BONE_LENGTHS * 0.19 / 0.1831  # wrist -> middle tip of the nominal hand: 0.1831 m

    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    parents, children = skeleton.BONES[:, 0], skeleton.BONES[:, 1]
    for frame in np.flatnonzero(seq.present[:, skeleton.LEFT]):
        ours = seq.joints[frame, skeleton.LEFT]  # (21, 3)
        # The wrist lands where the landmark says; every bone points where the landmarks say, with the nominal
        # adult length.
        np.testing.assert_allclose(ours[skeleton.WRIST], expected[skeleton.WRIST], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(unit(ours[children] - ours[parents]), unit(expected[children] - expected[parents]),
                                   atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(ours[children] - ours[parents], axis=-1), nominal, rtol=1e-5)


def test_each_hand_gets_the_assumed_size_and_wrists_share_one_scale(tmp_path, point_names):
    left = _synthetic_hand(point_names, size=10.0, centre=(420.0, 300.0))
    right = _synthetic_hand(point_names, size=15.0, centre=(200.0, 280.0))  # looks 1.5 × larger
    seq = mediapipe.read_mediapipe(_write_pose(tmp_path / "two.pose", [left, right], point_names))
    assert seq.present.all()
    np.testing.assert_allclose(skeleton.hand_length(seq.joints), 0.19, rtol=1e-5)
    lengths = [_middle_length(h, point_names) for h in (left, right)]
    wrist_scale = 0.19 / np.median(lengths)  # the median over all detections of both hands
    wrist_pixels = [_pixels_to_canonical(h)[point_names.index("WRIST")] for h in (left, right)]
    for hand in (skeleton.LEFT, skeleton.RIGHT):
        expected = np.broadcast_to(wrist_pixels[hand] * wrist_scale, (seq.num_frames, 3))
        np.testing.assert_allclose(seq.joints[:, hand, skeleton.WRIST], expected, rtol=1e-5)
    assert (seq.joints[:, skeleton.LEFT, skeleton.WRIST, 0] < seq.joints[:, skeleton.RIGHT, skeleton.WRIST, 0]).all()


def test_fps_is_resampled_to_30(tmp_path, point_names):
    hand = _synthetic_hand(point_names, size=12.0, centre=(300.0, 300.0))
    seq = mediapipe.read_mediapipe(_write_pose(tmp_path / "slow.pose", [None, hand], point_names, frames=25, fps=24.0))
    assert seq.num_frames == 31  # 1 s at 24 fps → 0 … 1 s at 30 fps
    assert seq.present[:, skeleton.RIGHT].all() and not seq.present[:, skeleton.LEFT].any()


# ---------------------------------------------------------------- bad input

def _problem(path: Path) -> HandxInputError:
    with pytest.raises(HandxInputError) as info:
        mediapipe.read_mediapipe(path)
    assert str(path) in str(info.value)
    return info.value


def test_unreadable_file_is_an_error(tmp_path):
    path = tmp_path / "junk.pose"
    path.write_bytes(b"\x00\x01 definitely not a pose file")
    _problem(path)
    (tmp_path / "empty.pose").write_bytes(b"")
    _problem(tmp_path / "empty.pose")


def test_missing_components_and_undetected_hands_are_errors(tmp_path, point_names):
    hand = _synthetic_hand(point_names, size=12.0, centre=(300.0, 300.0))
    no_right = _write_pose(tmp_path / "half.pose", [hand], point_names, components=(HANDS[0],))
    assert "RIGHT_HAND_LANDMARKS" in _problem(no_right).problem
    nothing = _write_pose(tmp_path / "nothing.pose", [None, None], point_names)
    assert "no hand detected" in _problem(nothing).problem
    shuffled = _write_pose(tmp_path / "order.pose", [hand, None], point_names[::-1])
    assert _problem(shuffled).item == "LEFT_HAND_LANDMARKS"


def test_discover(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.pose", "sub/b.pose", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert mediapipe.discover(tmp_path) == [tmp_path / "a.pose", tmp_path / "sub" / "b.pose"]
    assert mediapipe.discover(tmp_path / "a.pose") == [tmp_path / "a.pose"]
    with pytest.raises(HandxInputError):
        mediapipe.discover(tmp_path / "missing")


@pytest.mark.parametrize("fps", [1e-12, 2.0, 1e6])
def test_absurd_frame_rate_is_refused_before_resampling(tmp_path, point_names, fps):
    """1e-12 fps used to ask for 10^14 output frames (MemoryError); at 2 fps resampling would invent half a
    second of motion between every two frames; a million fps is no video."""
    hand = _synthetic_hand(point_names, size=12.0, centre=(300.0, 300.0))
    path = _write_pose(tmp_path / "rate.pose", [hand, hand], point_names, frames=25, fps=fps)
    problem = _problem(path)
    assert problem.item == "fps" and "outside 0.0001-0.25 s (4-10000 fps)" in problem.problem
