"""Two-hand clips: validation, resampling by timestamp, canonical frame and windowing.

A clip is float32 ``(T, 2, 21, 3)`` in metres at 30 fps, hand 0 left, hand 1 right, joints in the order of
:mod:`handx.skeleton`. The canonical frame is +x to the subject's right, +y forward, +z up, with the left hand on
−x (reference §1.2). Training windows are 60 frames with the right wrist at the origin at frame 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from handx.errors import HandxInputError
from handx.skeleton import JOINT_INDEX, LEFT, NUM_HANDS, NUM_JOINTS, RIGHT, WRIST

FPS = 30
WINDOW = 60
CLIP_SHAPE_TAIL = (NUM_HANDS, NUM_JOINTS, 3)


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where a sequence or clip came from.

    ``space`` is ``"metric"`` for metric 3D capture and ``"image"`` for image-space landmarks scaled by an
    assumption (see :mod:`handx.io.mediapipe`).
    """

    dataset: str
    sequence: str
    license: str
    space: str = "metric"

    def __post_init__(self) -> None:
        if self.space not in ("metric", "image"):
            raise ValueError(f"Provenance.space must be 'metric' or 'image', got {self.space!r}")


#: The three texts of a clip, in the order every model and file uses: the store's record keys (reference §1.3).
BRANCHES: tuple[str, str, str] = ("left", "right", "two_hands_relation")


@dataclasses.dataclass(frozen=True)
class Triplet:
    """One description triplet: what the left hand does, what the right hand does, how the hands relate.

    Iterating gives the three texts in :data:`BRANCHES` order.
    """

    left: str
    right: str
    relation: str

    def __iter__(self) -> Iterator[str]:
        return iter((self.left, self.right, self.relation))

    def to_json(self) -> dict[str, str]:
        """The triplet under the store's keys (:data:`BRANCHES`)."""
        return dict(zip(BRANCHES, self))

    @classmethod
    def from_json(cls, data: dict) -> "Triplet":
        return cls(*(str(data[key]) for key in BRANCHES))


@dataclasses.dataclass(frozen=True)
class Texts:
    """Three lists of equal length: descriptions of the left hand, the right hand and their relation."""

    left: tuple[str, ...] = ()
    right: tuple[str, ...] = ()
    two_hands_relation: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        lengths = {len(self.left), len(self.right), len(self.two_hands_relation)}
        if len(lengths) != 1:
            raise ValueError(
                "texts must have equal numbers of left, right and two_hands_relation variants, got "
                f"{len(self.left)}, {len(self.right)}, {len(self.two_hands_relation)}"
            )

    def to_json(self) -> dict[str, list[str]]:
        return {key: list(getattr(self, key)) for key in BRANCHES}

    @classmethod
    def from_json(cls, data: dict | None) -> "Texts":
        data = data or {}
        return cls(*(tuple(data.get(key, ())) for key in BRANCHES))

    def triplet(self, variant: int = 0) -> Triplet:
        """Variant ``variant`` of the three texts."""
        return Triplet(self.left[variant], self.right[variant], self.two_hands_relation[variant])


@dataclasses.dataclass(frozen=True)
class Sequence:
    """A continuous two-hand recording in the canonical frame at 30 fps.

    Attributes:
        joints: float32 ``(T, 2, 21, 3)`` metres; NaN where a hand is missing.
        present: bool ``(T, 2)``; False where that hand was not tracked in that frame.
        source: provenance of the recording.
        texts: descriptions when the source has them (windowed clips inherit them only if the sequence is one clip).
    """

    joints: np.ndarray
    present: np.ndarray
    source: Provenance
    texts: Texts | None = None

    def __post_init__(self) -> None:
        if self.joints.ndim != 4 or self.joints.shape[1:] != CLIP_SHAPE_TAIL:
            raise ValueError(f"Sequence.joints must be (T, 2, 21, 3), got {self.joints.shape}")
        if self.present.shape != self.joints.shape[:2]:
            raise ValueError(f"Sequence.present must be (T, 2) = {self.joints.shape[:2]}, got {self.present.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


def validate_clip(motion: np.ndarray, *, path: str | None = None, item: str | None = None,
                  frames: int | None = None) -> np.ndarray:
    """Check that ``motion`` is a two-hand clip and return it as float32.

    Checks: shape ``(T, 2, 21, 3)`` (and ``T == frames`` when given), a real floating dtype, finite values
    everywhere, and both hands present (not all zeros). Raises :class:`HandxInputError` naming ``path`` and
    ``item``.
    """
    arr = np.asarray(motion)
    if arr.ndim != 4 or arr.shape[1:] != CLIP_SHAPE_TAIL:
        raise HandxInputError(path, f"expected motion of shape (T, 2, 21, 3), got {arr.shape}", item)
    if frames is not None and arr.shape[0] != frames:
        raise HandxInputError(path, f"expected {frames} frames, got {arr.shape[0]}", item)
    if arr.shape[0] == 0:
        raise HandxInputError(path, "motion has no frames", item)
    if not np.issubdtype(arr.dtype, np.floating):
        raise HandxInputError(path, f"motion must be floating point, got dtype {arr.dtype}", item)
    finite = np.isfinite(arr).all(axis=(2, 3))  # (T, 2)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        raise HandxInputError(
            path, f"non-finite values in {len(bad)} frame(s), first at frame {int(bad[0])}", item
        )
    for hand, name in ((LEFT, "left"), (RIGHT, "right")):
        if not np.any(arr[:, hand]):
            raise HandxInputError(path, f"the {name} hand is missing (all zeros)", item)
    return arr.astype(np.float32, copy=False)


def resample(joints: np.ndarray, present: np.ndarray, timestamps: np.ndarray, fps: float = FPS
             ) -> tuple[np.ndarray, np.ndarray]:
    """Resample a recording to a fixed rate by linear interpolation in time.

    Args:
        joints: ``(N, 2, 21, 3)`` samples (NaN allowed where a hand is absent).
        present: ``(N, 2)`` bool, whether each hand was tracked in each sample.
        timestamps: ``(N,)`` seconds, strictly increasing.
        fps: output rate.

    Returns:
        ``(T, 2, 21, 3)`` joints and ``(T, 2)`` presence on the grid ``t0 + k / fps`` covering the recording. An
        output frame has a hand only if both bracketing input samples have it; elsewhere its joints are NaN.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if timestamps.ndim != 1 or timestamps.shape[0] != joints.shape[0]:
        raise ValueError(f"timestamps must be (N,) with N = {joints.shape[0]}, got {timestamps.shape}")
    if timestamps.shape[0] < 2:
        raise ValueError("need at least two samples to resample")
    if np.any(np.diff(timestamps) <= 0):
        raise ValueError("timestamps must be strictly increasing")
    duration = timestamps[-1] - timestamps[0]
    grid = timestamps[0] + np.arange(int(np.floor(duration * fps + 1e-9)) + 1) / fps  # (T,)
    right = np.clip(np.searchsorted(timestamps, grid, side="right"), 1, len(timestamps) - 1)
    left = right - 1
    w = ((grid - timestamps[left]) / (timestamps[right] - timestamps[left]))[:, None, None, None]  # (T, 1, 1, 1)
    out = (1.0 - w) * joints[left] + w * joints[right]  # (T, 2, 21, 3)
    pres = present[left] & present[right]  # (T, 2)
    out = np.where(pres[:, :, None, None], out, np.nan)
    return out.astype(np.float32), pres


def smooth_time(values: np.ndarray, sigma: float, *, axis: int = 1) -> np.ndarray:
    """Gaussian low-pass along ``axis`` (frames) with standard deviation ``sigma`` frames; edges extend the first
    and last frame (a constant clip stays constant, and the filter never reaches past the clip).

    The kernel spans ±⌈4σ⌉ frames and sums to 1. ``sigma = 0`` returns a copy. At 30 fps, σ = 1.5 frames keeps
    motion below about 3 Hz intact (gain > 0.8) and removes frame-to-frame noise (gain < 0.01 above 10 Hz).
    """
    if not sigma >= 0:
        raise ValueError(f"smooth_time: sigma must be >= 0 frames, got {sigma}")
    values = np.asarray(values, dtype=np.float64)
    if sigma == 0 or values.shape[axis] < 2:
        return values.copy()
    radius = int(np.ceil(4 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()  # (2r + 1,)
    moved = np.moveaxis(values, axis, 0)  # (T, ...)
    frames = moved.shape[0]
    out = np.zeros_like(moved)
    for offset, weight in zip(offsets, kernel):
        out += weight * moved[np.clip(np.arange(frames) + offset, 0, frames - 1)]
    return np.moveaxis(out, 0, axis)


def canonical_flips(joints: np.ndarray) -> tuple[bool, bool, bool]:
    """Axis flips that put a roughly aligned recording into the canonical frame, decided from frame 0.

    The rule of reference §1.2: flip x if the left hand's mean x exceeds the right hand's; flip y if the
    fingers point to −y (mean of middle_mcp.y − wrist.y over both hands < 0); flip z when exactly one of those
    flips happened, so the change stays a proper rotation.
    """
    first = joints[0]  # (2, 21, 3)
    flip_x = bool(np.nanmean(first[LEFT, :, 0]) > np.nanmean(first[RIGHT, :, 0]))
    pointing = first[:, JOINT_INDEX["middle_mcp"], 1] - first[:, WRIST, 1]
    flip_y = bool(np.nanmean(pointing) < 0)
    return flip_x, flip_y, flip_x != flip_y


def apply_flips(joints: np.ndarray, flips: tuple[bool, bool, bool]) -> np.ndarray:
    """Negate the coordinate axes marked in ``flips`` (x, y, z)."""
    signs = np.where(np.asarray(flips), -1.0, 1.0).astype(joints.dtype)
    return joints * signs


def window_starts(num_frames: int, window: int = WINDOW, stride: int = WINDOW) -> range:
    """Start frames of the full windows of a recording of ``num_frames`` frames."""
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be positive, got window={window}, stride={stride}")
    return range(0, max(num_frames - window + 1, 0), stride)


def centre_on_right_wrist(clip: np.ndarray) -> np.ndarray:
    """Translate a clip so the right wrist is at the origin at frame 0 (reference §1.2)."""
    return (clip - clip[0, RIGHT, WRIST]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Window:
    """One training window cut from a sequence: frames ``[start, start + window)``, right wrist centred."""

    motion: np.ndarray  # (window, 2, 21, 3) float32
    start: int
    end: int


def iter_windows(seq: Sequence, window: int = WINDOW, stride: int = WINDOW) -> Iterator[Window | tuple[int, str]]:
    """Cut a sequence into centred windows.

    Yields :class:`Window` for each window where both hands are present in every frame, and
    ``(start, reason)`` for each window that had to be skipped (so callers can report it).
    """
    for start in window_starts(seq.num_frames, window, stride):
        end = start + window
        missing = ~seq.present[start:end]  # (window, 2)
        if missing.any():
            hands = [name for h, name in ((LEFT, "left"), (RIGHT, "right")) if missing[:, h].any()]
            yield start, f"frames {start}-{end}: {' and '.join(hands)} hand missing in {int(missing.any(1).sum())} frame(s)"
            continue
        clip = seq.joints[start:end]
        if not np.isfinite(clip).all():
            yield start, f"frames {start}-{end}: non-finite values"
            continue
        yield Window(centre_on_right_wrist(clip), start, end)
