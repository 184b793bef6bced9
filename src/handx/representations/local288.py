"""The autoregressive model's per-frame motion features, ``local288`` (reference §1.6).

A clip ``(T, 2, 21, 3)`` becomes ``(T, 288)``; hand-major blocks are left hand first. Columns:

=============  ====  =====================================================================================
columns        dims  channel (:data:`LAYOUT` name) and content
=============  ====  =====================================================================================
``[0:3]``      3     ``root_vel`` (right, wrist): p_R,wrist(t+1) − p_R,wrist(t), metres per frame; 0 at the
                     last frame
``[3:6]``      3     ``wrist_offset`` (both, wrist): p_L,wrist(t) − p_R,wrist(t)
``[6:18]``     12    ``rot6d`` (per hand, wrist): the root rotation R in 6D, the first two rows of R
                     (components ``r00 r01 r02 r10 r11 r12``), left ``[6:12]``, right ``[12:18]``
``[18:48]``    30    ``bend`` (per hand, joints 1–15): the scalar bend of reference §1.5
                     (:func:`handx.representations.joints168.scalar_bend`), left ``[18:33]``, right ``[33:48]``
``[48:168]``   120   ``local_pos`` (per hand, joints 1–20, xyz): Rᵀ (p_j − p_wrist), left ``[48:108]``,
                     right ``[108:168]``
``[168:288]``  120   ``local_vel`` (same layout): local_pos(t+1) − local_pos(t); 0 at the last frame
=============  ====  =====================================================================================

R maps hand-local coordinates to the world (``p = p_wrist + R · local``); its columns are the axes of the hand.
:func:`decode` is the exact inverse of :func:`encode` and follows the reference's ``recover_from_local_position``:
the right wrist is the running sum of ``root_vel`` from the origin, the left wrist adds ``wrist_offset``, and
every other joint is ``p_wrist + R · local_pos`` with R rebuilt from its 6D form by Gram–Schmidt; ``bend`` and
``local_vel`` are redundant and ignored. ``extras`` (the ``origin``, ``(..., 3)``) is the right wrist at frame
0; without it the right wrist starts at the origin, the canonical placement of a dataset window (reference §1.2),
where the reference always starts.

Deviations from the reference (DESIGN.md):

* **No MANO.** The reference takes R from MANO's fitted ``global_orient``. Here R is the local hand frame of
  the skeleton (reference §2.1, :func:`handx.kinematics.local_frame`): x̂ from the wrist towards the middle
  MCP, ẑ = x̂ × (index MCP − wrist) normalised (the palm normal), ŷ = ẑ × x̂; R = [x̂ ŷ ẑ] as columns, a
  proper rotation for both hands. R is therefore a function of the joints themselves, so in ``local_pos`` (and
  ``local_vel``) the y and z of the middle MCP and the z of the index MCP are 0 by construction: 3 + 3
  constant columns per hand, which :class:`~handx.representations.stats.FeatureStats` maps to 0. The features
  are not numerically comparable with the reference's released statistics.
* ``bend`` is wrapped to (−π, π], as in ``joints168``.
* ``extras`` carries the right wrist at frame 0, so clips not in the canonical placement come back exactly.

A hand whose middle MCP or index MCP coincides with its wrist has no frame; its joints do not come back.
"""

from __future__ import annotations

import numpy as np
import torch

from handx.kinematics import local_frame
from handx.representations.base import (
    BOTH,
    XYZ,
    ArrayOrTensor,
    Layout,
    Representation,
    check_clips,
    check_extras,
    check_features,
)
from handx.representations.joints168 import scalar_bend
from handx.skeleton import CHAIN_ARRAY, LEFT, NUM_HANDS, NUM_JOINTS, RIGHT, WRIST

NAME = "local288"
#: The joints with a bend: positions 1–3 of each finger chain, which are joints 1–15 in order.
BEND_JOINTS = np.sort(CHAIN_ARRAY[:, 1:4].reshape(-1))
#: Every joint but the wrist (1–20), whose local positions are features.
LOCAL_JOINTS = np.delete(np.arange(NUM_JOINTS), WRIST)
ROT6D_COMPONENTS = ("r00", "r01", "r02", "r10", "r11", "r12")

HANDS = (LEFT, RIGHT)
LAYOUT = Layout.concat(
    Layout.grid([RIGHT], [WRIST], [("root_vel", XYZ)]),
    Layout.grid([BOTH], [WRIST], [("wrist_offset", XYZ)]),
    Layout.grid(HANDS, [WRIST], [("rot6d", ROT6D_COMPONENTS)]),
    Layout.grid(HANDS, BEND_JOINTS.tolist(), [("bend", ("",))]),
    Layout.grid(HANDS, LOCAL_JOINTS.tolist(), [("local_pos", XYZ)]),
    Layout.grid(HANDS, LOCAL_JOINTS.tolist(), [("local_vel", XYZ)]),
)
NUM_FEATURES = LAYOUT.features  # 288


def _span(channel: str) -> slice:
    columns = LAYOUT.columns(channels=(channel,))
    return slice(int(columns[0]), int(columns[-1]) + 1)  # each channel is one contiguous block


_ROOT_VEL, _WRIST_OFFSET, _ROT6D = _span("root_vel"), _span("wrist_offset"), _span("rot6d")
_LOCAL_POS = _span("local_pos")


def encode(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clips → features: ``(..., T, 2, 21, 3)`` → ``(features (..., T, 288), origin (..., 3))``.

    ``origin`` is the right wrist at frame 0. Computed in float64; the result keeps the input's float dtype
    (float32 stays float32). ``decode(features, origin)`` gives the clips back.
    """
    joints = np.asarray(joints)
    check_clips(joints, "encode")
    dtype = np.result_type(joints.dtype, np.float32)
    x = joints.astype(np.float64)
    lead, frames = x.shape[:-4], x.shape[-4]
    frame = local_frame(x)  # (..., T, 2, 3, 3): rows x̂ ŷ ẑ, i.e. Rᵀ
    roots = x[..., WRIST, :]  # (..., T, 2, 3)
    root_vel = np.zeros((*lead, frames, 3))
    root_vel[..., :-1, :] = np.diff(roots[..., RIGHT, :], axis=-2)  # (..., T, 3), last frame 0
    wrist_offset = roots[..., LEFT, :] - roots[..., RIGHT, :]  # (..., T, 3)
    rot6d = np.swapaxes(frame, -1, -2)[..., :2, :]  # (..., T, 2, 2, 3): the first two rows of R
    bend = scalar_bend(x)[..., BEND_JOINTS]  # (..., T, 2, 15)
    offsets = x[..., LOCAL_JOINTS, :] - roots[..., None, :]  # (..., T, 2, 20, 3): p_j − p_wrist
    local = offsets @ np.swapaxes(frame, -1, -2)  # (..., T, 2, 20, 3): Rᵀ(p_j − p_wrist)
    local_vel = np.zeros_like(local)
    local_vel[..., :-1, :, :, :] = np.diff(local, axis=-4)  # (..., T, 2, 20, 3), last frame 0
    features = np.concatenate([
        root_vel, wrist_offset,
        rot6d.reshape(*lead, frames, -1),  # (..., T, 12), hand-major
        bend.reshape(*lead, frames, -1),  # (..., T, 30)
        local.reshape(*lead, frames, -1),  # (..., T, 120): hand, joint, xyz
        local_vel.reshape(*lead, frames, -1),  # (..., T, 120)
    ], axis=-1)  # (..., T, 288)
    return features.astype(dtype), roots[..., 0, RIGHT, :].astype(dtype)


def rotation_from_6d(rot6d: torch.Tensor) -> torch.Tensor:
    """``(..., 6)`` first two rows of rotations → ``(..., 3, 3)`` (Gram–Schmidt; the third row is r₀ × r₁)."""
    r0 = torch.nn.functional.normalize(rot6d[..., :3], dim=-1)
    r1 = rot6d[..., 3:] - (r0 * rot6d[..., 3:]).sum(-1, keepdim=True) * r0
    r1 = torch.nn.functional.normalize(r1, dim=-1)
    return torch.stack([r0, r1, torch.linalg.cross(r0, r1, dim=-1)], dim=-2)


def _decode(features: torch.Tensor, origin: torch.Tensor | None) -> torch.Tensor:
    lead, frames = features.shape[:-2], features.shape[-2]
    steps = torch.cumsum(features[..., :-1, _ROOT_VEL], dim=-2)  # (..., T−1, 3)
    right = torch.cat([torch.zeros_like(features[..., :1, _ROOT_VEL]), steps], dim=-2)  # (..., T, 3)
    if origin is not None:
        right = right + origin[..., None, :]
    roots = torch.stack([right + features[..., _WRIST_OFFSET], right], dim=-2)  # (..., T, 2, 3): left, right
    rotation = rotation_from_6d(features[..., _ROT6D].reshape(*lead, frames, NUM_HANDS, 6))  # (..., T, 2, 3, 3)
    local = features[..., _LOCAL_POS].reshape(*lead, frames, NUM_HANDS, len(LOCAL_JOINTS), 3)  # (..., T, 2, 20, 3)
    others = roots[..., None, :] + local @ rotation.transpose(-1, -2)  # (..., T, 2, 20, 3): p_w + R · local
    out = torch.empty(*lead, frames, NUM_HANDS, NUM_JOINTS, 3, dtype=features.dtype, device=features.device)
    out[..., WRIST, :] = roots
    out[..., LOCAL_JOINTS, :] = others
    return out  # (..., T, 2, 21, 3)


def decode(features: ArrayOrTensor, origin: ArrayOrTensor | None = None) -> ArrayOrTensor:
    """Features → clips: ``(..., T, 288)`` → ``(..., T, 2, 21, 3)``, numpy or torch.

    With ``origin`` (``(..., 3)``, from :func:`encode`) this is the exact inverse of :func:`encode`; without it
    the right wrist starts at the origin. numpy is decoded in float64 and returned in the features' float dtype;
    torch stays in the features' dtype and device (and differentiable).
    """
    check_features(features, NUM_FEATURES, "decode")
    if origin is not None:
        check_extras(origin, features, "decode", "origin")
    if isinstance(features, torch.Tensor):
        start = None if origin is None else torch.as_tensor(origin, dtype=features.dtype, device=features.device)
        return _decode(features, start)
    features = np.asarray(features)
    dtype = np.result_type(features.dtype, np.float32)
    start = None if origin is None else torch.from_numpy(np.array(origin, dtype=np.float64))
    return _decode(torch.from_numpy(features.astype(np.float64)), start).numpy().astype(dtype)


#: this module as a :class:`~handx.representations.base.Representation` (``extras`` = the origin)
LOCAL288 = Representation(NAME, NUM_FEATURES, LAYOUT, encode, decode)
