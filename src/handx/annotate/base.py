"""The description-writer interface shared by the template writer and the LLM writer (reference §3).

A writer turns one clip's motion codes (the JSON of reference §2.5, :func:`handx.features.codes.motion_codes`)
into exactly five descriptions, concise (1–2) → moderate (3–4) → detailed (5), each a triplet
``{left, right, two_hands_relation}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from handx.motion import BRANCHES

NUM_VARIANTS = 5
MAX_TEXT_CHARS = 2000
TEXT_KEYS = BRANCHES  # a description's keys are the store's


@dataclasses.dataclass(frozen=True)
class Description:
    """One description variant: what the left hand does, what the right hand does, how they relate."""

    left: str
    right: str
    two_hands_relation: str

    def __post_init__(self) -> None:
        for key in TEXT_KEYS:
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Description.{key} must be a non-empty string, got {value!r}")
            if len(value) > MAX_TEXT_CHARS:
                raise ValueError(f"Description.{key} is {len(value)} characters long (limit {MAX_TEXT_CHARS})")

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class WriteRequest:
    """One clip to describe: its id, its motion codes and a hash of its content (for caching)."""

    clip_id: str
    codes: dict[str, Any]
    content_hash: str


@dataclasses.dataclass(frozen=True)
class WriteResult:
    """The outcome for one clip: five descriptions, or the error that stopped it (never both)."""

    clip_id: str
    descriptions: tuple[Description, ...] | None = None
    error: str | None = None


class DescriptionWriter(Protocol):
    """Anything that writes five descriptions per clip. ``name`` identifies it in provenance and caches."""

    name: str

    def write_many(self, requests: Iterable[WriteRequest]) -> Iterator[WriteResult]:
        """One result per request (any order); a failure is a result with ``error`` set, not an exception."""
        ...


def codes_hash(codes: dict[str, Any]) -> str:
    """A stable content hash of a clip's motion codes (sorted-key JSON, SHA-256)."""
    return hashlib.sha256(json.dumps(codes, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def to_texts(descriptions: Iterable[Description]) -> dict[str, list[str]]:
    """Descriptions → the store's ``texts`` record: three lists of equal length."""
    items = list(descriptions)
    return {key: [getattr(d, key) for d in items] for key in TEXT_KEYS}
