"""Finding input files: one rule for every importer's ``discover``."""

from __future__ import annotations

import os
from pathlib import Path

from handx.errors import HandxInputError


def find_files(path: str | os.PathLike, suffix: str, *, exclude_suffix: str | None = None) -> list[Path]:
    """The file ``path`` itself, or every file below the directory ``path`` whose name ends in ``suffix``
    (and not in ``exclude_suffix``), sorted. A path that does not exist is an error naming it."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise HandxInputError(path, "no such file or directory")
    return sorted(p for p in path.rglob(f"*{suffix}")
                  if p.is_file() and not (exclude_suffix and p.name.endswith(exclude_suffix)))
