"""Decoding the AR model (handx.sampling.ar_decode, reference §6.7): the KV cache against the full forward, logit
filtering against hand-computed cases, seeded sampling, guidance, prefix codes and END handling."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from handx.models.ar import ARConfig, PrefixCache, PrefixLM
from handx.sampling.ar_decode import DecodeSettings, decode, filter_logits

TEXT_DIM = 32
K = 16
END = K


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def model(one_thread) -> PrefixLM:
    torch.manual_seed(0)
    return PrefixLM(ARConfig.preset("tiny", codebook=K, text_dim=TEXT_DIM, max_tokens=10)).eval()


def texts(batch: int = 4, length: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(3, batch, length, TEXT_DIM, generator=g)
    lengths = torch.randint(1, length + 1, (3, batch), generator=g)
    mask = torch.arange(length) < lengths[..., None]  # (3, B, L)
    return tokens * mask[..., None], mask


# ------------------------------------------------------------------------------------------------------- KV cache
def test_cached_steps_match_the_full_forward(model):
    tokens, mask = texts()
    codes = torch.randint(0, K, (4, 10), generator=torch.Generator().manual_seed(1))
    drop = torch.zeros(3, 4, dtype=torch.bool)
    drop[1, 2] = True
    with torch.no_grad():
        full = model(tokens, mask, codes, drop)  # (B, 11, K + 1)
        logits, cache = model.prefill(tokens, mask, drop, codes=codes[:, :3])
        torch.testing.assert_close(logits, full[:, 3], rtol=0, atol=1e-5)
        for i in range(3, 10):
            logits, cache = model.step(codes[:, i], cache)
            torch.testing.assert_close(logits, full[:, i + 1], rtol=0, atol=1e-5)
        logits, _ = model.prefill(tokens, mask, drop)
        torch.testing.assert_close(logits, full[:, 0], rtol=0, atol=1e-5)
    assert isinstance(cache, PrefixCache) and len(cache.layers) == 2
    real = torch.where(drop, 1, mask.sum(dim=2)).sum(dim=0)  # (B,): a dropped text is one null position
    assert cache.length == 3 * 7 + 10 and cache.position.tolist() == (real + 3 + 10).tolist()  # + 3 SEP, 10 codes


@pytest.mark.parametrize("guidance", [1.0, 2.5, 0.0])
@pytest.mark.parametrize("with_prefix", [False, True])
def test_cached_and_uncached_decoding_agree(model, guidance, with_prefix):
    tokens, mask = texts(batch=5, seed=2)
    prefix = torch.randint(0, K, (5, 3), generator=torch.Generator().manual_seed(3)) if with_prefix else None
    cached = decode(model, tokens, mask, settings=DecodeSettings(guidance=guidance), prefix_codes=prefix)
    plain = decode(model, tokens, mask, settings=DecodeSettings(guidance=guidance, use_cache=False),
                   prefix_codes=prefix)
    assert torch.equal(cached.codes, plain.codes) and torch.equal(cached.lengths, plain.lengths)
    assert cached.codes.shape == (5, int(cached.lengths.max()))
    if with_prefix:
        assert torch.equal(cached.codes[:, :3], prefix)
    sampled = [decode(model, tokens, mask, generator=torch.Generator().manual_seed(4), prefix_codes=prefix,
                      settings=DecodeSettings(greedy=False, temperature=1.5, guidance=guidance, use_cache=use))
               for use in (True, False)]
    assert torch.equal(sampled[0].codes, sampled[1].codes)


def test_guidance_mixes_conditional_and_unconditional_logits(model):
    tokens, mask = texts(seed=5)
    empty = torch.empty(4, 0, dtype=torch.long)
    with torch.no_grad():
        cond = model(tokens, mask, empty)[:, 0, :K]  # END is forbidden at the first step (min_tokens = 1)
        uncond = model(tokens, mask, empty, torch.ones(3, 4, dtype=torch.bool))[:, 0, :K]
    for scale in (0.0, 1.0, 3.0):
        result = decode(model, tokens, mask, settings=DecodeSettings(guidance=scale, max_tokens=1))
        assert result.codes[:, 0].tolist() == (uncond + scale * (cond - uncond)).argmax(dim=-1).tolist()


# -------------------------------------------------------------------------------------------------------- filters
def test_filter_logits_hand_computed():
    probs = torch.tensor([0.1, 0.5, 0.05, 0.2, 0.15])  # order: 1, 3, 4, 0, 2
    logits = probs.log()
    inf = -math.inf

    def kept(top_k=None, top_p=None):
        return (filter_logits(logits, top_k, top_p) > inf).nonzero().flatten().tolist()

    assert kept() == [0, 1, 2, 3, 4]
    assert kept(top_k=3) == [1, 3, 4]
    assert kept(top_k=1) == [1]
    assert kept(top_p=0.5) == [1]  # the mass before code 3 (0.5) already reaches p
    assert kept(top_p=0.6) == [1, 3]  # 0.5 < 0.6, 0.7 ≥ 0.6
    assert kept(top_p=0.75) == [1, 3, 4]  # 0.7 < 0.75
    assert kept(top_p=1.0) == [0, 1, 2, 3, 4]
    # top-p applies to the top-k distribution: [0.5, 0.2, 0.15] / 0.85 → mass before code 4 = 0.824
    assert kept(top_k=3, top_p=0.8) == [1, 3]
    assert kept(top_k=3, top_p=0.83) == [1, 3, 4]
    kept_values = filter_logits(logits, 3)
    torch.testing.assert_close(kept_values[[1, 3, 4]], logits[[1, 3, 4]])
    batch = filter_logits(torch.stack([logits, logits.flip(0)]), top_p=0.6)  # (2, 5), rows independent
    assert (batch > inf).tolist() == [[False, True, False, True, False], [False, True, False, True, False]]
    ties = filter_logits(torch.tensor([1.0, 2.0, 2.0, 0.0]), top_k=1)
    assert (ties > inf).tolist() == [False, True, True, False]


# ------------------------------------------------------------------------------------------------------- sampling
def test_sampling_is_reproducible_and_seed_dependent(model):
    tokens, mask = texts(seed=6)
    settings = DecodeSettings(greedy=False, temperature=2.0)

    def run(seed):
        return decode(model, tokens, mask, settings=settings, generator=torch.Generator().manual_seed(seed)).codes

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))
    # top-k 1 sampling is greedy decoding
    top1 = decode(model, tokens, mask, settings=DecodeSettings(greedy=False, top_k=1),
                  generator=torch.Generator().manual_seed(9))
    assert torch.equal(top1.codes, decode(model, tokens, mask, settings=DecodeSettings()).codes)


# ------------------------------------------------------------------------------------------------------------ END
class ScriptedLM(torch.nn.Module):
    """A stand-in model whose row b's logits at step i prefer ``script[b][i]`` (code or END), then code 2."""

    def __init__(self, script: list[list[int]], max_tokens: int = 6) -> None:
        super().__init__()
        self.config = ARConfig.preset("tiny", codebook=K, text_dim=TEXT_DIM, max_tokens=max_tokens)
        self.script = torch.tensor(script)  # (B, max_tokens + 1)

    def _logits(self, step: Tensor) -> Tensor:  # step (B,) → (B, K + 1)
        logits = torch.zeros(len(step), K + 1)
        logits[:, 2] = 1.0
        logits[torch.arange(len(step)), self.script[torch.arange(len(step)), step]] = 2.0
        return logits

    def forward(self, tokens, mask, codes, drop=None):
        steps = torch.arange(codes.shape[1] + 1).expand(codes.shape[0], -1)  # (B, S + 1)
        return torch.stack([self._logits(steps[:, i]) for i in range(steps.shape[1])], dim=1)

    def prefill(self, tokens, mask, drop=None, codes=None):
        done = torch.full((tokens.shape[1],), codes.shape[1])
        return self._logits(done), done

    def step(self, code, cache):
        return self._logits(cache + 1), cache + 1



@pytest.mark.parametrize("use_cache", [True, False])
def test_end_stops_a_row(use_cache):
    lm = ScriptedLM([[5, 6, END, 7, 7, 7, 7], [END, 1, 1, 1, 1, 1, 1], [1, 2, 3, 4, 5, 6, END]])
    tokens, mask = texts(batch=3)
    result = decode(lm, tokens, mask, settings=DecodeSettings(use_cache=use_cache))
    assert result.lengths.tolist() == [2, 6, 6]  # row 1: END forbidden before min_tokens = 1 → code 2
    assert result.codes.tolist() == [[5, 6, END, END, END, END], [2, 1, 1, 1, 1, 1], [1, 2, 3, 4, 5, 6]]
    result = decode(lm, tokens, mask, settings=DecodeSettings(use_cache=use_cache, min_tokens=0, max_tokens=4))
    assert result.lengths.tolist() == [2, 0, 4]
    assert result.codes.tolist() == [[5, 6, END, END], [END, END, END, END], [1, 2, 3, 4]]
    result = decode(lm, tokens, mask, settings=DecodeSettings(use_cache=use_cache, min_tokens=3))
    assert result.lengths.tolist() == [6, 6, 6]  # row 0: END at step 2 forbidden → code 2, then 7s


# ----------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("fields, words", [
    ({"temperature": 0.0}, "temperature"), ({"greedy": False, "top_k": 0}, "top_k"),
    ({"greedy": False, "top_p": 1.5}, "top_p"), ({"guidance": -1.0}, "guidance"),
    ({"max_tokens": 0}, "max_tokens"), ({"min_tokens": 5, "max_tokens": 4}, "min_tokens"),
    ({"greedy": "yes"}, "greedy"), ({"top_k": 5}, "only when greedy=False"),
])
def test_bad_settings_are_named(fields, words):
    with pytest.raises(ValueError, match=words):
        DecodeSettings(**fields)


def test_bad_decode_inputs_are_named(model):
    tokens, mask = texts()
    with pytest.raises(ValueError, match="exceeds the model's max_tokens 10"):
        decode(model, tokens, mask, settings=DecodeSettings(max_tokens=11))
    with pytest.raises(ValueError, match=r"prefix_codes must be motion codes in \[0, 16\)"):
        decode(model, tokens, mask, settings=DecodeSettings(), prefix_codes=torch.full((4, 2), END))
    with pytest.raises(ValueError, match="prefix_codes must be long"):
        decode(model, tokens, mask, settings=DecodeSettings(), prefix_codes=torch.zeros(3, 2, dtype=torch.long))
