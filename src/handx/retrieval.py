"""Text–motion retrieval over paired embeddings: R-precision in pools (handx-reference.md §7.3).

Here, above ``train/`` and ``eval/``, because both rank embeddings: training reports the retrieval of the model it
trains (the evaluator's own, a generator's under a trained evaluator) and the benchmark reports it for every
generator (:mod:`handx.eval.metrics` re-exports :func:`r_precision`, which is defined only here). The checks of
embedding arrays live beside it and serve every embedding metric.

Deviation (DESIGN.md, "Deviations"; ``docs/metrics.md``): R-precision keeps the remainder pool instead of dropping
it (each item is still ranked among exactly ``pool`` candidates).
"""

from __future__ import annotations

import numpy as np

#: Elements per chunk of the pool distance tensors in :func:`r_precision` (about 128 MiB of float64).
_POOL_BUDGET = 1 << 24


def check_finite(name: str, x: np.ndarray, expected: str, ndim: int) -> np.ndarray:
    """``x`` as float64 with ``ndim`` dimensions and only finite values, else a ValueError naming ``name`` and
    the ``expected`` shape."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have shape {expected}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} must be finite, found NaN or inf at index {tuple(int(i) for i in bad)}")
    return arr


def check_embeddings(name: str, x: np.ndarray, min_rows: int = 1) -> np.ndarray:
    """Embeddings ``(N, D)`` with N >= ``min_rows`` and finite values → float64, else a ValueError naming ``name``."""
    arr = check_finite(name, x, "(N, D)", 2)
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} must have shape (N, D) with N >= {min_rows}, got shape {arr.shape}")
    return arr


def check_pairs(text: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paired embeddings: ``text`` and ``motion`` ``(N, D)`` of one shape (row i of each is a pair) → float64."""
    text, motion = check_embeddings("text", text), check_embeddings("motion", motion)
    if text.shape != motion.shape:
        raise ValueError(f"motion must have the shape of text {text.shape} (row i of each is a pair), "
                         f"got shape {motion.shape}")
    return text, motion


def _pool_ranks(text: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Rank of each text's own motion in its pool: ``(P, S, D)`` × 2 → ``(P, S)`` int.

    The rank is the number of motions of the pool *strictly* closer (Euclidean) than the paired one, so ties
    count in the text's favour.
    """
    ranks = []
    per_chunk = max(1, _POOL_BUDGET // (text.shape[1] ** 2 * text.shape[2]))
    for lo in range(0, len(text), per_chunk):
        t, m = text[lo:lo + per_chunk], motion[lo:lo + per_chunk]
        dist = np.linalg.norm(t[:, :, None, :] - m[:, None, :, :], axis=-1)  # (p, S, S): text × motion
        paired = np.diagonal(dist, axis1=1, axis2=2)  # (p, S)
        ranks.append((dist < paired[..., None]).sum(-1))
    return np.concatenate(ranks)


def r_precision(text: np.ndarray, motion: np.ndarray, *, pool: int = 32, top_k: int = 3,
                order: np.ndarray | None = None) -> np.ndarray:
    """R-precision top-1..``top_k`` of paired embeddings ``(N, D)`` (reference §7.3): ``(top_k,)`` hit rates.

    Items are taken in ``order`` (a permutation of ``range(N)``; default ``arange(N)``) in consecutive pools of
    ``pool``. Each text ranks the motions of its pool by Euclidean distance; it scores a hit at k when fewer than
    k motions are strictly closer than its own (ties count as a hit). The result is the mean hit rate over all N
    texts. With N < ``pool`` all N items form one pool.

    Deviation (DESIGN.md): the reference drops the N mod ``pool`` items left over. Here they are ranked among the
    last ``pool`` items of the order, so every item is ranked among exactly ``pool`` candidates and scored once.
    """
    text, motion = check_pairs(text, motion)
    n = len(text)
    if pool < 1 or top_k < 1:
        raise ValueError(f"pool and top_k must be >= 1, got pool={pool}, top_k={top_k}")
    if order is None:
        order = np.arange(n)
    order = np.asarray(order)
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise ValueError(f"order must be a permutation of range({n}), got an array of shape {order.shape}")
    size = min(pool, n)
    full = n // size
    pools = order[:full * size].reshape(full, size)  # (P, S) item indices
    scored = np.ones((full, size), dtype=bool)  # which entries of each pool are scored texts
    rest = n - full * size
    if rest:
        pools = np.concatenate([pools, order[n - size:][None]])  # the remainder, with earlier items as foils
        last = np.zeros((1, size), dtype=bool)
        last[0, size - rest:] = True
        scored = np.concatenate([scored, last])
    ranks = _pool_ranks(text[pools], motion[pools])[scored]  # (N,) one rank per item
    return (ranks[:, None] < np.arange(1, top_k + 1)).mean(0)
