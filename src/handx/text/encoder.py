"""The text-encoder contract: token-level features with a padding mask.

The diffusion denoiser cross-attends to the token features of each text branch, with the mask as the memory
key-padding mask (handx-reference.md §4.2: T5 ``last_hidden_state`` and its attention mask); the AR model uses
them as a prefix. Every encoder returns the same typed batch, :class:`TextFeatures`, so models never depend on
which encoder produced their conditioning (DESIGN.md, Models → Text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True, eq=False)
class TextFeatures:
    """Token features of a batch of texts, right-padded to the longest text of the batch.

    tokens: float32 ``(B, L, D)``; positions where ``mask`` is False hold zeros.
    mask: bool ``(B, L)``, True for a real token. Every row has at least one real token (the encoders' special
    tokens), so attention over a row never sees only padding. Real tokens come first in every row.
    """

    tokens: torch.Tensor
    mask: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.tokens, torch.Tensor) or self.tokens.ndim != 3:
            raise ValueError(f"TextFeatures.tokens: expected a (B, L, D) tensor, got {_describe(self.tokens)}")
        if self.tokens.dtype != torch.float32:
            raise ValueError(f"TextFeatures.tokens: expected dtype float32, got {self.tokens.dtype}")
        if not isinstance(self.mask, torch.Tensor) or self.mask.dtype != torch.bool:
            raise ValueError(f"TextFeatures.mask: expected a bool tensor, got {_describe(self.mask)}")
        if tuple(self.mask.shape) != tuple(self.tokens.shape[:2]):
            raise ValueError(f"TextFeatures.mask: expected shape {tuple(self.tokens.shape[:2])} (B, L) to match "
                             f"tokens {tuple(self.tokens.shape)}, got {tuple(self.mask.shape)}")
        if self.mask.device != self.tokens.device:
            raise ValueError(f"TextFeatures: tokens on {self.tokens.device} but mask on {self.mask.device}")
        if self.tokens.shape[0] and not bool(self.mask.any(dim=1).all()):
            empty = torch.nonzero(~self.mask.any(dim=1)).flatten().tolist()
            raise ValueError(f"TextFeatures.mask: rows {empty} have no real token; every text needs at least one")

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    @property
    def length(self) -> int:
        """L, the padded length."""
        return self.tokens.shape[1]

    @property
    def dim(self) -> int:
        return self.tokens.shape[2]

    @property
    def lengths(self) -> torch.Tensor:
        """Real tokens per row, int64 ``(B,)``."""
        return self.mask.sum(dim=1)

    def to(self, device: torch.device | str) -> TextFeatures:
        return TextFeatures(self.tokens.to(device), self.mask.to(device))

    def pad_to(self, length: int) -> TextFeatures:
        """Right-pad with masked zero tokens to ``length`` (≥ the current length; features are never cut)."""
        if length < self.length:
            raise ValueError(f"pad_to: length {length} is shorter than the features' length {self.length}; "
                             "padding never truncates")
        extra = length - self.length
        if extra == 0:
            return self
        tokens = torch.nn.functional.pad(self.tokens, (0, 0, 0, extra))  # (B, length, D)
        mask = torch.nn.functional.pad(self.mask, (0, extra), value=False)  # (B, length)
        return TextFeatures(tokens, mask)

    def rows(self) -> list[torch.Tensor]:
        """The unpadded features of each text: a list of ``(L_i, D)`` views."""
        return [self.tokens[i, :n] for i, n in enumerate(self.lengths.tolist())]

    def mean_pool(self) -> torch.Tensor:
        """Mean of the real tokens of each row, ``(B, D)``."""
        weights = self.mask.to(self.tokens.dtype).unsqueeze(-1)  # (B, L, 1)
        return (self.tokens * weights).sum(dim=1) / weights.sum(dim=1)

    @classmethod
    def from_rows(cls, rows: Sequence[torch.Tensor]) -> TextFeatures:
        """Right-pad unpadded ``(L_i, D)`` features (each ``L_i ≥ 1``) into one batch."""
        if not rows:
            raise ValueError("TextFeatures.from_rows: no rows given")
        for i, row in enumerate(rows):
            if row.ndim != 2 or row.shape[0] == 0 or row.shape[1] != rows[0].shape[1]:
                raise ValueError(f"TextFeatures.from_rows: rows[{i}] has shape {tuple(row.shape)}; expected "
                                 f"(L_i ≥ 1, {rows[0].shape[1]})")
        lengths = torch.tensor([row.shape[0] for row in rows], device=rows[0].device)
        tokens = torch.nn.utils.rnn.pad_sequence(list(rows), batch_first=True)  # (B, L, D)
        mask = torch.arange(tokens.shape[1], device=tokens.device) < lengths[:, None]  # (B, L)
        return cls(tokens, mask)

    @classmethod
    def concat(cls, parts: Sequence[TextFeatures]) -> TextFeatures:
        """Join batches along B, padding each to the longest."""
        if not parts:
            raise ValueError("TextFeatures.concat: no features given")
        length = max(part.length for part in parts)
        padded = [part.pad_to(length) for part in parts]
        return cls(torch.cat([p.tokens for p in padded]), torch.cat([p.mask for p in padded]))


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into token features.

    ``name`` identifies the features (recorded in checkpoints); ``dim`` is D. ``encode`` returns one row per
    text, padded to the longest of the batch; an empty string gives at least one real token; texts longer than
    the encoder's token limit are truncated to it, never an error.
    """

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> TextFeatures: ...


def encode_branches(encoder: TextEncoder, texts: Sequence[Sequence[str]], device: torch.device | str | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Several text branches (left, right, relation: B texts each) → tokens ``(3, B, L, D)`` and mask
    ``(3, B, L)``, every branch padded to the longest, on ``device`` (the treble-text input of the diffusion
    denoiser and of the evaluator's text head)."""
    features = [encoder.encode(list(t)) for t in texts]
    length = max(f.length for f in features)
    padded = [f.pad_to(length) for f in features]
    tokens = torch.stack([f.tokens for f in padded])  # (3, B, L, D)
    mask = torch.stack([f.mask for f in padded])  # (3, B, L)
    return (tokens, mask) if device is None else (tokens.to(device), mask.to(device))


def check_texts(texts: Sequence[str]) -> list[str]:
    """Return ``texts`` as a list after checking it is a non-empty sequence of strings (ValueError otherwise)."""
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"texts: expected a sequence of strings, got a single {type(texts).__name__} "
                         f"{texts[:40]!r}; wrap it in a list")
    texts = list(texts)
    if not texts:
        raise ValueError("texts: expected at least one text, got an empty sequence")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}]: expected str, got {type(text).__name__} ({text!r:.60})")
    return texts


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__
