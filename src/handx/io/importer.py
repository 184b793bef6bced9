"""Importing captures into a dataset store: the format registry and the batch pipeline.

Every format module offers ``discover(path)`` (the items under a path) and a reader. Recording formats (BVH,
Leap, MediaPipe) yield :class:`~handx.motion.Sequence` objects that are cut into 60-frame windows; the HandX
release yields ready clips with texts. A bad item is reported and skipped (or fatal with ``strict``); a single
item given alone fails loudly. Re-running an import resumes: clips whose ids are already in the store are kept
and skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from handx.errors import HandxInputError
from handx.io.store import Store, StoreWriter, command_line, write_report, write_splits
from handx.motion import WINDOW, Sequence, Window, iter_windows

log = logging.getLogger(__name__)

FORMATS = ("handx-npz", "bvh", "leap", "mediapipe")


@dataclasses.dataclass
class ImportReport:
    """What an import did: clips added, clips already present, windows skipped, items that failed."""

    added: int = 0
    existing: int = 0
    items: int = 0
    skipped_windows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def error(self, exc: HandxInputError) -> None:
        self.errors.append({"file": exc.path, "item": exc.item, "problem": exc.problem})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _sequence_reader(fmt: str) -> tuple[Callable[..., list], Callable[..., Sequence]]:
    """``(discover, read)`` of a recording format. ``discover(path, errors=list)`` appends bad items to the list
    instead of raising, where the format can have bad items at discovery time."""
    if fmt == "bvh":
        from handx.io import bvh

        return bvh.discover, lambda item: bvh.read_bvh_pair(*item)
    if fmt == "leap":
        from handx.io import leap

        return (lambda path, errors=None: leap.discover(path)), leap.read_leap
    if fmt == "mediapipe":
        from handx.io import mediapipe

        return (lambda path, errors=None: mediapipe.discover(path)), mediapipe.read_mediapipe
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
        try:
            seq = read(item)
        except HandxInputError as exc:
            if strict or single:
                raise
            log.warning("skipping %s", exc)
            report.error(exc)
            continue
        for window in iter_windows(seq, WINDOW, stride):
            if not isinstance(window, Window):
                start, reason = window
                report.skipped_windows.append({"file": _item_name(item), "frame_start": start, "reason": reason})
                continue
            cid = clip_id(seq.source.dataset, seq.source.sequence, window.start)
            if writer.has(cid):
                report.existing += 1
                continue
            source = {**dataclasses.asdict(seq.source), "frame_start": window.start, "frame_end": window.end}
            writer.add(window.motion, clip_id=cid, source=source)
            report.added += 1


def _import_handx_npz(writer: StoreWriter, paths: Iterable[str | os.PathLike], *, strict: bool,
                      report: ImportReport, progress: bool) -> dict[str, list[str]]:
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
                    if strict:
                        raise item
                    report.error(item)
                    continue
                cid = f"{handx_npz.DATASET}/{split}/{item.key}"
                splits.setdefault(split, []).append(cid)
                if writer.has(cid):
                    report.existing += 1
                    continue
                source = {"dataset": handx_npz.DATASET, "sequence": f"{split}/{item.key}", "frame_start": 0,
                          "frame_end": WINDOW, "license": handx_npz.LICENSE, "space": "metric"}
                writer.add(item.motion, clip_id=cid, source=source, texts=item.texts,
                           side={"mano": item.mano} if item.mano is not None else None)
                report.added += 1
        except HandxInputError as exc:
            if strict or single:
                raise
            log.warning("skipping %s", exc)
            report.error(exc)
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
    with StoreWriter(out, command=command_line(), **kwargs) as writer:
        if fmt == "handx-npz":
            splits = _import_handx_npz(writer, paths, strict=strict, report=report, progress=progress)
        else:
            _import_sequences(writer, fmt, paths, stride=stride, strict=strict, report=report, progress=progress)
            splits = {}
    if splits:
        _merge_splits(out, splits)
    write_report(out, "import", report.to_json())
    return report


def _merge_splits(out: str | os.PathLike, new: dict[str, list[str]]) -> None:
    current = Store(out).splits()
    merged = {name: list(ids) for name, ids in current.items()}
    for name, ids in new.items():
        seen = set(merged.get(name, ()))
        merged.setdefault(name, []).extend(i for i in ids if i not in seen)
    write_splits(out, merged, how={"method": "source", "note": "splits named by the HandX release files"})


def iter_sequences(fmt: str, paths: Iterable[str | os.PathLike]) -> Iterator[Sequence]:
    """Read every recording of a format under ``paths`` (errors propagate)."""
    discover, read = _sequence_reader(fmt)
    for path in paths:
        for item in discover(Path(path)):
            yield read(item)
