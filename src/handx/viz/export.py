"""``handx export``: write clips from any source :func:`handx.io.sources.load_clips` reads as BVH or JSON.

One clip goes to the file ``out`` (or into ``out`` when it is an existing folder); several go into the folder
``out``, one file per clip named from its id (characters other than letters, digits, ``.``, ``_`` and ``-``
become ``_``; a name already taken gets ``-2``, ``-3``, ...). Files are written atomically.

Bad clips: a clip that fails validation when read (wrong shape, NaN, a missing hand; in a store or in a batch
file) or cannot be exported (a degenerate skeleton) is reported and skipped while the others are written. With
one clip to export, any problem is an error.

Formats and their round trips: :mod:`handx.viz.export_bvh` (centimetres, Y up; the reported error is what a
reader of the file gets back) and :mod:`handx.viz.export_json`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from handx.errors import HandxInputError
from handx.io.sources import Clip, iter_clips, load_clips
from handx.io.store import Store
from handx.motion import FPS
from handx.viz.export_bvh import export_bvh
from handx.viz.export_json import export_json

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("bvh", "json")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclasses.dataclass(frozen=True)
class ExportedClip:
    """One file written: the clip's ``id``, the ``path``, its ``frames`` and, for BVH, the largest round-trip
    error in mm over all frames and joints (``None`` for JSON)."""

    id: str
    path: Path
    frames: int
    max_error_mm: float | None = None


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What :func:`export_clips` did: the files written and the clips skipped (each error names the clip)."""

    format: str
    written: list[ExportedClip]
    skipped: list[HandxInputError]


def safe_name(clip_id: str) -> str:
    """A file name stem from a clip id: unsafe characters become ``_`` (``"gen/0"`` → ``"gen_0"``)."""
    name = _UNSAFE.sub("_", clip_id).strip("._")
    return name or "clip"


def _clips(path: Path, ids: Sequence[str] | None, skipped: list[HandxInputError]) -> tuple[int, Iterator[Clip]]:
    """How many clips there are to export, and the clips (bad ones go to ``skipped``)."""
    if path.is_dir():
        count = len(ids) if ids is not None else len(Store(path))
        return count, iter_clips(path, ids, errors=skipped)
    clips = load_clips(path, ids, errors=skipped)
    return len(clips) + len(skipped), iter(clips)


def export_clips(path: str | os.PathLike, fmt: str, out: str | os.PathLike, *, ids: Sequence[str] | None = None,
                 fps: float = FPS) -> ExportReport:
    """Export the clips of ``path`` (all, or those named in ``ids``) as ``fmt`` (:data:`FORMATS`) to ``out``.

    See the module docstring for file naming and for how bad clips are handled. Raises
    :class:`HandxInputError` for an unknown format, an unreadable source, an id that is not there, an ``out``
    that cannot hold the files, or when the only clip to export fails.
    """
    path, out = Path(path), Path(out)
    if fmt not in FORMATS:
        raise HandxInputError(path, f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not fps > 0:
        raise HandxInputError(path, f"fps must be positive, got {fps}")
    skipped: list[HandxInputError] = []
    count, clips = _clips(path, ids, skipped)
    if count == 0:
        raise HandxInputError(path, "no clips to export")
    single = count == 1 and not out.is_dir()
    if not single:
        if out.suffix.lower() == f".{fmt}" or out.is_file():
            raise HandxInputError(out, f"{count} clips to export: --out must be a folder, not a file")
        out.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    written: list[ExportedClip] = []
    for clip in clips:
        if single:
            target = out
        else:
            stem = base = safe_name(clip.id)
            k = 1
            while stem in taken:
                k += 1
                stem = f"{base}-{k}"
            taken.add(stem)
            target = out / f"{stem}.{fmt}"
        try:
            if fmt == "bvh":
                result = export_bvh(clip.motion, target, fps)
                written.append(ExportedClip(clip.id, target, result.frames, result.max_error_mm))
            else:
                export_json(clip, target, fps)
                written.append(ExportedClip(clip.id, target, int(clip.motion.shape[0])))
        except HandxInputError as exc:
            error = HandxInputError(clip.source, exc.problem, clip.id)
            if count == 1:
                raise error from None
            logger.warning("%s", error)
            skipped.append(error)
    if count == 1 and skipped:
        raise skipped[0]
    return ExportReport(fmt, written, skipped)
