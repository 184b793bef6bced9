"""Training data for the text-to-motion generators: (clip, text variant) items from one or more dataset stores.

Each item is one clip with one of its annotation variants, the same variant index for the left, right and
relation texts (reference §1.5), so a store of N clips with five variants gives 5N items. The order is a seeded
permutation per epoch and the items of step k are a pure function of (seed, k), so a resumed run sees exactly
the data it would have seen.

The fast path (:meth:`TextMotionData.prepare`) computes everything a step needs once, into side files of each
store, and a step only gathers rows by index:

* motion features per (store, representation): ``<store>/features/motion-<representation>.npy`` float32
  ``(N, T, F)`` (the representation's ``encode``, e.g. :func:`handx.representations.joints168.encode`, before
  normalisation), memory-mapped;
* token features per (store, text encoder): :class:`handx.text.feature_file.TextFeatureFile`, memory-mapped.

Without ``prepare`` (small stores, tests, the evaluator's GloVe side) batches are computed from the clips and
texts on the fly, with the same values.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from handx.errors import HandxInputError
from handx.io.atomic import write_json
from handx.io.store import Store
from handx.motion import BRANCHES
from handx.representations import Representation, get_representation
from handx.representations.stats import FeatureStats
from handx.text.encoder import TextEncoder
from handx.text.feature_file import TextFeatureFile, feature_dir

DEFAULT_REPRESENTATION = "joints168"


@dataclasses.dataclass(frozen=True)
class Batch:
    """A training batch.

    Attributes:
        features: float32 ``(B, T, F)`` normalised motion features of the data's representation.
        texts: three lists of B strings (left, right, two_hands_relation).
        items: ``(B, 3)`` (store, clip index, text variant) of each row.
        tokens: float32 ``(3, B, L, D)`` precomputed token features of the three texts, or None when the data
            was not prepared (encode ``texts`` then).
        mask: bool ``(3, B, L)`` for ``tokens``, or None.
    """

    features: np.ndarray
    texts: tuple[list[str], list[str], list[str]]
    items: np.ndarray
    tokens: torch.Tensor | None = None
    mask: torch.Tensor | None = None


def motion_feature_file(store: Store, representation: str = DEFAULT_REPRESENTATION, *, progress: bool = False,
                        batch_size: int = 512) -> np.ndarray:
    """The features of ``representation`` of every clip of ``store``, ``(N, T, F)`` float32, memory-mapped from
    ``<store>/features/motion-<representation>.npy`` (computed on first use; clips appended since are added)."""
    rep = get_representation(representation)
    name = f"motion-{rep.name}"
    folder = store.root / "features"
    path, meta_path = folder / f"{name}.npy", folder / f"{name}.json"
    done = 0
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        done = int(meta.get("clips", 0))
        if done == len(store):
            return np.load(path, mmap_mode="r")
    folder.mkdir(parents=True, exist_ok=True)
    old = np.load(path, mmap_mode="r") if done else None
    first = store.motion(0) if len(store) else np.zeros((60, 2, 21, 3), np.float32)
    tmp = folder / f".{name}.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                    shape=(len(store), first.shape[0], rep.features))
    if old is not None:
        out[:done] = old[:done]
    with tqdm(total=len(store) - done, desc=f"motion features ({store.root.name})", unit="clip",
              disable=not progress) as bar:
        for lo in range(done, len(store), batch_size):
            hi = min(lo + batch_size, len(store))
            motions = np.stack([store.motion(i) for i in range(lo, hi)])  # (b, T, 2, 21, 3)
            out[lo:hi] = rep.encode(motions)[0]
            bar.update(hi - lo)
    out.flush()
    del out, old
    os.replace(tmp, path)
    write_json(meta_path, {"representation": rep.name, "clips": len(store)})
    return np.load(path, mmap_mode="r")


def store_list(data: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[str, ...]:
    """The stores a training config names: one path, ``"a,b"``, or a sequence of paths."""
    if isinstance(data, (str, os.PathLike)):
        return tuple(part for part in os.fspath(data).split(",") if part)
    return tuple(os.fspath(part) for part in data)


def store_texts(store: Store) -> list[str]:
    """Every distinct text of every clip of ``store`` (all variants, all branches), in first-seen order."""
    seen: dict[str, None] = {}
    for record in store.records:
        for key in BRANCHES:
            for text in record.texts.get(key, ()):
                seen.setdefault(text, None)
    return list(seen)


class TextMotionData:
    """The (clip, variant) items of one or more stores (or of one split of each), with the motion features of
    one representation (:mod:`handx.representations`)."""

    def __init__(self, store_dirs: str | os.PathLike | Sequence[str | os.PathLike], *, split: str | None = None,
                 representation: str = DEFAULT_REPRESENTATION, fraction: float = 1.0):
        dirs = [store_dirs] if isinstance(store_dirs, (str, os.PathLike)) else list(store_dirs)
        if not dirs:
            raise ValueError("TextMotionData: no store given")
        self.representation: Representation = get_representation(representation)
        self.stores = [Store(d) for d in dirs]
        items, clips = [], []
        for s, store in enumerate(self.stores):
            records = store.records
            if split is not None and store.splits():
                wanted = set(store.ids(split)) if split in store.splits() else set()
                chosen = [i for i, r in enumerate(records) if r.id in wanted]
            else:
                chosen = list(range(len(records)))
            items += [(s, i, v) for i in chosen for v in range(len(records[i].texts["left"]))]
            clips += [(s, i) for i in chosen]
        if not items:
            names = ", ".join(str(d) for d in dirs)
            raise HandxInputError(names, "no clip with texts to train on (annotate the store first: "
                                         "handx annotate DIR)" + (f" in split {split!r}" if split else ""))
        self.items = np.asarray(items, dtype=np.int64)  # (N, 3): store, clip, variant
        self.clip_keys = np.asarray(sorted(set(clips)), dtype=np.int64).reshape(-1, 2)  # (C, 2): store, clip
        if fraction != 1.0:
            self._keep_fraction(fraction)
        self._motion: list[np.ndarray] | None = None
        self._text_files: list[TextFeatureFile] | None = None
        self._text_rows: np.ndarray | None = None  # (N, 3) row of each item's three texts in its store's file

    def _keep_fraction(self, fraction: float) -> None:
        """Keep ``ceil(fraction · C)`` of the C clips (at least one): the first ones of a fixed permutation, so
        a smaller fraction's clips are always among a larger one's (data-scaling sweeps)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction of the training clips must be in (0, 1], got {fraction}")
        count = max(1, int(np.ceil(fraction * len(self.clip_keys))))
        order = np.random.default_rng(0x5CA1E).permutation(len(self.clip_keys))
        self.clip_keys = self.clip_keys[np.sort(order[:count])]
        kept = {(int(s), int(c)) for s, c in self.clip_keys}
        self.items = self.items[np.array([(int(s), int(c)) in kept for s, c, _ in self.items], dtype=bool)]

    @property
    def store(self) -> Store:
        """The first store (single-store callers)."""
        return self.stores[0]

    @property
    def clips(self) -> np.ndarray:
        """Clip indices of the first store (single-store callers)."""
        return self.clip_keys[self.clip_keys[:, 0] == 0, 1]

    def __len__(self) -> int:
        return len(self.items)

    def motion(self, store: int, clip: int) -> np.ndarray:
        return self.stores[store].motion(clip)

    def texts_of(self, items: np.ndarray) -> tuple[list[str], list[str], list[str]]:
        """The three texts of each item ``(B, 3)``."""
        return tuple([self.stores[int(s)].records[int(c)].texts[key][int(v)] for s, c, v in items]
                     for key in BRANCHES)  # type: ignore[return-value]

    def unique_texts(self, store: int | None = None) -> list[str]:
        """Every distinct text of the items (of one store, or of all), in first-seen order."""
        seen: dict[str, None] = {}
        for s, c, v in self.items:
            if store is not None and s != store:
                continue
            record = self.stores[int(s)].records[int(c)]
            for key in BRANCHES:
                seen.setdefault(record.texts[key][int(v)], None)
        return list(seen)

    def fit_stats(self, batch_size: int = 1024) -> FeatureStats:
        """Normalisation statistics over every frame of every training clip (reference §1.5)."""
        def batches() -> Iterator[np.ndarray]:
            for lo in range(0, len(self.clip_keys), batch_size):
                keys = self.clip_keys[lo:lo + batch_size]
                if self._motion is not None:
                    yield np.concatenate([self._motion[s][keys[keys[:, 0] == s, 1]]
                                          for s in np.unique(keys[:, 0])]).reshape(-1, self.representation.features)
                else:
                    motions = np.stack([self.motion(int(s), int(c)) for s, c in keys])
                    yield self.representation.encode(motions)[0].reshape(-1, self.representation.features)

        return FeatureStats.fit(batches())

    def clip_batches(self, batch_size: int = 256) -> Iterator[np.ndarray]:
        """The training clips ``(b, T, 2, 21, 3)`` in batches (e.g. for
        :func:`handx.kinematics.skeleton_from_clips`)."""
        for lo in range(0, len(self.clip_keys), batch_size):
            yield np.stack([self.motion(int(s), int(c)) for s, c in self.clip_keys[lo:lo + batch_size]])

    # ---- the fast path
    def prepare(self, encoder: TextEncoder | None, *, progress: bool = True) -> None:
        """Compute (or reuse) each store's motion features and text features of ``encoder`` (None: motion
        only), so batches are gathered by index."""
        self._motion = [motion_feature_file(store, self.representation.name, progress=progress)
                        for store in self.stores]
        if encoder is None:
            return
        files = []
        rows = np.zeros((len(self.items), 3), dtype=np.int64)
        for s, store in enumerate(self.stores):
            texts = store_texts(store)  # every split's texts: one file serves training and validation
            files.append(TextFeatureFile.build(feature_dir(store.root, encoder.name), texts, encoder,
                                               progress=progress))
            mine = np.flatnonzero(self.items[:, 0] == s)
            for k, branch in enumerate(self.texts_of(self.items[mine])):
                rows[mine, k] = files[s].rows(branch)
        self._text_files, self._text_rows = files, rows

    @property
    def prepared(self) -> bool:
        return self._text_files is not None

    @functools.lru_cache(maxsize=8)
    def _permutation(self, seed: int, epoch: int) -> np.ndarray:
        return np.random.default_rng([seed, epoch]).permutation(len(self.items))

    def step_rows(self, step: int, batch_size: int, seed: int) -> np.ndarray:
        """Item numbers of global batch ``step``: positions ``step·B … step·B + B − 1`` of the epoch stream."""
        positions = step * batch_size + np.arange(batch_size)
        epochs, offsets = np.divmod(positions, len(self.items))
        return np.array([self._permutation(seed, int(e))[o] for e, o in zip(epochs, offsets)], dtype=np.int64)

    def step_items(self, step: int, batch_size: int, seed: int) -> np.ndarray:
        """Items ``(B, 3)`` (store, clip, variant) of global batch ``step``."""
        return self.items[self.step_rows(step, batch_size, seed)]

    def batch(self, rows_or_items: np.ndarray, stats: FeatureStats) -> Batch:
        """The batch of item numbers ``(B,)`` (or of items ``(B, 3)``, the slow path only)."""
        array = np.asarray(rows_or_items, dtype=np.int64)
        items = self.items[array] if array.ndim == 1 else array
        texts = self.texts_of(items)
        raw = self.clip_features(items[:, :2])  # (B, T, F)
        features = stats.normalize(raw).astype(np.float32)
        if self._text_files is None or array.ndim != 1:
            return Batch(features, texts, items)
        tokens, mask = self.text_batch(array)
        return Batch(features, texts, items, tokens, mask)

    def clip_features(self, keys: np.ndarray) -> np.ndarray:
        """Raw (not normalised) features ``(B, T, F)`` float32 of clips ``keys`` ``(B, 2)`` (store, clip)."""
        keys = np.asarray(keys, dtype=np.int64).reshape(-1, 2)
        if self._motion is None:
            clips = np.stack([self.motion(int(s), int(c)) for s, c in keys])  # (B, T, 2, 21, 3)
            return self.representation.encode(clips)[0].astype(np.float32)
        raw = np.empty((len(keys), *self._motion[0].shape[1:]), dtype=np.float32)
        for s in np.unique(keys[:, 0]):
            rows = keys[:, 0] == s
            raw[rows] = self._motion[int(s)][keys[rows, 1]]
        return raw

    def text_batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Token features ``(3, B, L, D)`` and mask ``(3, B, L)`` of the three texts of item numbers ``rows``
        ``(B,)``, gathered from the prepared text feature files."""
        if self._text_files is None:
            raise RuntimeError("TextMotionData.text_batch needs prepare(encoder) first")
        assert self._text_files is not None and self._text_rows is not None
        text_rows = self._text_rows[rows]  # (B, 3)
        stores = self.items[rows, 0]  # (B,)
        length = 1
        for k in range(len(BRANCHES)):
            for s in np.unique(stores):
                sel = stores == s
                length = max(length, int(self._text_files[s].lengths(text_rows[sel, k]).max()))
        dim = self._text_files[0].dim
        tokens = torch.zeros((len(BRANCHES), len(rows), length, dim))
        mask = torch.zeros((len(BRANCHES), len(rows), length), dtype=torch.bool)
        for k in range(len(BRANCHES)):
            for s in np.unique(stores):
                sel = np.flatnonzero(stores == s)
                feats = self._text_files[s].gather(text_rows[sel, k], length)
                tokens[k, sel], mask[k, sel] = feats.tokens, feats.mask
        return tokens, mask  # (3, B, L, D), (3, B, L)


class StepBatches(torch.utils.data.Dataset):
    """Step k → the batch of global step k (this process's share), for a DataLoader with ``batch_size=None``
    and worker processes that gather the next batches while the network trains."""

    def __init__(self, data: TextMotionData, stats: FeatureStats, *, batch_size: int, seed: int, start: int,
                 steps: int, rank: int = 0, world: int = 1):
        self.data, self.stats = data, stats
        self.batch_size, self.seed, self.start, self.steps = batch_size, seed, start, steps
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return max(self.steps - self.start, 0)

    def __getitem__(self, k: int) -> Batch:
        rows = self.data.step_rows(self.start + k, self.batch_size, self.seed)[self.rank::self.world]
        return self.data.batch(rows, self.stats)


def _collate(batch: Batch) -> Batch:
    return batch


def step_loader(data: TextMotionData, stats: FeatureStats, *, batch_size: int, seed: int, start: int, steps: int,
                rank: int = 0, world: int = 1, workers: int = 0) -> Iterator[Batch]:
    """The batches of steps ``start … steps − 1`` in order, gathered in ``workers`` background processes
    (0: in this process)."""
    dataset = StepBatches(data, stats, batch_size=batch_size, seed=seed, start=start, steps=steps, rank=rank,
                          world=world)
    if workers <= 0:
        return (dataset[k] for k in range(len(dataset)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                         collate_fn=_collate, prefetch_factor=4, persistent_workers=False)
    return iter(loader)
