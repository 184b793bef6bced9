"""Training loss and validation metrics of the FSQ motion tokenizer (reference §6.3), on ``local288`` features.

With x and x̂ of shape ``(B, T, 288)`` in normalised feature space (:mod:`handx.representations.local288`; columns
found by channel name in its ``LAYOUT``), SL1 = mean SmoothL1 (β = 1, as the reference), n = normalised,
u = de-normalised (metres):

    L = 1.0 ·SL1_n(all 288 columns)                                   features
      + 0.5 ·SL1_n(local_pos)                                         local_pos
      + 0.15·SL1_n(Δ²_t local_pos)                                    local_pos_accel (2nd difference over frames)
      + 0.03·SL1_n(root_vel, wrist_offset)                            root
      + 0.01·SL1_n(rot6d)                                             rot6d
      + 0.1 ·SL1_u(bone lengths)                                      bones
      + 0.03·SL1_u(Δwrist_offset(t) + root_vel(t))                    left_wrist_vel, t = 0 … T−2
      + 0.1 ·SL1(hand(x̂) / 1 cm, hand(x) / 1 cm)                        hand_joints (handx's)

hand(x) are the joints decoded from the features (:func:`handx.representations.local288.decode`, differentiable)
relative to their own hand's wrist, ``(B, T, 2, 21, 3)``, in centimetres: the per-hand root-relative joint error
that validation reports as MPJPE. The feature terms alone leave it large: a small error in a hand's 6D root
rotation turns every joint of the hand (an 18 cm lever from wrist to fingertip), and on held-out real clips that
error made up most of the MPJPE (54 of 61 mm after 500 steps without this term).

Bone lengths are the 20 bones of :data:`handx.skeleton.BONES` measured on the de-normalised local positions
with the wrist at the local origin (a rotation does not change a length). Δwrist_offset(t) + root_vel(t) =
wrist_offset(t+1) − wrist_offset(t) + root_vel(t) is the left wrist's displacement per frame.

Differences from the reference's ``Loss_witer``:

* no geodesic terms: the reference's 0.01·geodesic angle between true and predicted root rotations and its
  0.002·geodesic term on "consecutive" rotations (which pairs across clips and hands, §6.3) are left out; the
  rotation is learned through SL1_n(rot6d) alone. (The arccos of a geodesic angle also has an infinite gradient at
  a perfect prediction.)
* no second 0.03·SL1_n(wrist_offset) term: the reference counts the wrist offset twice (once in ``[0:6]``, once in
  ``[3:6]``); here it is counted once, in ``root``.
* no FSQ commitment term (the reference adds 0.02 · 0).

Metrics (§6.3 validation): :func:`codebook_usage` (fraction of codes used, perplexity) and :func:`mpjpe` (per-hand
root-relative mean per-joint position error in metres, the best-checkpoint criterion).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from handx.representations import local288
from handx.representations.base import XYZ
from handx.representations.local288 import LAYOUT, NUM_FEATURES
from handx.skeleton import BONES, NUM_HANDS, NUM_JOINTS, WRIST

CENTIMETRE = 0.01
#: columns of ``local288`` by channel, from its layout
LOCAL_POS = torch.as_tensor(LAYOUT.columns(channels=("local_pos",)))  # (120,) hand, joint, xyz
ROOT = torch.as_tensor(LAYOUT.columns(channels=("root_vel", "wrist_offset")))  # (6,)
ROOT_VEL = torch.as_tensor(LAYOUT.columns(channels=("root_vel",)))  # (3,) x, y, z
WRIST_OFFSET = torch.as_tensor(LAYOUT.columns(channels=("wrist_offset",)))  # (3,) x, y, z
ROT6D = torch.as_tensor(LAYOUT.columns(channels=("rot6d",)))  # (12,)
#: where each local_pos column goes in a flattened ``(2, 21, 3)`` hand-local skeleton (the wrist stays at 0)
_LOCAL_SLOT = torch.as_tensor(
    (LAYOUT.hand[LOCAL_POS.numpy()] * NUM_JOINTS + LAYOUT.joint[LOCAL_POS.numpy()]) * 3
    + np.array([XYZ.index(LAYOUT.component[c]) for c in LOCAL_POS.tolist()]))  # (120,)


@dataclasses.dataclass(frozen=True)
class TokenizerLossWeights:
    """λ of each term (module docstring; reference §6.3 values)."""

    features: float = 1.0
    local_pos: float = 0.5
    local_pos_accel: float = 0.15
    root: float = 0.03
    rot6d: float = 0.01
    bones: float = 0.1
    left_wrist_vel: float = 0.03
    hand_joints: float = 0.1


@dataclasses.dataclass(frozen=True)
class TokenizerLossTerms:
    """The total loss and its unweighted parts (each a scalar tensor)."""

    total: torch.Tensor
    features: torch.Tensor
    local_pos: torch.Tensor
    local_pos_accel: torch.Tensor
    root: torch.Tensor
    rot6d: torch.Tensor
    bones: torch.Tensor
    left_wrist_vel: torch.Tensor
    hand_joints: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).detach()) for f in dataclasses.fields(self)}


def local_bone_lengths(local_pos: torch.Tensor) -> torch.Tensor:
    """Bone lengths from ``local_pos`` columns in metres ``(..., 120)``: ``(..., 2, 20)`` (wrist at the origin)."""
    flat = local_pos.new_zeros(*local_pos.shape[:-1], NUM_HANDS * NUM_JOINTS * 3)
    flat[..., _LOCAL_SLOT.to(local_pos.device)] = local_pos
    joints = flat.unflatten(-1, (NUM_HANDS, NUM_JOINTS, 3))  # (..., 2, 21, 3), wrist = 0
    bones = torch.as_tensor(BONES, device=local_pos.device)
    return torch.linalg.vector_norm(joints[..., bones[:, 1], :] - joints[..., bones[:, 0], :], dim=-1)  # (..., 2, 20)


def left_wrist_velocity(x: torch.Tensor) -> torch.Tensor:
    """Left-wrist displacement per frame of de-normalised features ``(B, T, 288)``: ``(B, T−1, 3)`` metres."""
    offset = x[..., WRIST_OFFSET.to(x.device)]  # (B, T, 3)
    return offset[:, 1:] - offset[:, :-1] + x[:, :-1, ROOT_VEL.to(x.device)]


def tokenizer_loss(x: torch.Tensor, x_hat: torch.Tensor, mean: torch.Tensor | np.ndarray,
                   std: torch.Tensor | np.ndarray, weights: TokenizerLossWeights = TokenizerLossWeights()
                   ) -> TokenizerLossTerms:
    """Reference §6.3 loss (module docstring) of a reconstruction ``x_hat`` of ``x``, both normalised
    ``(B, T, 288)`` with ``T ≥ 3``; ``mean`` and ``std`` ``(288,)`` are the features' statistics."""
    if x.ndim != 3 or x.shape[-1] != NUM_FEATURES or x.shape[1] < 3 or x_hat.shape != x.shape:
        raise ValueError(f"tokenizer_loss expects x and x_hat of equal shape (B, T >= 3, {NUM_FEATURES}), got "
                         f"{tuple(x.shape)} and {tuple(x_hat.shape)}")
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    if mean.shape != (NUM_FEATURES,) or std.shape != (NUM_FEATURES,):
        raise ValueError(f"tokenizer_loss expects mean and std of shape ({NUM_FEATURES},), got "
                         f"{tuple(mean.shape)} and {tuple(std.shape)}")
    local_cols, root_cols, rot_cols = LOCAL_POS.to(x.device), ROOT.to(x.device), ROT6D.to(x.device)

    features = F.smooth_l1_loss(x_hat, x)
    local, local_hat = x[..., local_cols], x_hat[..., local_cols]  # (B, T, 120)
    local_pos = F.smooth_l1_loss(local_hat, local)
    accel, accel_hat = (p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2] for p in (local, local_hat))  # (B, T−2, 120)
    local_pos_accel = F.smooth_l1_loss(accel_hat, accel)
    root = F.smooth_l1_loss(x_hat[..., root_cols], x[..., root_cols])
    rot6d = F.smooth_l1_loss(x_hat[..., rot_cols], x[..., rot_cols])

    u, u_hat = x * std + mean, x_hat * std + mean  # (B, T, 288) in metres
    bones = F.smooth_l1_loss(local_bone_lengths(u_hat[..., local_cols]), local_bone_lengths(u[..., local_cols]))
    left_wrist_vel = F.smooth_l1_loss(left_wrist_velocity(u_hat), left_wrist_velocity(u))
    hand_joints = F.smooth_l1_loss(hand_relative_joints(u_hat) / CENTIMETRE, hand_relative_joints(u) / CENTIMETRE)

    w = weights
    total = (w.features * features + w.local_pos * local_pos + w.local_pos_accel * local_pos_accel + w.root * root
             + w.rot6d * rot6d + w.bones * bones + w.left_wrist_vel * left_wrist_vel + w.hand_joints * hand_joints)
    return TokenizerLossTerms(total, features, local_pos, local_pos_accel, root, rot6d, bones, left_wrist_vel,
                              hand_joints)


def hand_relative_joints(u: torch.Tensor) -> torch.Tensor:
    """Joints of de-normalised features ``(B, T, 288)`` relative to their own hand's wrist: ``(B, T, 2, 21, 3)``
    metres (differentiable)."""
    joints = local288.decode(u)  # (B, T, 2, 21, 3)
    return joints - joints[..., WRIST:WRIST + 1, :]


def codebook_usage(indices: torch.Tensor | np.ndarray, size: int) -> tuple[float, float]:
    """(fraction of the ``size`` codes that occur in ``indices`` (any shape), perplexity of their histogram).

    Perplexity is exp(H) with H = −Σ p_k ln p_k over the codes' frequencies p: 1 when one code is used, ``size``
    when all are used equally often.
    """
    flat = np.asarray(indices.detach().cpu() if isinstance(indices, torch.Tensor) else indices).reshape(-1)
    if flat.size == 0 or not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"codebook_usage expects a non-empty integer array of indices, got {flat.dtype} "
                         f"with {flat.size} entries")
    if flat.min() < 0 or flat.max() >= size:
        raise ValueError(f"codebook_usage: indices must lie in [0, {size}), got values in [{flat.min()}, {flat.max()}]")
    counts = np.bincount(flat, minlength=size)  # (size,)
    p = counts[counts > 0] / flat.size
    return float((counts > 0).sum() / size), float(np.exp(-(p * np.log(p)).sum()))


def mpjpe(joints_true: torch.Tensor | np.ndarray, joints_pred: torch.Tensor | np.ndarray) -> float:
    """Per-hand root-relative mean per-joint position error in metres of clips ``(N, T, 2, 21, 3)``.

    Each hand is moved so its wrist is at the origin, the error is averaged over its 21 joints (the wrist
    contributes 0), frames and clips, and the two hands' errors are averaged (reference §6.3).
    """
    true, pred = (np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
                  for a in (joints_true, joints_pred))
    if true.ndim != 5 or true.shape[-3:] != (NUM_HANDS, NUM_JOINTS, 3) or pred.shape != true.shape:
        raise ValueError(f"mpjpe expects two arrays of equal shape (N, T, 2, 21, 3), got {true.shape} and {pred.shape}")
    true = true - true[..., WRIST:WRIST + 1, :]  # (N, T, 2, 21, 3), root-relative per hand
    pred = pred - pred[..., WRIST:WRIST + 1, :]
    per_hand = np.linalg.norm(pred - true, axis=-1).mean(axis=(0, 1, 3))  # (2,)
    return float(per_hand.mean())
