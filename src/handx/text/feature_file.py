"""Text features of a dataset store computed once per (store, text encoder) into memory-mapped side files.

The text encoder is frozen (handx-reference.md §4.2), so the token features of every distinct text of a store
are computed once, before training, and read back by index: a training step gathers rows instead of running the
encoder, and memory stays bounded by the batch (the files are opened with ``mmap_mode="r"``). Layout, under
``<store>/features/text-<encoder>/``::

    texts.json      the encoded texts, in row order, with the encoder's name and width
    tokens.npy      float16 ``(total_tokens, D)``: every text's real tokens, one text after another
    offsets.npy     int64 ``(N + 1,)``: text i is ``tokens[offsets[i]:offsets[i + 1]]``
    parts/          encoded chunks of a build in progress (a killed build resumes from the last whole part)

float16 keeps the files half the size of float32; features are converted back to float32 when gathered (a
relative rounding of 2⁻¹¹, far below what a text-conditioned network can tell apart). Texts are encoded in
chunks sorted by length (less padding, so about 1.3× faster than encoding in corpus order).

When the store gains texts, :meth:`TextFeatureFile.build` encodes only the new ones and rewrites the index
atomically; a reader that opened the old files keeps a consistent view.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from handx.io.atomic import atomic_open, write_json
from handx.text.encoder import TextEncoder, TextFeatures

PART_SIZE = 4096  # texts per encoded chunk (the unit a killed build resumes from)
ENCODE_BATCH = 256
FORMAT = "handx-text-features"


def feature_dir(store_dir: str | os.PathLike, encoder_name: str) -> Path:
    """Where the features of ``encoder_name`` for the store at ``store_dir`` live."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_name).strip("_") or "encoder"
    return Path(store_dir) / "features" / f"text-{safe}"


class TextFeatureFile:
    """The token features of a set of texts, memory-mapped; ``rows(texts)`` maps texts to row numbers and
    ``gather(rows)`` returns a padded :class:`TextFeatures` batch (float32, on the CPU)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        meta_path = self.folder / "texts.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            self.tokens = np.load(self.folder / "tokens.npy", mmap_mode="r")  # (total, D) float16
            self.offsets = np.load(self.folder / "offsets.npy")  # (N + 1,) int64
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(f"{self.folder}: no complete text features ({exc})") from exc
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
        self.encoder_name: str = meta["encoder"]
        self.dim: int = int(meta["dim"])
        self.texts: list[str] = list(meta["texts"])
        if len(self.offsets) != len(self.texts) + 1 or self.tokens.shape != (int(self.offsets[-1]), self.dim):
            raise ValueError(f"{self.folder}: the index ({len(self.texts)} texts) does not match tokens.npy "
                             f"{self.tokens.shape} and offsets.npy ({len(self.offsets)} entries); rebuild it")
        self._index = {text: i for i, text in enumerate(self.texts)}

    def __len__(self) -> int:
        return len(self.texts)

    def rows(self, texts: Sequence[str]) -> np.ndarray:
        """Row numbers of ``texts`` (int64); KeyError names the first text that has no features."""
        try:
            return np.fromiter((self._index[t] for t in texts), dtype=np.int64, count=len(texts))
        except KeyError as exc:
            raise KeyError(f"{self.folder}: no features for text {str(exc)[:80]}; rebuild them "
                           "(TextFeatureFile.build)") from None

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        return self.offsets[rows + 1] - self.offsets[rows]

    def gather(self, rows: np.ndarray, length: int | None = None) -> TextFeatures:
        """The features of ``rows`` ``(B,)``, right-padded to their longest (or to ``length``)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, lengths = self.offsets[rows], self.lengths(rows)  # (B,), (B,)
        width = int(lengths.max()) if length is None else int(length)
        if width < int(lengths.max()):
            raise ValueError(f"gather: length {width} is shorter than the longest text ({int(lengths.max())})")
        position = np.arange(width)  # (L,)
        valid = position[None, :] < lengths[:, None]  # (B, L)
        index = np.where(valid, starts[:, None] + position[None, :], 0)  # (B, L)
        tokens = np.asarray(self.tokens[index.reshape(-1)], dtype=np.float32).reshape(len(rows), width, self.dim)
        tokens[~valid] = 0.0
        return TextFeatures(torch.from_numpy(tokens), torch.from_numpy(valid))

    @classmethod
    def build(cls, folder: str | os.PathLike, texts: Sequence[str], encoder: TextEncoder, *,
              progress: bool = True) -> TextFeatureFile:
        """Features for every text of ``texts`` in ``folder``, encoding only those not there yet; resumable.

        Rows of texts already encoded keep their numbers; new texts are appended.
        """
        folder = Path(folder)
        existing: TextFeatureFile | None = None
        try:
            existing = cls(folder)
        except FileNotFoundError:
            pass
        if existing is not None and (existing.encoder_name != encoder.name or existing.dim != encoder.dim):
            raise ValueError(f"{folder}: holds features of {existing.encoder_name} ({existing.dim}-d), not of "
                             f"{encoder.name} ({encoder.dim}-d)")
        known = set(existing.texts) if existing is not None else set()
        new = [t for t in dict.fromkeys(texts) if t not in known]
        if not new:
            assert existing is not None
            return existing
        parts = folder / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        chunks = range(0, len(new), PART_SIZE)
        names = [f"part-{_texts_key(new[lo:lo + PART_SIZE])[:16]}.npz" for lo in chunks]  # named by content
        with tqdm(total=len(new), desc=f"encode texts ({encoder.name})", unit="text", disable=not progress) as bar:
            for name, lo in zip(names, chunks):
                path = parts / name
                chunk = new[lo:lo + PART_SIZE]
                if not path.is_file():
                    tokens, lengths = _encode_sorted(encoder, chunk)
                    with atomic_open(path, "wb") as handle:
                        np.savez(handle, tokens=tokens, lengths=lengths)
                bar.update(len(chunk))
        pieces_tokens, pieces_lengths = [], []
        if existing is not None:
            pieces_tokens.append(np.asarray(existing.tokens))
            pieces_lengths.append(np.diff(existing.offsets))
        for name in names:
            with np.load(parts / name) as part:
                pieces_tokens.append(part["tokens"])
                pieces_lengths.append(part["lengths"])
        lengths = np.concatenate(pieces_lengths).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        all_texts = (existing.texts if existing is not None else []) + new
        del existing  # release the old memory map before replacing its file
        with atomic_open(folder / "tokens.npy", "wb") as handle:
            np.save(handle, np.concatenate(pieces_tokens).astype(np.float16))
        with atomic_open(folder / "offsets.npy", "wb") as handle:
            np.save(handle, offsets)
        write_json(folder / "texts.json", {"format": FORMAT, "encoder": encoder.name, "dim": encoder.dim,
                                           "texts": all_texts})
        shutil.rmtree(parts, ignore_errors=True)
        return cls(folder)


def _texts_key(texts: Sequence[str]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


@torch.no_grad()
def _encode_sorted(encoder: TextEncoder, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``texts`` in batches of similar length; returns float16 ``(sum L_i, D)`` tokens in the order of
    ``texts`` and the lengths ``(n,)``."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    rows: list[np.ndarray | None] = [None] * len(texts)
    for lo in range(0, len(order), ENCODE_BATCH):
        batch = order[lo:lo + ENCODE_BATCH]
        features = encoder.encode([texts[i] for i in batch])
        for i, row in zip(batch, features.rows()):
            rows[i] = row.detach().cpu().numpy().astype(np.float16)
    lengths = np.array([len(r) for r in rows], dtype=np.int64)  # type: ignore[arg-type]
    return np.concatenate(rows), lengths  # type: ignore[arg-type]
