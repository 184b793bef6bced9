"""The HandX benchmark metrics (reference §7.3): FID, R-precision, matching score, diversity, multimodality,
MPJPE and clip-level contact precision / recall / F1.

Embedding metrics take float arrays ``(N, D)`` (evaluator embeddings, reference §7.2); motion metrics take clips
``(N, T, 2, 21, 3)`` in metres. Everything is plain numpy (scipy is not needed). :func:`r_precision` is defined
in :mod:`handx.retrieval` (training ranks embeddings too) and re-exported here, so every benchmark metric is found
in this module; the checks of embedding arrays come from there as well. Where we depart from the reference code
(DESIGN.md, "Deviations"; ``docs/metrics.md``):

- R-precision keeps the remainder pool instead of dropping it (each item is still ranked among exactly ``pool``
  candidates);
- diversity and multimodality never pair an embedding with itself;
- contact labels use the fixed palm samples of :mod:`handx.features.signals`, so they are reproducible;
- precision, recall and F1 have exact 0/0 conventions instead of 1e-8 epsilons.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from handx.features.contacts import contact_labels
from handx.motion import CLIP_SHAPE_TAIL
from handx.retrieval import check_embeddings, check_finite, check_pairs, r_precision  # noqa: F401 (re-export)
from handx.skeleton import LEFT, WRIST

#: Clips per chunk in the motion metrics: bounds the memory of the per-frame intermediates.
CHUNK_CLIPS = 256

_INTRA = slice(0, 8)  # contact_labels columns: 4 left + 4 right thumb-tip pairs
_INTER = slice(8, 18)  # 5 left tips → right palm, 5 right tips → left palm (column 18, palm–palm, is not scored)


# ------------------------------------------------------------------------------------------------------------
# Input checks


def as_clips(motion: np.ndarray, name: str = "motion") -> np.ndarray:
    """Clips ``(N, T, 2, 21, 3)`` or one clip ``(T, 2, 21, 3)`` → float64 ``(N, T, 2, 21, 3)``.

    Raises ValueError naming ``name`` for another shape, no frames or non-finite values.
    """
    arr = np.asarray(motion, dtype=np.float64)
    if arr.ndim == 4:
        arr = arr[None]  # (1, T, 2, 21, 3)
    if arr.ndim != 5 or arr.shape[2:] != CLIP_SHAPE_TAIL:
        raise ValueError(f"{name} must have shape (N, T, 2, 21, 3) or (T, 2, 21, 3), got shape {np.shape(motion)}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one frame, got shape {np.shape(motion)}")
    return check_finite(name, arr, "(N, T, 2, 21, 3)", 5)


def clip_chunks(n: int, size: int = CHUNK_CLIPS) -> list[slice]:
    """Consecutive slices of at most ``size`` clips covering ``range(n)``."""
    return [slice(lo, min(lo + size, n)) for lo in range(0, n, size)]


# ------------------------------------------------------------------------------------------------------------
# Embedding metrics


def fid(real: np.ndarray, generated: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two embedding sets ``(N₁, D)`` and ``(N₂, D)`` (reference §7.3).

    FID = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½, with sample covariances (ddof 1). The trace of the
    matrix square root is computed from symmetric eigendecompositions (Σ₁^½ by ``eigh``, then the eigenvalues of
    the symmetric Σ₁^½ Σ₂ Σ₁^½, negative round-off clipped to 0), which equals tr √(Σ₁Σ₂) of the reference's
    ``scipy.linalg.sqrtm`` without its complex round-off. The result is clipped at 0.
    """
    real, generated = check_embeddings("real", real, 2), check_embeddings("generated", generated, 2)
    if real.shape[1] != generated.shape[1]:
        raise ValueError(f"generated must have shape (N, {real.shape[1]}) like real, got shape {generated.shape}")
    mu1, mu2 = real.mean(0), generated.mean(0)  # (D,)
    sigma1 = np.atleast_2d(np.cov(real, rowvar=False))  # (D, D) Σ₁
    sigma2 = np.atleast_2d(np.cov(generated, rowvar=False))  # (D, D) Σ₂
    w, v = np.linalg.eigh(sigma1)
    sqrt1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # Σ₁^½
    inner = sqrt1 @ sigma2 @ sqrt1
    inner = 0.5 * (inner + inner.T)  # symmetric up to round-off
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0.0, None)).sum()  # tr (Σ₁^½ Σ₂ Σ₁^½)^½
    value = np.square(mu1 - mu2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def matching_score(text: np.ndarray, motion: np.ndarray) -> float:
    """Mean Euclidean distance between paired text and motion embeddings ``(N, D)`` (reference §7.3).

    The reference averages the diagonal of each pool's distance matrix; that is the same mean over items.
    """
    text, motion = check_pairs(text, motion)
    return float(np.linalg.norm(text - motion, axis=-1).mean())


def _distinct_pairs(rng: np.random.Generator, lead: tuple[int, ...], n: int, count: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` index pairs over ``range(n)`` for each entry of ``lead``: two int arrays ``lead + (count,)``.

    The first indices are distinct (a random permutation, truncated); each second index is uniform over the
    n − 1 indices other than its first, so a pair never repeats an item.
    """
    first = np.argsort(rng.random(lead + (n,)), axis=-1)[..., :count]  # distinct, uniformly random
    second = (first + rng.integers(1, n, size=lead + (count,))) % n  # never equal to first
    return first, second


def diversity(embeddings: np.ndarray, *, pairs: int = 300, rng: np.random.Generator) -> float:
    """Mean distance between ``min(pairs, N)`` random pairs of different embeddings ``(N, D)`` (reference §7.3).

    Pairing: the first items are ``min(pairs, N)`` distinct items drawn without replacement; each is paired
    with an item drawn uniformly from the N − 1 others. Deterministic given ``rng``. The reference draws two
    independent index sets, so it can pair an item with itself (a zero distance).
    """
    embeddings = check_embeddings("embeddings", embeddings, 2)
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    n = len(embeddings)
    first, second = _distinct_pairs(rng, (), n, min(pairs, n))
    return float(np.linalg.norm(embeddings[first] - embeddings[second], axis=-1).mean())


def multimodality(embeddings: np.ndarray, *, pairs: int = 20, rng: np.random.Generator) -> float:
    """Mean distance between different generations for the same text: embeddings ``(N, G, D)`` (reference §7.3).

    For each text, k = min(``pairs``, G − 1) pairs (the reference's count, 3 for G = 4): k distinct generations,
    each paired with a generation drawn uniformly from the G − 1 others. The mean is over texts × pairs.
    Deviation (DESIGN.md): the reference draws two independent index sets, so a generation can be paired with
    itself. NaN when G < 2 (no pair exists).
    """
    embeddings = check_finite("embeddings", embeddings, "(N, G, D)", 3)
    n, g = embeddings.shape[:2]
    if n == 0:
        raise ValueError(f"embeddings must have shape (N, G, D) with N >= 1, got shape {embeddings.shape}")
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    if g < 2:
        return float("nan")
    first, second = _distinct_pairs(rng, (n,), g, min(pairs, g - 1))  # (N, k) each
    a = np.take_along_axis(embeddings, first[..., None], axis=1)  # (N, k, D)
    b = np.take_along_axis(embeddings, second[..., None], axis=1)
    return float(np.linalg.norm(a - b, axis=-1).mean())


# ------------------------------------------------------------------------------------------------------------
# Motion metrics


def mpjpe(truth: np.ndarray, generated: np.ndarray) -> float:
    """Mean per-joint position error in millimetres between clips ``(N, T, 2, 21, 3)`` in metres (reference §7.3).

    The reference centres every frame on the right wrist and then each 42-joint pose on its joint 0 (the left
    wrist). Both are per-frame translations, so the result equals centring every frame of each clip on its own
    left wrist: mean over 42 joints, frames and items of ‖(x − x_left wrist) − (y − y_left wrist)‖, × 1000.
    """
    truth, generated = as_clips(truth, "truth"), as_clips(generated, "generated")
    if truth.shape != generated.shape:
        raise ValueError(f"generated must have the shape of truth {truth.shape}, got shape {generated.shape}")
    total = 0.0
    for part in clip_chunks(len(truth)):
        a = truth[part] - truth[part, :, LEFT:LEFT + 1, WRIST:WRIST + 1]  # (n, T, 2, 21, 3) left-wrist centred
        b = generated[part] - generated[part, :, LEFT:LEFT + 1, WRIST:WRIST + 1]
        total += np.linalg.norm(a - b, axis=-1).sum()
    return float(1000.0 * total / (truth.size // 3))


@dataclasses.dataclass(frozen=True)
class ClipContacts:
    """Clip-level contact labels (reference §7.3).

    Attributes:
        intra: ``(N, 8)`` bool: thumb tip with index, middle, ring, pinky tip, left hand then right hand.
        inter: ``(N, 10)`` bool: left thumb..pinky tip on the right palm, then right tips on the left palm.
    """

    intra: np.ndarray
    inter: np.ndarray

    def all(self) -> np.ndarray:
        """``(N, 18)`` bool: ``intra`` then ``inter``."""
        return np.concatenate([self.intra, self.inter], axis=-1)


def _has_run(frames: np.ndarray, length: int) -> np.ndarray:
    """Whether each row of ``(..., T)`` bool holds at least ``length`` consecutive True frames: ``(...)``."""
    t = frames.shape[-1]
    if length > t:
        return np.zeros(frames.shape[:-1], dtype=bool)
    counts = np.concatenate([np.zeros(frames.shape[:-1] + (1,), dtype=np.int64),
                             np.cumsum(frames, axis=-1, dtype=np.int64)], axis=-1)  # (..., T + 1)
    window = counts[..., length:] - counts[..., :-length]  # (..., T − length + 1) True frames per window
    return (window == length).any(-1)


def frame_contact_labels(motion: np.ndarray) -> np.ndarray:
    """Per-frame contact labels ``(N, T, 19)`` of clips ``(N, T, 2, 21, 3)`` or one clip (N = 1), computed in
    chunks of clips to bound memory (:func:`handx.features.contacts.contact_labels`, reference §2.9)."""
    motion = as_clips(motion)
    return np.concatenate([contact_labels(motion[part]) for part in clip_chunks(len(motion))])


def clip_contact_labels(motion: np.ndarray, *, min_duration: int = 1,
                        frame_labels: np.ndarray | None = None) -> ClipContacts:
    """Clip-level contact labels of clips ``(N, T, 2, 21, 3)`` or one clip ``(T, 2, 21, 3)`` (reference §7.3).

    From the per-frame labels of :func:`handx.features.contacts.contact_labels` (reference §2.9: thumb-tip pairs
    < 2 cm, tip to the other palm's nearest sample < 2.5 cm; the palm–palm column is not scored), a clip label is
    positive when its frame label holds for at least ``min_duration`` consecutive frames. A single clip gives
    ``N = 1``. ``frame_labels`` ``(N, T, 19)`` from :func:`frame_contact_labels` saves computing them again.
    """
    if min_duration < 1:
        raise ValueError(f"min_duration must be >= 1, got {min_duration}")
    frames = frame_contact_labels(motion) if frame_labels is None else np.asarray(frame_labels, dtype=bool)
    label = _has_run(np.swapaxes(frames, -1, -2), min_duration)  # (N, 19)
    return ClipContacts(intra=label[:, _INTRA], inter=label[:, _INTER])


@dataclasses.dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 with the counts behind them."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def _labels(name: str, x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (N, K), got shape {arr.shape}")
    if arr.dtype != bool and not (np.issubdtype(arr.dtype, np.integer) and np.isin(arr, (0, 1)).all()):
        raise ValueError(f"{name} must hold booleans (or 0/1 integers), got dtype {arr.dtype}")
    return arr.astype(bool)


def contact_prf(truth: np.ndarray, predicted: np.ndarray) -> PRF:
    """Precision, recall and F1 of clip contact labels ``(N, K)`` bool, counts summed over items and labels
    (reference §7.3).

    P = TP / (TP + FP), R = TP / (TP + FN), F1 = 2PR / (P + R). Deviation: the reference adds 1e-8 to every
    denominator; here a 0/0 ratio is exactly 1.0 (predicting no contact makes no false claim; with no true
    contact nothing was missed) and F1 is 0 when P = R = 0.
    """
    truth, predicted = _labels("truth", truth), _labels("predicted", predicted)
    if truth.shape != predicted.shape:
        raise ValueError(f"predicted must have the shape of truth {truth.shape}, got shape {predicted.shape}")
    tp = int((truth & predicted).sum())
    fp = int((~truth & predicted).sum())
    fn = int((truth & ~predicted).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision, recall, f1, tp, fp, fn)
