"""The conditioning modes of reference §5, each an :class:`~handx.sampling.inpaint.Inpainting` of the
text-to-motion model (no retraining).

Every builder takes the target normalised features ``values`` ``(T, 168)`` or ``(B, T, 168)`` (the entries it
does not constrain are ignored under a hard mask) and ``hard`` (default True: constrained entries are reproduced
exactly; False: the reference's soft mask, ``core`` 0.85 with a 5-frame ramp, see :mod:`handx.sampling.inpaint`).

=====================  ==========================================  =========================================
mode                   constrained frames × joints                 reference script
=====================  ==========================================  =========================================
hand_reaction          all frames × the given hand's 21 joints     ``run_fix_lefthand.py`` (left given)
wrist_trajectories     all frames × wrists 0 and/or 21             ``run_wrist_traj.py``
inbetween              first and last k frames × all 42 joints     ``run_inbetweening.py`` (k = 10)
keyframes              chosen frames × chosen joints (or all)      ``run_all_evaluations.py``
contact_keyframe       one frame × all 42 joints                   ``run_contact_keyframe.py``
prefix                 first k frames × all joints                 ``run_two_stage.py`` (long horizon, k = 10)
=====================  ==========================================  =========================================

The contact keyframe is chosen by the caller; the reference takes the inter-hand contact frame closest to
frame 30 (and, despite its docstring, constrains all joints at that frame, as here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from handx.representations.joints168 import NUM_FEATURES
from handx.sampling.inpaint import CORE, RAMP, Inpainting, region_mask
from handx.skeleton import HAND_NAMES, NUM_JOINTS, WRIST

#: Feature subsets of a joint for :func:`wrist_trajectories`: positions only, or positions and bend.
WRIST_FEATURES: dict[str, tuple[int, ...] | None] = {"xyz": (0, 1, 2), "all": None}


def _as_batch(values: Tensor | np.ndarray) -> Tensor:
    values = torch.as_tensor(values)
    if not values.is_floating_point():
        values = values.to(torch.float32)
    if values.ndim == 2:
        values = values.unsqueeze(0)  # (1, T, F)
    if values.ndim != 3 or values.shape[-1] != NUM_FEATURES:
        raise ValueError(
            f"values must have shape (T, {NUM_FEATURES}) or (B, T, {NUM_FEATURES}), got {tuple(values.shape)}"
        )
    return values


def _hand_joints(hand: str) -> list[int]:
    """The 21 joint indices (of 42) of ``hand`` ("left" or "right")."""
    if hand not in HAND_NAMES:
        raise ValueError(f"hand must be one of {HAND_NAMES}, got {hand!r}")
    start = HAND_NAMES.index(hand) * NUM_JOINTS
    return list(range(start, start + NUM_JOINTS))


def _inpainting(
    values: Tensor | np.ndarray,
    frames: Sequence[int],
    joints: Sequence[int] | None,
    *,
    hard: bool,
    core: float,
    ramp: int,
    features: Sequence[int] | None = None,
) -> Inpainting:
    batch = _as_batch(values)  # (B, T, 168)
    mask = region_mask(batch.shape[1], frames, joints, soft=not hard, core=core, ramp=ramp, features=features)
    mask = mask.to(dtype=batch.dtype, device=batch.device).unsqueeze(0).expand_as(batch).contiguous()  # (B, T, 168)
    return Inpainting(values=batch, mask=mask, hard=hard)


def hand_reaction(
    values: Tensor | np.ndarray, given: str = "left", *, hard: bool = True, core: float = CORE
) -> Inpainting:
    """The ``given`` hand's motion is fixed on every frame; the model generates the other hand's reaction."""
    frames = range(_as_batch(values).shape[1])
    return _inpainting(values, frames, _hand_joints(given), hard=hard, core=core, ramp=RAMP)


def wrist_trajectories(
    values: Tensor | np.ndarray,
    hands: Sequence[str] = ("left", "right"),
    *,
    features: str = "all",
    hard: bool = True,
    core: float = CORE,
) -> Inpainting:
    """The wrist (joint 0 and/or 21) of each hand in ``hands`` follows its trajectory on every frame.

    ``features="all"`` (default, as the reference) fixes all 4 wrist features; the wrist's bend channel is
    identically 0 in the data, so this only keeps it at its training value. ``"xyz"`` fixes positions only.
    """
    if features not in WRIST_FEATURES:
        raise ValueError(f"features must be one of {tuple(WRIST_FEATURES)}, got {features!r}")
    if not hands:
        raise ValueError("hands is empty: give 'left', 'right' or both")
    joints = [_hand_joints(hand)[WRIST] for hand in dict.fromkeys(hands)]
    frames = range(_as_batch(values).shape[1])
    return _inpainting(values, frames, joints, hard=hard, core=core, ramp=RAMP, features=WRIST_FEATURES[features])


def inbetween(
    values: Tensor | np.ndarray, k: int = 10, *, hard: bool = True, core: float = CORE, ramp: int = RAMP
) -> Inpainting:
    """The first and last ``k`` frames (all joints) are fixed; the model fills the frames between them."""
    num_frames = _as_batch(values).shape[1]
    if not (1 <= k and 2 * k <= num_frames):
        raise ValueError(f"inbetween: k must lie in [1, T/2 = {num_frames // 2}], got {k}")
    frames = [*range(k), *range(num_frames - k, num_frames)]
    return _inpainting(values, frames, None, hard=hard, core=core, ramp=ramp)


def keyframes(
    values: Tensor | np.ndarray,
    frames: Sequence[int],
    joints: Sequence[int] | None = None,
    *,
    hard: bool = True,
    core: float = CORE,
    ramp: int = RAMP,
) -> Inpainting:
    """The given ``frames`` × ``joints`` (indices 0–41; None = all 42 joints) are fixed."""
    return _inpainting(values, frames, joints, hard=hard, core=core, ramp=ramp)


def contact_keyframe(
    values: Tensor | np.ndarray, frame: int, *, hard: bool = True, core: float = CORE, ramp: int = RAMP
) -> Inpainting:
    """One keyframe (all 42 joints), typically a frame where the hands touch, chosen by the caller."""
    return _inpainting(values, [frame], None, hard=hard, core=core, ramp=ramp)


def prefix(
    values: Tensor | np.ndarray, k: int = 10, *, hard: bool = True, core: float = CORE, ramp: int = RAMP
) -> Inpainting:
    """The first ``k`` frames (all joints) are fixed, as in the second stage of the long-horizon mode.

    Soft: ``core`` on frames 0 … k − ramp − 1 and the ramp on frames k − ramp … k − 1, so the mask stays inside
    the ``k`` given frames (the reference: core 0–4, ramp 5–9 for k = 10). For k ≤ ramp the ramp is shortened
    to k − 1 frames.
    """
    num_frames = _as_batch(values).shape[1]
    if not 1 <= k <= num_frames:
        raise ValueError(f"prefix: k must lie in [1, T = {num_frames}], got {k}")
    if hard:
        return _inpainting(values, range(k), None, hard=True, core=core, ramp=ramp)
    ramp = min(ramp, k - 1)
    return _inpainting(values, range(k - ramp), None, hard=False, core=core, ramp=ramp)
