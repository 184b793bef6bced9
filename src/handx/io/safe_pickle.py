"""Safe reading of ``.npy`` and ``.npz`` files: a restricted unpickler for the pickled dicts inside the public
HandX ``.npz`` files (reference §1.3), and size checks made before anything is allocated.

The release stores each clip as a 0-d object array whose pickle holds a dict of numpy arrays, lists and
strings. ``numpy.load(allow_pickle=True)`` would run any code a crafted file asks for; we instead parse each
``.npy`` member ourselves and unpickle object arrays with :class:`RestrictedUnpickler`, which admits only what
numpy needs to rebuild arrays and scalars. Dicts, lists, tuples, strings, bytes and numbers need no globals
and are always allowed. Anything else raises :class:`~handx.errors.UnsafePickleError`.

Sizes are checked from what the file declares before reading (a small file must not make us allocate a huge
one): a zip member's own ``file_size`` against a limit, its ``file_size / compress_size`` against
:data:`MAX_COMPRESSION_RATIO` (a zip bomb: 200 kB of deflate can declare and inflate to 200 MB of zeros), an
``.npy`` header's shape × item size against the bytes the member or file really holds (a header may declare a
terabyte array over 64 bytes of data), and a pickle's memo slots against the opcodes read (:func:`check_memo`).
Limits: :data:`MAX_MEMBER_BYTES` (16 MiB) per member of a release file, where one clip takes about 62 kB;
:data:`MAX_ARRAY_BYTES` (1 GiB) per array and :data:`MAX_NPZ_BYTES` (4 GiB) per archive for the arrays handx
writes itself (generations, clips).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import zipfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from handx.errors import HandxInputError, UnsafePickleError

#: The only globals a pickle may reference: numpy's array/scalar/dtype reconstruction hooks.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
) | frozenset({("numpy", "ndarray"), ("numpy", "dtype")})
#: Largest member of a HandX release ``.npz`` (uncompressed bytes): one clip with its texts is about 62 kB.
MAX_MEMBER_BYTES = 16 * 2**20
#: Largest array read from a plain ``.npy`` / ``.npz`` (generations, clips), and largest such archive in all.
MAX_ARRAY_BYTES = 2**30
MAX_NPZ_BYTES = 4 * 2**30
#: Most a member may inflate (uncompressed / compressed bytes) once it is larger than :data:`RATIO_FLOOR_BYTES`;
#: float motion deflates by less than 2×, texts by less than 10×.
MAX_COMPRESSION_RATIO = 100
RATIO_FLOOR_BYTES = 2**20


class Pickled:
    """What :func:`iter_npz_members` yields for an object array when asked not to unpickle."""

    def __repr__(self) -> str:
        return "<pickled object array, not read>"


PICKLED = Pickled()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global outside :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: IO[bytes], *, path: str | None = None, item: str | None = None):
        super().__init__(file, encoding="latin1")
        self._path = path
        self._item = item

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                self._path,
                f"refusing to unpickle {module}.{name}: only numpy arrays, dicts, lists, strings and numbers are allowed",
                self._item,
            )
        return super().find_class(module, name)


def check_member(info: zipfile.ZipInfo, *, max_bytes: int, path: str, item: str) -> None:
    """Refuse a zip member that declares more than ``max_bytes`` or inflates more than
    :data:`MAX_COMPRESSION_RATIO` times, before any of it is read."""
    if info.file_size > max_bytes:
        raise HandxInputError(path, f"member declares {info.file_size} bytes, more than the {max_bytes} accepted",
                              item)
    if (info.compress_type != zipfile.ZIP_STORED and info.file_size > RATIO_FLOOR_BYTES
            and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size):
        raise HandxInputError(path, f"member inflates {info.compress_size} compressed bytes to {info.file_size}, "
                                    f"more than {MAX_COMPRESSION_RATIO}×: refused as a zip bomb", item)


def check_memo(data: bytes, *, path: str | None, item: str | None) -> None:
    """Refuse a pickle that stores into a memo slot beyond the number of opcodes read so far.

    Python's pickler numbers memo slots 0, 1, 2, ... as it goes, but the unpickler grows its memo table to
    whatever index an opcode names: ten bytes with ``LONG_BINPUT 2**26`` cost a gigabyte and seconds.
    """
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(data)):
            if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > count:
                raise HandxInputError(path, f"pickle stores into memo slot {arg} after {count} opcodes: refused "
                                            "(a memory bomb; real pickles number their slots in order)", item)
    except HandxInputError:
        raise
    except Exception as exc:  # pickletools raises ValueError and others on a corrupt stream
        raise HandxInputError(path, f"corrupt pickled object ({type(exc).__name__}: {exc})", item) from exc


def read_npy_header(handle: IO[bytes], *, size: int, path: str, item: str | None = None
                    ) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read an ``.npy`` header from ``handle`` (a stream of ``size`` bytes in all): ``(shape, fortran, dtype)``.

    Refuses a header that is not ``.npy`` and, for plain dtypes, one whose array (shape × item size, in exact
    integers) needs more bytes than the stream holds after the header, so nothing is allocated for it.
    """
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise HandxInputError(path, f"unsupported .npy format version {version}", item)
    except ValueError as exc:
        raise HandxInputError(path, f"not a valid .npy member ({exc})", item) from exc
    if not dtype.hasobject:
        needed = math.prod(shape) * dtype.itemsize
        left = size - handle.tell()
        if needed > left:
            raise HandxInputError(path, f"header declares an array of shape {shape} {dtype} ({needed} bytes) but "
                                        f"only {left} bytes follow it", item)
    return shape, fortran, dtype


def _read_npy_member(handle: IO[bytes], *, size: int, path: str, item: str | None, unpickle: bool = True
                     ) -> Any:
    """Read one ``.npy`` stream of ``size`` bytes, unpickling object arrays through :class:`RestrictedUnpickler`
    (or giving :data:`PICKLED` for them when not ``unpickle``)."""
    shape, fortran, dtype = read_npy_header(handle, size=size, path=path, item=item)
    if dtype.hasobject:
        if not unpickle:
            return PICKLED
        data = handle.read(size - handle.tell())  # the pickle: at most the member's declared size
        check_memo(data, path=path, item=item)
        try:
            return RestrictedUnpickler(io.BytesIO(data), path=path, item=item).load()
        except UnsafePickleError:
            raise
        except Exception as exc:  # truncated or corrupt pickle stream
            raise HandxInputError(path, f"corrupt pickled object ({type(exc).__name__}: {exc})", item) from exc
    count = math.prod(shape)
    data = handle.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise HandxInputError(path, f"truncated array data ({len(data)} of {count * dtype.itemsize} bytes)", item)
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def iter_npz_members(path: str, *, max_member_bytes: int = MAX_MEMBER_BYTES, max_total_bytes: int | None = None,
                     unpickle: bool = True) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, value)`` for every member of an ``.npz`` file, safely, one member at a time.

    ``value`` is the array, the unpickled content of an object array (for a 0-d object array, the object
    itself: ``value.item()`` is applied; :data:`PICKLED` when not ``unpickle``), or the
    :class:`HandxInputError` that refuses that member (too large, a zip bomb, a bad header, corrupt data), so a
    caller can go on with the others. An archive that cannot be opened, one whose members declare more than
    ``max_total_bytes`` together, and a pickle that asks for anything outside :data:`ALLOWED_GLOBALS` raise.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise HandxInputError(path, f"not a readable .npz archive ({exc})") from exc
    with archive:
        infos = archive.infolist()
        total = sum(info.file_size for info in infos)
        if max_total_bytes is not None and total > max_total_bytes:
            raise HandxInputError(path, f"members declare {total} bytes in all, more than the {max_total_bytes} "
                                        "accepted")
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            item = f"key {key!r}"
            try:
                check_member(info, max_bytes=max_member_bytes, path=path, item=item)
                with archive.open(info) as member:
                    value = _read_npy_member(io.BufferedReader(member), size=info.file_size, path=path, item=item,
                                             unpickle=unpickle)
            except UnsafePickleError:
                raise
            except HandxInputError as exc:
                yield key, exc
                continue
            except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
                yield key, HandxInputError(path, f"corrupt archive member ({exc})", item)
                continue
            if isinstance(value, np.ndarray) and value.dtype.hasobject and value.shape == ():
                value = value.item()
            yield key, value


def iter_npz(path: str, *, max_member_bytes: int = MAX_MEMBER_BYTES) -> Iterator[tuple[str, Any]]:
    """:func:`iter_npz_members` that raises the first refused member instead of yielding it."""
    for key, value in iter_npz_members(path, max_member_bytes=max_member_bytes):
        if isinstance(value, HandxInputError):
            raise value
        yield key, value


def read_npy(path: str | os.PathLike, *, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """A plain (not pickled) ``.npy`` file, refused before reading when it is larger than ``max_bytes`` or its
    header declares more than the file holds."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise HandxInputError(path, f"file of {size} bytes is larger than the {max_bytes} accepted")
        with open(path, "rb") as handle:
            value = _read_npy_member(handle, size=size, path=path, item=None, unpickle=False)
    except OSError as exc:
        raise HandxInputError(path, f"cannot read file: {exc.strerror or exc}") from exc
    if value is PICKLED:
        raise HandxInputError(path, "holds pickled objects; only plain arrays are read from .npy files")
    return value


def load_pickle_bytes(data: bytes, *, path: str | None = None, item: str | None = None) -> Any:
    """Unpickle ``data`` with the restricted unpickler (for tests and side files)."""
    check_memo(data, path=path, item=item)
    return RestrictedUnpickler(io.BytesIO(data), path=path, item=item).load()
