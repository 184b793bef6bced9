"""An in-memory LRU cache of token features per unique text, around any :class:`TextEncoder`.

HandX texts repeat heavily across epochs (five variants per branch per clip, DESIGN.md "Texts"), and the text encoder
is frozen (handx-reference.md §4.2), so each string is encoded once and its unpadded ``(L_i, D)`` features are
kept on the CPU. A batch is rebuilt by padding, giving the same features as the wrapped encoder.

Memory: about ``L_i · D · 4`` bytes per entry, e.g. 25 KB for a 16-token MiniLM text, so 100,000 entries would take
up to about 2.5 GB; the default of 20,000 entries stays near 0.5 GB. Lower ``max_items`` to bound it further.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch

from handx.text.encoder import TextEncoder, TextFeatures, check_texts


class CachedTextEncoder:
    """Wraps ``encoder``; features are cached per unique string, least recently used evicted past ``max_items``.

    ``misses`` counts strings sent to the wrapped encoder, ``hits`` requested texts served without encoding
    (including repeats of a new string within one batch). Output is on the device the wrapped encoder uses.
    """

    def __init__(self, encoder: TextEncoder, max_items: int = 20_000):
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"max_items: expected an int ≥ 1, got {max_items!r}")
        self.encoder = encoder
        self.name = encoder.name
        self.dim = encoder.dim
        self.max_items = max_items
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, torch.Tensor] = OrderedDict()  # text → (L_i, D) on the CPU
        self._device: torch.device | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"CachedTextEncoder({self.encoder!r}, items={len(self)}/{self.max_items})"

    def clear(self) -> None:
        self._entries.clear()
        self.hits = self.misses = 0

    def encode(self, texts: Sequence[str]) -> TextFeatures:
        texts = check_texts(texts)
        found = {text: self._entries[text] for text in dict.fromkeys(texts) if text in self._entries}
        new = [text for text in dict.fromkeys(texts) if text not in found]
        if new:
            features = self.encoder.encode(new)
            self._device = features.tokens.device
            lengths = features.lengths.tolist()
            if not bool((features.mask == (torch.arange(features.length, device=features.mask.device)
                                           < features.lengths[:, None])).all()):
                raise ValueError(f"{self.name}: CachedTextEncoder needs right-padded features "
                                 "(real tokens first in every row)")
            tokens = features.tokens.cpu()
            for i, text in enumerate(new):
                found[text] = tokens[i, : lengths[i]].clone()  # (L_i, D)
        self.misses += len(new)
        self.hits += len(texts) - len(new)
        for text in texts:
            self._entries[text] = found[text]
            self._entries.move_to_end(text)
        while len(self._entries) > self.max_items:
            self._entries.popitem(last=False)
        batch = TextFeatures.from_rows([found[text] for text in texts])
        return batch.to(self._device) if self._device is not None else batch
