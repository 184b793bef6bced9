"""Inpainting at sampling time: hard and soft masks over frames × joints (reference §5).

After every reverse step to x_p (p the next timestep), the constrained entries are pulled towards the targets::

    x_p ← m · q_sample(values, p, ε) + (1 − m) · x_p         (p ≥ 0, ε fresh N(0, I) noise)
    x₀  ← m · values + (1 − m) · x₀                           (after the final step)

Masks act on whole joints (all 4 features [x, y, z, s] of a joint) in normalised feature space, unless a
builder is told otherwise. Two kinds:

* **hard** (handx's default): m ∈ {0, 1}; constrained entries end *exactly* at ``values``.
* **soft** (the reference's, used by all its scripts): m = ``core`` = 0.85 on the region and a ramp on the
  ``ramp`` = 5 frames outside each side of each run of constrained frames, ``edge + (w − k)/w · (core − edge)``
  for k = 1..w, i.e. 0.70, 0.55, 0.40, 0.25, 0.10 moving away; overlapping ramps take the maximum. A soft mask
  never reproduces the constraint: the result is 85 % target and 15 % generated. Because the ramp reaches
  *outside* the region, ``values`` must hold meaningful targets on the ramp frames too (the reference uses the
  ground-truth clip there).

The noise of the re-noised targets is drawn fresh from the sampling generator (RePaint); the reference reuses
the step's noise, which for a hard mask is the same in distribution. Replacement only reaches the free entries
through the denoiser and the sampler's noise, so stochastic samplers blend the constraint in better than
deterministic DDIM (measurements in :mod:`handx.sampling.loop`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from handx.representations.joints168 import FEATURES_PER_JOINT, LAYOUT, NUM_FEATURES
from handx.sampling.schedule import Scheduler, randn
from handx.skeleton import NUM_HANDS, NUM_JOINTS

NUM_BODY_JOINTS = NUM_HANDS * NUM_JOINTS  # 42: left hand 0–20, right hand 21–41
#: the four features of a joint in the 168-d representation (reference §1.5), as (channel, component) of its layout
JOINT_FEATURES: tuple[tuple[str, str], ...] = (("pos", "x"), ("pos", "y"), ("pos", "z"), ("bend", ""))
CORE = 0.85
EDGE = 0.10
RAMP = 5


@dataclass(frozen=True, eq=False)
class Inpainting:
    """Targets and mask for inpainting.

    values: ``(B, T, F)`` (or ``(1, T, F)``, broadcast over the batch) target normalised features; entries with
        mask 0 are ignored but must be finite (put zeros there).
    mask: same shape, float in [0, 1]: the weight of the target per entry.
    hard: the mask is 0/1 and constrained entries end exactly at ``values``.
    """

    values: Tensor
    mask: Tensor
    hard: bool = True

    def __post_init__(self) -> None:
        if self.values.ndim != 3:
            raise ValueError(f"Inpainting.values must have shape (B, T, F), got {tuple(self.values.shape)}")
        if self.mask.shape != self.values.shape:
            raise ValueError(
                f"Inpainting.mask shape {tuple(self.mask.shape)} differs from values shape {tuple(self.values.shape)}"
            )
        if not self.mask.is_floating_point():
            raise ValueError(f"Inpainting.mask must be a float tensor, got {self.mask.dtype}")
        if not bool(torch.isfinite(self.values).all()):
            raise ValueError("Inpainting.values must be finite everywhere (use zeros where the mask is 0)")
        if not bool(((self.mask >= 0) & (self.mask <= 1)).all()):
            raise ValueError("Inpainting.mask values must lie in [0, 1]")
        if self.hard and not bool(((self.mask == 0) | (self.mask == 1)).all()):
            raise ValueError("Inpainting.hard is True but the mask has values other than 0 and 1")

    def apply(
        self, x_prev: Tensor, t_prev: int, scheduler: Scheduler, generator: torch.Generator | None = None
    ) -> Tensor:
        """Impose the constraint on ``x_prev`` ``(B, T, F)`` at timestep ``t_prev`` (−1: the clean sample)."""
        batch, frames, feats = x_prev.shape
        if self.values.shape[1:] != (frames, feats) or self.values.shape[0] not in (1, batch):
            raise ValueError(
                f"Inpainting for shape {tuple(self.values.shape)} cannot apply to samples of shape "
                f"{tuple(x_prev.shape)}"
            )
        values = self.values.to(device=x_prev.device, dtype=x_prev.dtype).expand_as(x_prev)  # (B, T, F)
        mask = self.mask.to(device=x_prev.device, dtype=x_prev.dtype).expand_as(x_prev)  # (B, T, F)
        if t_prev >= 0:
            values = scheduler.add_noise(values, randn(x_prev.shape, generator=generator, like=x_prev), t_prev)
        if self.hard:
            return torch.where(mask > 0, values, x_prev)
        return mask * values + (1.0 - mask) * x_prev


def frame_weights(
    num_frames: int, frames: Sequence[int], *, soft: bool, core: float = CORE, ramp: int = RAMP, edge: float = EDGE
) -> Tensor:
    """Per-frame mask weights ``(T,)`` float32 for the constrained ``frames`` (see the module docstring).

    hard: 1 on ``frames``, 0 elsewhere. soft: ``core`` on ``frames``; on a frame at distance d ∈ 1..ramp from
    the nearest constrained frame, ``edge + (ramp − d)/ramp · (core − edge)``; 0 farther away.
    """
    frame_idx = torch.as_tensor(list(frames), dtype=torch.long)
    if frame_idx.numel() == 0:
        raise ValueError("frames is empty: give at least one frame to constrain")
    if bool(((frame_idx < 0) | (frame_idx >= num_frames)).any()):
        raise ValueError(f"frames must lie in [0, {num_frames - 1}], got {sorted(set(frame_idx.tolist()))}")
    if soft:
        if not 0.0 < core <= 1.0:
            raise ValueError(f"core must lie in (0, 1], got {core}")
        if not 0.0 <= edge <= core:
            raise ValueError(f"edge must lie in [0, core={core}], got {edge}")
        if ramp < 0:
            raise ValueError(f"ramp must be >= 0 frames, got {ramp}")
    time = torch.arange(num_frames, dtype=torch.long)
    distance = (time[:, None] - frame_idx[None, :]).abs().min(dim=1).values  # to the nearest constrained frame, (T,)
    if not soft:
        return (distance == 0).to(torch.float32)
    weights = torch.zeros(num_frames, dtype=torch.float64)
    weights[distance == 0] = core
    in_ramp = (distance >= 1) & (distance <= ramp)
    weights[in_ramp] = edge + (ramp - distance[in_ramp]).to(torch.float64) / ramp * (core - edge)
    return weights.to(torch.float32)


def region_mask(
    num_frames: int,
    frames: Sequence[int],
    joints: Sequence[int] | None,
    *,
    soft: bool,
    core: float = CORE,
    ramp: int = RAMP,
    edge: float = EDGE,
    features: Sequence[int] | None = None,
) -> Tensor:
    """Mask ``(T, 168)`` float32 for ``frames`` × ``joints`` (0–41; None = all), over the joint features
    ``features`` (0–3 of :data:`JOINT_FEATURES`; None = all four): :func:`frame_weights` per frame, 0 on other
    joints. Columns are found through the representation's layout."""
    joint_idx = torch.arange(NUM_BODY_JOINTS) if joints is None else torch.as_tensor(list(joints), dtype=torch.long)
    if joint_idx.numel() == 0 or bool(((joint_idx < 0) | (joint_idx >= NUM_BODY_JOINTS)).any()):
        raise ValueError(f"joints must be a non-empty set of indices in [0, {NUM_BODY_JOINTS - 1}], got {joints}")
    feat_idx = (
        torch.arange(FEATURES_PER_JOINT) if features is None else torch.as_tensor(list(features), dtype=torch.long)
    )
    if feat_idx.numel() == 0 or bool(((feat_idx < 0) | (feat_idx >= FEATURES_PER_JOINT)).any()):
        raise ValueError(
            f"features must be a non-empty set of indices in [0, {FEATURES_PER_JOINT - 1}], got {features}"
        )
    per_frame = frame_weights(num_frames, frames, soft=soft, core=core, ramp=ramp, edge=edge)  # (T,)
    body_joint = LAYOUT.hand * NUM_JOINTS + LAYOUT.joint  # (168,) the body joint (0–41) of each column
    feature = np.array([JOINT_FEATURES.index(key) for key in zip(LAYOUT.channel, LAYOUT.component)])  # (168,)
    columns = np.isin(body_joint, joint_idx.numpy()) & np.isin(feature, feat_idx.numpy())  # (168,)
    return per_frame[:, None] * torch.from_numpy(columns.astype(np.float32))[None, :]  # (T, 168)
