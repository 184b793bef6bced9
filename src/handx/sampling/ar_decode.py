"""Decoding motion codes from the text-prefix AR model (reference §6.7), as a function over a :class:`PrefixLM`.

The reference decodes one text at a time, greedily, re-running the whole sequence for every token and stopping at
END or after 30 tokens. :func:`decode` does the same for a batch and adds, each optional:

* sampling: temperature, top-k and top-p (nucleus) filtering (:func:`filter_logits`), with a seeded generator;
* classifier-free guidance on the logits, ``u + g·(c − u)`` (:func:`handx.sampling.guidance.guided_x0`), where u
  comes from the same texts with all three branches dropped; both run as one batch of 2B rows (g = 1: the
  conditional rows only, g = 0: the unconditional rows only);
* a KV cache (``use_cache``, default): the prefix is encoded once and each token costs one position; with
  ``use_cache=False`` every step recomputes the full forward, the reference's way;
* ``prefix_codes``: continue given codes (continuation, in-betweening, sliding windows);
* ``min_tokens``: END is forbidden until a row holds that many codes.

A row stops when it produces END or reaches ``max_tokens`` codes; the batch stops when every row has.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from handx.models.ar import NUM_BRANCHES, PrefixLM
from handx.sampling.guidance import guided_x0


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """How :func:`decode` picks each code.

    Attributes:
        greedy: take the most likely code (the reference); False samples from the filtered distribution.
        temperature: divides the logits before sampling, > 0 (sampling only).
        top_k: keep the k most likely codes (END counts as one), or None (sampling only).
        top_p: keep the smallest set of most likely codes whose probability reaches p, in (0, 1], or None
            (sampling only).
        guidance: classifier-free guidance scale g ≥ 0 on the logits (1: none).
        max_tokens: codes per row at most, prefix codes included; None: the model's ``max_tokens``.
        min_tokens: END is forbidden while a row holds fewer codes (1: never an empty motion).
        use_cache: decode with the KV cache (False: recompute the full sequence each step).
    """

    greedy: bool = True
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    guidance: float = 1.0
    max_tokens: int | None = None
    min_tokens: int = 1
    use_cache: bool = True

    def __post_init__(self) -> None:
        for name in ("greedy", "use_cache"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"DecodeSettings.{name} must be true or false, got {getattr(self, name)!r}")
        if not _is_number(self.temperature) or not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"DecodeSettings.temperature must be a finite number > 0, got {self.temperature!r}")
        if self.top_k is not None and not (_is_int(self.top_k) and self.top_k >= 1):
            raise ValueError(f"DecodeSettings.top_k must be None or an integer >= 1, got {self.top_k!r}")
        if self.top_p is not None and not (_is_number(self.top_p) and 0.0 < self.top_p <= 1.0):
            raise ValueError(f"DecodeSettings.top_p must be None or a number in (0, 1], got {self.top_p!r}")
        if not (_is_number(self.guidance) and math.isfinite(self.guidance) and self.guidance >= 0):
            raise ValueError(f"DecodeSettings.guidance must be a finite number >= 0, got {self.guidance!r}")
        if self.max_tokens is not None and not (_is_int(self.max_tokens) and self.max_tokens >= 1):
            raise ValueError(f"DecodeSettings.max_tokens must be None or an integer >= 1, got {self.max_tokens!r}")
        if not (_is_int(self.min_tokens) and self.min_tokens >= 0):
            raise ValueError(f"DecodeSettings.min_tokens must be an integer >= 0, got {self.min_tokens!r}")
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"DecodeSettings.min_tokens ({self.min_tokens}) must not exceed max_tokens "
                             f"({self.max_tokens})")
        if self.greedy and (self.temperature != 1.0 or self.top_k is not None or self.top_p is not None):
            raise ValueError("DecodeSettings: temperature, top_k and top_p apply only when greedy=False; "
                             f"got greedy=True with temperature={self.temperature}, top_k={self.top_k}, "
                             f"top_p={self.top_p}")


@dataclasses.dataclass(frozen=True, eq=False)
class DecodeResult:
    """Decoded codes.

    codes: ``(B, S)`` long, S = the longest row; each row's codes (prefix codes included) then END.
    lengths: ``(B,)`` long, codes per row (END excluded).
    """

    codes: Tensor
    lengths: Tensor


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """``logits (..., V)`` with every entry outside the top-k, then outside the top-p nucleus, set to −inf.

    Top-k keeps the entries ≥ the k-th largest (ties at the boundary are all kept). Top-p keeps, in descending
    order, each entry whose preceding probability mass (of the top-k-filtered distribution) is below p, so the
    most likely entry always stays.
    """
    out = logits
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(out, top_k, dim=-1).values[..., -1:]  # (..., 1)
        out = out.masked_fill(out < kth, -math.inf)
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(out, dim=-1, descending=True)  # (..., V)
        probs = sorted_logits.float().softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass of the more likely entries
        remove = torch.zeros_like(before, dtype=torch.bool).scatter(-1, order, before >= top_p)
        out = out.masked_fill(remove, -math.inf)
    return out


@torch.no_grad()
def decode(model: PrefixLM, tokens: Tensor, mask: Tensor, *, settings: DecodeSettings,
           generator: torch.Generator | None = None, prefix_codes: Tensor | None = None) -> DecodeResult:
    """Decode motion codes for B text triplets.

    Args:
        model: the AR transformer.
        tokens: ``(3, B, L, text_dim)`` token features (``handx.text.encode_branches``).
        mask: ``(3, B, L)`` bool, True for a real token.
        settings: how to pick codes.
        generator: random source for sampling (ignored when greedy).
        prefix_codes: ``(B, P)`` long codes in [0, K) to continue from, or None.

    Returns:
        :class:`DecodeResult`; rows start with ``prefix_codes``.
    """
    cfg = model.config
    batch, device = tokens.shape[1], tokens.device
    limit = cfg.max_tokens if settings.max_tokens is None else settings.max_tokens
    if limit > cfg.max_tokens:
        raise ValueError(f"DecodeSettings.max_tokens {limit} exceeds the model's max_tokens {cfg.max_tokens}")
    if settings.min_tokens > limit:
        raise ValueError(f"DecodeSettings.min_tokens {settings.min_tokens} exceeds max_tokens {limit}")
    codes = _check_prefix(prefix_codes, batch, limit, cfg.end_id, device)  # (B, P)
    rows_tokens, rows_mask, drop = _guidance_rows(tokens, mask, settings.guidance)
    copies = rows_tokens.shape[1] // batch

    def feed(x: Tensor) -> Tensor:  # (B, ...) → the model's rows (copies·B, ...)
        return x.repeat(copies, *([1] * (x.ndim - 1)))

    if settings.use_cache:
        logits, cache = model.prefill(rows_tokens, rows_mask, drop, codes=feed(codes))
    else:
        logits = model(rows_tokens, rows_mask, feed(codes), drop)[:, -1]
    lengths = torch.full((batch,), codes.shape[1], dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    for position in range(codes.shape[1], limit):
        scores = _mix(logits.float(), batch, settings.guidance)  # (B, K + 1)
        if position < settings.min_tokens:
            scores[:, cfg.end_id] = -math.inf
        code = _choose(scores, settings, generator)  # (B,)
        code = torch.where(finished, cfg.end_id, code)
        codes = torch.cat([codes, code[:, None]], dim=1)  # (B, position + 1)
        finished = finished | (code == cfg.end_id)
        lengths = lengths + (~finished).long()
        if bool(finished.all()) or position + 1 == limit:
            break
        if settings.use_cache:
            logits, cache = model.step(feed(code), cache)
        else:
            logits = model(rows_tokens, rows_mask, feed(codes), drop)[:, -1]
    longest = int(lengths.max()) if batch else 0
    index = torch.arange(longest, device=device)  # (S,)
    codes = torch.where(index < lengths[:, None], codes[:, :longest], cfg.end_id)  # (B, S)
    return DecodeResult(codes=codes, lengths=lengths)


def _guidance_rows(tokens: Tensor, mask: Tensor, scale: float) -> tuple[Tensor, Tensor, Tensor | None]:
    """The model's input rows: B conditional (g = 1), B unconditional (g = 0) or both, conditional first."""
    batch = tokens.shape[1]
    if scale == 1.0:
        return tokens, mask, None
    every = torch.ones(NUM_BRANCHES, batch, dtype=torch.bool, device=tokens.device)  # (3, B)
    if scale == 0.0:
        return tokens, mask, every
    drop = torch.cat([~every, every], dim=1)  # (3, 2B)
    return torch.cat([tokens, tokens], dim=1), torch.cat([mask, mask], dim=1), drop


def _mix(logits: Tensor, batch: int, scale: float) -> Tensor:
    """Guided logits ``(B, K + 1)`` from the model's rows."""
    if logits.shape[0] == batch:
        return logits.clone()
    return guided_x0(logits[:batch], logits[batch:], scale)


def _choose(scores: Tensor, settings: DecodeSettings, generator: torch.Generator | None) -> Tensor:
    """One code per row from guided logits ``(B, K + 1)``."""
    if settings.greedy:
        return scores.argmax(dim=-1)
    filtered = filter_logits(scores / settings.temperature, settings.top_k, settings.top_p)
    return torch.multinomial(filtered.softmax(dim=-1), 1, generator=generator)[:, 0]


def _check_prefix(prefix_codes: Tensor | None, batch: int, limit: int, end: int, device: torch.device) -> Tensor:
    if prefix_codes is None:
        return torch.empty(batch, 0, dtype=torch.long, device=device)
    if prefix_codes.ndim != 2 or prefix_codes.shape[0] != batch or prefix_codes.dtype != torch.long:
        raise ValueError(f"prefix_codes must be long ({batch}, P), got {prefix_codes.dtype} "
                         f"{tuple(prefix_codes.shape)}")
    if prefix_codes.shape[1] > limit:
        raise ValueError(f"prefix_codes has {prefix_codes.shape[1]} codes, more than max_tokens {limit}")
    if prefix_codes.numel() and not (0 <= int(prefix_codes.min()) and int(prefix_codes.max()) < end):
        raise ValueError(f"prefix_codes must be motion codes in [0, {end}) (no END), got values in "
                         f"[{int(prefix_codes.min())}, {int(prefix_codes.max())}]")
    return prefix_codes.to(device)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
