"""The public HandX release format: ``{train,test}_can_pos_all_wotextfeat.npz`` and ``*_mano.npz`` (reference §1.3).

Each file maps the keys ``"0" … "N-1"`` to a pickled 0-d object array holding a dict:

- ``*_can_pos_all_wotextfeat.npz``: ``motion`` float ``(60, 2, 21, 3)`` (canonical frame, right wrist at the
  origin at frame 0, reference §1.2) and ``left_annotation``, ``right_annotation``, ``interaction_annotation``,
  three lists of equal length (normally 5 variants).
- ``*_mano.npz``: ``left_shape``/``right_shape`` ``(60, 10)``, ``left_pose``/``right_pose`` ``(60, 48)`` and
  ``left_trans``/``right_trans`` ``(60, 3)``, kept by handx as side data.

Reading goes through :mod:`handx.io.safe_pickle`; nothing outside numpy arrays, dicts, lists, strings and
numbers is ever unpickled, and no member is read whose declared size passes that module's limits (16 MiB per
member, 100× inflation). A bad entry (wrong shape, NaN, a value too large for float32, uneven texts, a refused
member) is reported per key and the other keys of the file are still read. Writing produces files the release's
own loaders read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from handx.errors import HandxInputError
from handx.io.atomic import atomic_open
from handx.io.paths import find_files
from handx.io.safe_pickle import iter_npz_members
from handx.motion import WINDOW, Texts, validate_clip

DATASET = "handx"
LICENSE = "HandX release terms (per-source licences: GigaHands CC BY-NC 4.0, HOT3D CC BY-NC-SA, HoloAssist CDLA-Permissive-2.0)"
MOTION_SUFFIX = "_can_pos_all_wotextfeat.npz"
MANO_SUFFIX = "_mano.npz"
MANO_KEYS: dict[str, tuple[int, ...]] = {
    "left_shape": (WINDOW, 10), "right_shape": (WINDOW, 10),
    "left_pose": (WINDOW, 48), "right_pose": (WINDOW, 48),
    "left_trans": (WINDOW, 3), "right_trans": (WINDOW, 3),
}
TEXT_KEYS = {"left": "left_annotation", "right": "right_annotation", "two_hands_relation": "interaction_annotation"}


@dataclasses.dataclass(frozen=True)
class HandxItem:
    """One clip of a HandX release file.

    Attributes:
        key: the npz key (``"0"``, ``"1"``, ...).
        motion: float32 ``(60, 2, 21, 3)``.
        texts: the three annotation lists.
        mano: MANO side data (the arrays of :data:`MANO_KEYS`) when a matching ``*_mano.npz`` was read.
    """

    key: str
    motion: np.ndarray
    texts: Texts
    mano: dict[str, np.ndarray] | None = None


def split_of(path: str | os.PathLike) -> str:
    """The split named by a release file (``train``/``test``), else the file's stem."""
    name = Path(path).name
    for suffix in (MOTION_SUFFIX, MANO_SUFFIX, ".npz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def mano_path_for(path: str | os.PathLike) -> Path | None:
    """The ``*_mano.npz`` file matching a motion file, when it exists beside it."""
    path = Path(path)
    if not path.name.endswith(MOTION_SUFFIX):
        return None
    candidate = path.with_name(path.name[: -len(MOTION_SUFFIX)] + MANO_SUFFIX)
    return candidate if candidate.is_file() else None


def _texts(entry: dict[str, Any], path: str, item: str) -> Texts:
    lists = {}
    for ours, theirs in TEXT_KEYS.items():
        value = entry.get(theirs, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
            raise HandxInputError(path, f"{theirs} must be a list of strings", item)
        lists[ours] = tuple(value)
    try:
        return Texts(**lists)
    except ValueError as exc:
        raise HandxInputError(path, str(exc), item) from exc


def float32_clip(motion: Any, *, path: str | None, item: str | None, frames: int | None = None) -> np.ndarray:
    """:func:`handx.motion.validate_clip`, refusing also a value that is finite as stored but too large for
    float32 (it would become infinite, not a clip)."""
    try:
        array = np.asarray(motion)
    except (ValueError, TypeError) as exc:  # ragged nested lists, objects numpy cannot stack
        raise HandxInputError(path, f"motion is not an array ({exc})"[:200], item) from exc
    with np.errstate(over="ignore"):  # an overflow is what the next lines report
        clip = validate_clip(array, path=path, item=item, frames=frames)
    if not np.isfinite(clip).all():
        largest = float(np.max(np.abs(array.astype(np.float64))))
        raise HandxInputError(path, f"motion holds a value ({largest:.3g}) too large for float32", item)
    return clip


def parse_entry(key: str, entry: Any, *, path: str) -> HandxItem:
    """Check one decoded entry of a motion file and turn it into a :class:`HandxItem`."""
    item = f"key {key!r}"
    if not isinstance(entry, dict):
        raise HandxInputError(path, f"expected a dict, got {type(entry).__name__}", item)
    if "motion" not in entry:
        raise HandxInputError(path, f"missing 'motion' (keys: {sorted(map(str, entry))})"[:300], item)
    motion = float32_clip(entry["motion"], path=path, item=item, frames=WINDOW)
    return HandxItem(key=key, motion=motion, texts=_texts(entry, path, item))


def _check_mano(key: str, entry: Any, path: str) -> dict[str, np.ndarray]:
    item = f"key {key!r}"
    if isinstance(entry, HandxInputError):  # a member safe_pickle refused
        raise entry
    if not isinstance(entry, dict):
        raise HandxInputError(path, f"expected a dict, got {type(entry).__name__}", item)
    out = {}
    for name, shape in MANO_KEYS.items():
        if name not in entry:
            raise HandxInputError(path, f"missing {name!r}", item)
        try:
            with np.errstate(over="ignore"):  # an overflow is reported below
                value = np.asarray(entry[name], dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise HandxInputError(path, f"{name} is not an array of numbers ({exc})"[:200], item) from exc
        if value.shape != shape:
            raise HandxInputError(path, f"{name} has shape {value.shape}, expected {shape}", item)
        if not np.isfinite(value).all():
            raise HandxInputError(path, f"{name} holds values that are not finite in float32", item)
        out[name] = value
    return out


def read_handx_npz(path: str | os.PathLike, *, with_mano: bool = True) -> Iterator[HandxItem | HandxInputError]:
    """Stream the clips of a HandX release file, in key order as stored.

    Yields a :class:`HandxItem` per good entry and a :class:`HandxInputError` (not raised) per bad entry or
    refused member, so a batch import can report it and go on. A file that cannot be opened at all, or holds
    a pickle of anything outside plain data, raises. The matching ``*_mano.npz`` (when ``with_mano`` and
    present) is read alongside; its keys must match.
    """
    path = os.fspath(path)
    mano_iter = None
    mano_path = mano_path_for(path) if with_mano else None
    if mano_path is not None:
        mano_iter = iter_npz_members(os.fspath(mano_path))
    for key, entry in iter_npz_members(path):
        mano = None
        if mano_iter is not None:
            mano_key, mano_entry = next(mano_iter, (None, None))
            if mano_key != key:
                raise HandxInputError(mano_path, f"keys out of step with {Path(path).name}: {mano_key!r} vs {key!r}")
        try:
            if isinstance(entry, HandxInputError):
                raise entry
            parsed = parse_entry(key, entry, path=path)
            if mano_iter is not None:
                mano = _check_mano(key, mano_entry, os.fspath(mano_path))
        except HandxInputError as exc:
            yield exc
            continue
        yield dataclasses.replace(parsed, mano=mano) if mano is not None else parsed


def discover(path: str | os.PathLike) -> list[Path]:
    """HandX motion files under ``path`` (``*_can_pos_all_wotextfeat.npz``, or any ``.npz`` given directly)."""
    return find_files(path, ".npz", exclude_suffix=MANO_SUFFIX)


class HandxNpzWriter:
    """Stream clips into a HandX-format ``.npz`` (keys ``"0" … "N-1"``), written atomically.

    The entries are pickled dicts exactly like the public release, so its own loaders read our exports.
    """

    _key_pattern = re.compile(r"^\d+$")

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._files = contextlib.ExitStack()
        handle = self._files.enter_context(atomic_open(self.path, "wb"))
        self._archive = zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.count = 0

    def add(self, entry: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        holder = np.empty((), dtype=object)
        holder[()] = entry
        np.lib.format.write_array(buffer, holder, allow_pickle=True)
        self._archive.writestr(f"{self.count}.npy", buffer.getvalue())
        self.count += 1

    def __enter__(self) -> "HandxNpzWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Finish the archive and move it into place; on an exception, leave no file behind."""
        self._archive.close()
        self._files.__exit__(exc_type, exc, tb)


def motion_entry(motion: np.ndarray, texts: Texts) -> dict[str, Any]:
    """The dict stored per key in a ``*_can_pos_all_wotextfeat.npz`` file."""
    return {
        "motion": np.asarray(motion, dtype=np.float32),
        "left_annotation": list(texts.left),
        "right_annotation": list(texts.right),
        "interaction_annotation": list(texts.two_hands_relation),
    }
