"""Physical plausibility of two-hand motion, beyond the paper's metrics (DESIGN.md, "Evaluation").

Four measures on clips ``(N, T, 2, 21, 3)`` in metres at 30 fps (one clip ``(T, 2, 21, 3)`` counts as N = 1):

- **interpenetration**: each bone is a capsule (segment + radius); per frame, the deepest overlap between a
  left-hand and a right-hand capsule;
- **jerk**: mean magnitude of the third time derivative of the joint positions;
- **bone drift**: how much bone lengths vary within a clip (a real skeleton keeps them constant);
- **contact sliding**: how fast a touching fingertip moves over the surface it touches.

Contacts use the definitions of reference §2.9 (:func:`handx.features.contacts.contact_labels`); local hand
frames are those of reference §2.1 (:func:`handx.kinematics.local_frame`). Definitions in ``docs/metrics.md``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from handx.eval.metrics import as_clips, clip_chunks
from handx.features import signals
from handx.features.contacts import contact_labels
from handx.kinematics import local_frame
from handx.motion import FPS
from handx.skeleton import BONE_NAMES, BONES, JOINT_NAMES, TIP_INDICES, TIPS, WRIST, bone_lengths

#: Capsule radius of each bone in metres, keyed by the bone's child joint: nominal adult half-thicknesses.
#: Bones from the wrist run through the palm (half the palm's thickness, about 25 mm; more at the thenar
#: eminence for wrist → thumb CMC); proximal phalanges are about 20 mm thick, middle ones 18 mm, distal ones
#: 15–16 mm, each a little less from index to pinky; the thumb is a little thicker than the index.
BONE_RADIUS_BY_CHILD: dict[str, float] = {
    "thumb_cmc": 0.015, "thumb_mcp": 0.012, "thumb_ip": 0.0105, "thumb_tip": 0.009,
    "index_mcp": 0.013, "index_pip": 0.010, "index_dip": 0.009, "index_tip": 0.008,
    "middle_mcp": 0.013, "middle_pip": 0.010, "middle_dip": 0.009, "middle_tip": 0.008,
    "ring_mcp": 0.012, "ring_pip": 0.0095, "ring_dip": 0.0085, "ring_tip": 0.0075,
    "pinky_mcp": 0.012, "pinky_pip": 0.0085, "pinky_dip": 0.008, "pinky_tip": 0.007,
}
#: :data:`BONE_RADIUS_BY_CHILD` in :data:`handx.skeleton.BONES` order: ``(20,)``.
BONE_RADII = np.array([BONE_RADIUS_BY_CHILD[JOINT_NAMES[c]] for _, c in BONES])
_IS_TIP_BONE = np.isin(BONES[:, 1], TIP_INDICES)  # (20,)
#: Frames per chunk of the capsule test (20 × 20 bone pairs each).
_FRAME_CHUNK = 2048
_EPS = 1e-12  # squared length (m²) below which a segment counts as a point


def segment_distance(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Closest distance between segments [p0, p1] and [q0, q1]: points ``(..., 3)`` broadcast → ``(...)``.

    The closest-point parameters s, t ∈ [0, 1] of the two infinite lines are clamped in turn (Ericson, Real-Time
    Collision Detection, §5.1.9). Parallel segments take s = 0 and then clamp, which still yields a closest pair;
    a segment of (near) zero length is treated as a point.
    """
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0  # (..., 3)
    a, e = (d1 * d1).sum(-1), (d2 * d2).sum(-1)  # squared lengths
    b, c, f = (d1 * d2).sum(-1), (d1 * r).sum(-1), (d2 * r).sum(-1)
    point_p, point_q = a <= _EPS, e <= _EPS
    safe_a, safe_e = np.where(point_p, 1.0, a), np.where(point_q, 1.0, e)
    denom = a * e - b * b  # ≥ 0; 0 for parallel lines
    parallel = denom <= _EPS * np.maximum(a * e, _EPS)
    s = np.where(parallel, 0.0, np.clip((b * f - c * e) / np.where(parallel, 1.0, denom), 0.0, 1.0))
    t = (b * s + f) / safe_e
    # t outside [0, 1]: clamp it and recompute s for the clamped end of q
    s = np.where(t < 0.0, np.clip(-c / safe_a, 0.0, 1.0), np.where(t > 1.0, np.clip((b - c) / safe_a, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    # degenerate segments: a point against a segment, or two points
    s = np.where(point_q, np.clip(-c / safe_a, 0.0, 1.0), s)
    t = np.where(point_q, 0.0, t)
    s = np.where(point_p, 0.0, s)
    t = np.where(point_p, np.where(point_q, 0.0, np.clip(f / safe_e, 0.0, 1.0)), t)
    gap = (p0 + s[..., None] * d1) - (q0 + t[..., None] * d2)  # (..., 3)
    return np.linalg.norm(gap, axis=-1)


def capsule_segments(hand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis segments of the 20 bone capsules of hands ``(..., 21, 3)``: start and end ``(..., 20, 3)``.

    The fingertip joints are skin vertices (reference §1.1), not bone ends, so each tip capsule's axis stops one
    radius short of the tip (never past the distal joint): its end cap then reaches the tip vertex. Every other
    capsule runs from joint to joint.
    """
    start, end = hand[..., BONES[:, 0], :], hand[..., BONES[:, 1], :]  # (..., 20, 3)
    length = np.linalg.norm(end - start, axis=-1)  # (..., 20)
    keep = np.clip(1.0 - BONE_RADII / np.maximum(length, 1e-12), 0.0, 1.0)  # fraction of the tip bone kept
    keep = np.where(_IS_TIP_BONE, keep, 1.0)
    return start, start + keep[..., None] * (end - start)


def penetration_depth(motion: np.ndarray) -> np.ndarray:
    """Per-frame hand–hand interpenetration depth in metres: clips → ``(N, T)`` (one clip gives N = 1).

    depth = max over left bone a × right bone b of max(0, r_a + r_b − d_ab), where d_ab is the distance between
    the capsule axes (:func:`capsule_segments`) and r the radii of :data:`BONE_RADII`. Two exact shortcuts skip
    work that cannot overlap: frames whose hands' bounding spheres (joints plus the largest radius) are apart,
    and bone pairs whose axes' bounding spheres (midpoint, half length) are at least r_a + r_b apart.
    """
    clips = as_clips(motion)
    frames = clips.reshape(-1, *clips.shape[2:])  # (F, 2, 21, 3)
    centre = frames.mean(axis=2)  # (F, 2, 3)
    reach = np.linalg.norm(frames - centre[:, :, None], axis=-1).max(-1) + BONE_RADII.max()  # (F, 2)
    near = np.flatnonzero(np.linalg.norm(centre[:, 0] - centre[:, 1], axis=-1) < reach.sum(-1))
    depth = np.zeros(len(frames))
    overlap_at_contact = BONE_RADII[:, None] + BONE_RADII[None, :]  # (20, 20) r_a + r_b
    for lo in range(0, len(near), _FRAME_CHUNK):
        rows = near[lo:lo + _FRAME_CHUNK]
        start, end = capsule_segments(frames[rows])  # (c, 2, 20, 3)
        middle, half = 0.5 * (start + end), 0.5 * np.linalg.norm(end - start, axis=-1)  # (c, 2, 20, 3), (c, 2, 20)
        apart = middle[:, 0, :, None] - middle[:, 1, None, :]  # (c, 20 left, 20 right, 3)
        limit = overlap_at_contact + half[:, 0, :, None] + half[:, 1, None, :]  # (c, 20, 20)
        # axes closer than ‖midpoint gap‖ − half lengths are impossible, so only these pairs may overlap
        f, a, b = np.nonzero(np.einsum("...k,...k->...", apart, apart) < np.square(limit))
        gap = np.full(limit.shape, np.inf)
        gap[f, a, b] = segment_distance(start[f, 0, a], end[f, 0, a], start[f, 1, b], end[f, 1, b])
        depth[rows] = np.maximum((overlap_at_contact - gap).max(axis=(-1, -2)), 0.0)
    return depth.reshape(clips.shape[:2])  # (N, T)


@dataclasses.dataclass(frozen=True)
class Penetration:
    """Hand–hand interpenetration over a set of clips (see :func:`penetration_depth`).

    Attributes:
        mean_depth_mm: mean over all frames of the per-frame depth (0 where the hands do not overlap), mm.
        max_depth_mm: the deepest frame, mm.
        frames: fraction of frames with a depth above 0.
    """

    mean_depth_mm: float
    max_depth_mm: float
    frames: float


def interpenetration(motion: np.ndarray) -> Penetration:
    """Summary of :func:`penetration_depth` over clips ``(N, T, 2, 21, 3)`` or one clip ``(T, 2, 21, 3)``."""
    depth = penetration_depth(motion)  # (N, T) metres
    return Penetration(float(1000.0 * depth.mean()), float(1000.0 * depth.max()), float((depth > 0).mean()))


def _check_fps(fps: float) -> None:
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")


def jerk(motion: np.ndarray, fps: float = FPS) -> float:
    """Mean jerk magnitude in m/s³: the third finite difference of every joint's position × fps³, its norm
    averaged over the 42 joints, the T − 3 frame quadruples and the clips. Needs T ≥ 4."""
    clips = as_clips(motion)
    _check_fps(fps)
    if clips.shape[1] < 4:
        raise ValueError(f"motion must have at least 4 frames for a third difference, got {clips.shape[1]}")
    total = 0.0
    for part in clip_chunks(len(clips)):
        third = np.diff(clips[part], n=3, axis=1)  # (n, T − 3, 2, 21, 3) metres per frame³
        total += np.linalg.norm(third, axis=-1).sum()
    count = len(clips) * (clips.shape[1] - 3) * clips.shape[2] * clips.shape[3]
    return float(total / count * fps ** 3)


def bone_drift(motion: np.ndarray) -> float:
    """Bone-length drift in percent: for each clip, hand and bone, the standard deviation over time of the bone
    length divided by its mean over time (a coefficient of variation); mean over clips, hands and bones, × 100.
    0 for a rigid skeleton."""
    clips = as_clips(motion)
    lengths = bone_lengths(clips)  # (N, T, 2, 20)
    mean = lengths.mean(axis=1)  # (N, 2, 20)
    if not (mean > 0).all():
        clip, hand, bone = (int(i) for i in np.argwhere(~(mean > 0))[0])
        raise ValueError(f"motion clip {clip}, hand {hand}: bone {BONE_NAMES[bone]} has zero length in every frame")
    return float(100.0 * (lengths.std(axis=1) / mean).mean())


def _in_frame(rotation: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Vectors ``(..., k, 3)`` in the frames ``(..., 3, 3)`` (rows x̂ ŷ ẑ): ``R v`` for each → ``(..., k, 3)``."""
    return (rotation[..., None, :, :] * vectors[..., None, :]).sum(-1)


def contact_sliding(motion: np.ndarray, fps: float = FPS, *, frame_labels: np.ndarray | None = None) -> float:
    """Mean sliding speed of touching fingertips, mm/s; NaN when no contact lasts two consecutive frames.

    A contact frame pair is two consecutive frames (t, t + 1) in which one contact label of
    :func:`handx.features.contacts.contact_labels` holds in both (reference §2.9):

    - tip on the other palm (columns 8–17: the tip within 2.5 cm of the nearest sample of the other hand's
      palm): the tip's position in the other hand's local frame (reference §2.1: origin at its wrist, axes
      rotating with its palm), R_o (p_tip − p_o,wrist);
    - thumb-tip pinch (columns 0–7: thumb tip within 2 cm of another tip of the same hand): the vector from the
      thumb tip to the other tip in that hand's local frame, R_h (p_tip − p_thumb).

    The pair's sliding speed is the part of ‖x(t + 1) − x(t)‖ × fps of that local quantity that runs along the
    touched surface: the component along the contact normal is removed first (tip on palm: the palm normal,
    the other hand's local ẑ; pinch: the line between the two tips at frame t), so pressing into or lifting
    off a surface is not counted as sliding. The result is the mean over all contact frame pairs of both
    kinds, pooled, × 1000. A contact that moves rigidly with the touched hand (or the whole scene moving
    rigidly) slides at 0.
    """
    clips = as_clips(motion)
    _check_fps(fps)
    total, count = 0.0, 0
    for part in clip_chunks(len(clips)):
        chunk = clips[part]  # (n, T, 2, 21, 3)
        labels = (contact_labels(chunk) if frame_labels is None else frame_labels[part])[..., :18]  # (n, T, 18)
        held = labels[:, 1:] & labels[:, :-1]  # (n, T − 1, 18) in contact in both frames of a pair
        if not held.any():
            continue
        rotation = local_frame(chunk)  # (n, T, 2, 3, 3)
        n, t = chunk.shape[:2]
        # thumb-tip pinches: other tip − thumb tip, in the same hand's frame
        thumb = chunk[:, :, :, TIPS["thumb"], None, :]  # (n, T, 2, 1, 3)
        others = chunk[:, :, :, [TIPS[f] for f in signals.INTRA_TIP_FINGERS], :]  # (n, T, 2, 4, 3)
        pinch = _in_frame(rotation, others - thumb).reshape(n, t, 8, 3)  # (n, T, 8, 3) left then right
        # tips on the other palm: tip − other wrist, in the other hand's frame
        tips = chunk[:, :, :, signals.TIP_ORDER, :]  # (n, T, 2, 5, 3) thumb..pinky
        other_wrist = chunk[:, :, ::-1, WRIST, None, :]  # (n, T, 2, 1, 3)
        on_palm = _in_frame(rotation[:, :, ::-1], tips - other_wrist).reshape(n, t, 10, 3)  # (n, T, 10, 3)
        local = np.concatenate([pinch, on_palm], axis=2)  # (n, T, 18, 3), columns as labels
        delta = np.diff(local, axis=1)  # (n, T − 1, 18, 3) metres per frame
        normal = np.zeros_like(delta)  # the contact normal of each label at frame t
        normal[..., 8:, 2] = 1.0  # tip on palm: the palm normal is the other hand's local ẑ
        pinch_t = local[:, :-1, :8]  # (n, T − 1, 8, 3) pinch: along the line between the two tips
        normal[..., :8, :] = pinch_t / np.maximum(np.linalg.norm(pinch_t, axis=-1, keepdims=True), 1e-9)
        tangential = delta - (delta * normal).sum(-1, keepdims=True) * normal
        speed = np.linalg.norm(tangential, axis=-1)  # (n, T − 1, 18)
        total += speed[held].sum()
        count += int(held.sum())
    return float(1000.0 * fps * total / count) if count else float("nan")


@dataclasses.dataclass(frozen=True)
class Plausibility:
    """Physical plausibility of a set of clips.

    Attributes:
        penetration_mm: mean per-frame interpenetration depth, mm (:class:`Penetration`).
        penetration_max_mm: deepest interpenetration, mm.
        penetration_frames: fraction of frames with interpenetration.
        jerk: mean jerk magnitude, m/s³ (:func:`jerk`).
        bone_drift_pct: mean coefficient of variation of bone lengths, % (:func:`bone_drift`).
        sliding_mm_s: mean contact sliding speed, mm/s; NaN without contacts (:func:`contact_sliding`).
    """

    penetration_mm: float
    penetration_max_mm: float
    penetration_frames: float
    jerk: float
    bone_drift_pct: float
    sliding_mm_s: float

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def plausibility(motion: np.ndarray, fps: float = FPS, *, frame_labels: np.ndarray | None = None) -> Plausibility:
    """All plausibility measures of clips ``(N, T, 2, 21, 3)`` or one clip ``(T, 2, 21, 3)`` at ``fps``;
    ``frame_labels`` ``(N, T, 19)`` are the clips' per-frame contact labels when already computed."""
    clips = as_clips(motion)
    pen = interpenetration(clips)
    return Plausibility(
        penetration_mm=pen.mean_depth_mm,
        penetration_max_mm=pen.max_depth_mm,
        penetration_frames=pen.frames,
        jerk=jerk(clips, fps),
        bone_drift_pct=bone_drift(clips),
        sliding_mm_s=contact_sliding(clips, fps, frame_labels=frame_labels),
    )
