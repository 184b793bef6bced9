"""Greedy event segmentation of scalar signals, batched over many signals at once (reference §2.2).

The reference segments one signal at a time: starting at frame i, it looks for the longest window [i, j)
(j = T, T − u, T − 2u, ... for a step u) whose endpoints differ by at least ``delta``, that lasts at least
``min_duration`` frames, and whose velocity has a consistent sign (≥ 80 % of samples ≥ 0, or ≥ 80 % ≤ 0; zeros
count for both). Such a window becomes an event (kept when its start and end states differ, or always when
states are not compared) and the search continues at j; when no window qualifies, i advances by u. A signal that
emitted nothing gets one constant event labelled by its mean.

Here every allowed (signal, i, j) candidate is tested at once, giving the longest qualifying window for every start
``best[n, i]``; the greedy walk is then a pointer chase over ``(N,)`` integer arrays. Two precise readings of
the reference: a window with a consistent sign moves the search to j even when it is not emitted (states
equal), and an event's ``direction`` is the sign of its net change x(j−1) − x(i).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from handx.motion import FPS

_CHUNK_ELEMENTS = 1_000_000  # candidate (signal, i, j) triples evaluated per block


@dataclasses.dataclass(frozen=True)
class Bands:
    """Half-open value bands ``lo ≤ v < hi``: ``labels[k]`` covers ``[edges[k-1], edges[k])``.

    ``edges`` are the interior boundaries (ascending); the first and last bands are open-ended.
    """

    edges: tuple[float, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.edges) + 1:
            raise ValueError(f"Bands needs len(labels) == len(edges) + 1, got {len(self.labels)} and {len(self.edges)}")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"Bands.edges must be strictly increasing, got {self.edges}")

    def index(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges), values, side="right")

    def label(self, value: float) -> str:
        return self.labels[int(self.index(np.asarray(value)))]


@dataclasses.dataclass(frozen=True)
class SegmentSpec:
    """Parameters of one family of signals (reference §2.2–2.4).

    Attributes:
        values: state bands (``None``: states are not compared, every qualifying window is emitted).
        speeds: bands of |mean velocity| (units per second).
        delta: minimum |x(j−1) − x(i)| of a window.
        min_duration: minimum window length in frames.
        unit_len: step of the search over i and j.
    """

    values: Bands | None
    speeds: Bands
    delta: float
    min_duration: int
    unit_len: int = 1

    def __post_init__(self) -> None:
        if self.min_duration < 1 or self.unit_len < 1:
            raise ValueError(f"SegmentSpec.min_duration and unit_len must be >= 1, got {self.min_duration}, "
                             f"{self.unit_len}")
        if self.delta < 0:
            raise ValueError(f"SegmentSpec.delta must be >= 0, got {self.delta}")

    @property
    def diff_state(self) -> bool:
        return self.values is not None


@dataclasses.dataclass(frozen=True)
class Segments:
    """Events of N signals as flat arrays (one entry per event, ordered by signal then start).

    ``constant`` marks the one-event-per-silent-signal fallback ``[0, T)`` labelled by the signal's mean, in
    which case ``start_state`` holds that label's index and ``end_state`` equals it.
    """

    signal: np.ndarray  # (E,) which signal
    start: np.ndarray  # (E,) first frame
    end: np.ndarray  # (E,) one past the last frame
    start_state: np.ndarray  # (E,) band index of x(start) (-1 without bands)
    end_state: np.ndarray  # (E,) band index of x(end - 1)
    speed: np.ndarray  # (E,) band index of |mean velocity|
    positive: np.ndarray  # (E,) bool, net change >= 0
    constant: np.ndarray  # (E,) bool


def best_windows(x: np.ndarray, spec: SegmentSpec, fps: float = FPS) -> np.ndarray:
    """For every signal and start frame, the end of the longest qualifying window, or −1: ``(N, T)`` → ``(N, T)``.

    Only the (i, j) pairs allowed by the step and the minimum duration are tested, as flat arrays; the largest
    qualifying j per start i is a ``maximum.reduceat`` over each start's run of pairs.
    """
    n, t = x.shape
    counts = np.int8 if t < 127 else (np.int16 if t < 32767 else np.int64)
    velocity = np.zeros_like(x)
    velocity[:, 1:] = np.diff(x, axis=1)  # the sign of v(t) = (x(t) − x(t−1))·fps, v(0) = 0
    nonneg = np.concatenate([np.zeros((n, 1), counts), np.cumsum(velocity >= 0, axis=1, dtype=counts)], 1)
    nonpos = np.concatenate([np.zeros((n, 1), counts), np.cumsum(velocity <= 0, axis=1, dtype=counts)], 1)

    start = np.arange(t)[:, None]  # (T, 1)
    end = np.arange(1, t + 1)[None, :]  # (1, T), exclusive
    allowed = (end - start >= spec.min_duration) & ((t - end) % spec.unit_len == 0)  # (T, T)
    pair_i, pair_j = np.nonzero(allowed)  # (P,) candidate windows [i, j + 1), grouped by i
    need = ((4 * (pair_j + 1 - pair_i) + 4) // 5).astype(counts)  # ceil(0.8 · length)
    starts = np.unique(pair_i)
    first_pair = np.searchsorted(pair_i, starts)

    best = np.full((n, t), -1, dtype=np.int64)
    # A signal whose whole range is below delta has no qualifying window at all.
    moving = np.flatnonzero(np.ptp(x, axis=1) >= spec.delta) if t else np.zeros(0, np.int64)
    if not len(pair_i) or not len(moving):
        return best
    rows = max(1, _CHUNK_ELEMENTS // len(pair_i))
    for lo in range(0, len(moving), rows):
        sel = moving[lo:lo + rows]
        xs, pos, neg = x[sel], nonneg[sel], nonpos[sel]
        ok = np.abs(xs[:, pair_j] - xs[:, pair_i]) >= spec.delta  # (n', P): |x(j-1) - x(i)|
        ok &= ((pos[:, pair_j + 1] - pos[:, pair_i]) >= need) | ((neg[:, pair_j + 1] - neg[:, pair_i]) >= need)
        ends = np.where(ok, pair_j + 1, 0)  # (n', P)
        longest = np.maximum.reduceat(ends, first_pair, axis=1)  # (n', starts)
        best[sel[:, None], starts[None, :]] = np.where(longest > 0, longest, -1)
    return best


def segment(x: np.ndarray, spec: SegmentSpec, fps: float = FPS) -> Segments:
    """Greedy segmentation of N signals ``(N, T)`` with one spec (reference §2.2)."""
    x = np.asarray(x, dtype=np.float64)
    n, t = x.shape
    best = best_windows(x, spec, fps)  # (N, T)
    cumulative = np.concatenate([np.zeros((n, 1)), np.cumsum(x, axis=1)], axis=1)  # for the mean of x
    rows = np.arange(n)
    cursor = np.zeros(n, dtype=np.int64)
    active = cursor + spec.min_duration <= t
    found_signal, found_start, found_end = [], [], []
    while active.any():
        idx = rows[active]
        here = cursor[idx]
        end = best[idx, here]
        hit = end > 0
        found_signal.append(idx[hit])
        found_start.append(here[hit])
        found_end.append(end[hit])
        cursor[idx] = np.where(hit, end, here + spec.unit_len)
        active[idx] = cursor[idx] + spec.min_duration <= t
    signal = np.concatenate(found_signal) if found_signal else np.zeros(0, np.int64)
    start = np.concatenate(found_start) if found_start else np.zeros(0, np.int64)
    end = np.concatenate(found_end) if found_end else np.zeros(0, np.int64)

    first, last = x[signal, start], x[signal, end - 1]
    # mean of v[i:j] with v(t) = (x(t) - x(t-1)) fps and v(0) = 0 telescopes to (x(j-1) - x(max(i-1, 0))) fps / (j-i)
    previous = x[signal, np.maximum(start - 1, 0)]
    mean_velocity = (last - previous) * fps / np.maximum(end - start, 1)
    speed = spec.speeds.index(np.abs(mean_velocity))
    if spec.values is not None:
        start_state, end_state = spec.values.index(first), spec.values.index(last)
        keep = start_state != end_state
    else:
        start_state = end_state = np.full(len(signal), -1)
        keep = np.ones(len(signal), dtype=bool)
    signal, start, end = signal[keep], start[keep], end[keep]
    start_state, end_state, speed = start_state[keep], end_state[keep], speed[keep]
    positive = (last >= first)[keep]
    constant = np.zeros(len(signal), dtype=bool)

    if spec.values is not None:
        silent = np.setdiff1d(rows, signal)
        means = cumulative[silent, t] / t
        state = spec.values.index(means)
        signal = np.concatenate([signal, silent])
        start = np.concatenate([start, np.zeros(len(silent), np.int64)])
        end = np.concatenate([end, np.full(len(silent), t)])
        start_state = np.concatenate([start_state, state])
        end_state = np.concatenate([end_state, state])
        speed = np.concatenate([speed, np.zeros(len(silent), np.int64)])
        positive = np.concatenate([positive, np.ones(len(silent), bool)])
        constant = np.concatenate([constant, np.ones(len(silent), bool)])
    order = np.lexsort((start, signal))
    return Segments(signal[order], start[order], end[order], start_state[order], end_state[order], speed[order],
                    positive[order], constant[order])


def contact_runs(distance: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs where ``distance <= threshold`` (reference §2.2 contact segmentation).

    ``(N, T)`` → ``(signal, start, last)`` arrays with ``last`` inclusive, ordered by signal then start.
    """
    inside = np.asarray(distance) <= threshold  # (N, T)
    padded = np.pad(inside, ((0, 0), (1, 1))).astype(np.int8)
    change = np.diff(padded, axis=1)  # (N, T + 1): +1 at a run's start, -1 one past its end
    s_sig, s_at = np.nonzero(change == 1)
    e_sig, e_at = np.nonzero(change == -1)
    return s_sig, s_at, e_at - 1
