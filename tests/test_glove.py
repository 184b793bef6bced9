"""The GloVe text encoder: the wheel's vectors for known words, tokenisation, OOV and empty texts, the
TextFeatures contract, and that the vectors carry meaning."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from handx.text import TEXT_ENCODER_SPECS, CachedTextEncoder, GloVeEncoder, TextEncoder, load_text_encoder
from handx.text.glove import GLOVE_DIM, INDEX_FILE, VECTORS_FILE, packaged_glove_dir


@pytest.fixture(scope="module")
def glove() -> GloVeEncoder:
    return GloVeEncoder()


@pytest.fixture(scope="module")
def wheel_rows() -> dict[str, np.ndarray]:
    """Rows of a few words read straight from the wheel's files, without the encoder's code."""
    root = packaged_glove_dir()
    words = pq.read_table(root / INDEX_FILE).column("index").to_pylist()
    vectors = np.load(root / VECTORS_FILE)
    return {w: vectors[words.index(w)] for w in ("hand", "left", "right", "banana", ",", "n't", "do")}


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def test_glove_is_a_registered_text_encoder(glove):
    assert "glove" in TEXT_ENCODER_SPECS
    encoder = load_text_encoder("glove")
    assert isinstance(encoder, GloVeEncoder) and isinstance(encoder, TextEncoder)
    assert (encoder.name, encoder.dim) == ("glove-6b-50d", 50) == (glove.name, GLOVE_DIM)


def test_known_words_get_their_row_of_the_wheel(glove, wheel_rows):
    features = glove.encode(["hand", "Left HAND, right"])
    assert features.lengths.tolist() == [1, 4]
    np.testing.assert_array_equal(features.tokens[0, 0].numpy(), wheel_rows["hand"])
    for position, word in enumerate(["left", "hand", ",", "right"]):
        np.testing.assert_array_equal(features.tokens[1, position].numpy(), wheel_rows[word])


def test_case_does_not_matter(glove):
    a, b = glove.encode(["The LEFT Hand Points"]), glove.encode(["the left hand points"])
    torch.testing.assert_close(a.tokens, b.tokens, rtol=0, atol=0)


def test_tokens_follow_the_glove_vocabulary(glove, wheel_rows):
    assert glove.tokenize("Don't rotate the hand's wrist counter-clockwise (frames 0-6).") == [
        "do", "n't", "rotate", "the", "hand", "'s", "wrist", "counter-clockwise", "(", "frames", "0-6", ")", "."]
    assert glove.tokenize("left-handedly-zqxj") == ["left", "handedly", "zqxj"]  # OOV compound: split at hyphens
    np.testing.assert_array_equal(glove.encode(["don't"]).tokens[0, 1].numpy(), wheel_rows["n't"])


def test_out_of_vocabulary_words_are_zero_vectors_that_still_count(glove):
    features = glove.encode(["zqxjvwk hand"])
    assert features.mask.tolist() == [[True, True]]
    assert torch.count_nonzero(features.tokens[0, 0]) == 0
    assert torch.count_nonzero(features.tokens[0, 1]) > 0


def test_empty_text_is_one_zero_token(glove):
    features = glove.encode(["", "   ", "hand"])
    assert features.mask.tolist() == [[True], [True], [True]]
    assert torch.count_nonzero(features.tokens[:2]) == 0


def test_long_texts_are_truncated():
    encoder = GloVeEncoder(max_tokens=5)
    features = encoder.encode(["one two three four five six seven eight", "one two"])
    assert features.lengths.tolist() == [5, 2] and features.length == 5
    with pytest.raises(ValueError, match="max_tokens"):
        GloVeEncoder(max_tokens=0)


def test_text_features_contract(glove):
    texts = ["", "the left hand makes a fist", "the right index finger taps the thumb twice, then both palms open"]
    features = glove.encode(texts)
    assert features.tokens.dtype == torch.float32 and features.tokens.shape[::2] == (3, 50)
    assert bool(features.mask.any(dim=1).all())
    assert torch.count_nonzero(features.tokens[~features.mask]) == 0  # padding is zeros
    cached = CachedTextEncoder(glove)
    torch.testing.assert_close(cached.encode(texts).tokens, features.tokens, rtol=0, atol=0)
    with pytest.raises(ValueError, match="single str"):
        glove.encode("a text")


def test_vectors_carry_meaning(glove):
    tokens = glove.encode(["left", "right", "banana", "thumb", "finger"]).tokens[:, 0]  # (5, 50)
    left, right, banana, thumb, finger = tokens
    assert _cos(left, right) > _cos(left, banana) + 0.3
    assert _cos(thumb, finger) > _cos(thumb, banana)
