"""Atomic file writes: write to a temporary name in the same directory, then ``os.replace``.

An interrupted job therefore leaves either the old file or the new one, never a half-written file (DESIGN.md,
"The dataset store").

A job killed in the middle of a write (``kill -9``, power loss) leaves its temporary file behind. The name says
who wrote it: ``.<target>.<pid>-<host>.<random>.tmp``, where ``host`` is a tag of this machine and its process
namespace. The next write into the same directory (at most one sweep per directory per minute and process)
removes handx's own orphans, and nothing else: a name must match :data:`TEMP_NAME` and the file must be older
than :data:`ORPHAN_AGE_S`, and then either

* it was written here (same host tag) by a process that is gone: the pid is not running, is running but
  started after the file was last written (the pid was reused), or is this process but the file is not one it
  has open; or
* it carries another machine's tag or none (the names of older handx versions) and is older than
  :data:`FOREIGN_AGE_S`, since a process on another machine cannot be asked whether it still runs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)

#: Names of temporary files: ``.<target>.<pid>-<host tag>.<mkstemp's 8 characters>.tmp``; older versions of handx
#: wrote ``.<target>.<8 characters>.tmp``.
TEMP_NAME = re.compile(r"^\.(?P<target>.+?)\.(?:(?P<pid>\d{1,10})-(?P<host>[0-9a-f]{8})\.)?[a-z0-9_]{8}\.tmp$")
#: A temporary file younger than this is never removed, whoever wrote it.
ORPHAN_AGE_S = 60.0
#: A temporary file written on another machine (or by an older handx) is removed only after this long.
FOREIGN_AGE_S = 3600.0
#: Seconds between two sweeps of one directory by one process.
SWEEP_INTERVAL_S = 60.0


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Permissions of files written here: what ``open`` would give (``mkstemp`` alone makes them private, 0600).
FILE_MODE = 0o666 & ~_umask()


def _host_tag() -> str:
    """8 hex digits naming this machine and its process namespace (pids mean something only within one)."""
    namespace = ""
    with contextlib.suppress(OSError):
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    return hashlib.sha1(f"{socket.gethostname()}/{namespace}".encode()).hexdigest()[:8]


HOST_TAG = _host_tag()
_open_temps: set[str] = set()  # temporary files this process is writing now (absolute paths)
_last_sweep: dict[str, float] = {}  # directory -> time.monotonic() of its last sweep
_guard = threading.Lock()


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None where that cannot be read (not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat(5), after pid and comm
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _writer_gone(pid: int, written: float) -> bool:
    """Whether process ``pid`` of this machine, which last wrote a file at ``written``, no longer writes it."""
    if pid == os.getpid():
        return False  # this process: decided by the caller from the files it has open
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # running, as another user
    start = _process_start(pid)
    return start is not None and start > written + 1.0  # a younger process reuses the pid


def is_orphan(path: str | os.PathLike, now: float | None = None) -> bool:
    """Whether ``path`` is a temporary file of handx whose writer is gone (rules in the module docstring)."""
    path = Path(path)
    match = TEMP_NAME.match(path.name)
    if match is None:
        return False
    try:
        info = path.lstat()
    except OSError:
        return False
    if not path.is_file() or path.is_symlink():
        return False
    age = (time.time() if now is None else now) - info.st_mtime
    if age < ORPHAN_AGE_S:
        return False
    if match["host"] != HOST_TAG:
        return age >= FOREIGN_AGE_S
    pid = int(match["pid"])
    if pid == os.getpid():
        with _guard:
            return os.path.abspath(path) not in _open_temps
    return _writer_gone(pid, info.st_mtime)


def remove_orphans(folder: str | os.PathLike) -> list[Path]:
    """Delete the orphaned temporary files of handx directly in ``folder``; returns what was removed."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(".") or not entry.name.endswith(".tmp"):
            continue
        path = Path(entry.path)
        if is_orphan(path, now):
            try:
                path.unlink()
            except OSError as exc:  # another sweep got there first, or no permission: leave it
                log.debug("%s: orphaned temporary file not removed (%s)", path, exc)
                continue
            log.info("%s: removed a temporary file left by an interrupted job", path)
            removed.append(path)
    return removed


def _sweep(folder: Path) -> None:
    """:func:`remove_orphans` on ``folder`` unless this process swept it less than a minute ago."""
    key = os.path.abspath(folder)
    now = time.monotonic()
    with _guard:
        last = _last_sweep.get(key)
        if last is not None and now - last < SWEEP_INTERVAL_S:
            return
        _last_sweep[key] = now
    remove_orphans(folder)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit flush, fsync and rename it over ``path``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory; give a file name", os.fspath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, f"is a file, not a folder to write {path.name} into",
                                 exc.filename) from exc
    _sweep(path.parent)
    with _guard:  # registered before any sweep of this process can see it
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-{HOST_TAG}.",
                                       suffix=".tmp")
        except OSError as exc:
            raise type(exc)(exc.errno, f"cannot write a file into this directory ({exc.strerror})",
                            os.fspath(path.parent)) from exc
        tmp = os.path.abspath(tmp)
        _open_temps.add(tmp)
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        with _guard:
            _open_temps.discard(tmp)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Atomically write one array in ``.npy`` format (never pickled)."""
    with atomic_open(path, "wb") as handle:
        np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)
