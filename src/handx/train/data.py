"""Training data for the text-to-motion generators: (clip, text variant) items from a dataset store.

Each item is one clip with one of its annotation variants, the same variant index for the left, right and
relation texts (reference §1.5), so a store of N clips with five variants gives 5N items. The order is a seeded
permutation per epoch and the items of step k are a pure function of (seed, k), so a resumed run sees exactly
the data it would have seen.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator

import numpy as np

from handx.errors import HandxInputError
from handx.io.store import Store
from handx.models.representation import FeatureStats, encode

BRANCHES = ("left", "right", "two_hands_relation")


@dataclasses.dataclass(frozen=True)
class Batch:
    """A training batch.

    Attributes:
        features: float32 ``(B, T, 168)`` normalised motion features.
        texts: three lists of B strings (left, right, two_hands_relation).
        items: ``(B, 2)`` (clip index, text variant) of each row.
    """

    features: np.ndarray
    texts: tuple[list[str], list[str], list[str]]
    items: np.ndarray


class TextMotionData:
    """The (clip, variant) items of a store or one of its splits."""

    def __init__(self, store_dir: str | os.PathLike, *, split: str | None = None):
        self.store = Store(store_dir)
        records = self.store.records
        if split is not None and self.store.splits():
            wanted = set(self.store.ids(split))
            clips = [i for i, r in enumerate(records) if r.id in wanted]
        else:
            clips = list(range(len(records)))
        items = [(i, v) for i in clips for v in range(len(records[i].texts["left"]))]
        if not items:
            raise HandxInputError(store_dir, "no clip with texts to train on (annotate the store first: "
                                             "handx annotate DIR)" + (f" in split {split!r}" if split else ""))
        self.items = np.asarray(items, dtype=np.int64)  # (N, 2)
        self.clips = np.asarray(sorted(set(clips)), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def unique_texts(self) -> list[str]:
        """Every distinct text of the items, in first-seen order (to encode once before training)."""
        records = self.store.records
        seen: dict[str, None] = {}
        for c, v in self.items:
            for key in BRANCHES:
                seen.setdefault(records[int(c)].texts[key][int(v)], None)
        return list(seen)

    def fit_stats(self, batch_size: int = 1024) -> FeatureStats:
        """Normalisation statistics over every frame of every training clip (reference §1.5)."""
        def batches() -> Iterator[np.ndarray]:
            for lo in range(0, len(self.clips), batch_size):
                motions = np.stack([self.store.motion(int(i)) for i in self.clips[lo:lo + batch_size]])
                yield encode(motions)[0].reshape(-1, 168)

        return FeatureStats.fit(batches())

    @functools.lru_cache(maxsize=8)
    def _permutation(self, seed: int, epoch: int) -> np.ndarray:
        return np.random.default_rng([seed, epoch]).permutation(len(self.items))

    def step_items(self, step: int, batch_size: int, seed: int) -> np.ndarray:
        """Item rows of global batch ``step``: positions ``step·B … step·B + B − 1`` of the epoch stream."""
        positions = step * batch_size + np.arange(batch_size)
        epochs, offsets = np.divmod(positions, len(self.items))
        rows = np.array([self._permutation(seed, int(e))[o] for e, o in zip(epochs, offsets)])
        return self.items[rows]

    def batch(self, items: np.ndarray, stats: FeatureStats) -> Batch:
        motions = np.stack([self.store.motion(int(c)) for c, _ in items])  # (B, 60, 2, 21, 3)
        features = stats.normalize(encode(motions)[0]).astype(np.float32)
        records = self.store.records
        texts = tuple([records[int(c)].texts[key][int(v)] for c, v in items] for key in BRANCHES)
        return Batch(features, texts, items)
