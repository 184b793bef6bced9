"""Atomic writes (``handx.io.atomic``): all or nothing, and the temporary files of killed jobs cleaned up by the
next write into their directory, never anything else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handx.io import atomic
from handx.io.atomic import HOST_TAG, TEMP_NAME, atomic_open, remove_orphans, write_json

OLD = 2 * atomic.ORPHAN_AGE_S  # seconds: past the age below which nothing is removed


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def temp_file(folder: Path, target: str, pid: int | None, host: str = HOST_TAG, age: float = OLD) -> Path:
    """A file named as :func:`atomic_open` names its temporary files, last written ``age`` seconds ago."""
    tag = "" if pid is None else f"{pid}-{host}."
    path = folder / f".{target}.{tag}k2j4h5g6.tmp"
    path.write_bytes(b"half a file")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_a_write_is_all_or_nothing(tmp_path):
    target = tmp_path / "data.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as handle:
            handle.write('{"a": 2, "half')
            raise RuntimeError("killed in the middle")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]


def test_temporary_names_say_who_wrote_them(tmp_path):
    with atomic_open(tmp_path / "x.npz", "wb") as handle:
        (name,) = [p.name for p in tmp_path.iterdir()]
        handle.write(b"x")
    match = TEMP_NAME.match(name)
    assert match and match["target"] == "x.npz" and int(match["pid"]) == os.getpid() and match["host"] == HOST_TAG


def test_the_next_write_removes_orphans_of_killed_jobs_and_nothing_else(tmp_path):
    gone = dead_pid()
    orphans = [
        temp_file(tmp_path, "manifest.json", gone),  # its writer was killed
        temp_file(tmp_path, "clips.jsonl", os.getpid()),  # this pid, but not a file this process has open
        temp_file(tmp_path, "shard.npy", None, age=2 * atomic.FOREIGN_AGE_S),  # an older handx's name, old
        temp_file(tmp_path, "report.json", 4242, host="0123abcd", age=2 * atomic.FOREIGN_AGE_S),  # elsewhere, old
    ]
    kept = [
        temp_file(tmp_path, "young.json", gone, age=1.0),  # too young to judge
        temp_file(tmp_path, "legacy.json", None),  # an older handx's name, younger than FOREIGN_AGE_S
        temp_file(tmp_path, "remote.json", 4242, host="0123abcd"),  # another machine's, recent
    ]
    others = [tmp_path / n for n in (".notes.tmp", "data.tmp", ".x.k2j4h5g6.tmp.bak", ".x.TOOLONG99.tmp",
                                     "x.123-0123abcd.k2j4h5g6.tmp")]
    for path in others:
        path.write_text("not handx's")
        os.utime(path, (0, 0))
    (tmp_path / f".dir.{gone}-{HOST_TAG}.k2j4h5g6.tmp").mkdir()  # a directory with the name: not a temp file
    others.append(tmp_path / f".dir.{gone}-{HOST_TAG}.k2j4h5g6.tmp")

    write_json(tmp_path / "manifest.json", {"ok": True})

    assert not any(p.exists() for p in orphans)
    assert all(p.exists() for p in kept + others)
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"ok": True}


def test_a_running_writer_keeps_its_file_until_it_is_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "ORPHAN_AGE_S", 0.0)  # judge by the writer alone
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.05)
        writing = temp_file(tmp_path, "a.json", child.pid, age=0.0)
        assert remove_orphans(tmp_path) == [] and writing.exists()
    finally:
        child.kill()
        child.wait()
    assert remove_orphans(tmp_path) == [writing]


def test_a_reused_pid_does_not_keep_an_orphan(tmp_path):
    """The pid of the writer now belongs to a process that started after the file was last written."""
    if atomic._process_start(os.getpid()) is None:
        pytest.skip("process start times are not readable here")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        orphan = temp_file(tmp_path, "a.json", child.pid, age=OLD + 5)  # older than the running child
        assert remove_orphans(tmp_path) == [orphan]
    finally:
        child.kill()
        child.wait()


def test_files_open_in_this_process_are_never_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "ORPHAN_AGE_S", 0.0)
    with atomic_open(tmp_path / "slow.json", "w") as handle:
        handle.write("{}")
        (tmp_path / "other.json").write_text("{}")
        assert remove_orphans(tmp_path) == []  # the open temporary file is this process's, in use
        with atomic_open(tmp_path / "other.json", "w") as second:  # a nested write sweeps the folder too
            second.write("[]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json", "slow.json"]


def test_writing_where_a_file_cannot_go_names_the_place(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory") as caught:
        write_json(tmp_path / "folder", {})
    assert caught.value.filename == str(tmp_path / "folder")
    (tmp_path / "plain").write_text("x")
    with pytest.raises(NotADirectoryError) as caught:
        write_json(tmp_path / "plain" / "x.json", {})
    assert caught.value.filename == str(tmp_path / "plain")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "plain"]
