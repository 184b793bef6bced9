"""What is evaluated: the test items of a store, and generated motions for them read from files.

The evaluation set (:class:`EvalSet`) is the clips of one split of a store with one description triplet each
(variant 0 by default, the same for every generator). Generated motion reaches the protocol as an array
``(N, G, T, 2, 21, 3)``: G generations for each of the N items, in the order of the evaluation set. Any
generator can be scored from files in one of three layouts (docs/evaluation.md):

* **handx generations** (:func:`save_generated`, written by ``handx eval --ckpt``): an ``.npz`` with ``ids``
  ``(N,)`` clip ids and ``joints`` ``(N, G, T, 2, 21, 3)`` metres (``(N, T, 2, 21, 3)`` means G = 1), plus
  optional ``settings`` (a JSON string). Items are matched by id.
* **handx generate outputs**: ``.npz`` files with ``joints`` ``(K, T, 2, 21, 3)`` and one text triplet
  (``left``, ``right``, ``two_hands_relation``); each is matched to the item that has this triplet and gives
  it K generations.
* **HandX release layout** (``*_can_pos_all_wotextfeat.npz``, read with the restricted unpickler): entry k is
  generation ``k // N`` of item ``k % N`` (write the test items in order, as many rounds as generations); its
  texts must be texts of that item.

Every item must receive at least one generation; items get the same number G (extra ones are dropped, and the
report says so).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handx.errors import HandxInputError
from handx.io.atomic import atomic_open
from handx.io.handx_npz import read_handx_npz
from handx.io.sources import read_npz_arrays
from handx.io.store import Store
from handx.motion import BRANCHES, WINDOW

log = logging.getLogger(__name__)



@dataclasses.dataclass(frozen=True)
class EvalSet:
    """The ground truth of an evaluation.

    Attributes:
        ids: clip ids, ``N``.
        motion: float32 ``(N, T, 2, 21, 3)`` metres.
        texts: three lists of N strings (left, right, two_hands_relation), the triplet each item is scored with.
        variants: every text triplet of each item (for matching generated files by text).
        source: where it came from (store path, split, variant) for the report.
    """

    ids: tuple[str, ...]
    motion: np.ndarray
    texts: tuple[list[str], list[str], list[str]]
    variants: tuple[tuple[tuple[str, str, str], ...], ...]
    source: dict[str, Any]

    def __len__(self) -> int:
        return len(self.ids)


def load_eval_set(store_dir: str | os.PathLike, *, split: str | None = "test", variant: int = 0,
                  limit: int | None = None) -> EvalSet:
    """The clips of ``split`` (every clip when ``None``) that have texts, each with its text ``variant``."""
    store = Store(store_dir)
    records = store.records
    if split is not None:
        if split not in store.splits():
            raise HandxInputError(store_dir, f"the store has no split {split!r} (splits: "
                                             f"{', '.join(store.splits()) or 'none'}); make one with handx data split")
        wanted = set(store.ids(split))
        rows = [i for i, r in enumerate(records) if r.id in wanted]
    else:
        rows = list(range(len(records)))
    untexted = [i for i in rows if not records[i].texts.get("left")]
    if untexted:
        log.warning("%d clip(s) without texts are left out of the evaluation (annotate the store first)",
                    len(untexted))
    rows = [i for i in rows if records[i].texts.get("left")]
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise HandxInputError(store_dir, f"no clip with texts in split {split!r} to evaluate")
    texts: tuple[list[str], list[str], list[str]] = ([], [], [])
    variants = []
    for i in rows:
        t = records[i].texts
        n = len(t["left"])
        if not 0 <= variant < n:
            raise HandxInputError(store_dir, f"text variant {variant} does not exist ({n} variants)",
                                  item=records[i].id)
        for key, out in zip(BRANCHES, texts):
            out.append(t[key][variant])
        variants.append(tuple(zip(*(t[key] for key in BRANCHES))))
    motion = np.stack([store.motion(i) for i in rows]).astype(np.float32)  # (N, T, 2, 21, 3)
    return EvalSet(tuple(records[i].id for i in rows), motion, texts, tuple(variants),
                   {"store": os.fspath(store_dir), "split": split, "variant": variant, "items": len(rows)})


def save_generated(path: str | os.PathLike, ids: Sequence[str], joints: np.ndarray,
                   settings: dict[str, Any] | None = None) -> None:
    """Write generations ``(N, G, T, 2, 21, 3)`` for the items ``ids`` (the handx generations layout)."""
    joints = np.asarray(joints, dtype=np.float32)
    if joints.ndim != 6 or joints.shape[0] != len(ids) or joints.shape[3:] != (2, 21, 3):
        raise ValueError(f"save_generated: joints must be (N={len(ids)}, G, T, 2, 21, 3), got {joints.shape}")
    with atomic_open(path, "wb") as handle:
        np.savez(handle, ids=np.array(list(ids)), joints=joints, settings=np.array(json.dumps(settings or {})))


def _check_joints(joints: np.ndarray, path: Path, item: str | None = None) -> np.ndarray:
    if joints.dtype.kind != "f" or joints.shape[-4:] != (WINDOW, 2, 21, 3):
        raise HandxInputError(path, f"joints have shape {joints.shape} ({joints.dtype}); expected (..., {WINDOW}, "
                                    "2, 21, 3) floats", item=item)
    bad = ~np.isfinite(joints).reshape(joints.shape[:-4] + (-1,)).all(-1)
    if bad.any():
        raise HandxInputError(path, f"{int(bad.sum())} generation(s) hold NaN or infinite values", item=item)
    return joints.astype(np.float32)


class _Collector:
    """Generations per item, gathered from any number of files."""

    def __init__(self, eval_set: EvalSet):
        self.eval_set = eval_set
        self.index = {cid: i for i, cid in enumerate(eval_set.ids)}
        self.by_triplet: dict[tuple[str, str, str], list[int]] = {}
        for i, variants in enumerate(eval_set.variants):
            for triplet in dict.fromkeys(variants):
                self.by_triplet.setdefault(triplet, []).append(i)
        self.items: list[list[np.ndarray]] = [[] for _ in eval_set.ids]

    def add_by_ids(self, path: Path, ids: np.ndarray, joints: np.ndarray) -> None:
        joints = _check_joints(joints, path)
        if joints.ndim == 5:
            joints = joints[:, None]  # (N, 1, T, 2, 21, 3)
        if joints.ndim != 6 or joints.shape[0] != len(ids):
            raise HandxInputError(path, f"joints {joints.shape} do not match {len(ids)} ids; expected "
                                        "(N, G, T, 2, 21, 3)")
        unknown = [str(c) for c in ids if str(c) not in self.index]
        if unknown:
            raise HandxInputError(path, f"{len(unknown)} id(s) are not in the evaluation set, e.g. {unknown[:3]}")
        for cid, group in zip(ids, joints):
            self.items[self.index[str(cid)]].extend(group)

    def add_by_triplet(self, path: Path, triplet: tuple[str, str, str], joints: np.ndarray) -> None:
        joints = _check_joints(joints, path)
        matches = self.by_triplet.get(triplet, [])
        if len(matches) != 1:
            why = "no item of the evaluation set has" if not matches else f"{len(matches)} items share"
            raise HandxInputError(path, f"{why} the texts {triplet[0][:60]!r} / {triplet[1][:60]!r} / "
                                        f"{triplet[2][:60]!r}; give generations by id instead")
        self.items[matches[0]].extend(joints.reshape((-1,) + joints.shape[-4:]))

    def add_release(self, path: Path) -> None:
        n = len(self.eval_set)
        for k, entry in enumerate(read_handx_npz(path, with_mano=False)):
            if isinstance(entry, HandxInputError):
                raise entry
            item = k % n
            texts = tuple(zip(entry.texts.left, entry.texts.right, entry.texts.two_hands_relation))
            if texts and not set(texts) & set(self.eval_set.variants[item]):
                raise HandxInputError(path, f"entry {entry.key} should be a generation for item "
                                            f"{self.eval_set.ids[item]} (entry k is item k mod {n}) but its texts "
                                            "are not texts of that item", item=entry.key)
            self.items[item].append(_check_joints(entry.motion, path, entry.key))

    def result(self) -> tuple[np.ndarray, dict[str, Any]]:
        counts = np.array([len(g) for g in self.items])
        missing = [cid for cid, c in zip(self.eval_set.ids, counts) if c == 0]
        if missing:
            raise HandxInputError(None, f"{len(missing)} of {len(counts)} evaluation items have no generation, "
                                        f"e.g. {missing[:3]}")
        groups = int(counts.min())
        joints = np.stack([np.stack(g[:groups]) for g in self.items])  # (N, G, T, 2, 21, 3)
        notes = {"groups": groups, "dropped_generations": int((counts - groups).sum())}
        return joints, notes


def load_generated(paths: Sequence[str | os.PathLike], eval_set: EvalSet) -> tuple[np.ndarray, dict[str, Any]]:
    """Generations ``(N, G, T, 2, 21, 3)`` for ``eval_set`` from files in any of the layouts of this module
    (directories are searched for ``.npz`` files). Returns the array and notes for the report."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.rglob("*.npz")))
        elif p.is_file():
            files.append(p)
        else:
            raise HandxInputError(p, "no such file or directory")
    if not files:
        raise HandxInputError(None, f"no .npz file found in {', '.join(map(str, paths))}")
    collector = _Collector(eval_set)
    for path in files:
        data = read_npz_arrays(path)
        if data is None:  # pickled entries: the HandX release layout
            collector.add_release(path)
        elif "ids" in data and "joints" in data:
            collector.add_by_ids(path, data["ids"], data["joints"])
        elif "joints" in data and all(k in data for k in BRANCHES):
            texts = [data[k].reshape(-1) for k in BRANCHES]
            if len(texts[0]) != 1:
                raise HandxInputError(path, f"a long take of {len(texts[0])} text segments cannot be scored "
                                            "against one test clip")
            collector.add_by_triplet(path, tuple(str(t[0]) for t in texts), data["joints"])
        else:
            raise HandxInputError(path, f"unknown layout (keys {sorted(data)}); expected ids + joints, a handx "
                                        "generate output, or the HandX release layout")
    joints, notes = collector.result()
    return joints, {**notes, "files": [os.fspath(f) for f in files]}
