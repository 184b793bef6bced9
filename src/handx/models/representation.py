"""The diffusion model's per-frame motion features, ``joint_pos_w_scalar_rot`` (reference §1.5).

A clip ``(T, 2, 21, 3)`` becomes ``(T, 168)``: 42 joints (0–20 left, 21–41 right, each hand in the order of
:mod:`handx.skeleton`) × ``[x, y, z, s]``, joint-major (feature ``j * 4 + f``):

* ``x, y, z``: joint positions minus the clip's centre, the time-mean of the midpoint of the two wrists;
* ``s``: the scalar bend of the joint (:func:`scalar_bend`), the signed angle between the incoming and the
  outgoing bone in the local x–z plane of the hand (reference §2.1), 0 at the wrist and the tips.

:func:`decode` inverts the position part exactly (``s`` is redundant with the positions and is ignored).
:class:`FeatureStats` holds the per-feature z-score statistics (std < 1e-4 → 1) that the model sees features
through.

Deviation (DESIGN.md): ``s`` is wrapped to (−π, π]; the reference code leaves the raw difference of two
``atan2`` values, which jumps by 2π when a bone crosses the local −x axis.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np
import torch

from handx.kinematics import local_frame
from handx.skeleton import CHAIN_ARRAY, NUM_HANDS, NUM_JOINTS, PARENTS, RIGHT, WRIST

FEATURES_PER_JOINT = 4
NUM_FEATURES = NUM_HANDS * NUM_JOINTS * FEATURES_PER_JOINT  # 168
STD_FLOOR = 1e-4

#: The joints that carry a bend (positions 1–3 of each finger chain) and the next joint of their chain, ``(15,)``.
_BEND_JOINTS = CHAIN_ARRAY[:, 1:4].reshape(-1)
_BEND_NEXT = CHAIN_ARRAY[:, 2:5].reshape(-1)
_PARENT = np.maximum(PARENTS, 0)  # the wrist is its own parent (a zero bone)

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angles (radians) wrapped to (−π, π]."""
    wrapped = math.pi - np.mod(math.pi - angle, 2.0 * math.pi)
    return np.where(wrapped <= -math.pi, wrapped + 2.0 * math.pi, wrapped)


def _check_clips(joints: np.ndarray, name: str) -> None:
    if joints.ndim < 4 or joints.shape[-3:] != (NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"{name} expects joints of shape (..., T, 2, 21, 3), got {tuple(joints.shape)}")


def scalar_bend(joints: np.ndarray) -> np.ndarray:
    """Scalar bend ``s`` of every joint (reference §1.5): ``(..., T, 2, 21, 3)`` → ``(..., T, 2, 21)``.

    For the three middle joints of each finger chain (thumb: cmc, mcp, ip; others: mcp, pip, dip), with
    ``v1 = p_j − p_prev`` and ``v2 = p_next − p_j`` in the local hand frame (reference §2.1),
    ``s = atan2(v2_z, v2_x) − atan2(v1_z, v1_x)``, negated for the right hand and wrapped to (−π, π]. Bending
    a finger towards its palm gives s > 0 on both hands (the sign of :func:`handx.features.signals.flexion`).
    The wrist and the five tips get 0, and so does any non-finite value.
    """
    joints = np.asarray(joints, dtype=np.float64)
    _check_clips(joints, "scalar_bend")
    # A bone in the local frame is R (p_child − p_parent): only the x̂ and ẑ rows of R are needed.
    frame = local_frame(joints)  # (..., T, 2, 3, 3), rows x̂ ŷ ẑ
    bones = joints - joints[..., _PARENT, :]  # (..., T, 2, 21, 3): the bone ending at each joint (wrist: 0)
    planar = bones @ np.swapaxes(frame[..., 0::2, :], -1, -2)  # (..., T, 2, 21, 2): local (x, z)
    with np.errstate(invalid="ignore"):
        heading = np.arctan2(planar[..., 1], planar[..., 0])  # (..., T, 2, 21)
        raw = heading[..., _BEND_NEXT] - heading[..., _BEND_JOINTS]  # (..., T, 2, 15): atan2(v2) − atan2(v1)
        sign = np.where(np.arange(NUM_HANDS) == RIGHT, -1.0, 1.0)[:, None]  # (2, 1)
        bend = wrap_angle(raw * sign)
    out = np.zeros(joints.shape[:-1], dtype=np.float64)  # (..., T, 2, 21)
    out[..., _BEND_JOINTS] = np.where(np.isfinite(bend), bend, 0.0)
    return out


def clip_centre(joints: np.ndarray) -> np.ndarray:
    """Time-mean of the midpoint of the two wrists: ``(..., T, 2, 21, 3)`` → ``(..., 3)``."""
    return joints[..., :, WRIST, :].mean(axis=(-3, -2))  # mean over T and the two hands


def encode(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clips → features: ``(..., T, 2, 21, 3)`` → ``(features (..., T, 168), centre (..., 3))``.

    Positions are centred on :func:`clip_centre`; the result keeps the input's float dtype (float32 stays
    float32). ``decode(features, centre)`` gives the clips back.
    """
    joints = np.asarray(joints)
    _check_clips(joints, "encode")
    dtype = np.result_type(joints.dtype, np.float32)
    centre = clip_centre(joints.astype(np.float64))  # (..., 3)
    xyz = joints - centre[..., None, None, None, :]  # (..., T, 2, 21, 3)
    s = scalar_bend(joints)[..., None]  # (..., T, 2, 21, 1)
    features = np.concatenate([xyz, s], axis=-1)  # (..., T, 2, 21, 4)
    features = features.reshape(*joints.shape[:-3], NUM_FEATURES)  # (..., T, 168): j*4+f, j = hand*21+joint
    return features.astype(dtype), centre.astype(dtype)


def decode(features: ArrayOrTensor, centre: ArrayOrTensor | None = None) -> ArrayOrTensor:
    """Features → clips: ``(..., T, 168)`` → ``(..., T, 2, 21, 3)`` (numpy or torch; ``s`` is ignored).

    With ``centre`` (``(..., 3)``, from :func:`encode`) this is the exact inverse of :func:`encode`. Without it,
    the motion is translated so the right wrist is at the origin at frame 0 (the canonical clip convention).
    """
    if features.ndim < 2 or features.shape[-1] != NUM_FEATURES:
        raise ValueError(f"decode expects features of shape (..., T, {NUM_FEATURES}), got {tuple(features.shape)}")
    lead = tuple(features.shape[:-1])
    xyz = features.reshape(*lead, NUM_HANDS, NUM_JOINTS, FEATURES_PER_JOINT)[..., :3]  # (..., T, 2, 21, 3)
    if centre is None:
        return xyz - xyz[..., 0:1, RIGHT:RIGHT + 1, WRIST:WRIST + 1, :]
    if tuple(centre.shape) != lead[:-1] + (3,):
        raise ValueError(f"decode expects centre of shape {lead[:-1] + (3,)}, got {tuple(centre.shape)}")
    return xyz + centre[..., None, None, None, :]


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureStats:
    """Per-feature z-score statistics of the training features (reference §1.5).

    Attributes:
        mean: float32 ``(F,)`` (F = 168 for :func:`encode` features).
        std: float32 ``(F,)``, population standard deviation with values below 1e-4 replaced by 1.
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        mean = np.array(self.mean, dtype=np.float32)
        std = np.array(self.std, dtype=np.float32)
        if mean.ndim != 1 or std.shape != mean.shape:
            raise ValueError(f"FeatureStats.mean and .std must be equal 1-D shapes, got {mean.shape} and {std.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise ValueError("FeatureStats.mean and .std must be finite")
        if not (std > 0).all():
            raise ValueError(f"FeatureStats.std must be positive, got a minimum of {float(std.min())}")
        mean.setflags(write=False)
        std.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def fit(cls, batches: Iterable[np.ndarray]) -> FeatureStats:
        """Statistics over every row of every batch ``(..., F)``, streamed in float64 (Chan's parallel
        update of mean and sum of squared deviations, so nothing is held but three vectors)."""
        count = 0
        mean: np.ndarray | None = None
        m2: np.ndarray | None = None
        for k, batch in enumerate(batches):
            rows = np.asarray(batch, dtype=np.float64)
            if rows.ndim < 1 or (mean is not None and rows.shape[-1] != mean.shape[0]):
                expected = "(..., F)" if mean is None else f"(..., {mean.shape[0]})"
                raise ValueError(f"FeatureStats.fit: batch {k} has shape {rows.shape}, expected {expected}")
            rows = rows.reshape(-1, rows.shape[-1])  # (N, F)
            if not np.isfinite(rows).all():
                raise ValueError(f"FeatureStats.fit: batch {k} has non-finite values")
            n = rows.shape[0]
            if n == 0:
                continue
            batch_mean = rows.mean(axis=0)
            batch_m2 = np.square(rows - batch_mean).sum(axis=0)
            if mean is None or m2 is None:
                count, mean, m2 = n, batch_mean, batch_m2
                continue
            total = count + n
            delta = batch_mean - mean
            mean = mean + delta * (n / total)
            m2 = m2 + batch_m2 + np.square(delta) * (count * n / total)
            count = total
        if mean is None or m2 is None:
            raise ValueError("FeatureStats.fit: no feature rows")
        std = np.sqrt(np.maximum(m2 / count, 0.0))
        return cls(mean, np.where(std < STD_FLOOR, 1.0, std))

    def _as(self, x: ArrayOrTensor) -> tuple[Any, Any]:
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"FeatureStats: expected features (..., {self.mean.shape[0]}), got {tuple(x.shape)}")
        if isinstance(x, torch.Tensor):
            return (torch.tensor(np.array(self.mean), dtype=x.dtype, device=x.device),
                    torch.tensor(np.array(self.std), dtype=x.dtype, device=x.device))
        return self.mean, self.std

    def normalize(self, x: ArrayOrTensor) -> ArrayOrTensor:
        """``(x − mean) / std`` over the last axis (numpy or torch, on ``x``'s device)."""
        mean, std = self._as(x)
        return (x - mean) / std

    def denormalize(self, x: ArrayOrTensor) -> ArrayOrTensor:
        """``x · std + mean``: the inverse of :meth:`normalize`."""
        mean, std = self._as(x)
        return x * std + mean

    def to_json(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureStats:
        missing = {"mean", "std"} - set(data)
        if missing:
            raise ValueError(f"FeatureStats.from_json: missing key(s) {sorted(missing)}")
        return cls(np.asarray(data["mean"], dtype=np.float32), np.asarray(data["std"], dtype=np.float32))
