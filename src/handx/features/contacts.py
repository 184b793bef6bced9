"""Per-frame contact labels (reference §2.9) and contact statistics (reference §2.8).

Labels use the fixed palm samples of :mod:`handx.features.signals`, so they are the same on every run (the
reference code drew random palm samples on every call).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from handx.features import signals
from handx.motion import FPS
from handx.skeleton import FINGERS, NUM_JOINTS, TIP_INDICES

INTRA_TIP_CONTACT = 0.020
TIP_PALM_CONTACT = 0.025
PALM_PALM_CONTACT = 0.025
STAT_TIP_TIP = 0.020
STAT_TIP_JOINT = 0.025

#: Column names of :func:`contact_labels`.
LABEL_NAMES: tuple[str, ...] = (
    tuple(f"left {f} tip - thumb tip" for f in signals.INTRA_TIP_FINGERS)
    + tuple(f"right {f} tip - thumb tip" for f in signals.INTRA_TIP_FINGERS)
    + tuple(f"left {f} tip - right palm" for f in FINGERS)
    + tuple(f"right {f} tip - left palm" for f in FINGERS)
    + ("left palm - right palm",)
)
NON_TIP_JOINTS = np.setdiff1d(np.arange(NUM_JOINTS), TIP_INDICES)  # the 16 MANO joints


def contact_labels(motion: np.ndarray) -> np.ndarray:
    """Per-frame contact labels ``(..., T, 19)`` bool for clips ``(..., T, 2, 21, 3)`` (reference §2.9).

    Columns (:data:`LABEL_NAMES`): 4 left and 4 right thumb-tip contacts (< 2 cm), 5 left tips on the right palm
    and 5 right tips on the left palm (nearest palm sample < 2.5 cm), palm on palm (nearest pair < 2.5 cm).
    """
    motion = np.asarray(motion, dtype=np.float64)
    hands = np.moveaxis(motion, -3, -4)  # (..., 2, T, 21, 3)
    intra = signals.intra_tip_distances(hands) < INTRA_TIP_CONTACT  # (..., 2, 4, T)
    # beyond the thresholds a bounding-sphere bound stands in for the exact distance: the labels are unchanged
    _, tip_palm = signals.tip_palm_distances(motion, far=TIP_PALM_CONTACT)  # (..., 2, 5, T) minimum distance
    _, palm_palm = signals.palm_palm_distance(motion, far=PALM_PALM_CONTACT)  # (..., T)
    lead = motion.shape[:-4]
    columns = np.concatenate([
        intra.reshape(lead + (8, -1)),
        (tip_palm < TIP_PALM_CONTACT).reshape(lead + (10, -1)),
        (palm_palm < PALM_PALM_CONTACT)[..., None, :],
    ], axis=-2)  # (..., 19, T)
    return np.swapaxes(columns, -1, -2)


def contact_frames(motion: np.ndarray) -> np.ndarray:
    """Frames in two-hand contact for the statistics of reference §2.8: ``(..., T, 2, 21, 3)`` → ``(..., T)``.

    A frame is in contact when the closest left/right fingertip pair is under 2 cm, or a fingertip of one hand
    is under 2.5 cm from one of the 16 non-tip joints of the other hand.
    """
    motion = np.asarray(motion, dtype=np.float64)
    tips = motion[..., TIP_INDICES, :]  # (..., T, 2, 5, 3)
    joints = motion[..., NON_TIP_JOINTS, :]  # (..., T, 2, 16, 3)
    tip_tip = np.linalg.norm(tips[..., 0, :, None, :] - tips[..., 1, None, :, :], axis=-1).min((-1, -2))
    tip_joint = np.linalg.norm(tips[..., :, :, None, :] - joints[..., ::-1, None, :, :], axis=-1).min((-1, -2, -3))
    return (tip_tip < STAT_TIP_TIP) | (tip_joint < STAT_TIP_JOINT)


@dataclasses.dataclass(frozen=True)
class ContactStats:
    """Contact statistics of reference §2.8 over a set of clips.

    Attributes:
        ratio: contact frames / all frames.
        mean_duration_s: mean length of a contact segment (maximal run of contact frames), seconds.
        frequency_hz: contact segments per second of motion.
        score: 0.4·ratio + 0.3·min(duration/5, 1) + 0.3·min(frequency/5, 1).
        frames, segments: the counts behind them.
    """

    ratio: float
    mean_duration_s: float
    frequency_hz: float
    score: float
    frames: int
    segments: int

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


def contact_stats(frames: Iterable[np.ndarray], fps: float = FPS) -> ContactStats:
    """Aggregate :func:`contact_frames` masks ``(..., T)`` (batches of clips) into :class:`ContactStats`."""
    total = contact = segments = 0
    for mask in frames:
        mask = np.asarray(mask, dtype=bool).reshape(-1, np.shape(mask)[-1])  # (clips, T)
        total += mask.size
        contact += int(mask.sum())
        starts = mask & ~np.pad(mask, ((0, 0), (1, 0)))[:, :-1]  # first frame of each run
        segments += int(starts.sum())
    ratio = contact / total if total else 0.0
    duration = contact / segments / fps if segments else 0.0
    frequency = segments / (total / fps) if total else 0.0
    score = 0.4 * ratio + 0.3 * min(duration / 5, 1.0) + 0.3 * min(frequency / 5, 1.0)
    return ContactStats(ratio, duration, frequency, score, total, segments)
