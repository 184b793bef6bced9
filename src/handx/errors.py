"""Errors raised at handx's boundaries: each names the file, the item and the problem."""

from __future__ import annotations

import os


class HandxInputError(ValueError):
    """Bad input: a file, or one item inside it, that handx cannot accept.

    The message reads ``<file>: <item>: <problem>`` so a user can find and fix the offending data.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str, item: str | None = None):
        self.path = None if path is None else os.fspath(path)
        self.item = item
        self.problem = problem
        parts = [p for p in (self.path, item) if p]
        super().__init__(": ".join([*parts, problem]))


class UnsafePickleError(HandxInputError):
    """A pickled object outside the allowed set (numpy arrays, dicts, lists, strings, numbers)."""
