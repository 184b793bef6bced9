"""Whole-store operations: quality filtering, summary information, HandX-format export and splits.

Each works shard by shard over memory-mapped motion, so a 100k-clip store never sits in memory.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from handx.errors import HandxInputError
from handx.features.contacts import contact_frames, contact_stats
from handx.features.quality import QualityConfig, quality_stats, stats_record
from handx.io import lock
from handx.io.handx_npz import HandxNpzWriter, motion_entry
from handx.io.store import Store, StoreWriter, command_line, write_report, write_splits
from handx.motion import FPS, WINDOW, Texts

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FilterReport:
    """Outcome of :func:`filter_store`: kept and dropped counts, and every dropped clip with its reasons."""

    kept: int = 0
    existing: int = 0
    dropped: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def reason_counts(self) -> dict[str, int]:
        counts: collections.Counter[str] = collections.Counter()
        for entry in self.dropped:
            counts.update({_reason_kind(r) for r in entry["reasons"]})
        return dict(counts.most_common())

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.kept, "existing": self.existing, "dropped_count": len(self.dropped),
                "reason_counts": self.reason_counts, "dropped": self.dropped}


def _reason_kind(reason: str) -> str:
    """A reason's category: the text before its numbers (e.g. ``"left bone length drifts"``)."""
    for marker in (":", " ("):
        reason = reason.split(marker)[0]
    return " ".join(w for w in reason.split() if not any(c.isdigit() for c in w))


def filter_store(src: str | os.PathLike, dst: str | os.PathLike, config: QualityConfig = QualityConfig(), *,
                 batch_size: int = 1024, progress: bool = True) -> FilterReport:
    """Copy the clips of ``src`` that pass the quality filter into the store ``dst``, with their statistics.

    Dropped clips are listed with their reasons in the report (also written to ``dst/reports``). Splits of
    ``src`` carry over, restricted to the kept clips. Re-running resumes: clips already in ``dst`` are skipped.
    The job holds ``dst``'s write lock throughout (:mod:`handx.io.lock`); ``dst`` must not be ``src`` itself
    (by any path, link or relative name), which is read while ``dst`` is written.
    """
    if _same_directory(src, dst):
        raise HandxInputError(dst, f"is the input store {os.fspath(src)} itself; filter into another directory "
                                   "(the input is read while the output is written)")
    with lock.store_lock(dst, command_line()):
        return _filter_store(src, dst, config, batch_size=batch_size, progress=progress)


def _same_directory(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name one existing directory (through symlinks, ``..`` or relative paths)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _filter_store(src: str | os.PathLike, dst: str | os.PathLike, config: QualityConfig, *, batch_size: int,
                  progress: bool) -> FilterReport:
    store = Store(src)
    report = FilterReport()
    kept_ids: set[str] = set()
    with StoreWriter(dst, command=command_line()) as writer:
        bar = tqdm(total=len(store), desc="filter", unit="clip", disable=not progress)
        for first, motions in store.batches(batch_size):
            stats, reasons = quality_stats(np.asarray(motions), config)
            for b, why in enumerate(reasons):
                record = store.records[first + b]
                if why:
                    report.dropped.append({"id": record.id, "reasons": why})
                    continue
                kept_ids.add(record.id)
                if writer.has(record.id):
                    report.existing += 1
                    continue
                extra = {**record.extra, "quality": stats_record(stats, b)}
                writer.add(motions[b], clip_id=record.id, source=record.source, texts=record.texts, **extra)
                report.kept += 1
            bar.update(len(motions))
        bar.close()
    splits = store.splits()
    if splits:
        write_splits(dst, {k: [i for i in v if i in kept_ids] for k, v in splits.items()},
                     how={"method": "inherited", "from": os.fspath(src)})
    write_report(dst, "filter", {**report.to_json(), "config": dataclasses.asdict(config)})
    return report


def store_info(root: str | os.PathLike, *, quality: bool = True, batch_size: int = 1024,
               progress: bool = False, config: QualityConfig = QualityConfig()) -> dict[str, Any]:
    """Summary of a store: counts, hours, sources, licences, texts, splits and quality statistics."""
    store = Store(root)
    records = store.records
    datasets = collections.Counter(r.source.get("dataset", "unknown") for r in records)
    licences = collections.Counter(r.source.get("license", "unknown") for r in records)
    spaces = collections.Counter(r.source.get("space", "metric") for r in records)
    sequences = {(r.source.get("dataset"), r.source.get("sequence")) for r in records}
    annotated = sum(1 for r in records if r.texts["left"])
    frames = len(store) * WINDOW
    info: dict[str, Any] = {
        "path": os.fspath(Path(root).resolve()),
        "clips": len(store),
        "frames": frames,
        "hours": round(frames / FPS / 3600, 4),
        "shards": len(store.manifest["shards"]),
        "sequences": len(sequences),
        "datasets": dict(datasets.most_common()),
        "licenses": dict(licences.most_common()),
        "spaces": dict(spaces.most_common()),
        "annotated_clips": annotated,
        "text_variants": sum(len(r.texts["left"]) for r in records),
        "splits": {k: len(v) for k, v in store.splits().items()},
    }
    if quality and len(store):
        info["quality"] = _quality_summary(store, config, batch_size, progress)
    return info


def _quality_summary(store: Store, config: QualityConfig, batch_size: int, progress: bool) -> dict[str, Any]:
    intensity, drift, hand_len, contacts, failing = [], [], [], [], collections.Counter()
    passing = 0
    for _, motions in tqdm(store.batches(batch_size), desc="quality", disable=not progress,
                           total=sum(-(-s["count"] // batch_size) for s in store.manifest["shards"])):
        stats, reasons = quality_stats(np.asarray(motions), config)
        intensity.append(stats["intensity"])
        drift.append(stats["bone_drift"].max(-1))
        hand_len.append(stats["hand_length"])
        contacts.append(contact_frames(motions))
        for why in reasons:
            passing += not why
            failing.update({_reason_kind(r) for r in why})
    intensity_all = np.concatenate(intensity)  # (N, 2)
    hand_all = np.concatenate(hand_len)  # (N, 2)
    drift_all = np.concatenate(drift)  # (N,)

    def pct(x: np.ndarray) -> dict[str, float]:
        q = np.nanpercentile(x, [5, 50, 95])
        return {"p5": round(float(q[0]), 4), "median": round(float(q[1]), 4), "p95": round(float(q[2]), 4)}

    return {
        "passing": passing,
        "failing_by_reason": dict(failing.most_common()),
        "intensity_deg_s": {"left": pct(intensity_all[:, 0]), "right": pct(intensity_all[:, 1])},
        "hand_length_m": pct(hand_all),
        "bone_drift": pct(drift_all),
        "contacts": contact_stats(contacts).to_json(),
        "thresholds": {"tau_hand": config.tau_hand, "tau_avg": config.tau_avg,
                       "max_bone_drift": config.max_bone_drift},
    }


def export_handx_npz(root: str | os.PathLike, out: str | os.PathLike, *, split: str | None = None,
                     progress: bool = True) -> int:
    """Write the clips of a store (or one split) as a HandX-format ``.npz``; returns the number of clips.

    Keys are ``"0" … "N-1"`` in store order (reference §1.3); motion is float32, texts are the three lists.
    """
    store = Store(root)
    ids = store.ids(split) if split else None
    indices = range(len(store)) if ids is None else [store.index_of(i) for i in ids]
    with HandxNpzWriter(out) as writer:
        for i in tqdm(indices, desc="export", unit="clip", disable=not progress):
            record = store.records[i]
            writer.add(motion_entry(store.motion(i), Texts.from_json(record.texts)))
    return writer.count


@lock.writes_store
def split_store(root: str | os.PathLike, fractions: dict[str, float], *, seed: int = 0, by: str = "sequence") -> dict[str, int]:
    """Assign every clip to a split and write ``splits.json``; returns the split sizes.

    ``by="sequence"`` keeps all windows of one source recording in one split (no leakage between train and
    test); ``by="clip"`` splits clips independently. The assignment hashes the unit's name with ``seed``, so it
    is stable when clips are appended.
    """
    if by not in ("sequence", "clip"):
        raise ValueError(f"by must be 'sequence' or 'clip', got {by!r}")
    total = sum(fractions.values())
    if not fractions or any(f < 0 for f in fractions.values()) or total <= 0:
        raise ValueError(f"split fractions must be non-negative and sum to a positive number, got {fractions}")
    names = list(fractions)
    edges = np.cumsum([fractions[n] / total for n in names])
    store = Store(root)
    splits: dict[str, list[str]] = {n: [] for n in names}
    for record in store.records:
        unit = record.id if by == "clip" else f"{record.source.get('dataset')}/{record.source.get('sequence')}"
        digest = hashlib.sha256(f"{seed}:{unit}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        splits[names[min(int(np.searchsorted(edges, u, side="right")), len(names) - 1)]].append(record.id)
    write_splits(root, splits, how={"method": "hash", "by": by, "seed": seed, "fractions": fractions})
    return {n: len(v) for n, v in splits.items()}
