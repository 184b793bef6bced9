"""Store-level jobs: motion codes for every clip (``codes.jsonl``) and descriptions into the store's texts.

``compute_codes`` writes ``<store>/codes.jsonl`` (one ``{"id", "codes"}`` line per clip) batch by batch with
a process pool; each batch is appended whole and fsynced, a torn last line from an interrupted run is
dropped, and re-running computes only the clips that are missing. ``annotate_store`` feeds the codes to a
description writer and rewrites the store's records with the new texts (crash-safe, see
:func:`handx.io.store.rewrite_records`) every ``commit_every`` clips and at the end, so an interrupted run
keeps what it had committed, and the LLM writer's cache keeps every reply it received. The run's report
(``reports/annotate-NNNN.json``) also says how fast it went and, for a writer with a ``cost_report`` (the LLM
writer), what the clips cost in tokens and what the whole store would.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from handx.annotate.base import DescriptionWriter, WriteRequest, codes_hash, to_texts
from handx.features.codes import motion_codes_batch
from handx.io.lock import writes_store
from handx.io.store import ClipRecord, Store, rewrite_records, write_report

log = logging.getLogger(__name__)

CODES_FILE = "codes.jsonl"


def _read_codes(path: Path) -> dict[str, dict[str, Any]]:
    """The codes of every good line of a codes file, by clip id.

    A line that is not a JSON object with ``id`` and ``codes`` is skipped with a warning naming its number, and
    the lines after it are kept (its clip has no codes, so the next :func:`compute_codes` computes them again).
    A torn last line (an interrupted append, with no newline) is cut off the file, so that appends start on a
    line of their own.
    """
    if not path.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    good = 0  # bytes up to the end of the last complete line
    bad: list[str] = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                break
            good += len(line)
            try:
                item = json.loads(line)
                out[item["id"]] = item["codes"]
            except (ValueError, KeyError, TypeError) as exc:
                problem = "no 'id' or 'codes'" if not isinstance(exc, ValueError) else f"not JSON ({exc})"
                bad.append(f"line {number}: {problem}")
    for problem in bad[:10]:
        log.warning("%s: %s; skipped (its clip's codes will be computed again)", path, problem)
    if len(bad) > 10:
        log.warning("%s: %d more bad lines skipped", path, len(bad) - 10)
    if good != path.stat().st_size:
        log.warning("%s: dropping a torn last line left by an interrupted run", path)
        with open(path, "r+b") as handle:
            handle.truncate(good)
    return out


def read_codes(store_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The motion codes saved beside a store, by clip id (empty when none were computed)."""
    return _read_codes(Path(store_dir) / CODES_FILE)


def _codes_for(args: tuple[str, list[int], list[str]]) -> list[str]:
    """JSON lines of the codes of clips ``indices`` (ids ``ids``) of the store at ``root`` (runs in workers;
    motion is read through the memory map, records are not loaded)."""
    root, indices, ids = args
    store = Store(root)
    motions = np.stack([store.motion(i) for i in indices])  # (b, 60, 2, 21, 3)
    codes = motion_codes_batch(motions)
    return [json.dumps({"id": i, "codes": c}, separators=(",", ":")) for i, c in zip(ids, codes)]


@dataclasses.dataclass
class CodesReport:
    computed: int = 0
    existing: int = 0


@writes_store
def compute_codes(store_dir: str | os.PathLike, *, workers: int = 1, batch_size: int = 256,
                  progress: bool = True) -> CodesReport:
    """Compute the motion codes of every clip missing from ``<store>/codes.jsonl`` and append them."""
    if workers < 1 or batch_size < 1:
        raise ValueError(f"workers and batch_size must be >= 1, got {workers}, {batch_size}")
    root = Path(store_dir)
    store = Store(root)
    done = read_codes(root)
    todo = [i for i, r in enumerate(store.records) if r.id not in done]
    report = CodesReport(existing=len(store) - len(todo))
    ids = [r.id for r in store.records]
    batches = [(os.fspath(root), todo[k:k + batch_size], [ids[i] for i in todo[k:k + batch_size]])
               for k in range(0, len(todo), batch_size)]
    bar = tqdm(total=len(todo), desc="motion codes", unit="clip", disable=not progress)
    with open(root / CODES_FILE, "ab") as out:
        def emit(lines: list[str]) -> None:
            out.write(("\n".join(lines) + "\n").encode())
            out.flush()
            os.fsync(out.fileno())
            report.computed += len(lines)
            bar.update(len(lines))

        if workers == 1:
            for batch in batches:
                emit(_codes_for(batch))
        else:
            with concurrent.futures.ProcessPoolExecutor(workers) as pool:
                for lines in pool.map(_codes_for, batches):
                    emit(lines)
    bar.close()
    return report


@dataclasses.dataclass
class AnnotateReport:
    """What one :func:`annotate_store` run did.

    Attributes:
        annotated, skipped: clips given texts, and clips left alone (they had texts).
        failed: ``{"id", "error"}`` of each clip whose writer failed.
        seconds: wall time of the writing (motion codes excluded); ``clips_per_s``: clips written or failed
            per second of it.
        cost: the writer's ``cost_report`` (tokens per clip, cache hits, the estimate for the whole store), or
            None for a writer without one.
    """

    annotated: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    clips_per_s: float | None = None
    cost: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def cost_line(self) -> str:
        """One line on speed and cost: clips/s, and with a cost report, tokens per clip (mean), cache hits,
        structured output and the estimate for the whole store."""
        rate = f"{self.clips_per_s:g} clips/s" if self.clips_per_s else "no clip written"
        cost = self.cost
        if not cost:
            return f"{rate} ({self.seconds:g} s)"
        tokens, whole = cost["tokens_per_clip"], cost["store_estimate"]
        sent = cost["clips_sent"]
        seconds = f", ~{whole['seconds']:g} s at this rate" if whole["seconds"] else ""
        source = "server usage" if cost["token_source"]["estimate"] == 0 else "estimated" \
            if cost["token_source"]["server_usage"] == 0 else "server usage and estimates"
        return (f"{rate}; {sent} clip(s) sent, {cost['cache_hits']} cache hit(s); tokens per clip ({source}): "
                f"prompt {tokens['prompt']['mean']:g}, completion {tokens['completion']['mean']:g} (mean); "
                f"whole store ({whole['clips']} clips): ~{whole['prompt_tokens']:,} prompt + "
                f"~{whole['completion_tokens']:,} completion tokens{seconds}; output: {cost['structured_output']}; "
                f"context {cost['context_tokens']} ({cost['context_source']})")


@writes_store
def annotate_store(store_dir: str | os.PathLike, writer: DescriptionWriter, *, overwrite: bool = False,
                   append: bool = False, limit: int | None = None, commit_every: int = 2000,
                   progress: bool = True) -> AnnotateReport:
    """Write descriptions for the clips of a store and save them as the clips' texts.

    Clips that already have texts are skipped unless ``overwrite`` (replace them) or ``append`` (add the
    writer's variants after the clip's own, once per writer: more phrasings of the same motion for training;
    the first variants, which benchmarks score with, stay as they were). ``limit`` restricts the job to the first
    ``limit`` clips of the store (re-running does nothing more), e.g. to add other phrasings to part of a corpus. Motion codes come from ``codes.jsonl``
    (computed first when missing). A clip whose writer fails is reported (``reports/annotate-NNNN.json``) and
    keeps its old texts; nothing is half-written.
    """
    root = Path(store_dir)
    store = Store(root)
    compute_codes(root, progress=progress)
    codes = read_codes(root)
    if overwrite and append:
        raise ValueError("annotate_store: give overwrite or append, not both")

    def appended(record: ClipRecord) -> bool:
        return writer.name in record.extra.get("appended_writers", [])

    if limit is not None and limit < 0:
        raise ValueError(f"annotate_store: limit must be >= 0, got {limit}")
    todo = [r for r in store.records[:limit]
            if (append and not appended(r)) or overwrite or not r.texts["left"]]
    report = AnnotateReport(skipped=len(store.records[:limit]) - len(todo))

    def requests() -> Iterator[WriteRequest]:
        for record in todo:
            clip_codes = codes[record.id]
            yield WriteRequest(record.id, clip_codes, codes_hash(clip_codes))

    pending: dict[str, dict[str, Any]] = {}

    def commit() -> None:
        if not pending:
            return
        batch = dict(pending)

        def update(record: ClipRecord) -> ClipRecord:
            if record.id not in batch:
                return record
            new = batch[record.id]
            if append and record.texts["left"]:
                extra = {**record.extra, "appended_writers": [*record.extra.get("appended_writers", []),
                                                             writer.name]}
                texts = {key: [*record.texts[key], *new[key]] for key in new}
                return dataclasses.replace(record, texts=texts, extra=extra)
            extra = {**record.extra, "annotation": {"writer": writer.name}}
            return dataclasses.replace(record, texts=new, extra=extra)

        rewrite_records(root, update)
        report.annotated += len(batch)
        pending.clear()

    bar = tqdm(total=len(todo), desc=f"annotate ({writer.name})", unit="clip", disable=not progress)
    started = time.monotonic()
    done = 0
    try:
        for result in writer.write_many(requests()):
            bar.update(1)
            done += 1
            if result.error is not None or result.descriptions is None:
                report.failed.append({"id": result.clip_id, "error": result.error or "no descriptions"})
                continue
            pending[result.clip_id] = to_texts(result.descriptions)
            if len(pending) >= commit_every:
                commit()
    finally:
        report.seconds = round(time.monotonic() - started, 3)
        report.clips_per_s = round(done / report.seconds, 3) if done and report.seconds > 0 else None
        cost_report = getattr(writer, "cost_report", None)
        if callable(cost_report):
            report.cost = cost_report(store_clips=len(store), seconds=report.seconds)
        commit()
        bar.close()
        write_report(root, "annotate", {"writer": writer.name, **report.to_json()})
    return report
