"""MediaPipe Holistic hand landmarks in ``.pose`` files (pose-format) → a two-hand :class:`~handx.motion.Sequence`.

The output follows reference §1.1 (21 joints, hand 0 left, hand 1 right, 30 fps) and §1.2 (+x right, +y forward,
+z up) but is **not metric capture**: MediaPipe gives image landmarks, and the metric size comes from an assumed
hand length. Such sequences carry ``Provenance.space == "image"``.

File format
-----------
A ``.pose`` file (read with ``pose_format.Pose.read``) has a header with image ``dimensions`` (width, height)
and named components; the body holds ``data`` ``(frames, people, points, 3)`` (a masked array, masked where
nothing was detected), ``confidence`` ``(frames, people, points)`` and ``fps``. Holistic files list
``POSE_LANDMARKS``, ``FACE_LANDMARKS``, ``LEFT_HAND_LANDMARKS``, ``RIGHT_HAND_LANDMARKS`` (and, from pose-format
0.2, ``POSE_WORLD_LANDMARKS``), all with point format ``XYZC``. Each hand component has MediaPipe's 21 points in
the order :data:`MEDIAPIPE_HAND_POINTS` (wrist, thumb CMC/MCP/IP/TIP, then index, middle, ring, pinky
MCP/PIP/DIP/TIP); the reader checks the names and reorders with :data:`handx.skeleton.OPENPOSE_TO_HANDX`. An
undetected hand has all 21 points masked with confidence 0; a frame where any point of a hand is masked or has
zero confidence counts as absent for that hand. Only the first person is read.

Coordinates and scale
---------------------
``x`` and ``y`` are pixels (MediaPipe's normalised coordinates times the image width and height); ``z`` is
MediaPipe's hand depth, relative to the wrist and "roughly the same scale as x", i.e. in units of the image
width, stored unscaled (the wrist is 0, fingertips about −0.03 to −0.07). The pose-format 0.1 file
``mediapipe_holistic_170f`` stores it with an extra offset of about 625 that changes from frame to frame, so only
depth differences within a hand are used: ``z_px = (z − z_wrist) · width``. This is commensurate with x and y:
with depth scaled by ``k · width``, bone lengths vary less at ``k = 1`` than with the depth dropped on all five
hand tracks here, and least for ``k`` between 1 and 2 on four of them.

Axes: the signer faces the camera, so the subject's right hand appears on the image's left; image ``x`` grows
to the image's right (the subject's left), ``y`` grows downwards, ``z`` grows away from the camera (into the
subject). Canonical +x (subject's right) is therefore image −x (the image's x axis is mirrored), +z (up) is image −y
and +y (forward, away from the body towards the camera) is −z: ``canonical = IMAGE_TO_CANONICAL @ (x, y, z)`` with
``IMAGE_TO_CANONICAL = [[−1, 0, 0], [0, 0, −1], [0, −1, 0]]``, a proper rotation (determinant +1), so a left hand
stays a left hand. The image centre becomes the origin of x and z, and each wrist lies at depth y = 0 (MediaPipe
gives no depth between the hands).

``LEFT_HAND_LANDMARKS`` is the subject's left hand: in the files here its wrist is nearer the body model's
``LEFT_WRIST`` than its ``RIGHT_WRIST`` in every frame (89 % of ``signing_47f``, where the body model's wrists
drift far from both hands in a few frames), and ``LEFT_SHOULDER`` is on the image's right, i.e. a camera facing
the signer, not a mirrored selfie view. It becomes hand 0.

Scaling assumption (:func:`scale_to_metres`): both hands of a signer have the same, typical size, and the camera
is far enough for weak perspective. Each hand's shape (its joints relative to its wrist) is scaled so that its
median hand length over the file (wrist → middle fingertip along the middle chain,
:func:`handx.skeleton.hand_length`) is ``hand_length_m`` (0.19 m, an adult hand); the wrist positions, which carry
where the hands are relative to each other, are scaled by one factor per file, the one that maps the median hand
length of all detections of both hands to ``hand_length_m``. (A single factor for everything would leave the
hands of ``signing_both_hands_18f`` at 17.5 and 25 cm: its right hand looks 44 % larger.) Bone lengths are not
constant in image space (projection, foreshortening, detection noise: 6–23 % mean coefficient of variation per
hand track here) and their proportions unreliable, so each hand is then put onto the nominal adult skeleton
(:func:`rigid_bones`): every bone keeps its image direction frame by frame and gets its nominal length
(:data:`handx.skeleton.NOMINAL_BONE_LENGTHS`), scaled so the wrist → middle-tip chain is ``hand_length_m``. The
pixels are resampled from the file's fps to 30 fps with :func:`handx.motion.resample`
before scaling, so the medians above hold exactly for the frames returned.

Time: ``.pose`` files carry a frame rate, not timestamps, so frame ``i`` is at ``i / fps``. The rate must lie
between 4 and 10,000 fps (:func:`handx.io.importer.check_frame_time`): a slower one would make resampling
bridge more than :data:`handx.io.importer.MAX_GAP_S` between frames, and an absurd one (1e-12 fps) would ask
for an absurd number of output frames. Frames between detections of a hand are not bridged either: a hand is
present in an output frame only where it is detected in both bracketing input frames.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from pose_format import Pose

from handx import skeleton
from handx.errors import HandxInputError
from handx.io.importer import check_frame_time
from handx.io.paths import find_files
from handx.kinematics import project_to_skeleton
from handx.motion import FPS, Provenance, Sequence, resample

logger = logging.getLogger(__name__)

SUFFIX = ".pose"
#: The pose-format component holding each of our hands (index = hand: 0 left, 1 right).
HAND_COMPONENTS: tuple[str, str] = ("LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS")
#: MediaPipe's hand landmark order (``HandLandmark``), as the component's point names.
MEDIAPIPE_HAND_POINTS: tuple[str, ...] = (
    "WRIST",
    "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)
#: Image axes (x right, y down, z away from the camera) → canonical: ``canonical = IMAGE_TO_CANONICAL @ image``.
IMAGE_TO_CANONICAL = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, -1.0, 0.0]])
DEFAULT_HAND_LENGTH_M = 0.19


def discover(path: str | os.PathLike) -> list[Path]:
    """MediaPipe pose files at ``path``: the file itself, or every ``*.pose`` below a directory, sorted."""
    return find_files(path, SUFFIX)


def read_mediapipe(path: str | os.PathLike, *, dataset: str = "mediapipe", license: str = "MIT",
                   hand_length_m: float = DEFAULT_HAND_LENGTH_M) -> Sequence:
    """Read the hands of a MediaPipe Holistic ``.pose`` file as an image-space sequence at 30 fps.

    Args:
        path: the ``.pose`` file.
        dataset, license: provenance of the sequence.
        hand_length_m: the median hand length (wrist → middle fingertip) the file is scaled to, in metres.

    Raises :class:`HandxInputError` naming the file when it cannot be read, lacks the hand components, has
    fewer than two frames or detects no hand at all.
    """
    if not (np.isfinite(hand_length_m) and hand_length_m > 0):
        raise ValueError(f"hand_length_m must be a positive number of metres, got {hand_length_m!r}")
    path = Path(path)
    pose = _read_pose(path)
    pixels, present = _hands_in_pixels(pose, path)  # (N, 2, 21, 3), (N, 2)
    if not present.any():
        raise HandxInputError(path, "no hand detected in any frame")
    fps = float(pose.body.fps)
    seconds = np.arange(pixels.shape[0]) / fps  # (N,)
    pixels_30, out_present = resample(pixels, present, seconds, FPS)  # (T, 2, 21, 3), (T, 2)
    if not out_present.any():
        raise HandxInputError(path, "no hand detected in two consecutive frames")
    try:
        metres = scale_to_metres(pixels_30.astype(np.float64), out_present, hand_length_m)  # (T, 2, 21, 3)
    except ValueError as exc:
        raise HandxInputError(path, str(exc)) from exc
    metres = rigid_bones(metres, hand_length_m)
    out = np.einsum("ij,thkj->thki", IMAGE_TO_CANONICAL, metres).astype(np.float32)  # (T, 2, 21, 3)
    logger.info("%s: %d frames at %g fps → %d frames at %d fps; detections %s",
                path, pixels.shape[0], fps, out.shape[0], FPS,
                "/".join(f"{n} {int(c)}" for n, c in zip(skeleton.HAND_NAMES, present.sum(axis=0))))
    return Sequence(out, out_present, Provenance(dataset, path.stem, license, "image"))


def rigid_bones(metres: np.ndarray, hand_length_m: float) -> np.ndarray:
    """Put every hand onto the nominal adult skeleton, keeping each bone's direction in every frame.

    Image landmarks shrink and stretch with projection, foreshortening and detection noise (6–23 % per bone
    here), and their proportions are unreliable (a foreshortened pinky tip can look 12 mm long), while a hand
    is rigid. So each bone keeps its image direction and gets its length from
    :data:`handx.skeleton.NOMINAL_BONE_LENGTHS`, scaled so the wrist → middle-tip chain is ``hand_length_m``
    (:func:`handx.kinematics.project_to_skeleton`). ``(T, 2, 21, 3)`` → same shape.
    """
    middle = np.asarray(skeleton.CHAINS["middle"][1:]) - 1  # bone index = child joint index - 1
    lengths = skeleton.NOMINAL_BONE_LENGTHS * (hand_length_m / skeleton.NOMINAL_BONE_LENGTHS[middle].sum())
    return project_to_skeleton(metres, np.broadcast_to(lengths, (2, lengths.shape[0])))


def scale_to_metres(pixels: np.ndarray, present: np.ndarray, hand_length_m: float) -> np.ndarray:
    """The documented scaling: each hand's shape to a median length of ``hand_length_m``, wrists by one factor.

    Args:
        pixels: ``(N, 2, 21, 3)`` landmarks in pixels (NaN where absent).
        present: ``(N, 2)``, at least one True.
        hand_length_m: target median hand length in metres.

    Returns:
        ``(N, 2, 21, 3)`` in metres, same axes.
    """
    lengths = skeleton.hand_length(pixels)  # (N, 2)
    file_px = float(np.median(lengths[present]))
    hand_px = np.array([np.median(lengths[present[:, h], h]) if present[:, h].any() else file_px
                        for h in range(present.shape[1])])  # (2,)
    if not (file_px > 0 and np.all(hand_px > 0)):
        raise ValueError(f"degenerate hands: median hand lengths {hand_px} px")
    wrist = pixels[:, :, skeleton.WRIST:skeleton.WRIST + 1]  # (N, 2, 1, 3)
    shape_scale = (hand_length_m / hand_px)[None, :, None, None]  # (1, 2, 1, 1)
    logger.debug("wrists %.5f m/px, hand shapes %s m/px", hand_length_m / file_px, np.round(shape_scale.ravel(), 5))
    return wrist * (hand_length_m / file_px) + (pixels - wrist) * shape_scale


def _read_pose(path: Path) -> Pose:
    try:
        buffer = path.read_bytes()
    except OSError as exc:
        raise HandxInputError(path, f"cannot read file: {exc.strerror or exc}") from exc
    if not buffer:
        raise HandxInputError(path, "empty file")
    try:
        return Pose.read(buffer)
    except Exception as exc:  # pose-format raises struct, index, value and unicode errors on bad bytes
        raise HandxInputError(path, f"not a readable .pose file ({type(exc).__name__}: {exc})"[:300]) from exc


def _hands_in_pixels(pose: Pose, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Both hands in our joint order, image axes in pixels (centred), depth relative to each wrist.

    Returns ``(N, 2, 21, 3)`` float64 (NaN where absent) and presence ``(N, 2)``.
    """
    header, body = pose.header, pose.body
    width, height = float(header.dimensions.width), float(header.dimensions.height)
    if not (width > 0 and height > 0):
        raise HandxInputError(path, f"image dimensions must be positive, got {width:g} x {height:g}")
    fps = float(body.fps)
    if not (np.isfinite(fps) and fps > 0):
        raise HandxInputError(path, f"frame rate must be positive, got {body.fps!r}")
    check_frame_time(1.0 / fps, path, "fps")  # before any work that scales with duration
    data, confidence = body.data, np.asarray(body.confidence)
    if data.ndim != 4 or data.shape[-1] < 3:
        raise HandxInputError(path, f"expected (frames, people, points, >=3) landmarks, got shape {data.shape}")
    frames, people = data.shape[:2]
    if frames < 2:
        raise HandxInputError(path, f"need at least two frames to resample, got {frames}")
    if people < 1:
        raise HandxInputError(path, "no person in the file")
    if people > 1:
        logger.warning("%s: %d people; reading the first", path, people)

    offsets, start = {}, 0
    for component in header.components:
        offsets[component.name] = (start, component)
        start += len(component.points)
    pixels = np.full((frames, skeleton.NUM_HANDS, skeleton.NUM_JOINTS, 3), np.nan)
    present = np.zeros((frames, skeleton.NUM_HANDS), dtype=bool)
    for hand, name in enumerate(HAND_COMPONENTS):
        if name not in offsets:
            raise HandxInputError(path, f"no {name} component (components: {', '.join(offsets)})")
        offset, component = offsets[name]
        if tuple(component.points) != MEDIAPIPE_HAND_POINTS:
            raise HandxInputError(path, f"unexpected points {list(component.points)[:5]}...; expected MediaPipe's "
                                        f"21 hand landmarks in order", name)
        block = data[:, 0, offset:offset + skeleton.NUM_JOINTS, :3]  # (N, 21, 3) masked
        values = np.ma.getdata(block).astype(np.float64)
        ok = (~np.ma.getmaskarray(block).any(axis=(1, 2))
              & (confidence[:, 0, offset:offset + skeleton.NUM_JOINTS] > 0).all(axis=1)
              & np.isfinite(values).all(axis=(1, 2)))  # (N,)
        px = np.stack([values[..., 0] - width / 2, values[..., 1] - height / 2,
                       (values[..., 2] - values[:, :1, 2]) * width], axis=-1)  # (N, 21, 3)
        pixels[:, hand] = np.where(ok[:, None, None], px[:, skeleton.OPENPOSE_TO_HANDX], np.nan)
        present[:, hand] = ok
    return pixels, present
