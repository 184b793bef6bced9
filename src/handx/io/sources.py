"""Clips from anything handx writes or reads, for the tools that show or export motion.

``load_clips(path)`` accepts:

* a dataset **store** directory (clip ids are the store's ids; texts from the records);
* a ``handx generate`` output ``.npz`` (``joints`` ``(K, T, 2, 21, 3)`` and one text per segment): ids
  ``<stem>/<k>``;
* a generations ``.npz`` for an evaluation (``ids`` and ``joints`` ``(N, G, T, 2, 21, 3)``): ids
  ``<id>/g<g>``;
* a HandX release ``.npz`` (pickled dicts, read with the restricted unpickler): ids are the npz keys;
* a ``.npy`` or ``.npz`` holding one clip or a batch under ``motion`` or ``joints`` (``(T, 2, 21, 3)`` or
  ``(K, T, 2, 21, 3)``): ids ``<stem>`` or ``<stem>/<k>``.

Every clip is validated (shape, finite values, values that fit float32) with an error naming the file and the
clip. Files are read through :mod:`handx.io.safe_pickle`: a declared size beyond its limits (1 GiB per array,
4 GiB per archive, 100× inflation), or an ``.npy`` header declaring more than the file holds, is refused before
anything is allocated.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handx.errors import HandxInputError
from handx.io.handx_npz import float32_clip
from handx.io.safe_pickle import MAX_ARRAY_BYTES, MAX_NPZ_BYTES, PICKLED, iter_npz_members, read_npy
from handx.io.store import Store
from handx.motion import BRANCHES, Texts



@dataclasses.dataclass(frozen=True)
class Clip:
    """One clip to show or export.

    Attributes:
        id: unique within its source.
        motion: float32 ``(T, 2, 21, 3)`` metres, canonical frame (reference §1.2).
        texts: its descriptions (may be empty); for a long ``handx generate`` take, one entry per segment.
        source: the file or store it came from.
        extra: anything else the source says about it (generation settings, provenance).
    """

    id: str
    motion: np.ndarray
    texts: Texts
    source: str
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def _clip(cid: str, motion: np.ndarray, texts: Texts, source: Path, extra: dict[str, Any] | None = None
          ) -> Clip | HandxInputError:
    """The clip, or the error that names what is wrong with it (returned, so a batch can skip it and go on)."""
    try:
        motion = float32_clip(motion, path=os.fspath(source), item=cid)
    except HandxInputError as exc:
        return exc
    return Clip(cid, motion, texts, os.fspath(source), extra or {})


def _from_store(root: Path, ids: Sequence[str] | None) -> Iterator[Clip | HandxInputError]:
    store = Store(root)
    records = store.records
    try:
        rows = range(len(records)) if ids is None else [store.index_of(i) for i in ids]
    except KeyError as exc:
        raise HandxInputError(root, str(exc.args[0]).split(": ", 1)[-1]) from None
    for i in rows:
        r = records[i]
        yield _clip(r.id, store.motion(i), Texts.from_json(r.texts), root, {"source": r.source})


def read_npz_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of an npz, or None when it holds pickled objects (the HandX release layout)."""
    arrays = {}
    for key, value in iter_npz_members(os.fspath(path), max_member_bytes=MAX_ARRAY_BYTES,
                                       max_total_bytes=MAX_NPZ_BYTES, unpickle=False):
        if isinstance(value, HandxInputError):
            raise value
        if value is PICKLED:
            return None
        arrays[key] = value
    return arrays


def _from_arrays(path: Path, data: dict[str, np.ndarray]) -> Iterator[Clip | HandxInputError]:
    stem = path.stem
    settings = json.loads(str(data["settings"])) if "settings" in data else {}
    if "ids" in data and "joints" in data:  # generations for an evaluation
        joints = data["joints"]
        if joints.ndim == 5:
            joints = joints[:, None]
        for cid, groups in zip(data["ids"], joints):
            for g, motion in enumerate(groups):
                yield _clip(f"{cid}/g{g}", motion, Texts(), path, {"settings": settings})
        return
    key = next((k for k in ("joints", "motion") if k in data), None)
    if key is None:
        raise HandxInputError(path, f"no 'joints' or 'motion' array (found: {', '.join(sorted(data)) or 'none'})")
    array = data[key]
    texts = Texts(*(tuple(str(t) for t in data[b].reshape(-1)) for b in BRANCHES)) if all(
        b in data for b in BRANCHES) else Texts()
    if array.ndim == 4:
        yield _clip(stem, array, texts, path, {"settings": settings})
    elif array.ndim == 5:
        for k, motion in enumerate(array):
            yield _clip(f"{stem}/{k}", motion, texts, path, {"settings": settings})
    else:
        raise HandxInputError(path, f"{key} has shape {array.shape}; expected (T, 2, 21, 3) or (K, T, 2, 21, 3)")


def _from_release(path: Path) -> Iterator[Clip | HandxInputError]:
    from handx.io.handx_npz import read_handx_npz

    for entry in read_handx_npz(path, with_mano=False):
        yield entry if isinstance(entry, HandxInputError) else _clip(entry.key, entry.motion, entry.texts, path)


def iter_clips(path: str | os.PathLike, ids: Sequence[str] | None = None, *,
               errors: list[HandxInputError] | None = None) -> Iterator[Clip]:
    """Clips of ``path`` (any source of this module), all of them or those named in ``ids`` (in that order for a
    store; in file order otherwise). An id that is not there is an error. A bad clip (wrong shape, NaN, a missing
    hand) raises, or, when an ``errors`` list is given, is appended to it and skipped."""
    for clip in _iter(Path(path), ids):
        if isinstance(clip, HandxInputError):
            if errors is None:
                raise clip
            errors.append(clip)
            continue
        yield clip


def _iter(path: Path, ids: Sequence[str] | None) -> Iterator[Clip | HandxInputError]:
    if path.is_dir():
        yield from _from_store(path, ids)
        return
    if not path.is_file():
        raise HandxInputError(path, "no such file or directory")
    if path.suffix == ".npy":
        clips = _from_arrays(path, {"motion": read_npy(path)})
    elif path.suffix == ".npz":
        data = read_npz_arrays(path)
        clips = _from_release(path) if data is None else _from_arrays(path, data)
    else:
        raise HandxInputError(path, "expected a store directory, a .npz or a .npy file")
    if ids is None:
        yield from clips
        return
    wanted = set(ids)
    found = set()
    for clip in clips:
        cid = clip.item if isinstance(clip, HandxInputError) else clip.id
        if cid in wanted:
            found.add(cid)
            yield clip
    missing = [i for i in ids if i not in found]
    if missing:
        raise HandxInputError(path, f"no clip with id {missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                                                                          if len(missing) > 1 else ""))


def load_clips(path: str | os.PathLike, ids: Sequence[str] | None = None, *, limit: int | None = None,
               errors: list[HandxInputError] | None = None) -> list[Clip]:
    """:func:`iter_clips` as a list, at most ``limit`` clips."""
    out = []
    for clip in iter_clips(path, ids, errors=errors):
        out.append(clip)
        if limit is not None and len(out) >= limit:
            break
    return out
