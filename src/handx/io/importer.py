"""Importing captures into a dataset store: the format registry and the batch pipeline.

Every format module offers ``discover(path)`` (the items under a path) and a reader. Recording formats (BVH,
Leap, MediaPipe) yield continuous :class:`Segment` objects that are cut into 60-frame windows; the HandX
release yields ready clips with texts. A bad item is reported and skipped (or fatal with ``strict``); a single
item given alone fails loudly. Any failure while reading one file, expected or not, ends that file only: it is
reported with the file and the problem, and the clips read before it stay committed. Re-running an import
resumes: clips whose ids are already in the store are kept and skipped.

Gaps (the rule every timestamped reader follows)
    Resampling to 30 fps interpolates between samples, so a stretch with no samples would be filled with
    invented motion. No reader bridges more than :data:`MAX_GAP_S` (0.25 s, 7.5 frames at 30 fps): a recording
    with irregular timestamps (Leap) is split into segments at every longer gap and each segment is resampled
    and windowed on its own; a format with a fixed frame time (BVH, MediaPipe) must declare one between
    :data:`MIN_FRAME_TIME_S` and :data:`MAX_GAP_S`. The output of a file is therefore bounded by the time it
    really captured: at most ``30 × captured seconds + 1`` frames per segment. Clip ids and ``frame_start``
    count frames on the recording's own 30 fps clock (from its first sample), so the windows of a later segment
    keep unique ids and say where in the recording they lie. Every gap is reported (``ImportReport.gaps``) and
    logged with the file and the times on each side.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from handx.errors import HandxInputError
from handx.io import lock
from handx.io.store import Store, StoreWriter, command_line, write_report, write_splits
from handx.motion import FPS, WINDOW, Sequence, Window, iter_windows

log = logging.getLogger(__name__)

FORMATS = ("handx-npz", "bvh", "leap", "mediapipe")
#: The longest time without a sample that resampling may bridge (seconds); longer gaps split a recording.
MAX_GAP_S = 0.25
#: The shortest frame time a recording may declare (seconds): 10 kHz, above any hand-tracking device.
MIN_FRAME_TIME_S = 1e-4


@dataclasses.dataclass(frozen=True)
class Segment:
    """A continuous stretch of a recording: no gap longer than :data:`MAX_GAP_S` between its samples.

    Attributes:
        sequence: its frames at 30 fps; frame 0 is its first sample.
        start_s: its first sample, in seconds after the recording's first sample.
        end_s: its last sample, in the same seconds.
    """

    sequence: Sequence
    start_s: float = 0.0
    end_s: float = 0.0

    @property
    def start_frame(self) -> int:
        """Where frame 0 lies on the recording's 30 fps clock."""
        return int(round(self.start_s * FPS))

    @classmethod
    def whole(cls, sequence: Sequence) -> "Segment":
        """A recording without gaps as its one segment."""
        return cls(sequence, 0.0, (sequence.num_frames - 1) / FPS)


def split_at_gaps(seconds: np.ndarray, max_gap: float = MAX_GAP_S) -> list[slice]:
    """The runs of samples between gaps longer than ``max_gap``: ``(N,)`` increasing times → slices into them."""
    cuts = (np.flatnonzero(np.diff(seconds) > max_gap) + 1).tolist()
    bounds = [0, *cuts, len(seconds)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def check_frame_time(frame_time: float, path: str | os.PathLike | None, item: str | None = None) -> float:
    """Refuse a declared frame time that is not a finite number of seconds in
    [:data:`MIN_FRAME_TIME_S`, :data:`MAX_GAP_S`]: resampling a slower recording would invent the motion between
    its frames, and an absurd one (``Frame Time: 1e9``) would ask for an absurd number of output frames."""
    if not (np.isfinite(frame_time) and MIN_FRAME_TIME_S <= frame_time <= MAX_GAP_S):
        raise HandxInputError(
            path, f"frame time {frame_time:g} s ({1 / frame_time if frame_time else float('inf'):g} fps) is outside "
                  f"{MIN_FRAME_TIME_S:g}-{MAX_GAP_S:g} s ({1 / MAX_GAP_S:g}-{1 / MIN_FRAME_TIME_S:g} fps)", item)
    return frame_time


@dataclasses.dataclass
class ImportReport:
    """What an import did: clips added, clips already present, windows skipped, gaps not bridged, items that
    failed."""

    added: int = 0
    existing: int = 0
    items: int = 0
    skipped_windows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    gaps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def error(self, exc: HandxInputError) -> None:
        self.errors.append({"file": exc.path, "item": exc.item, "problem": exc.problem})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _as_input_error(exc: Exception, path: str | os.PathLike) -> HandxInputError:
    """``exc`` as the error that names the file: an input error as it is, anything else wrapped."""
    if isinstance(exc, HandxInputError):
        return exc
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return HandxInputError(path, f"cannot be imported ({detail[:300]})")


def _skip(exc: Exception, path: str | os.PathLike, report: ImportReport, *, fatal: bool) -> None:
    """Report a failed file or item and go on, or (``fatal``) raise it as a :class:`HandxInputError`."""
    error = _as_input_error(exc, path)
    if fatal:
        if error is exc:
            raise error
        raise error from exc
    log.warning("skipping %s", error, exc_info=error is not exc)
    report.error(error)


def _sequence_reader(fmt: str) -> tuple[Callable[..., list], Callable[..., list[Segment]]]:
    """``(discover, read)`` of a recording format; ``read(item)`` gives the item's segments.
    ``discover(path, errors=list)`` appends bad items to the list instead of raising, where the format can have
    bad items at discovery time."""
    if fmt == "bvh":
        from handx.io import bvh

        return bvh.discover, lambda item: [Segment.whole(bvh.read_bvh_pair(*item))]
    if fmt == "leap":
        from handx.io import leap

        return (lambda path, errors=None: leap.discover(path)), leap.read_leap_segments
    if fmt == "mediapipe":
        from handx.io import mediapipe

        return ((lambda path, errors=None: mediapipe.discover(path)),
                lambda item: [Segment.whole(mediapipe.read_mediapipe(item))])
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _item_name(item: Any) -> str:
    if isinstance(item, (tuple, list)):
        return " + ".join(os.fspath(p) for p in item)
    return os.fspath(item)


def clip_id(dataset: str, sequence: str, start: int) -> str:
    return f"{dataset}/{sequence}/{start:06d}"


def _import_sequences(writer: StoreWriter, fmt: str, paths: Iterable[str | os.PathLike], *, stride: int,
                      strict: bool, report: ImportReport, progress: bool) -> None:
    discover, read = _sequence_reader(fmt)
    bad_items: list[HandxInputError] = []
    items = [item for path in paths for item in discover(Path(path), errors=bad_items)]
    single = len(items) + len(bad_items) == 1
    for exc in bad_items:
        if strict or single:
            raise exc
        log.warning("skipping %s", exc)
        report.error(exc)
    for item in tqdm(items, desc=f"import {fmt}", unit="file", disable=not progress):
        report.items += 1
        name = _item_name(item)
        try:
            segments = read(item)
        except Exception as exc:  # any failure ends this file only (module docstring)
            _skip(exc, name, report, fatal=strict or single)
            continue
        for before, after in zip(segments[:-1], segments[1:]):
            report.gaps.append({"file": name, "from_s": before.end_s, "to_s": after.start_s,
                                "seconds": after.start_s - before.end_s})
        for segment in segments:
            _add_windows(writer, segment, name, stride=stride, strict=strict, report=report)


def _add_windows(writer: StoreWriter, segment: Segment, name: str, *, stride: int, strict: bool,
                 report: ImportReport) -> None:
    """Cut one segment into windows and add those not in the store yet; frames count on the recording's clock."""
    seq, offset = segment.sequence, segment.start_frame
    for window in iter_windows(seq, WINDOW, stride):
        if not isinstance(window, Window):
            start, reason = window
            report.skipped_windows.append({"file": name, "frame_start": offset + start, "reason": reason})
            continue
        start = offset + window.start
        cid = clip_id(seq.source.dataset, seq.source.sequence, start)
        if writer.has(cid):
            report.existing += 1
            continue
        source = {**dataclasses.asdict(seq.source), "frame_start": start, "frame_end": offset + window.end}
        try:
            writer.add(window.motion, clip_id=cid, source=source)
        except HandxInputError as exc:
            _skip(HandxInputError(name, exc.problem, f"frames {start}-{offset + window.end}"), name, report,
                  fatal=strict)
            continue
        report.added += 1


def _import_handx_npz(writer: StoreWriter, paths: Iterable[str | os.PathLike], *, strict: bool,
                      report: ImportReport, progress: bool) -> dict[str, list[str]]:
    """Import release files; returns the split → clip ids of the clips now in the store (added or present)."""
    from handx.io import handx_npz

    files = [f for path in paths for f in handx_npz.discover(path)]
    single = len(files) == 1
    splits: dict[str, list[str]] = {}
    for path in files:
        split = handx_npz.split_of(path)
        report.items += 1
        try:
            for item in tqdm(handx_npz.read_handx_npz(path), desc=f"import {path.name}", unit="clip",
                             disable=not progress):
                if isinstance(item, HandxInputError):
                    _skip(item, path, report, fatal=strict)
                    continue
                cid = f"{handx_npz.DATASET}/{split}/{item.key}"
                if writer.has(cid):
                    report.existing += 1
                else:
                    source = {"dataset": handx_npz.DATASET, "sequence": f"{split}/{item.key}", "frame_start": 0,
                              "frame_end": WINDOW, "license": handx_npz.LICENSE, "space": "metric"}
                    try:
                        writer.add(item.motion, clip_id=cid, source=source, texts=item.texts,
                                   side={"mano": item.mano} if item.mano is not None else None)
                    except HandxInputError as exc:
                        _skip(HandxInputError(path, exc.problem, f"key {item.key!r}"), path, report, fatal=strict)
                        continue
                    report.added += 1
                splits.setdefault(split, []).append(cid)
        except Exception as exc:  # any failure ends this file only (module docstring)
            _skip(exc, path, report, fatal=strict or single)
    return splits


def import_paths(paths: Iterable[str | os.PathLike], fmt: str, out: str | os.PathLike, *, stride: int = WINDOW,
                 strict: bool = False, progress: bool = True, shard_size: int | None = None) -> ImportReport:
    """Import files or directories of one format into the store at ``out`` (created or appended to).

    Returns the report, which is also written to ``<out>/reports/import-<n>.json``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if stride <= 0:
        raise ValueError(f"stride must be a positive number of frames, got {stride}")
    paths = list(paths)
    for path in paths:
        if not Path(path).exists():
            raise HandxInputError(path, "no such file or directory")
    report = ImportReport()
    kwargs = {"shard_size": shard_size} if shard_size else {}
    writer = StoreWriter(out, command=command_line(), **kwargs)  # checks `out` and takes its write lock
    lock.acquire(out)  # held one level deeper, until the splits and the report are written too
    try:
        with writer:
            if fmt == "handx-npz":
                splits = _import_handx_npz(writer, paths, strict=strict, report=report, progress=progress)
            else:
                _import_sequences(writer, fmt, paths, stride=stride, strict=strict, report=report,
                                  progress=progress)
                splits = {}
        if splits:
            _merge_splits(out, splits)
        write_report(out, "import", report.to_json())
    finally:
        lock.release(out)
    return report


def _merge_splits(out: str | os.PathLike, new: dict[str, list[str]]) -> None:
    """Add ``new`` split members to the store's splits; a split keeps only ids of clips the store holds."""
    store = Store(out)
    present = {r.id for r in store.records}
    merged: dict[str, list[str]] = {}
    for name, ids in [*store.splits().items(), *new.items()]:
        ids_here = merged.setdefault(name, [])
        seen = set(ids_here)
        for cid in ids:
            if cid in seen:
                continue
            if cid not in present:
                log.warning("%s: split %r named clip %r, which is not in the store; dropped from the split",
                            out, name, cid)
                continue
            seen.add(cid)
            ids_here.append(cid)
    write_splits(out, merged, how={"method": "source", "note": "splits named by the HandX release files"})


def iter_sequences(fmt: str, paths: Iterable[str | os.PathLike]) -> Iterator[Sequence]:
    """Read every recording of a format under ``paths``, one continuous segment at a time (errors propagate)."""
    discover, read = _sequence_reader(fmt)
    for path in paths:
        for item in discover(Path(path)):
            for segment in read(item):
                yield segment.sequence
