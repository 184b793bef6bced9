"""Clip quality: non-finite values, missing hands, bone-length drift, impossible anatomy, jitter and intensity.

All checks run vectorised over a batch of clips ``(B, T, 2, 21, 3)`` and return per-clip statistics plus the
reasons a clip fails. The intensity filter is the paper's (reference §2.6; supplement A.3–A.4): the weighted
joint angular speed of each hand, weights 9/3/1 for the proximal/middle/distal joint of each finger, must reach
τ_hand = 25 deg/s on both hands and τ_avg = 30 deg/s averaged over the two hands ("both hands move").
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from handx.kinematics import chain_bend_angles
from handx.motion import FPS
from handx.skeleton import BONES, HAND_NAMES, hand_length

INTENSITY_WEIGHTS = np.array([9.0, 3.0, 1.0])


@dataclasses.dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the quality filter.

    Attributes:
        max_bone_drift: largest allowed relative deviation of a bone's length from its median over the clip.
        bone_range: allowed bone lengths in metres (anything outside is anatomically impossible).
        hand_length_range: allowed wrist → middle-tip length in metres.
        max_acceleration: joint acceleration (m/s²) above which a frame counts as a jitter spike ...
        spike_ratio: ... if it also exceeds ``spike_ratio`` × the clip's median joint acceleration.
        tau_hand: minimum weighted angular speed of each hand (deg/s).
        tau_avg: minimum weighted angular speed averaged over both hands (deg/s).
        intensity: apply the intensity filter.
    """

    max_bone_drift: float = 0.05
    bone_range: tuple[float, float] = (0.004, 0.12)
    hand_length_range: tuple[float, float] = (0.10, 0.30)
    max_acceleration: float = 150.0
    spike_ratio: float = 25.0
    tau_hand: float = 25.0
    tau_avg: float = 30.0
    intensity: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.max_bone_drift < 1:
            raise ValueError(f"QualityConfig.max_bone_drift must be in (0, 1), got {self.max_bone_drift}")
        for name in ("bone_range", "hand_length_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo < hi:
                raise ValueError(f"QualityConfig.{name} must be (low, high) with 0 <= low < high, got {(lo, hi)}")
        for name in ("max_acceleration", "spike_ratio", "tau_hand", "tau_avg"):
            if getattr(self, name) < 0:
                raise ValueError(f"QualityConfig.{name} must be >= 0, got {getattr(self, name)}")


def intensity(motion: np.ndarray, fps: float = FPS) -> np.ndarray:
    """Weighted joint angular speed per hand in deg/s (reference §2.6): ``(..., T, 2, 21, 3)`` → ``(..., 2)``.

    For every finger, the bend angle at its three middle joints; speed |Δθ|·fps averaged over time; the three
    joints weighted 9, 3, 1; averaged over the five fingers.
    """
    theta = np.degrees(chain_bend_angles(motion))  # (..., T, 2, 5, 3)
    speed = np.abs(np.diff(theta, axis=-4)).mean(axis=-4) * fps  # (..., 2, 5, 3)
    weighted = (speed * INTENSITY_WEIGHTS).sum(-1) / INTENSITY_WEIGHTS.sum()  # (..., 2, 5)
    return weighted.mean(-1)  # (..., 2)


def quality_stats(motion: np.ndarray, config: QualityConfig = QualityConfig(), fps: float = FPS
                  ) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """Quality statistics and failure reasons for a batch of clips ``(B, T, 2, 21, 3)``.

    Returns ``(stats, reasons)``: ``stats`` maps a statistic name to a ``(B, ...)`` array; ``reasons[b]`` lists
    why clip ``b`` fails (empty when it passes).
    """
    motion = np.asarray(motion, dtype=np.float64)
    if motion.ndim != 5 or motion.shape[2:] != (2, 21, 3):
        raise ValueError(f"quality_stats expects (B, T, 2, 21, 3), got {motion.shape}")
    batch = motion.shape[0]
    finite = np.isfinite(motion).all(axis=(1, 2, 3, 4))  # (B,)
    safe = np.where(np.isfinite(motion), motion, 0.0)
    present = np.abs(safe).reshape(batch, motion.shape[1], 2, -1).max(-1).max(1) > 0  # (B, 2)

    lengths = np.linalg.norm(safe[..., BONES[:, 1], :] - safe[..., BONES[:, 0], :], axis=-1)  # (B, T, 2, 20)
    median = np.median(lengths, axis=1)  # (B, 2, 20)
    drift = (np.abs(lengths / np.maximum(median[:, None], 1e-9) - 1.0)).max(axis=(1, 3))  # (B, 2)
    hand_len = np.median(hand_length(safe), axis=1)  # (B, 2)
    bone_lo, bone_hi = config.bone_range
    bad_bones = ((median < bone_lo) | (median > bone_hi)).sum(-1)  # (B, 2)

    acc = np.linalg.norm(safe[:, 2:] - 2 * safe[:, 1:-1] + safe[:, :-2], axis=-1) * fps**2  # (B, T-2, 2, 21)
    acc_median = np.median(acc, axis=(1, 2, 3))  # (B,)
    spike = (acc > config.max_acceleration) & (acc > config.spike_ratio * acc_median[:, None, None, None])
    spike_frames = spike.any(axis=(2, 3)).sum(1)  # (B,)

    speed = intensity(safe, fps)  # (B, 2)
    stats = {
        "finite": finite, "present": present, "bone_drift": drift, "hand_length": hand_len,
        "impossible_bones": bad_bones, "max_acceleration": acc.max(axis=(1, 2, 3)), "jitter_frames": spike_frames,
        "intensity": speed,
    }

    reasons: list[list[str]] = [[] for _ in range(batch)]
    lo, hi = config.hand_length_range
    for b in range(batch):
        out = reasons[b]
        if not finite[b]:
            out.append("non-finite values")
        for h, name in enumerate(HAND_NAMES):
            if not present[b, h]:
                out.append(f"{name} hand missing")
                continue
            if drift[b, h] > config.max_bone_drift:
                out.append(f"{name} bone length drifts {drift[b, h]:.1%} (> {config.max_bone_drift:.0%})")
            if bad_bones[b, h] or not lo <= hand_len[b, h] <= hi:
                out.append(f"{name} hand anatomically impossible (hand length {hand_len[b, h] * 100:.1f} cm, "
                           f"{int(bad_bones[b, h])} bone(s) outside {bone_lo * 1000:.0f}-{bone_hi * 1000:.0f} mm)")
        if spike_frames[b]:
            out.append(f"jitter: {int(spike_frames[b])} frame(s) with acceleration spikes "
                       f"(max {acc.max(axis=(1, 2, 3))[b]:.0f} m/s²)")
        if config.intensity and not out:
            if speed[b].min() < config.tau_hand or speed[b].mean() < config.tau_avg:
                out.append(f"low intensity: {speed[b, 0]:.1f}/{speed[b, 1]:.1f} deg/s left/right "
                           f"(needs each >= {config.tau_hand:g} and mean >= {config.tau_avg:g})")
    return stats, reasons


def stats_record(stats: dict[str, np.ndarray], b: int) -> dict[str, Any]:
    """JSON-friendly quality statistics of clip ``b`` for ``clips.jsonl``."""
    def plain(value: np.ndarray) -> Any:
        value = np.asarray(value)
        if value.dtype == bool:
            return value.tolist()
        return np.round(value.astype(float), 5).tolist()

    return {name: plain(value[b]) for name, value in stats.items()}
