"""One writer per store (handx.io.lock): real concurrent processes, killed holders, readers never blocked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from handx.errors import HandxInputError
from handx.io import lock
from handx.io.store import Store, StoreWriter, read_manifest
from handx.synth.corpus import write_synthetic

HOLD = """
import sys, time
from handx.io.lock import store_lock
with store_lock(sys.argv[1], "holder-test --pretend"):
    print("held", flush=True)
    time.sleep(120)
"""


def _handx(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handx.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


def _holder(store: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(store)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def small_store(tmp_path):
    write_synthetic(10, 0, tmp_path / "s", progress=False)
    return tmp_path / "s"


def test_second_writer_is_refused_naming_the_holder_and_readers_are_not_blocked(small_store):
    holder = _holder(small_store)
    try:
        result = _handx("data", "synth", "--n", "5", "--seed", "1", "--out", str(small_store), "--no-progress")
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert f"pid {holder.pid}" in result.stderr and "holder-test --pretend" in result.stderr
        # readers go on while the lock is held
        assert len(Store(small_store).records) == 10
        info = _handx("data", "info", str(small_store))
        assert info.returncode == 0, info.stderr
    finally:
        holder.kill()
        holder.wait()
    assert len(Store(small_store)) == 10  # the refused job wrote nothing


def test_a_killed_holder_leaves_no_stale_lock(small_store):
    holder = _holder(small_store)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert write_synthetic(5, 1, small_store, progress=False) == 5
    assert len(Store(small_store).records) == 15


def test_two_concurrent_synth_jobs_leave_a_readable_store(small_store):
    """The failure this lock fixes: two writers at once used to both report success and leave an unreadable
    store. Whatever the timing, every job either succeeds or is refused naming the holder, and the store holds
    exactly the clips of the jobs that succeeded."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    jobs = [subprocess.Popen([sys.executable, "-m", "handx.cli.main", "data", "synth", "--n", "300", "--seed",
                              str(seed), "--out", str(small_store), "--no-progress"], env=env,
                             stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) for seed in (1, 2)]
    outcomes = [(job.wait(timeout=300), job.stderr.read()) for job in jobs]
    succeeded = [rc == 0 for rc, _ in outcomes]
    for rc, err in outcomes:
        assert rc == 0 or ("another job is writing into this store" in err and "pid" in err), err
    store = Store(small_store)
    assert len(store.records) == 10 + 300 * sum(succeeded)
    assert len({r.id for r in store.records}) == len(store.records)
    for first, motions in store.batches():
        assert np.isfinite(motions).all()


def test_lock_is_reentrant_within_a_process_and_released_at_the_end(tmp_path):
    root = tmp_path / "s"
    with lock.store_lock(root, "outer"):
        with StoreWriter(root) as writer:  # takes the same lock again
            writer.add(np.zeros((60, 2, 21, 3), np.float32) + np.arange(21)[None, None, :, None] * 0.01,
                       clip_id="a", source={"dataset": "t"})
        assert lock.holds(root)
    assert not lock.holds(root)
    holder = _holder(root)  # another process can take it now
    holder.kill()
    holder.wait()


def test_commit_rereads_the_manifest_instead_of_trusting_state_from_open(small_store):
    """A writer that ignores the lock (simulated by releasing ours mid-job) commits between our add and our
    commit: ours appends after it instead of overwriting its shard and records."""
    clip = Store(small_store).motion(0).copy()
    writer = StoreWriter(small_store, commit_seconds=1e9)
    writer.add(clip, clip_id="ours-1", source={"dataset": "t"})
    lock.release(small_store)
    try:
        with StoreWriter(small_store) as other:
            other.add(clip, clip_id="theirs-1", source={"dataset": "t"})
            other.add(clip, clip_id="ours-1", source={"dataset": "t"})
    finally:
        lock.acquire(small_store)
    writer.commit()
    writer.close()
    store = Store(small_store)
    ids = [r.id for r in store.records]
    assert ids[10:] == ["theirs-1", "ours-1"]  # ours-1 already there: not written twice
    assert read_manifest(small_store)["num_clips"] == 12


def test_time_based_commits_keep_the_work_of_a_killed_synth_job(tmp_path):
    """A killed job keeps what it committed every few seconds (it used to commit one 2,048-clip shard at a
    time), and re-running resumes."""
    out = tmp_path / "s"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    job = subprocess.Popen([sys.executable, "-m", "handx.cli.main", "data", "synth", "--n", "100000", "--seed",
                            "0", "--out", str(out), "--no-progress"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            manifest = out / "manifest.json"
            if manifest.is_file() and json.loads(manifest.read_text())["num_clips"] > 0:
                break
            time.sleep(0.2)
        assert job.poll() is None, "the job ended before it was killed"
    finally:
        job.kill()
        job.wait()
    kept = len(Store(out).records)
    assert 0 < kept < 100000
    assert write_synthetic(kept + 3, 0, out, progress=False) == 3
    assert len(Store(out).records) == kept + 3


# --- store manifests are untrusted input ------------------------------------------------------------------------

def _tamper(store: Path, edit) -> None:
    path = store / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.npy", "sub/motion-00000.npy", "..", "", 7])
def test_shard_paths_outside_the_store_are_refused(small_store, tmp_path, name):
    np.save(tmp_path / "outside.npy", np.zeros((10, 60, 2, 21, 3), np.float32))
    _tamper(small_store, lambda m: m["shards"][0].__setitem__("file", name))
    with pytest.raises(HandxInputError, match="not a plain file name inside the store"):
        Store(small_store).motion(0)


def test_a_fifo_shard_is_refused_instead_of_hanging(small_store):
    shard = small_store / "motion-00000.npy"
    shard.unlink()
    os.mkfifo(shard)
    with pytest.raises(HandxInputError, match="not a regular file"):
        Store(small_store).motion(0)


def test_a_symlinked_shard_leaving_the_store_is_refused(small_store, tmp_path):
    shard = small_store / "motion-00000.npy"
    outside = tmp_path / "elsewhere.npy"
    shard.rename(outside)
    shard.symlink_to(outside)
    with pytest.raises(HandxInputError, match="links outside the store"):
        Store(small_store).motion(0)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.__setitem__("num_clips", "10"), "num_clips must be a non-negative integer"),
    (lambda m: m.__setitem__("records_bytes", -1), "records_bytes must be a non-negative integer"),
    (lambda m: m.__setitem__("shards", {"file": "x"}), "shards must be a list"),
    (lambda m: m["shards"][0].__setitem__("count", 1e9), "non-negative integer count"),
    (lambda m: m.__setitem__("num_clips", 11), "shard counts sum to 10"),
    (lambda m: m.__setitem__("records_pending", "../../x"), "records_pending must be"),
])
def test_manifest_fields_are_type_checked(small_store, edit, message):
    _tamper(small_store, edit)
    with pytest.raises(HandxInputError, match=message):
        Store(small_store)
