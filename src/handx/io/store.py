"""The handx dataset store: sharded, memory-mapped two-hand clips with JSON-lines records (DESIGN.md).

Layout of a store directory::

    manifest.json        format, version, fps, window, joint order, num_clips, shards, provenance, commands
    motion-00000.npy     float32 (n, 60, 2, 21, 3) shards, read with mmap_mode="r"
    clips.jsonl          one record per clip: id, shard, row, source{...}, texts{...}, and optional fields
    splits.json          optional: {"train": [ids], "test": [ids], ...}
    side files           e.g. mano-00000.npz (MANO parameters of the public HandX release), reports

Writing is crash-safe. Shards and side files are written to a temporary name and renamed. ``clips.jsonl`` is
append-only while importing: each committed shard appends its records and then atomically rewrites the manifest,
which records how many bytes of ``clips.jsonl`` are committed (``records_bytes``). A reader ignores anything past
that point and a writer truncates it away before appending, so an interrupted import leaves the store exactly as
it was at its last commit, and re-running the import resumes (clips whose ids exist are skipped).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from handx.errors import HandxInputError
from handx.io import lock
from handx.io.atomic import atomic_open, write_json, write_npy
from handx.motion import FPS, WINDOW, Texts, validate_clip
from handx.skeleton import HAND_NAMES, JOINT_NAMES

log = logging.getLogger(__name__)

FORMAT = "handx-store"
VERSION = 1
MANIFEST = "manifest.json"
RECORDS = "clips.jsonl"
SPLITS = "splits.json"
DEFAULT_SHARD_SIZE = 2048
#: a writer commits what it holds at least this often, so a killed job loses at most a few seconds of work
DEFAULT_COMMIT_SECONDS = 5.0


def shard_name(index: int) -> str:
    return f"motion-{index:05d}.npy"


@dataclasses.dataclass(frozen=True)
class ClipRecord:
    """One line of ``clips.jsonl``.

    Attributes:
        id: unique clip id within the store.
        shard: index of the motion shard holding the clip.
        row: row of the clip inside its shard.
        source: provenance ``{dataset, sequence, frame_start, frame_end, license, space}``.
        texts: ``{left, right, two_hands_relation}`` lists of equal length (may be empty).
        extra: any further fields (``program``, ``quality``, ``split``, ...), kept verbatim.
    """

    id: str
    shard: int
    row: int
    source: dict[str, Any]
    texts: dict[str, list[str]]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "shard": self.shard, "row": self.row, "source": self.source, "texts": self.texts,
                **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ClipRecord":
        known = {"id", "shard", "row", "source", "texts"}
        return cls(
            id=str(data["id"]), shard=int(data["shard"]), row=int(data["row"]), source=dict(data.get("source", {})),
            texts=Texts.from_json(data.get("texts")).to_json(), extra={k: v for k, v in data.items() if k not in known},
        )


def _new_manifest(command: str | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "fps": FPS,
        "window": WINDOW,
        "joint_order": list(JOINT_NAMES),
        "hand_order": list(HAND_NAMES),
        "units": "metres",
        "frame": "+x right, +y forward, +z up; right wrist at the origin at frame 0",
        "num_clips": 0,
        "shards": [],
        "records_bytes": 0,
        "sources": {},
        "commands": [command] if command else [],
    }


def read_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``manifest.json`` of a store, with errors that say what is wrong."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise HandxInputError(root, f"not a handx store: {MANIFEST} not found")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HandxInputError(path, f"invalid JSON ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise HandxInputError(path, f"format is {manifest.get('format')!r}, expected {FORMAT!r}")
    if manifest.get("version") != VERSION:
        raise HandxInputError(path, f"store version {manifest.get('version')} is not supported (expected {VERSION})")
    if manifest.get("joint_order") != list(JOINT_NAMES):
        raise HandxInputError(path, "joint_order differs from handx's 21-joint order")
    _check_manifest(path, manifest)
    return manifest


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Type-check the fields readers rely on; every file a manifest names must be a plain name inside the
    store (no directories, no ``..``, no absolute paths)."""
    for key in ("num_clips", "records_bytes"):
        if not _is_count(manifest.get(key)):
            raise HandxInputError(path, f"{key} must be a non-negative integer, got {manifest.get(key)!r}")
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise HandxInputError(path, f"shards must be a list, got {type(shards).__name__}")
    for k, entry in enumerate(shards):
        item = f"shards[{k}]"
        if not isinstance(entry, dict) or not _is_count(entry.get("count")):
            raise HandxInputError(path, "must be an object with a non-negative integer count", item)
        for key, name in entry.items():
            if key != "count":
                store_file(path.parent, name, item=f"{item}.{key}", manifest=path)
    if sum(entry["count"] for entry in shards) != manifest["num_clips"]:
        raise HandxInputError(path, f"shard counts sum to {sum(e['count'] for e in shards)}, num_clips is "
                                    f"{manifest['num_clips']}")
    pending = manifest.get("records_pending")
    if pending not in (None, PENDING_RECORDS):
        raise HandxInputError(path, f"records_pending must be {PENDING_RECORDS!r}, got {pending!r}")
    for key in ("sources",):
        if not isinstance(manifest.get(key, {}), dict):
            raise HandxInputError(path, f"{key} must be an object")
    if not isinstance(manifest.get("commands", []), list):
        raise HandxInputError(path, "commands must be a list")


def store_file(root: str | os.PathLike, name: Any, *, item: str, manifest: str | os.PathLike | None = None,
               must_exist: bool = False) -> Path:
    """The path of a file a store names (a shard, a side file): a plain file name inside ``root``, never a path
    that leaves it; with ``must_exist``, a regular file (a FIFO or device would hang or mislead a reader)."""
    where = manifest if manifest is not None else root
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name
            or "\0" in name):
        raise HandxInputError(where, f"file name {name!r} is not a plain file name inside the store", item)
    path = Path(root) / name
    if must_exist:
        try:
            info = path.stat()  # follows a symlink: its target must also be inside the store
        except OSError as exc:
            raise HandxInputError(path, f"cannot read ({exc.strerror})", item) from None
        if not stat.S_ISREG(info.st_mode):
            raise HandxInputError(path, "not a regular file", item)
        if not path.resolve().is_relative_to(Path(root).resolve()):
            raise HandxInputError(path, "links outside the store", item)
    return path


class Store:
    """Read access to a store; motion stays on disk (memory-mapped), records are parsed once.

    ``store.motion(i)`` returns clip ``i`` as a read-only ``(60, 2, 21, 3)`` view; ``store.batches(n)``
    iterates over contiguous slices of shards without copying them into memory.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self._records: list[ClipRecord] | None = None
        self._index: dict[str, int] | None = None
        self._shards: dict[int, np.ndarray] = {}
        self._offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.manifest["num_clips"])

    @property
    def records(self) -> list[ClipRecord]:
        if self._records is None:
            self._records = list(_read_records(self.root, int(self.manifest["records_bytes"]),
                                               self.manifest.get("records_pending")))
            if len(self._records) != len(self):
                raise HandxInputError(
                    self.root / RECORDS, f"{len(self._records)} committed records, manifest says {len(self)}"
                )
            counts = [s["count"] for s in self.manifest["shards"]]
            expected_shard = np.repeat(np.arange(len(counts)), counts)  # (N,)
            expected_row = np.concatenate([np.arange(c) for c in counts]) if counts else np.zeros(0, int)
            got = np.array([(r.shard, r.row) for r in self._records], dtype=np.int64).reshape(-1, 2)
            bad = np.flatnonzero((got[:, 0] != expected_shard) | (got[:, 1] != expected_row))
            if bad.size:
                raise HandxInputError(self.root / RECORDS, f"record {self._records[bad[0]].id!r} is out of shard "
                                      "order", f"line {bad[0] + 1}")
        return self._records

    def index_of(self, clip_id: str) -> int:
        if self._index is None:
            self._index = {r.id: i for i, r in enumerate(self.records)}
        try:
            return self._index[clip_id]
        except KeyError:
            raise KeyError(f"{self.root}: no clip with id {clip_id!r}") from None

    def shard(self, index: int) -> np.ndarray:
        """Shard ``index`` as a read-only memory map ``(n, 60, 2, 21, 3)``."""
        if index not in self._shards:
            entry = self.manifest["shards"][index]
            path = store_file(self.root, entry.get("file"), item=f"shard {index}", must_exist=True)
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise HandxInputError(path, f"cannot read motion shard ({exc})") from exc
            if array.shape != (entry["count"], WINDOW, 2, len(JOINT_NAMES), 3) or array.dtype != np.float32:
                raise HandxInputError(path, f"shard has shape {array.shape} {array.dtype}, manifest says "
                                            f"({entry['count']}, {WINDOW}, 2, 21, 3) float32")
            self._shards[index] = array
        return self._shards[index]

    def locate(self, i: int) -> tuple[int, int]:
        """``(shard, row)`` of clip ``i`` from the manifest alone (clips are numbered in shard order)."""
        if not 0 <= i < len(self):
            raise IndexError(f"{self.root}: clip index {i} out of range for {len(self)} clips")
        if self._offsets is None:
            self._offsets = np.cumsum([0] + [s["count"] for s in self.manifest["shards"]])
        shard = int(np.searchsorted(self._offsets, i, side="right")) - 1
        return shard, i - int(self._offsets[shard])

    def motion(self, i: int) -> np.ndarray:
        """Clip ``i`` as a read-only ``(60, 2, 21, 3)`` view of its memory-mapped shard (records not needed)."""
        shard, row = self.locate(i)
        return self.shard(shard)[row]

    def batches(self, batch_size: int = 1024) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_clip_index, motions)`` with motions a memory-mapped ``(b, 60, 2, 21, 3)`` slice.

        Clips are numbered in shard order, which is record order (:class:`StoreWriter` writes records shard by
        shard, row by row; :meth:`records` checks it).
        """
        offset = 0
        for k, entry in enumerate(self.manifest["shards"]):
            array = self.shard(k)
            for lo in range(0, entry["count"], batch_size):
                yield offset + lo, array[lo:lo + batch_size]
            offset += entry["count"]

    def splits(self) -> dict[str, list[str]]:
        path = self.root / SPLITS
        if not path.is_file():
            return {}
        return json.loads(path.read_text(encoding="utf-8"))["splits"]

    def ids(self, split: str | None = None) -> list[str]:
        if split is None:
            return [r.id for r in self.records]
        splits = self.splits()
        if split not in splits:
            raise KeyError(f"{self.root}: no split {split!r} (known: {sorted(splits) or 'none'})")
        return list(splits[split])


def _read_records(root: Path, committed_bytes: int, pending: str | None = None) -> Iterator[ClipRecord]:
    path = root / RECORDS
    if pending and (root / pending).exists():
        path = root / pending  # a rewrite committed in the manifest but not yet moved into place
    if committed_bytes == 0:
        return
    path = store_file(root, path.name, item="records", must_exist=True)
    with open(path, "rb") as handle:
        data = handle.read(committed_bytes)
    if len(data) < committed_bytes:
        raise HandxInputError(path, f"truncated: {len(data)} bytes, manifest says {committed_bytes}")
    for lineno, line in enumerate(data.splitlines(), start=1):
        try:
            yield ClipRecord.from_json(json.loads(line))
        except (json.JSONDecodeError, KeyError, ValueError) as exc:
            raise HandxInputError(path, f"invalid record ({exc})", f"line {lineno}") from exc


class StoreWriter:
    """Create a store or append to an existing one, one committed shard at a time.

    Use as a context manager; :meth:`add` buffers clips and commits a shard every ``shard_size`` clips, and
    leaving the ``with`` block commits the rest. Ids already in the store are refused by :meth:`add` (check
    :meth:`has` first to resume an interrupted job).
    """

    def __init__(self, root: str | os.PathLike, *, shard_size: int = DEFAULT_SHARD_SIZE, command: str | None = None,
                 commit_seconds: float = DEFAULT_COMMIT_SECONDS):
        if shard_size <= 0:
            raise ValueError(f"shard_size must be positive, got {shard_size}")
        self.root = Path(root)
        self.shard_size = shard_size
        self.commit_seconds = commit_seconds
        if not (self.root / MANIFEST).is_file() and self.root.exists() and any(
                p.name != lock.LOCK_FILE for p in self.root.iterdir()):
            raise HandxInputError(self.root, "output directory exists, is not empty and is not a handx store")
        self.root.mkdir(parents=True, exist_ok=True)
        lock.acquire(self.root, command)  # one writer per store, held until the writer is closed
        try:
            if (self.root / MANIFEST).is_file():
                self.manifest = recover(self.root)
                if command:
                    self.manifest["commands"].append(command)
                self._truncate_uncommitted()
                self._ids = {r.id for r in _read_records(self.root, int(self.manifest["records_bytes"]))}
            else:
                self.manifest = _new_manifest(command)
                self._ids = set()
        except BaseException:
            lock.release(self.root)
            raise
        self._last_commit = time.monotonic()
        self._motions: list[np.ndarray] = []
        self._pending: list[dict[str, Any]] = []
        self._side: dict[str, list[np.ndarray]] = {}
        self.added = 0
        self._closed = False

    def _reread(self) -> None:
        disk = read_manifest(self.root)
        if (disk["records_bytes"], disk["num_clips"], len(disk["shards"])) == (
                self.manifest["records_bytes"], self.manifest["num_clips"], len(self.manifest["shards"])):
            return
        log.warning("%s: the store changed under this writer (a writer that ignores the lock?); appending after "
                    "its commits", self.root)
        for key in ("shards", "num_clips", "records_bytes", "sources"):
            self.manifest[key] = disk[key]
        self._truncate_uncommitted()
        on_disk = {r.id for r in _read_records(self.root, int(disk["records_bytes"]))}
        keep = [i for i, record in enumerate(self._pending) if record["id"] not in on_disk]
        if len(keep) < len(self._pending):
            log.warning("%s: %d buffered clip(s) are already in the store; not written again", self.root,
                        len(self._pending) - len(keep))
        self._motions = [self._motions[i] for i in keep]
        self._pending = [self._pending[i] for i in keep]
        self._side = {name: [values[i] for i in keep] for name, values in self._side.items()}
        self._ids |= on_disk

    def _truncate_uncommitted(self) -> None:
        path = self.root / RECORDS
        committed = int(self.manifest["records_bytes"])
        if path.exists() and path.stat().st_size != committed:
            log.warning("%s: discarding %d uncommitted bytes left by an interrupted job", path,
                        path.stat().st_size - committed)
            with open(path, "r+b") as handle:
                handle.truncate(committed)

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None or issubclass(exc_type, (KeyboardInterrupt, HandxInputError)):
                self.commit()
        finally:
            self.close()

    def close(self) -> None:
        """Give back the store's write lock (uncommitted clips are dropped; :meth:`commit` first to keep them)."""
        if not self._closed:
            self._closed = True
            lock.release(self.root)

    def __len__(self) -> int:
        return int(self.manifest["num_clips"]) + len(self._motions)

    def has(self, clip_id: str) -> bool:
        return clip_id in self._ids

    def add(self, motion: np.ndarray, *, clip_id: str, source: Mapping[str, Any], texts: Texts | Mapping | None = None,
            side: Mapping[str, np.ndarray] | None = None, **extra: Any) -> None:
        """Buffer one clip. ``motion`` must be a valid ``(60, 2, 21, 3)`` clip; ``side`` holds per-clip arrays
        stored in a side shard ``<name>-NNNNN.npz`` aligned with the motion shard (a change in which side data
        is given starts a new shard)."""
        if clip_id in self._ids:
            raise HandxInputError(self.root, f"clip id {clip_id!r} already in the store")
        motion = validate_clip(motion, item=f"clip {clip_id}", frames=WINDOW)
        if self._motions and set(side or ()) != set(self._side):
            self.commit()  # a shard holds one set of side data: start a new shard when it changes
        if texts is None:
            texts = Texts()
        elif not isinstance(texts, Texts):
            texts = Texts.from_json(dict(texts))
        self._ids.add(clip_id)
        self._motions.append(motion)
        self._pending.append({"id": clip_id, "source": dict(source), "texts": texts.to_json(), **extra})
        for name, value in (side or {}).items():
            self._side.setdefault(name, []).append(np.asarray(value))
        self.added += 1
        if (len(self._motions) >= self.shard_size
                or time.monotonic() - self._last_commit >= self.commit_seconds):
            self.commit()  # a full shard, or work of the last few seconds that a killed job would lose

    def commit(self) -> None:
        """Write buffered clips as a new shard, append their records, then rewrite the manifest atomically.

        The manifest and the end of ``clips.jsonl`` are re-read from disk first rather than trusted from when the
        writer opened: the lock makes them unchanged, and if a writer that ignores the lock changed them, the
        commit appends after what that writer committed and refuses ids it already wrote.
        """
        if self._closed:
            raise RuntimeError(f"{self.root}: commit on a closed StoreWriter")
        self._last_commit = time.monotonic()
        if (self.root / MANIFEST).is_file():
            self._reread()
        if not self._motions:
            if not (self.root / MANIFEST).exists():
                write_json(self.root / MANIFEST, self.manifest)
            return
        index = len(self.manifest["shards"])
        name = shard_name(index)
        write_npy(self.root / name, np.stack(self._motions))  # (n, 60, 2, 21, 3)
        entry: dict[str, Any] = {"file": name, "count": len(self._motions)}
        for side_name, values in self._side.items():
            if len(values) != len(self._motions):
                raise ValueError(f"side data {side_name!r} given for {len(values)} of {len(self._motions)} clips")
            side_file = f"{side_name}-{index:05d}.npz"
            keys = values[0].keys() if isinstance(values[0], dict) else None
            arrays = ({k: np.stack([v[k] for v in values]) for k in keys} if keys is not None
                      else {"data": np.stack(values)})
            with atomic_open(self.root / side_file, "wb") as handle:
                np.savez(handle, **arrays)
            entry[side_name] = side_file
        lines = []
        for row, record in enumerate(self._pending):
            record = {"id": record["id"], "shard": index, "row": row, **{k: v for k, v in record.items() if k != "id"}}
            lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            dataset = record["source"].get("dataset", "unknown")
            self.manifest["sources"][dataset] = self.manifest["sources"].get(dataset, 0) + 1
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        with open(self.root / RECORDS, "ab") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        self.manifest["shards"].append(entry)
        self.manifest["num_clips"] = int(self.manifest["num_clips"]) + len(self._motions)
        self.manifest["records_bytes"] = int(self.manifest["records_bytes"]) + len(payload)
        write_json(self.root / MANIFEST, self.manifest)
        self._motions, self._pending, self._side = [], [], {}


PENDING_RECORDS = RECORDS + ".new"


def recover(root: str | os.PathLike) -> dict[str, Any]:
    """Finish or undo a records rewrite that an interrupted job left half done; returns the manifest.

    A rewrite (:func:`rewrite_records`) writes ``clips.jsonl.new``, commits it in the manifest as
    ``records_pending``, renames it over ``clips.jsonl`` and clears ``records_pending``. Whatever step was cut
    short, this brings the store to the committed state: before the manifest commit the new file is dropped,
    after it the rename is completed.
    """
    root = Path(root)
    manifest = read_manifest(root)
    pending = root / PENDING_RECORDS
    if manifest.get("records_pending"):
        if pending.exists():
            os.replace(pending, root / RECORDS)
        del manifest["records_pending"]
        write_json(root / MANIFEST, manifest)
    elif pending.exists():
        pending.unlink()
    return manifest


@lock.writes_store
def rewrite_records(root: str | os.PathLike, update: Callable[[ClipRecord], ClipRecord]) -> int:
    """Rewrite every committed record through ``update`` (e.g. to fill texts), crash-safely.

    The new ``clips.jsonl`` is written beside the old one, committed in the manifest, then moved into place
    (see :func:`recover`). Records must keep their id, shard and row. Returns the number of records changed.
    """
    root = Path(root)
    manifest = recover(root)
    changed = 0
    with atomic_open(root / PENDING_RECORDS, "wb") as handle:
        for lineno, record in enumerate(_read_records(root, int(manifest["records_bytes"])), start=1):
            new = update(record)
            if (new.id, new.shard, new.row) != (record.id, record.shard, record.row):
                raise ValueError(f"rewrite_records: update changed the id, shard or row of {record.id!r}")
            changed += new != record
            handle.write((json.dumps(new.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n").encode())
        size = handle.tell()
    manifest["records_bytes"] = size
    manifest["records_pending"] = PENDING_RECORDS
    write_json(root / MANIFEST, manifest)
    recover(root)
    return changed


@lock.writes_store
def write_splits(root: str | os.PathLike, splits: Mapping[str, list[str]], *, how: Mapping[str, Any]) -> None:
    """Atomically write ``splits.json``; ``how`` records the settings that made the split."""
    write_json(Path(root) / SPLITS, {"how": dict(how), "splits": {k: list(v) for k, v in splits.items()}})


def write_report(out: str | os.PathLike, kind: str, data: dict[str, Any]) -> Path:
    """Write ``<store>/reports/<kind>-NNNN.json`` (what a job did, skipped and why); returns its path."""
    folder = Path(out) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(list(folder.glob(f"{kind}-*.json")))
    path = folder / f"{kind}-{n:04d}.json"
    write_json(path, data)
    return path


command_line = lock.command_line
