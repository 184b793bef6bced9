"""The evaluator's per-frame input, ``positions126``: one preprocessing, shared by its training and by every
evaluation.

It lives here, above ``train/`` and ``eval/``, because both need it (DESIGN.md, layout). It is not a
:class:`~handx.representations.base.Representation`: it carries fitted statistics and is not decoded back to
joints (``"frame"`` centring drops the right wrist's path).

The reference trains its evaluator with one preprocessing and evaluates with another (handx-reference.md §7.4,
[mismatch]); here :class:`Preprocess` is fitted once on the training clips, written into the evaluator's
``config.json`` and rebuilt from it, so both sides see motions through exactly the same function and statistics
(DESIGN.md, "Evaluation"). For a clip ``(T, 2, 21, 3)`` in metres:

1. **centre** on the right wrist (hand 1, joint 0):

   * ``"clip"`` (our default): subtract the right wrist of frame 0 from every frame. The right wrist starts at the
     origin, as in the stored HandX windows (§1.2), and the clip keeps the wrists' paths, which texts describe
     ("moves to the right towards the other hand"). A deviation from the reference evaluator.
   * ``"frame"`` (the reference evaluator, §7.1): subtract the right wrist of the same frame from that frame,
     which removes the right hand's global path.

2. **flatten** each frame, hand-major, to 126 values (``(2, 21, 3)`` → ``hand·63 + joint·3 + axis``);
3. **normalise** with per-feature mean and population std over every frame of the training clips. A feature whose
   std is below 1e-4 m (0.1 mm: the centring wrist, which is exactly zero at frame 0 or at every frame) is left
   unscaled (std 1), the rule of :class:`handx.representations.stats.FeatureStats`, so constant features map to 0
   instead of blowing up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np

from handx.representations.stats import FeatureStats
from handx.skeleton import NUM_HANDS, NUM_JOINTS, RIGHT, WRIST

CENTRINGS = ("clip", "frame")
MOTION_DIM = NUM_HANDS * NUM_JOINTS * 3  # 126


def centre(motions: np.ndarray, centring: str) -> np.ndarray:
    """Steps 1–2: ``(N, T, 2, 21, 3)`` or ``(T, 2, 21, 3)`` metres → float64 ``(N, T, 126)`` (or ``(T, 126)``)."""
    if centring not in CENTRINGS:
        raise ValueError(f"centring must be one of {', '.join(CENTRINGS)}, got {centring!r}")
    x = _check_motions(motions)
    if centring == "clip":
        origin = x[..., :1, RIGHT:RIGHT + 1, WRIST:WRIST + 1, :]  # (..., 1, 1, 1, 3): right wrist at frame 0
    else:
        origin = x[..., RIGHT:RIGHT + 1, WRIST:WRIST + 1, :]  # (..., T, 1, 1, 3): right wrist of each frame
    return (x - origin).reshape(*x.shape[:-3], MOTION_DIM)  # (..., T, 126)


@dataclasses.dataclass(frozen=True, eq=False)
class Preprocess:
    """Centring and normalisation statistics of an evaluator (see the module docstring).

    Attributes:
        centring: ``"clip"`` (right wrist of frame 0) or ``"frame"`` (right wrist of each frame, the reference).
        mean: float32 ``(126,)`` mean of the centred, flattened training frames.
        std: float32 ``(126,)`` their population std, values below 1e-4 replaced by 1.
    """

    centring: str
    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        if self.centring not in CENTRINGS:
            raise ValueError(f"Preprocess.centring must be one of {', '.join(CENTRINGS)}, got {self.centring!r}")
        stats = FeatureStats(self.mean, self.std)  # checks: 1-D, equal shapes, finite, std > 0; read-only float32
        if stats.mean.shape != (MOTION_DIM,):
            raise ValueError(f"Preprocess.mean and .std must have shape ({MOTION_DIM},), got {stats.mean.shape}")
        object.__setattr__(self, "mean", stats.mean)
        object.__setattr__(self, "std", stats.std)

    @classmethod
    def fit(cls, motions: Iterable[np.ndarray], centring: str = "clip") -> Preprocess:
        """Statistics over every frame of ``motions``, an iterable of batches ``(N, T, 2, 21, 3)`` or single clips
        ``(T, 2, 21, 3)`` (streamed: nothing is kept but the running moments)."""
        if centring not in CENTRINGS:
            raise ValueError(f"centring must be one of {', '.join(CENTRINGS)}, got {centring!r}")
        stats = FeatureStats.fit(centre(batch, centring) for batch in motions)
        return cls(centring, stats.mean, stats.std)

    def __call__(self, motions: np.ndarray) -> np.ndarray:
        """``(N, T, 2, 21, 3)`` or ``(T, 2, 21, 3)`` metres → float32 ``(N, T, 126)`` or ``(T, 126)``."""
        return ((centre(motions, self.centring) - self.mean) / self.std).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"centring": self.centring, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocess:
        missing = {"centring", "mean", "std"} - set(data)
        if missing:
            raise ValueError(f"Preprocess.from_json: missing key(s) {sorted(missing)}")
        return cls(data["centring"], np.asarray(data["mean"], dtype=np.float32),
                   np.asarray(data["std"], dtype=np.float32))


def _check_motions(motions: np.ndarray) -> np.ndarray:
    x = np.asarray(motions, dtype=np.float64)
    if x.ndim not in (4, 5) or x.shape[-3:] != (NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"motions: expected joints of shape (N, T, 2, 21, 3) or (T, 2, 21, 3) in metres, got "
                         f"{tuple(x.shape)}")
    if x.shape[-4] == 0:
        raise ValueError(f"motions: expected at least one frame, got shape {tuple(x.shape)}")
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x).reshape(*x.shape[:-3], -1).all(axis=-1))[0].tolist()
        where = f"clip {bad[0]}, frame {bad[1]}" if x.ndim == 5 else f"frame {bad[0]}"
        raise ValueError(f"motions: non-finite joint coordinates (NaN or inf) at {where}; the evaluator needs "
                         "every joint of every frame")
    return x
