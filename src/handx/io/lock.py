"""One writer per store: an exclusive advisory lock held for the whole of a write job.

A job that writes into a store (synthesis, import, annotation, split, filter into it) first takes
``<store>/.handx-lock`` with ``fcntl.flock(LOCK_EX | LOCK_NB)`` and keeps it until the job ends. The operating
system releases the lock when the process exits, however it exits (crash, ``kill -9``), so a lock is never left
stale; the file itself stays and is reused. While holding the lock the job writes who it is (pid, command, start
time, host) into the file, so a second writer is refused at once with an error naming the holder instead of
waiting or interleaving its commits. Readers never take the lock: committed data is always consistent on disk
(manifest last, atomically), so reading while a job writes sees the last commit.

The lock is re-entrant within a process (a job that holds it may call library functions that take it again),
counted per store directory.
"""

from __future__ import annotations

import contextlib
import functools
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from handx.errors import HandxInputError

LOCK_FILE = ".handx-lock"

F = TypeVar("F", bound=Callable[..., Any])

_held: dict[str, tuple[int, int]] = {}  # realpath of the store -> (file descriptor, depth)
_guard = threading.Lock()


class StoreBusyError(HandxInputError):
    """Another process is writing into the store."""


def _holder(fd: int) -> str:
    try:
        raw = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        info = json.loads(raw)
        return (f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: "
                f"{info.get('command')}")
    except (OSError, ValueError):
        return "another process (holder unknown)"


def _write_holder(fd: int, command: str | None) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or "python",
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    payload = json.dumps(info).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, payload, 0)


def acquire(root: str | os.PathLike, command: str | None = None) -> None:
    """Take the write lock of the store directory ``root`` (which must exist), or raise :class:`StoreBusyError`
    naming the process that holds it."""
    key = os.path.realpath(root)
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            return
        path = Path(key) / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise HandxInputError(path, f"cannot open the store's lock file ({exc.strerror})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreBusyError(root, f"another job is writing into this store ({holder}); wait for it to "
                                           "finish (readers are not blocked)") from None
            raise HandxInputError(path, f"cannot lock the store ({exc.strerror})") from exc
        _write_holder(fd, command)
        _held[key] = (fd, 1)


def release(root: str | os.PathLike) -> None:
    """Give back one level of the lock taken by :func:`acquire`; the last release unlocks the store."""
    key = os.path.realpath(root)
    with _guard:
        if key not in _held:
            return
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # closing the descriptor releases the flock


def holds(root: str | os.PathLike) -> bool:
    """Whether this process holds the write lock of ``root``."""
    return os.path.realpath(root) in _held


@contextlib.contextmanager
def store_lock(root: str | os.PathLike, command: str | None = None) -> Iterator[None]:
    """Hold the write lock of the store directory ``root`` for the ``with`` block (creating ``root`` if needed)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    acquire(root, command)
    try:
        yield
    finally:
        release(root)


def command_line() -> str:
    """The command that is running, for lock holders and the manifest's history."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


def writes_store(func: F) -> F:
    """Decorate a job whose first argument is a store directory: it runs holding that store's write lock."""

    @functools.wraps(func)
    def locked(store_dir, *args, **kwargs):
        with store_lock(store_dir, command_line()):
            return func(store_dir, *args, **kwargs)

    return locked  # type: ignore[return-value]
