"""Hand kinematics on joint positions: the local hand frame, bend angles, rotations between bone directions,
forward kinematics down a joint tree, and the projection onto a skeleton with fixed bone lengths.

The local frame follows reference §2.1: origin at the wrist, x̂ towards the middle MCP, ẑ the palm normal
(x̂ × index direction), ŷ = ẑ × x̂. Bend angles are the unsigned angles between consecutive bones of a finger
chain, used by the intensity filter (reference §2.6).

Inverse kinematics from joints uses :func:`swing` (the smallest rotation between two bone directions) and
:func:`kabsch` (the best rotation of a rigid set of offsets, e.g. the palm); :func:`world_transforms` composes
local rotations and translations down any joint tree (BVH import and export).

Valid hands: :func:`project_to_skeleton` re-chains each hand from its wrist onto given bone lengths while
keeping bone directions and any hard-constrained joints. It serves importers whose source does not keep bones
rigid (resampled Leap data, image-space landmarks) and sampling, where generated clips are projected onto the
condition clip's skeleton, a ``hand_size`` (:func:`hand_lengths_for_size`) or the training set's median hand
(:func:`skeleton_from_clips` computes it for a run's ``config.json``; :func:`skeleton_lengths` reads it back).
Lengths are metres, ``(2, 20)``: hand (left, right) × bone in :data:`handx.skeleton.BONES` order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from handx.skeleton import (
    BONES,
    CHAIN_ARRAY,
    CHAINS,
    JOINT_INDEX,
    NOMINAL_BONE_LENGTHS,
    NUM_HANDS,
    NUM_JOINTS,
    WRIST,
    bone_lengths,
)

_EPS = 1e-8
NUM_BONES = len(BONES)  # 20
#: The range of :func:`hand_lengths_for_size` (as :class:`handx.synth.hand.HandGeometry`'s ``scale``).
HAND_SIZE_RANGE: tuple[float, float] = (0.5, 2.0)
#: Wrist → middle fingertip along the chain of the nominal adult hand (``hand_size`` 1), metres: 0.183.
NOMINAL_HAND_LENGTH_M = float(NOMINAL_BONE_LENGTHS[np.asarray(CHAINS["middle"][1:]) - 1].sum())


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product over the last axis (numpy's ``cross`` is slow on many short vectors)."""
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                     a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def _normalize(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norm, _EPS)


def local_frame(hand: np.ndarray) -> np.ndarray:
    """Rotation of the local hand frame (reference §2.1) for joints ``(..., 21, 3)``.

    Returns ``(..., 3, 3)`` whose rows are x̂, ŷ, ẑ in world coordinates, so ``R @ (p - wrist)`` gives local
    coordinates.
    """
    wrist = hand[..., WRIST, :]
    x = _normalize(hand[..., JOINT_INDEX["middle_mcp"], :] - wrist)
    y0 = _normalize(hand[..., JOINT_INDEX["index_mcp"], :] - wrist)
    z = _normalize(cross(x, y0))
    y = _normalize(cross(z, x))
    return np.stack([x, y, z], axis=-2)  # (..., 3, 3)


def chain_bend_angles(hand: np.ndarray) -> np.ndarray:
    """Unsigned bend angle (radians) at the three middle joints of each finger chain.

    ``(..., 21, 3)`` → ``(..., 5, 3)``: fingers in :data:`handx.skeleton.FINGERS` order, joints proximal →
    distal (thumb: cmc, mcp, ip; others: mcp, pip, dip). 0 means the two bones are aligned.
    """
    chain = hand[..., CHAIN_ARRAY, :]  # (..., 5, 5, 3)
    bones = chain[..., 1:, :] - chain[..., :-1, :]  # (..., 5, 4, 3)
    incoming, outgoing = _normalize(bones[..., :-1, :]), _normalize(bones[..., 1:, :])  # (..., 5, 3, 3)
    cos = np.clip((incoming * outgoing).sum(-1), -1.0, 1.0)
    return np.arccos(cos)  # (..., 5, 3)


def project_to_skeleton(joints: np.ndarray, lengths: np.ndarray, *, fixed: np.ndarray | None = None) -> np.ndarray:
    """Put every hand onto a skeleton with the given bone lengths, keeping wrists, bone directions and fixed joints.

    Each hand is re-chained from its wrist, the five fingers together, proximal bone first: a free joint is
    placed at ``parent' + l · (p_child − p_parent) / |p_child − p_parent|``, where ``parent'`` is the parent's
    projected position, ``p`` the input positions and ``l`` the bone's length. So the wrist never moves, every
    bone keeps its input direction exactly and gets length ``l``, and a clip whose bones already have these
    lengths comes back unchanged (to float rounding). This is the one projection used by importers whose source
    does not keep bones rigid (resampled Leap data, image landmarks) and by sampling (generated clips).

    The direction of a bone much shorter than ``l`` is noise, and scaling it up to ``l`` shows that noise: a
    badly trained model's collapsed finger (a segment at 20 % of its length, spinning from frame to frame)
    becomes a full-size finger whose tip can jump centimetres between frames. Blending such directions towards
    the parent bone's was tried and did not reduce those jumps consistently, so directions are kept as given.

    A joint marked in ``fixed`` keeps its input position exactly, and its children are chained from there. A
    hand whose joints are all fixed is therefore returned unchanged, and a bone between two fixed joints keeps
    its input vector. When a fixed joint's parent is free (a keyframe on some joints of a finger only), the
    bone between them joins the parent's projected position to the fixed joint, so it keeps neither length
    ``l`` nor its input direction (the constraint wins); every bone with a free child gets ``l`` and its input
    direction. The conditioning modes of :mod:`handx.sampling.modes` as :mod:`handx.sampling.generate` uses them
    fix whole hands, whole frames or wrists, which never causes this.

    A bone of zero input length has no direction: its child is put on its parent. NaN hands stay NaN.

    Args:
        joints: ``(..., T, 2, 21, 3)`` metres.
        lengths: ``(2, 20)`` bone lengths per hand in :data:`handx.skeleton.BONES` order (child-index order),
            or ``(..., 2, 20)`` per clip, broadcast over the axes of ``joints`` before ``T``.
        fixed: optional bool ``(..., T, 2, 21)`` (broadcastable to ``joints.shape[:-1]``): joints that must not
            move (a given hand, the wrists, the joints of a keyframe).

    Returns:
        ``(..., T, 2, 21, 3)`` float64.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim < 4 or joints.shape[-3:] != (NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"project_to_skeleton: joints must be (..., T, 2, 21, 3), got {joints.shape}")
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.ndim < 2 or lengths.shape[-2:] != (NUM_HANDS, NUM_BONES):
        raise ValueError(f"project_to_skeleton: lengths must be (2, 20) or (..., 2, 20), got {lengths.shape}")
    lengths = lengths[..., None, :, :]  # (..., 1, 2, 20): the same skeleton in every frame
    target = joints.shape[:-2] + (NUM_BONES,)  # (..., T, 2, 20)
    try:
        fits = np.broadcast_shapes(lengths.shape, target) == target
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"project_to_skeleton: lengths {lengths.shape[:-3] + lengths.shape[-2:]} do not broadcast "
                         f"over joints {joints.shape}")
    if fixed is not None:
        fixed = np.broadcast_to(np.asarray(fixed, dtype=bool), joints.shape[:-1])  # (..., T, 2, 21)
    out = joints.copy()
    chains = CHAIN_ARRAY  # (5, 5): wrist then four joints per finger
    for k in range(1, chains.shape[1]):  # walk the five fingers outwards together
        parent, child = chains[:, k - 1], chains[:, k]  # (5,), (5,)
        bone = joints[..., child, :] - joints[..., parent, :]  # (..., T, 2, 5, 3)
        norm = np.linalg.norm(bone, axis=-1, keepdims=True)  # (..., T, 2, 5, 1)
        unit = np.divide(bone, norm, out=np.zeros_like(bone), where=norm > 0)
        placed = out[..., parent, :] + unit * lengths[..., child - 1, None]  # (..., T, 2, 5, 3)
        if fixed is not None:
            placed = np.where(fixed[..., child, None], joints[..., child, :], placed)
        out[..., child, :] = placed
    return out


#: The former name of :func:`project_to_skeleton` (without ``fixed``), still used in the docs of the importers
#: and of BVH export.
restore_bone_lengths = project_to_skeleton


def median_bone_lengths(joints: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Median length of each bone per hand over the frames where the hand is present: ``(T, 2, 21, 3)`` →
    ``(2, 20)`` metres. ``present`` ``(T, 2)`` bool defaults to the frames where all of a hand's joints are
    finite; a hand present in no frame gets NaN."""
    joints = np.asarray(joints, dtype=np.float64)
    if present is None:
        present = np.isfinite(joints).all(axis=(-2, -1))  # (T, 2)
    return median_over_present(bone_lengths(joints), present)


def median_over_present(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``(N, 2, ...)`` per-frame values → ``(2, ...)`` medians over each hand's present frames (NaN if never)."""
    return np.stack([np.median(values[present[:, h], h], axis=0) if present[:, h].any()
                     else np.full(values.shape[2:], np.nan) for h in range(present.shape[1])])


def hand_lengths_for_size(size: float) -> np.ndarray:
    """Bone lengths ``(2, 20)`` (metres, both hands alike) of the nominal adult hand scaled by ``size``.

    ``size`` is a unitless factor of :data:`handx.skeleton.NOMINAL_BONE_LENGTHS`, the hand of
    :mod:`handx.synth` at scale 1 (wrist → middle fingertip 0.183 m): 1.1 is a hand 10 % larger in every bone
    (20.1 cm), proportions unchanged. Must lie in :data:`HAND_SIZE_RANGE`.
    """
    lo, hi = HAND_SIZE_RANGE
    if not lo <= float(size) <= hi:
        raise ValueError(f"hand size must be a factor in [{lo}, {hi}] of the nominal adult hand "
                         f"({NOMINAL_HAND_LENGTH_M * 100:.1f} cm wrist to middle fingertip), got {size}")
    return np.broadcast_to(NOMINAL_BONE_LENGTHS * float(size), (NUM_HANDS, NUM_BONES)).copy()


def skeleton_from_clips(batches: Iterable[np.ndarray]) -> dict[str, Any]:
    """The median hand of a set of clips as the ``"skeleton"`` record of a run's ``config.json``.

    ``batches`` yields clips ``(n, T, 2, 21, 3)`` (e.g. the memory-mapped slices of
    :meth:`handx.io.store.Store.batches`). Each clip's bone lengths are reduced to their median over its frames,
    then the median over clips is taken per hand and bone, so only ``(N, 2, 20)`` is held. Returns
    ``{"lengths": [[20 floats], [20 floats]]}`` (metres, left then right, :data:`handx.skeleton.BONES` order),
    which :func:`skeleton_lengths` reads back.
    """
    per_clip = []
    for k, batch in enumerate(batches):
        clips = np.asarray(batch, dtype=np.float64)
        if clips.ndim != 5 or clips.shape[-3:] != (NUM_HANDS, NUM_JOINTS, 3):
            raise ValueError(f"skeleton_from_clips: batch {k} has shape {clips.shape}, expected (n, T, 2, 21, 3)")
        if len(clips):
            per_clip.append(np.nanmedian(bone_lengths(clips), axis=1))  # (n, 2, 20)
    if not per_clip:
        raise ValueError("skeleton_from_clips: no clips")
    lengths = np.nanmedian(np.concatenate(per_clip), axis=0)  # (2, 20)
    return {"lengths": lengths.tolist()}


def skeleton_lengths(record: Mapping[str, Any] | None) -> np.ndarray:
    """Bone lengths ``(2, 20)`` of a run's ``"skeleton"`` record (:func:`skeleton_from_clips`).

    ``None`` (a run trained before runs recorded their skeleton) gives the nominal adult hand,
    :func:`hand_lengths_for_size` (1.0). Raises ``ValueError`` naming the problem for a malformed record.
    """
    if record is None:
        return hand_lengths_for_size(1.0)
    if not isinstance(record, Mapping) or "lengths" not in record:
        raise ValueError(f"skeleton record must be a mapping with 'lengths', got {record!r:.80}")
    try:
        lengths = np.asarray(record["lengths"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("skeleton.lengths must be two lists of 20 numbers") from None
    if lengths.shape != (NUM_HANDS, NUM_BONES):
        raise ValueError(f"skeleton.lengths must have shape (2, 20), got {lengths.shape}")
    if not (np.isfinite(lengths).all() and (lengths > 0).all()):
        raise ValueError("skeleton.lengths must be finite and positive (metres)")
    return lengths


# ----------------------------------------------------------------------------------------------------------------
# Rotations from bone directions (inverse kinematics) and down a joint tree (forward kinematics)


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` onto unit vector ``b``: ``(..., 3)`` × 2 → ``(..., 3, 3)``.

    Rodrigues with ``k = a × b``: ``R = I + [k]× + [k]×² / (1 + a·b)``. Opposite vectors turn 180° about an
    axis perpendicular to ``a``; a zero ``b`` (degenerate bone) gives the identity.
    """
    a, b = np.broadcast_arrays(a, b)
    k = cross(a, b)  # (..., 3)
    c = (a * b).sum(-1)  # (...,)
    kx = np.zeros(k.shape + (3,))  # (..., 3, 3) [k]×
    kx[..., 0, 1], kx[..., 0, 2] = -k[..., 2], k[..., 1]
    kx[..., 1, 0], kx[..., 1, 2] = k[..., 2], -k[..., 0]
    kx[..., 2, 0], kx[..., 2, 1] = -k[..., 1], k[..., 0]
    opposite = 1.0 + c < 1e-9
    denom = np.where(opposite, 1.0, 1.0 + c)[..., None, None]
    out = np.eye(3) + kx + kx @ kx / denom
    zero = np.linalg.norm(b, axis=-1) < 1e-9
    out[zero] = np.eye(3)
    flip = opposite & ~zero
    if flip.any():
        av = a[flip]  # (N, 3)
        helper = np.eye(3)[np.argmin(np.abs(av), axis=-1)]  # the axis least aligned with a
        n = _normalize(cross(av, helper))  # (N, 3) ⟂ a
        out[flip] = 2.0 * n[:, :, None] * n[:, None, :] - np.eye(3)
    return out


def kabsch(rest: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Rotation ``R`` minimising ``Σ_k |R r_k − o_k|²``: ``(..., K, 3)`` × 2 → ``(..., 3, 3)``."""
    h = np.einsum("...ka,...kb->...ab", observed, rest)  # (..., 3, 3) Σ o rᵀ
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    u = u.copy()
    u[..., :, 2] *= d[..., None]
    return u @ vt


def world_transforms(parents: np.ndarray, rotations: np.ndarray,
                     translations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics down a joint tree: local transforms → world rotations and positions.

    ``world_R[j] = world_R[p] @ R[j]`` and ``world_p[j] = world_p[p] + world_R[p] @ t[j]`` with ``p`` the parent
    of ``j``; a root (parent < 0) takes its local transform as is.

    Args:
        parents: ``(J,)`` parent index per joint, every parent listed before its children.
        rotations: ``(..., J, 3, 3)`` rotation of each joint relative to its parent.
        translations: ``(..., J, 3)`` each joint's offset in its parent's frame.

    Returns:
        world rotations ``(..., J, 3, 3)`` and positions ``(..., J, 3)``.
    """
    world_rot = np.empty_like(rotations)
    world_pos = np.empty_like(translations)
    for j, p in enumerate(np.asarray(parents).tolist()):  # a loop over joints only, all frames at once
        if p < 0:
            world_rot[..., j, :, :] = rotations[..., j, :, :]
            world_pos[..., j, :] = translations[..., j, :]
        else:
            if p >= j:
                raise ValueError(f"world_transforms: joint {j} comes before its parent {p}")
            world_rot[..., j, :, :] = world_rot[..., p, :, :] @ rotations[..., j, :, :]
            world_pos[..., j, :] = world_pos[..., p, :] + np.einsum("...ab,...b->...a", world_rot[..., p, :, :],
                                                                     translations[..., j, :])
    return world_rot, world_pos
