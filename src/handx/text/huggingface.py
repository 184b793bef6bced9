"""Hugging Face ``transformers`` encoders, loaded from local files only.

The paper's encoder is the frozen T5-base encoder: ``last_hidden_state (B, L, 768)`` with the tokenizer's
attention mask as the key-padding mask (handx-reference.md §4.2). :class:`HuggingFaceEncoder` gives the same for
any encoder a user already has on disk (a directory, or a name in the local Hugging Face cache). For
encoder–decoder models (T5, mT5, ...) only the encoder is loaded. Nothing is ever downloaded (DESIGN.md, "Offline
by default"): a model that is not available locally is an error that says how to get it.

A model directory is untrusted input (it may come with a run folder): ``trust_remote_code=False`` on every load,
so a model whose files ship their own Python code is refused instead of run (docs/security.md).

Loaded models are cached per process, keyed by (model files, device), and shared by every encoder using them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from handx.text.encoder import TextFeatures, check_texts

log = logging.getLogger(__name__)

_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_LOADED: dict[tuple[str, str], tuple[Any, torch.nn.Module]] = {}
_LOCK = threading.Lock()


class ModelNotAvailableError(FileNotFoundError):
    """A Hugging Face model that is not on this machine; handx never downloads models."""


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Set ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` while loading, then restore the previous values.

    Every load also passes ``local_files_only=True``, which is the guarantee; the variables are a second guard
    (and ``huggingface_hub`` reads them once at import, so a first import under them stays offline).
    """
    previous = {name: os.environ.get(name) for name in _OFFLINE_VARIABLES}
    os.environ.update({name: "1" for name in _OFFLINE_VARIABLES})
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_config(source: str) -> Any:
    """The model's ``transformers`` config from local files, or :class:`ModelNotAvailableError`."""
    with offline():
        import transformers

        try:
            return transformers.AutoConfig.from_pretrained(source, local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError) as error:
            raise ModelNotAvailableError(_not_available_message(source, error)) from error


def load_model(source: str, device: torch.device) -> tuple[Any, torch.nn.Module]:
    """Tokenizer and encoder network for ``source`` on ``device``: frozen, eval mode, loaded once per process."""
    key = (source, str(device))
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load_uncached(source, device)
        return _LOADED[key]


def _load_uncached(source: str, device: torch.device) -> tuple[Any, torch.nn.Module]:
    with offline():
        import transformers
        from transformers.models.auto.modeling_auto import MODEL_FOR_TEXT_ENCODING_MAPPING

        transformers.utils.logging.disable_progress_bar()  # a per-load bar on the console helps nobody

        log.info("loading text encoder %s on %s (local files only)", source, device)
        try:
            config = transformers.AutoConfig.from_pretrained(source, local_files_only=True, trust_remote_code=False)
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True, trust_remote_code=False)
            if type(config) in MODEL_FOR_TEXT_ENCODING_MAPPING:  # e.g. T5 → T5EncoderModel, BERT → BertModel
                model = transformers.AutoModelForTextEncoding.from_pretrained(source, local_files_only=True, trust_remote_code=False)
            else:
                model = transformers.AutoModel.from_pretrained(source, local_files_only=True, trust_remote_code=False)
                if getattr(config, "is_encoder_decoder", False):
                    model = model.get_encoder()
        except (OSError, ValueError) as error:
            raise ModelNotAvailableError(_not_available_message(source, error)) from error
    tokenizer.padding_side = "right"  # TextFeatures puts real tokens first
    model.eval().requires_grad_(False).to(device)
    return tokenizer, model


def _not_available_message(source: str, error: Exception) -> str:
    hint = (f"download it yourself (for a Hub model: `hf download {source} --local-dir <dir>`) "
            f"and pass the directory, e.g. load_text_encoder('hf:<dir>')")
    if Path(source).expanduser().exists():
        return f"{source}: not a loadable Hugging Face model directory ({error}); {hint}"
    return (f"{source}: Hugging Face model not available locally (not a directory, and not in the local Hugging "
            f"Face cache); handx never downloads models: {hint}")


def hidden_size(config: Any) -> int:
    """D of the encoder's last hidden state, from its config."""
    for field in ("hidden_size", "d_model", "dim", "n_embd"):
        value = getattr(config, field, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"{getattr(config, 'name_or_path', config)}: config names no hidden size "
                     "(hidden_size, d_model, dim or n_embd)")


class TransformerTextEncoder:
    """Token features from a local ``transformers`` model: ``last_hidden_state`` with the attention mask.

    Texts are tokenized with the model's special tokens and truncated to ``max_tokens`` tokens, special tokens
    included. Padding positions are zeroed. The model is loaded on first use. Subclasses pick the model files.
    """

    def __init__(self, name: str, source: str, dim: int, max_tokens: int, device: torch.device | str):
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
            raise ValueError(f"max_tokens: expected an int ≥ 2 (special tokens count), got {max_tokens!r}")
        self.name = name
        self.dim = dim
        self.max_tokens = max_tokens
        self.device = torch.device(device)
        self._source = source

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, max_tokens={self.max_tokens}, device='{self.device}')"

    def encode(self, texts: Sequence[str]) -> TextFeatures:
        texts = check_texts(texts)
        tokenizer, model = load_model(self._source, self.device)
        batch = tokenizer(texts, padding="longest", truncation=True, max_length=self.max_tokens,
                          return_tensors="pt")
        mask = batch["attention_mask"].to(self.device, torch.bool)  # (B, L)
        if not bool(mask.any(dim=1).all()):
            empty = torch.nonzero(~mask.any(dim=1)).flatten().tolist()
            raise ValueError(f"{self.name}: the tokenizer gave no tokens for texts {empty} "
                             f"({[texts[i] for i in empty]!r:.80}); this model adds no special tokens, so "
                             "empty texts cannot be encoded")
        with torch.no_grad():
            output = model(input_ids=batch["input_ids"].to(self.device), attention_mask=mask.long())
        tokens = output.last_hidden_state.float() * mask.unsqueeze(-1)  # (B, L, D), padding zeroed
        return TextFeatures(tokens, mask)


class HuggingFaceEncoder(TransformerTextEncoder):
    """Any local Hugging Face encoder (e.g. t5-base, as in the paper): token states ``(B, L, D)``.

    ``name_or_path`` is a model directory or a model name already in the local Hugging Face cache. The config
    is read at construction, so a missing model fails here with :class:`ModelNotAvailableError`; the weights load
    on first ``encode``.
    """

    def __init__(self, name_or_path: str | os.PathLike, max_tokens: int = 128, device: torch.device | str = "cpu"):
        source = os.fspath(name_or_path)
        if not source:
            raise ValueError("name_or_path: expected a model directory or name, got an empty string")
        super().__init__(source, source, hidden_size(load_config(source)), max_tokens, device)
