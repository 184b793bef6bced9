"""The dataset store: layout, memory mapping, appending, crash safety, splits."""

import json

import numpy as np
import pytest

from handx.errors import HandxInputError
from handx.io.store import MANIFEST, RECORDS, Store, StoreWriter
from handx.io.store_ops import split_store
from handx.motion import Texts


def clips(n, seed=0):
    return np.random.default_rng(seed).normal(scale=0.1, size=(n, 60, 2, 21, 3)).astype(np.float32)


def source(i, seq="s"):
    return {"dataset": "test", "sequence": f"{seq}{i // 3}", "frame_start": 0, "frame_end": 60, "license": "CC0"}


def fill(root, motions, *, prefix="c", shard_size=4, texts=True):
    with StoreWriter(root, shard_size=shard_size) as w:
        for i, m in enumerate(motions):
            t = Texts((f"l{i}",), (f"r{i}",), (f"b{i}",)) if texts else None
            w.add(m, clip_id=f"{prefix}{i}", source=source(i), texts=t, program=[{"action": "x", "i": i}])


def test_layout_matches_the_design(tmp_path):
    motions = clips(10)
    fill(tmp_path / "s", motions)
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    assert manifest["format"] == "handx-store" and manifest["version"] == 1
    assert manifest["fps"] == 30 and manifest["window"] == 60 and len(manifest["joint_order"]) == 21
    assert manifest["num_clips"] == 10 and [s["count"] for s in manifest["shards"]] == [4, 4, 2]
    shard = np.load(tmp_path / "s" / "motion-00001.npy", mmap_mode="r")
    assert shard.dtype == np.float32 and shard.shape == (4, 60, 2, 21, 3)
    lines = [json.loads(l) for l in (tmp_path / "s" / RECORDS).read_text().splitlines()]
    assert lines[5]["id"] == "c5" and lines[5]["shard"] == 1 and lines[5]["row"] == 1
    assert set(lines[5]["source"]) >= {"dataset", "sequence", "frame_start", "frame_end", "license"}
    assert lines[5]["texts"] == {"left": ["l5"], "right": ["r5"], "two_hands_relation": ["b5"]}
    assert lines[5]["program"] == [{"action": "x", "i": 5}]


def test_reading_is_memory_mapped_and_exact(tmp_path):
    motions = clips(10)
    fill(tmp_path / "s", motions)
    store = Store(tmp_path / "s")
    assert len(store) == 10
    for i in range(10):
        np.testing.assert_array_equal(store.motion(i), motions[i])
    assert isinstance(store.shard(0), np.memmap)
    got = np.concatenate([m for _, m in store.batches(3)])
    np.testing.assert_array_equal(got, motions)
    assert store.records[store.index_of("c7")].texts["left"] == ["l7"]


def test_appending_a_second_import(tmp_path):
    first, second = clips(5, 0), clips(6, 1)
    fill(tmp_path / "s", first, prefix="a")
    fill(tmp_path / "s", second, prefix="b")
    store = Store(tmp_path / "s")
    assert len(store) == 11 and store.ids()[:2] == ["a0", "a1"] and store.ids()[5] == "b0"
    np.testing.assert_array_equal(store.motion(store.index_of("b3")), second[3])
    with pytest.raises(HandxInputError, match="already in the store"):
        with StoreWriter(tmp_path / "s") as w:
            w.add(first[0], clip_id="a0", source=source(0))


def test_interrupted_append_leaves_the_last_commit(tmp_path):
    motions = clips(6)
    fill(tmp_path / "s", motions)
    before = (tmp_path / "s" / MANIFEST).read_text()
    # Simulate a crash after records were appended but before the manifest was rewritten.
    with open(tmp_path / "s" / RECORDS, "ab") as handle:
        handle.write(b'{"id": "half-written", "shard": 9, "ro')
    (tmp_path / "s" / "motion-00009.npy").write_bytes(b"garbage")
    store = Store(tmp_path / "s")
    assert len(store) == 6 and len(store.records) == 6
    # The next writer discards the uncommitted tail and appends cleanly.
    fill(tmp_path / "s", clips(2, 5), prefix="n")
    store = Store(tmp_path / "s")
    assert store.ids()[-2:] == ["n0", "n1"] and len(store.records) == 8
    assert json.loads(before)["num_clips"] == 6


def test_exception_inside_writer_commits_nothing_partial(tmp_path):
    with pytest.raises(RuntimeError):
        with StoreWriter(tmp_path / "s", shard_size=4) as w:
            for i, m in enumerate(clips(6)):
                w.add(m, clip_id=f"c{i}", source=source(i))
            raise RuntimeError("boom")
    # The first full shard was committed; the 2 buffered clips were not.
    assert len(Store(tmp_path / "s")) == 4


def test_refuses_non_store_directories(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("hi")
    with pytest.raises(HandxInputError, match="not empty"):
        StoreWriter(tmp_path / "d")
    with pytest.raises(HandxInputError, match="not a handx store"):
        Store(tmp_path / "d")
    (tmp_path / "d" / MANIFEST).write_text(json.dumps({"format": "other"}))
    with pytest.raises(HandxInputError, match="format"):
        Store(tmp_path / "d")


def test_bad_clip_is_refused_with_its_id(tmp_path):
    bad = clips(1)[0]
    bad[3, 0, 0, 0] = np.inf
    with StoreWriter(tmp_path / "s") as w:
        with pytest.raises(HandxInputError, match="clip c9.*non-finite"):
            w.add(bad, clip_id="c9", source=source(0))


def test_split_by_sequence_keeps_sequences_together_and_is_stable(tmp_path):
    fill(tmp_path / "s", clips(30), texts=False)
    sizes = split_store(tmp_path / "s", {"train": 0.7, "test": 0.3}, seed=3)
    store = Store(tmp_path / "s")
    splits = store.splits()
    assert sum(sizes.values()) == 30 and set(splits["train"]).isdisjoint(splits["test"])
    seq_of = {r.id: r.source["sequence"] for r in store.records}
    assert {seq_of[i] for i in splits["train"]}.isdisjoint({seq_of[i] for i in splits["test"]})
    again = split_store(tmp_path / "s", {"train": 0.7, "test": 0.3}, seed=3)
    assert again == sizes and Store(tmp_path / "s").splits() == splits
    assert store.ids("test") == splits["test"]
    with pytest.raises(KeyError, match="no split 'val'"):
        store.ids("val")


def _with_texts(record):
    import dataclasses

    return dataclasses.replace(record, texts={"left": ["L"], "right": ["R"], "two_hands_relation": ["B"]})


def test_rewrite_records_updates_texts_and_keeps_appending(tmp_path):
    from handx.io.store import rewrite_records

    fill(tmp_path / "s", clips(6), texts=False)
    assert rewrite_records(tmp_path / "s", _with_texts) == 6
    store = Store(tmp_path / "s")
    assert [r.texts["left"] for r in store.records] == [["L"]] * 6
    assert store.records[2].extra["program"] == [{"action": "x", "i": 2}]  # other fields survive
    fill(tmp_path / "s", clips(2, 9), prefix="n")
    store = Store(tmp_path / "s")
    assert len(store.records) == 8 and store.records[7].id == "n1"


@pytest.mark.parametrize("stage", ["before_commit", "after_commit", "after_rename"])
def test_interrupted_rewrite_recovers_to_a_consistent_state(tmp_path, stage):
    """Replay each step of a rewrite cut short and check readers and writers see old or new, never a mix."""
    import os

    from handx.io.atomic import write_json
    from handx.io.store import PENDING_RECORDS, recover

    root = tmp_path / "s"
    fill(root, clips(5), texts=False)
    manifest = json.loads((root / MANIFEST).read_text())
    new_lines = [json.dumps(_with_texts(r).to_json()) for r in Store(root).records]
    payload = ("\n".join(new_lines) + "\n").encode()
    (root / PENDING_RECORDS).write_bytes(payload)
    if stage != "before_commit":
        write_json(root / MANIFEST, {**manifest, "records_bytes": len(payload), "records_pending": PENDING_RECORDS})
    if stage == "after_rename":
        os.replace(root / PENDING_RECORDS, root / RECORDS)
    expected = [[]] * 5 if stage == "before_commit" else [["L"]] * 5
    assert [r.texts["left"] for r in Store(root).records] == expected  # readers, before any recovery
    recover(root)
    assert not (root / PENDING_RECORDS).exists()
    assert "records_pending" not in json.loads((root / MANIFEST).read_text())
    assert [r.texts["left"] for r in Store(root).records] == expected


def test_atomic_writes_get_the_usual_file_permissions(tmp_path):
    import os
    import stat

    from handx.io.atomic import FILE_MODE, write_json

    write_json(tmp_path / "a.json", {"x": 1})
    plain = tmp_path / "b.json"
    plain.write_text("{}")
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == stat.S_IMODE(os.stat(plain).st_mode) == FILE_MODE


def test_a_full_disk_mid_job_leaves_the_store_at_its_last_commit(tmp_path):
    """A write that fails for lack of space (a real write refused by the kernel: the file-size limit of the job's
    process) ends the job with an error; the store keeps every clip it had and stays readable."""
    import resource
    import signal
    import subprocess
    import sys

    from handx.synth.corpus import write_synthetic

    write_synthetic(10, 0, tmp_path / "s", progress=False)
    before = [r.id for r in Store(tmp_path / "s").records]

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # a shard of 10 clips is 302 KB

    job = subprocess.run([sys.executable, "-m", "handx.cli.main", "data", "synth", "--n", "50", "--seed", "1",
                          "--out", str(tmp_path / "s"), "--no-progress"], preexec_fn=small_disk,
                         capture_output=True, text=True, timeout=300)
    assert job.returncode != 0
    assert job.stderr.startswith("handx: error:") and "Traceback" not in job.stderr
    store = Store(tmp_path / "s")
    assert [r.id for r in store.records] == before
    assert np.isfinite(np.stack([store.motion(i) for i in range(len(store))])).all()
    assert write_synthetic(5, 1, tmp_path / "s", progress=False) == 5  # and the next job goes on
