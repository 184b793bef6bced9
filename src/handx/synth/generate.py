"""The synthetic clip generator: random scenes → motion, ground-truth program and texts.

Each clip is a 60-frame two-hand motion (reference §1.1: float32 ``(60, 2, 21, 3)``, metres, 30 fps, canonical
frame of §1.2 with the right wrist at the origin at frame 0) built from the per-hand sequences and two-hand
interactions of :mod:`handx.synth.sequence` and :mod:`handx.synth.interactions`, with small smooth joint-angle
noise, together with its event program and three description lists written from that program (reference §3
format).

Determinism: clip ``i`` of seed ``s`` draws from ``numpy.random.default_rng([s, i])`` only, so it is the same
whatever the number of clips generated. Every clip is verified before it is returned: the programmed contacts
hold on their frames, the parts are apart before the action, the hands touch only in an interaction and do not
interpenetrate; a failed draw is redrawn from the same stream (so still deterministic).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import numpy as np

from handx.motion import FPS, WINDOW, centre_on_right_wrist
from handx.skeleton import JOINT_INDEX, NUM_JOINTS
from handx.synth.hand import (
    FLEX_SLICE,
    POS_SLICE,
    POSE_DIM,
    ROT_SLICE,
    clip_to_limits,
    forward_kinematics_pair,
)
from handx.synth.interactions import INTERACTIONS, Scene, build_scene
from handx.synth.primitives import PRIMITIVES
from handx.synth.program import (
    PALM_PALM_THRESHOLD,
    TIP_PALM_THRESHOLD,
    TIP_TIP_THRESHOLD,
    ContactSignals,
    add_flexion_changes,
    contact_events,
    contact_signals,
    write_texts,
)
from handx.synth.sequence import SequenceConfig

log = logging.getLogger(__name__)

_THRESHOLDS = {"tip_tip": TIP_TIP_THRESHOLD, "tip_palm": TIP_PALM_THRESHOLD, "palm_palm": PALM_PALM_THRESHOLD}
_APART = {"tip_tip": 0.03, "tip_palm": 0.035, "palm_palm": 0.035}
_HAND_ORDER = {"left": 0, "right": 1, "both": 2}


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """Settings of the generator.

    Attributes:
        interaction_fraction: share of clips that are two-hand interactions (the rest: independent hands).
        finger_noise_deg: amplitude of the smooth noise on each finger and thumb angle (degrees).
        wrist_noise_deg: amplitude of the smooth noise on each wrist rotation angle (degrees).
        position_noise: amplitude of the smooth noise on each wrist coordinate (metres).
        min_hand_gap: smallest allowed distance between any joint of one hand and any joint of the other,
            apart from the fingertips of a programmed contact (metres).
        max_attempts: redraws allowed before a clip is declared impossible.
        sequence: how dense the per-hand programs are (:class:`handx.synth.sequence.SequenceConfig`).
    """

    interaction_fraction: float = 0.5
    finger_noise_deg: float = 0.2
    wrist_noise_deg: float = 0.08
    position_noise: float = 0.0003
    min_hand_gap: float = 0.008
    max_attempts: int = 8
    sequence: SequenceConfig = dataclasses.field(default_factory=SequenceConfig)

    def __post_init__(self) -> None:
        if not 0.0 <= self.interaction_fraction <= 1.0:
            raise ValueError(f"SynthConfig.interaction_fraction must be in [0, 1], got {self.interaction_fraction}")
        for name in ("finger_noise_deg", "wrist_noise_deg", "position_noise", "min_hand_gap"):
            if getattr(self, name) < 0:
                raise ValueError(f"SynthConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_attempts < 1:
            raise ValueError(f"SynthConfig.max_attempts must be >= 1, got {self.max_attempts}")

    def noise_amplitude(self) -> np.ndarray:
        """Per-channel noise amplitude of a pose vector ``(26,)``."""
        amp = np.zeros(POSE_DIM)
        amp[FLEX_SLICE] = np.deg2rad(self.finger_noise_deg)
        amp[ROT_SLICE] = np.deg2rad(self.wrist_noise_deg)
        amp[POS_SLICE] = self.position_noise
        return amp


@dataclasses.dataclass(frozen=True)
class SynthClip:
    """One synthetic clip.

    Attributes:
        motion: float32 ``(60, 2, 21, 3)``, metres, right wrist at the origin at frame 0.
        program: the ground-truth events (JSON-serialisable dicts, see :mod:`handx.synth.program`); finger
            events carry ``flexion_changes`` from the rendered joint angles.
        texts: ``{"left", "right", "two_hands_relation"}`` → five descriptions each, concise to detailed.
        seed: the run seed; ``index``: the clip's index in the run; ``kind``: an interaction name or
            ``"independent"``.
    """

    motion: np.ndarray
    program: list[dict]
    texts: dict[str, list[str]]
    seed: int
    index: int = 0
    kind: str = "independent"


def smooth_noise(rng: np.random.Generator, frames: int, amplitude: np.ndarray) -> np.ndarray:
    """Smooth bounded noise ``(frames, *amplitude.shape)``: per channel two random sinusoids of 0.2–1.5 Hz
    with weights summing to one, so ``|noise| <= amplitude``."""
    amplitude = np.asarray(amplitude, dtype=np.float64)
    t = (np.arange(frames) / FPS).reshape(frames, 1, *([1] * amplitude.ndim))  # (T, 1, ...)
    freq = rng.uniform(0.2, 1.5, (2, *amplitude.shape))
    phase = rng.uniform(0.0, 2.0 * np.pi, (2, *amplitude.shape))
    w = rng.uniform(0.0, 1.0, amplitude.shape)
    weights = np.stack([w, 1.0 - w])  # (2, ...)
    return (weights * np.sin(2.0 * np.pi * freq * t + phase)).sum(axis=1) * amplitude  # (T, ...)


def _render(scene: Scene, rng: np.random.Generator, config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Joints ``(T, 2, 21, 3)`` float32 centred on the right wrist at frame 0, and the pose trajectory
    ``(T, 2, 26)`` (left, right; noise added, clipped to the joint limits) they were computed from."""
    amp = np.broadcast_to(config.noise_amplitude(), (2, POSE_DIM))
    poses = np.stack([scene.left.render(WINDOW), scene.right.render(WINDOW)], axis=1)  # (T, 2, 26)
    poses = clip_to_limits(poses + smooth_noise(rng, WINDOW, amp))
    joints = centre_on_right_wrist(forward_kinematics_pair(poses, scene.geometry))  # (T, 2, 21, 3)
    return joints, poses


def _verify(scene: Scene, motion: np.ndarray, signals: ContactSignals, config: SynthConfig) -> str | None:
    """Why a rendered scene is not acceptable, or None.

    Checks every contact expectation (in contact on its frames with the thresholds of reference §2.3–2.4,
    apart before its action), that the hands do not touch before the interaction (or at all without one),
    finite joints, a minimum joint-to-joint gap between the hands outside the
    touching fingertips, and for mirror-symmetric scenes that no joint crosses the plane between the hands.
    """
    excluded: dict[str, set[int]] = {"left": set(), "right": set()}
    for ex in scene.expectations:
        d = signals.distance(ex.kind, ex.between)
        if not (d[ex.start:ex.end] < _THRESHOLDS[ex.kind]).all():
            return (f"{ex.kind} {ex.between} not in contact on frames [{ex.start}, {ex.end}) "
                    f"(max {d[ex.start:ex.end].max():.4f} m)")
        if not (d[ex.apart_from:ex.apart_before] > _APART[ex.kind]).all():
            return f"{ex.kind} {ex.between} not apart on frames [{ex.apart_from}, {ex.apart_before})"
        for name in ex.between:
            side, part = name.split("_", 1)
            if part.endswith("_tip"):
                excluded[side].add(JOINT_INDEX[part])
    early = slice(0, scene.touch_from)
    if ((signals.tip_tip[early] < TIP_TIP_THRESHOLD).any() or (signals.tip_palm[early] < TIP_PALM_THRESHOLD).any()
            or (signals.palm_palm[early] < PALM_PALM_THRESHOLD).any()):
        return f"the hands touch before frame {scene.touch_from}"
    x = motion.astype(np.float64)
    if not np.isfinite(x).all():
        return "non-finite joints"
    # Joint-to-joint gap between the hands, computed only on frames where their bounding spheres (around
    # the joints' mean) come closer than the gap.
    centre = x.mean(axis=2)  # (T, 2, 3)
    radius = np.sqrt(((x - centre[:, :, None]) ** 2).sum(-1).max(axis=2))  # (T, 2)
    bound = np.sqrt(((centre[:, 0] - centre[:, 1]) ** 2).sum(-1)) - radius.sum(axis=1)  # (T,)
    near = np.flatnonzero(bound < config.min_hand_gap)
    if near.size:
        keep_l = np.array([j for j in range(NUM_JOINTS) if j not in excluded["left"]])
        keep_r = np.array([j for j in range(NUM_JOINTS) if j not in excluded["right"]])
        a = x[near, 0][:, keep_l]  # (F, L, 3)
        b = x[near, 1][:, keep_r]  # (F, R, 3)
        gap = np.sqrt(((a[:, :, None] - b[:, None]) ** 2).sum(-1).min())
        if gap < config.min_hand_gap:
            return f"hands interpenetrate (closest joints {gap * 1000:.1f} mm apart)"
    if scene.separated_x and (x[:, 0, :, 0].max(axis=1) >= x[:, 1, :, 0].min(axis=1)).any():
        return "hands cross the plane between them"
    return None


def generate_clip(seed: int, index: int = 0, *, kind: str | None = None,
                  config: SynthConfig = SynthConfig()) -> SynthClip:
    """Clip ``index`` of the run with ``seed``.

    ``kind`` forces an interaction (:data:`INTERACTIONS`), a per-hand primitive (:data:`PRIMITIVES`, made part of
    a random hand's sequence while the other hand does a random sequence) or ``"independent"``; by default a share
    ``config.interaction_fraction`` of clips are interactions and the rest independent hands.
    """
    if kind is not None and kind not in INTERACTIONS and kind not in PRIMITIVES and kind != "independent":
        raise ValueError(f"unknown kind {kind!r}; expected 'independent', one of {', '.join(INTERACTIONS)} "
                         f"or one of {', '.join(PRIMITIVES)}")
    if int(seed) < 0 or int(index) < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    rng = np.random.default_rng([int(seed), int(index)])
    if kind is None:
        kind = str(rng.choice(INTERACTIONS)) if rng.random() < config.interaction_fraction else "independent"
    reasons = []
    for _ in range(config.max_attempts):
        scene = build_scene(rng, kind, config.sequence)
        motion, poses = _render(scene, rng, config)
        signals = contact_signals(motion.astype(np.float64))
        reason = _verify(scene, motion, signals, config)
        if reason is None:
            break
        log.debug("synth clip (seed %d, index %d, kind %s) redrawn: %s", seed, index, kind, reason)
        reasons.append(reason)
    else:
        raise RuntimeError(f"could not generate a valid {kind!r} clip for seed {seed}, index {index}: "
                           + "; ".join(reasons))
    events = [*scene.left.events, *scene.right.events, *scene.relation, *contact_events(signals)]
    events.sort(key=lambda e: (e.start, _HAND_ORDER[e.hand], e.action == "contact", e.end))
    program = add_flexion_changes([e.to_json() for e in events], poses)
    texts = write_texts(program, rng)
    return SynthClip(motion=motion, program=program, texts=texts, seed=int(seed), index=int(index), kind=scene.kind)


def generate(n: int, seed: int, *, config: SynthConfig = SynthConfig()) -> Iterator[SynthClip]:
    """Clips ``0 … n − 1`` of the run with ``seed`` (each independent of ``n``)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for i in range(n):
        yield generate_clip(seed, i, config=config)


__all__ = ["SynthClip", "SynthConfig", "generate", "generate_clip", "smooth_noise"]
