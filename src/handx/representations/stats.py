"""Per-feature z-score statistics of a representation's training features (reference §1.5, §1.6).

The model sees features through :class:`FeatureStats`: ``(x − mean) / std`` per column, with the population
standard deviation over every frame of every training clip and values below 1e-4 replaced by 1, so constant
columns (the bend of a wrist, a local coordinate that is 0 by construction) map to 0 instead of blowing up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from handx.representations.base import ArrayOrTensor

STD_FLOOR = 1e-4


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureStats:
    """Per-feature z-score statistics of the training features (reference §1.5).

    Attributes:
        mean: float32 ``(F,)``, F the width of the representation (168 for joints168, 288 for local288).
        std: float32 ``(F,)``, population standard deviation with values below 1e-4 replaced by 1.
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        mean = np.array(self.mean, dtype=np.float32)
        std = np.array(self.std, dtype=np.float32)
        if mean.ndim != 1 or std.shape != mean.shape:
            raise ValueError(f"FeatureStats.mean and .std must be equal 1-D shapes, got {mean.shape} and {std.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise ValueError("FeatureStats.mean and .std must be finite")
        if not (std > 0).all():
            raise ValueError(f"FeatureStats.std must be positive, got a minimum of {float(std.min())}")
        mean.setflags(write=False)
        std.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def fit(cls, batches: Iterable[np.ndarray]) -> FeatureStats:
        """Statistics over every row of every batch ``(..., F)``, streamed in float64 (Chan's parallel
        update of mean and sum of squared deviations, so nothing is held but three vectors)."""
        count = 0
        mean: np.ndarray | None = None
        m2: np.ndarray | None = None
        for k, batch in enumerate(batches):
            rows = np.asarray(batch, dtype=np.float64)
            if rows.ndim < 1 or (mean is not None and rows.shape[-1] != mean.shape[0]):
                expected = "(..., F)" if mean is None else f"(..., {mean.shape[0]})"
                raise ValueError(f"FeatureStats.fit: batch {k} has shape {rows.shape}, expected {expected}")
            rows = rows.reshape(-1, rows.shape[-1])  # (N, F)
            if not np.isfinite(rows).all():
                raise ValueError(f"FeatureStats.fit: batch {k} has non-finite values")
            n = rows.shape[0]
            if n == 0:
                continue
            batch_mean = rows.mean(axis=0)
            batch_m2 = np.square(rows - batch_mean).sum(axis=0)
            if mean is None or m2 is None:
                count, mean, m2 = n, batch_mean, batch_m2
                continue
            total = count + n
            delta = batch_mean - mean
            mean = mean + delta * (n / total)
            m2 = m2 + batch_m2 + np.square(delta) * (count * n / total)
            count = total
        if mean is None or m2 is None:
            raise ValueError("FeatureStats.fit: no feature rows")
        std = np.sqrt(np.maximum(m2 / count, 0.0))
        return cls(mean, np.where(std < STD_FLOOR, 1.0, std))

    def _as(self, x: ArrayOrTensor) -> tuple[Any, Any]:
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"FeatureStats: expected features (..., {self.mean.shape[0]}), got {tuple(x.shape)}")
        if isinstance(x, torch.Tensor):
            return (torch.tensor(np.array(self.mean), dtype=x.dtype, device=x.device),
                    torch.tensor(np.array(self.std), dtype=x.dtype, device=x.device))
        return self.mean, self.std

    def normalize(self, x: ArrayOrTensor) -> ArrayOrTensor:
        """``(x − mean) / std`` over the last axis (numpy or torch, on ``x``'s device)."""
        mean, std = self._as(x)
        return (x - mean) / std

    def denormalize(self, x: ArrayOrTensor) -> ArrayOrTensor:
        """``x · std + mean``: the inverse of :meth:`normalize`."""
        mean, std = self._as(x)
        return x * std + mean

    def to_json(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureStats:
        missing = {"mean", "std"} - set(data)
        if missing:
            raise ValueError(f"FeatureStats.from_json: missing key(s) {sorted(missing)}")
        return cls(np.asarray(data["mean"], dtype=np.float32), np.asarray(data["std"], dtype=np.float32))
