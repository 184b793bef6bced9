"""A restricted unpickler for the pickled dicts inside the public HandX ``.npz`` files (reference §1.3).

The release stores each clip as a 0-d object array whose pickle holds a dict of numpy arrays, lists and
strings. ``numpy.load(allow_pickle=True)`` would run any code a crafted file asks for; we instead parse each
``.npy`` member ourselves and unpickle object arrays with :class:`RestrictedUnpickler`, which admits only what
numpy needs to rebuild arrays and scalars. Dicts, lists, tuples, strings, bytes and numbers need no globals
and are always allowed. Anything else raises :class:`~handx.errors.UnsafePickleError`.
"""

from __future__ import annotations

import io
import pickle
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


def _read_npy_member(handle: IO[bytes], *, path: str, item: str) -> np.ndarray | Any:
    """Read one ``.npy`` stream, unpickling object arrays through :class:`RestrictedUnpickler`."""
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
    if dtype.hasobject:
        try:
            return RestrictedUnpickler(handle, path=path, item=item).load()
        except UnsafePickleError:
            raise
        except Exception as exc:  # truncated or corrupt pickle stream
            raise HandxInputError(path, f"corrupt pickled object ({type(exc).__name__}: {exc})", item) from exc
    count = int(np.prod(shape, dtype=np.int64))
    data = handle.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise HandxInputError(path, f"truncated array data ({len(data)} of {count * dtype.itemsize} bytes)", item)
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def iter_npz(path: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, value)`` for every member of an ``.npz`` file, safely, one member at a time.

    Object arrays yield their unpickled content (for a 0-d object array, the object itself when it is a
    0-d array: ``value.item()`` is applied). Raises :class:`HandxInputError` naming the file and key for a
    truncated or corrupt archive.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise HandxInputError(path, f"not a readable .npz archive ({exc})") from exc
    with archive:
        for info in archive.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            try:
                with archive.open(info) as member:
                    value = _read_npy_member(io.BufferedReader(member), path=path, item=f"key {key!r}")
            except HandxInputError:
                raise
            except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
                raise HandxInputError(path, f"corrupt archive member ({exc})", f"key {key!r}") from exc
            if isinstance(value, np.ndarray) and value.dtype.hasobject and value.shape == ():
                value = value.item()
            yield key, value


def load_pickle_bytes(data: bytes, *, path: str | None = None, item: str | None = None) -> Any:
    """Unpickle ``data`` with the restricted unpickler (for tests and side files)."""
    return RestrictedUnpickler(io.BytesIO(data), path=path, item=item).load()
