"""FSQ motion tokenizer (handx.models.tokenizer) and its training loss and metrics (handx.train.tokenizer_loss)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from handx import skeleton
from handx.io.store import Store
from handx.models.tokenizer import PRESETS, MotionTokenizer, TokenizerConfig
from handx.representations import local288
from handx.representations.stats import FeatureStats
from handx.synth.corpus import write_synthetic
from handx.train.tokenizer_loss import (
    TokenizerLossTerms, TokenizerLossWeights, codebook_usage, mpjpe, tokenizer_loss,
)

from hand_builders import manipnet_windows


def _small_net(**fields) -> MotionTokenizer:
    torch.manual_seed(0)
    return MotionTokenizer(TokenizerConfig(**{"width": 16, "depth": 1, **fields}))


def _stats_tensors(stats: FeatureStats) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(np.array(stats.mean)), torch.tensor(np.array(stats.std))


def _smooth_l1(a: np.ndarray, b: np.ndarray) -> float:
    d = np.abs(a - b)
    return float(np.where(d < 1.0, 0.5 * d ** 2, d - 0.5).mean())


# --- FSQ codes -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (7, 5, 5, 5, 5), (3, 4)])
def test_every_index_round_trips_through_its_code(levels):
    net = _small_net(levels=levels)
    size = net.config.codebook_size
    assert size == int(np.prod(levels))
    indices = torch.arange(size)
    codes = net.indices_to_codes(indices)  # (size, d)
    assert codes.shape == (size, len(levels)) and codes.dtype == torch.float32
    assert float(codes.abs().max()) <= 1.0
    assert torch.unique(codes, dim=0).shape[0] == size  # one lattice point per index
    torch.testing.assert_close(net.codes_to_indices(codes), indices, rtol=0, atol=0)
    # the reference's formula (§6.2): index = Σ_k (c_k·⌊L_k/2⌋ + ⌊L_k/2⌋)·basis_k, basis = cumprod([1, L₀, …])
    half = np.array(levels) // 2
    basis = np.cumprod([1, *levels[:-1]])
    steps = codes.numpy().astype(np.float64) * half + half  # (size, d): the level of each dimension
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
    assert (steps >= 0).all() and (steps <= np.array(levels) - 1).all()
    np.testing.assert_array_equal(np.round(steps).astype(np.int64) @ basis, np.arange(size))


def test_decode_of_the_encoded_tokens_is_the_forward_reconstruction():
    net = _small_net(down=2).eval()
    x = torch.randn(3, 16, 288, generator=torch.Generator().manual_seed(1))
    out = net(x)
    assert out.recon.shape == (3, 16, 288) and out.indices.shape == (3, 4) and out.indices.dtype == torch.int64
    torch.testing.assert_close(net.encode(x), out.indices, rtol=0, atol=0)
    torch.testing.assert_close(net.decode(out.indices), out.recon)


def test_quantiser_runs_in_float32_under_autocast():
    net = _small_net().eval()
    x = torch.randn(2, 8, 288, generator=torch.Generator().manual_seed(2))
    z = net.encoder(x.transpose(1, 2)).transpose(1, 2).to(torch.bfloat16)  # (2, 4, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_hat, indices = net._quantize(z)
    assert z_hat.dtype == torch.float32
    torch.testing.assert_close(indices, net._quantize(z.float())[1], rtol=0, atol=0)


# --- config ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_parameter_count_matches_the_network_and_json_round_trips(name):
    config = TokenizerConfig.preset(name)
    net = MotionTokenizer(config)
    assert config.parameter_count() == sum(p.numel() for p in net.parameters())
    assert TokenizerConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert config.frames_per_token == 2 and config.features == 288


def test_presets_have_the_documented_codebooks():
    assert TokenizerConfig.preset("tiny").codebook_size == 1000
    assert TokenizerConfig.preset("small").codebook_size == 4375
    assert TokenizerConfig.preset("paper").codebook_size == 4375
    assert TokenizerConfig() == TokenizerConfig.preset("paper")


@pytest.mark.parametrize("fields", [
    {"width": 4, "levels": (5, 5, 5, 5), "down": 2},  # width = code dimensions: FSQ has no projections
    {"width": 24, "depth": 4, "dilation_growth": 2, "down": 3, "levels": (3, 3)},
])
def test_parameter_count_of_other_shapes(fields):
    config = TokenizerConfig(**fields)
    assert config.parameter_count() == sum(p.numel() for p in MotionTokenizer(config).parameters())


@pytest.mark.parametrize("fields, message", [
    ({"width": 0}, "TokenizerConfig.width must be a positive integer"),
    ({"width": True}, "TokenizerConfig.width"),
    ({"depth": -1}, "TokenizerConfig.depth"),
    ({"down": 9}, r"TokenizerConfig.down must be a positive integer at most 8"),
    ({"features": 2.5}, "TokenizerConfig.features"),
    ({"levels": (2, 5)}, r"TokenizerConfig.levels entries must be integers in \[3, 1024\]"),
    ({"levels": (5.0, 5)}, "TokenizerConfig.levels entries"),
    ({"levels": ()}, "TokenizerConfig.levels must be a tuple of 1 to 16 integers"),
    ({"levels": 5}, "TokenizerConfig.levels must be a tuple"),
    ({"levels": (1024, 1024, 1024)}, "TokenizerConfig.levels .* codes, more than"),
    ({"dilation_growth": 64, "depth": 5}, "TokenizerConfig.dilation_growth 64 with depth 5"),
    ({"width": 16384, "depth": 256, "dilation_growth": 1}, "TokenizerConfig describes .* parameters"),
])
def test_bad_fields_are_refused_by_name(fields, message):
    with pytest.raises(ValueError, match=message):
        TokenizerConfig(**fields)


def test_from_json_refuses_unknown_keys_and_unknown_presets():
    data = {**TokenizerConfig.preset("tiny").to_json(), "code_dim": 512}
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['code_dim'\]"):
        TokenizerConfig.from_json(data)
    with pytest.raises(ValueError, match="expected one of tiny, small, paper"):
        TokenizerConfig.preset("huge")
    assert TokenizerConfig.from_json({"levels": [8, 5, 5, 5]}).levels == (8, 5, 5, 5)
    assert dataclasses.replace(TokenizerConfig.preset("tiny"), down=2).frames_per_token == 4


# --- shapes ----------------------------------------------------------------------------------------------------

def test_shape_errors_name_the_shape():
    net = _small_net()
    with pytest.raises(ValueError, match=r"multiple of 2 frames per token, got \(2, 15, 288\)"):
        net(torch.zeros(2, 15, 288))
    with pytest.raises(ValueError, match=r"\(B, T, 288\).*got \(2, 16, 168\)"):
        net.encode(torch.zeros(2, 16, 168))
    with pytest.raises(ValueError, match=r"got \(16, 288\)"):
        net(torch.zeros(16, 288))
    with pytest.raises(ValueError, match=r"indices of shape \(B, N\), got \(8,\)"):
        net.decode(torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4375\), got values in \[0, 4375\]"):
        net.decode(torch.tensor([[0, 4375]]))
    with pytest.raises(ValueError, match="integer indices"):
        net.decode(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"codes of shape \(\.\.\., 5\), got \(3, 4\)"):
        net.codes_to_indices(torch.zeros(3, 4))


# --- loss ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_windows(shared_data) -> np.ndarray:
    """16 real 60-frame ManipNet windows ``(16, 60, 2, 21, 3)``, float64."""
    return manipnet_windows(shared_data, "cup1")[:16].astype(np.float64)


def test_loss_is_zero_for_a_perfect_reconstruction(real_windows):
    features = local288.encode(real_windows)[0]  # (16, 60, 288)
    stats = FeatureStats.fit([features])
    x = torch.as_tensor(stats.normalize(features), dtype=torch.float32)
    terms = tokenizer_loss(x, x.clone(), *_stats_tensors(stats))
    assert all(value == 0.0 for value in terms.as_floats().values()), terms.as_floats()


def test_bone_and_wrist_terms_match_a_numpy_computation_on_real_clips(real_windows):
    true, pred = real_windows[:8], real_windows[8:16]  # another real motion as the "prediction"
    features = local288.encode(real_windows)[0]
    stats = FeatureStats.fit([features])
    x, x_hat = (torch.as_tensor(stats.normalize(f), dtype=torch.float64) for f in (features[:8], features[8:]))
    mean, std = (t.double() for t in _stats_tensors(stats))
    terms = tokenizer_loss(x, x_hat, mean, std)
    assert isinstance(terms, TokenizerLossTerms)

    expected_bones = _smooth_l1(skeleton.bone_lengths(pred), skeleton.bone_lengths(true))  # world joints, metres
    assert expected_bones > 0
    np.testing.assert_allclose(float(terms.bones), expected_bones, rtol=1e-3)
    left = skeleton.LEFT
    wrist_step = [np.diff(clips[:, :, left, skeleton.WRIST], axis=1) for clips in (pred, true)]  # (8, 59, 3)
    np.testing.assert_allclose(float(terms.left_wrist_vel), _smooth_l1(*wrist_step), rtol=1e-3)

    weights = TokenizerLossWeights()
    expected_total = sum(getattr(weights, f.name) * getattr(terms, f.name)
                         for f in dataclasses.fields(weights))
    torch.testing.assert_close(terms.total, expected_total)
    only_features = tokenizer_loss(x, x_hat, mean, std, TokenizerLossWeights(**{
        f.name: 0.0 for f in dataclasses.fields(TokenizerLossWeights) if f.name != "features"}))
    torch.testing.assert_close(only_features.total, torch.nn.functional.smooth_l1_loss(x_hat, x))


def test_loss_refuses_mismatched_shapes():
    x = torch.zeros(2, 8, 288)
    with pytest.raises(ValueError, match=r"got \(2, 8, 288\) and \(2, 6, 288\)"):
        tokenizer_loss(x, torch.zeros(2, 6, 288), torch.zeros(288), torch.ones(288))
    with pytest.raises(ValueError, match=r"mean and std of shape \(288,\)"):
        tokenizer_loss(x, x, torch.zeros(168), torch.ones(168))


# --- metrics ---------------------------------------------------------------------------------------------------

def test_codebook_usage_and_perplexity_of_a_hand_computed_histogram():
    # counts: code 0 ×2, code 1 ×1, code 2 ×4, code 5 ×1 of 8 codes; p = 1/4, 1/8, 1/2, 1/8
    # H = ¼·ln 4 + 2·⅛·ln 8 + ½·ln 2 = (½ + ¾ + ½)·ln 2 = 1.75·ln 2, so perplexity = 2^1.75
    usage, perplexity = codebook_usage(torch.tensor([[0, 0, 1, 2], [2, 2, 2, 5]]), 8)
    assert usage == 0.5
    assert perplexity == pytest.approx(2 ** 1.75)
    assert codebook_usage(np.arange(10).repeat(3), 10) == pytest.approx((1.0, 10.0))
    assert codebook_usage(np.full(7, 3), 10) == pytest.approx((0.1, 1.0))
    with pytest.raises(ValueError, match=r"\[0, 8\), got values in \[0, 8\]"):
        codebook_usage(np.array([0, 8]), 8)


def test_mpjpe_is_root_relative_per_hand():
    rng = np.random.default_rng(0)
    true = rng.normal(scale=0.05, size=(2, 5, 2, 21, 3))
    moved = true + rng.normal(size=(2, 5, 2, 1, 3))  # each hand translated as a whole
    assert mpjpe(true, moved) == pytest.approx(0.0, abs=1e-12)
    bent = true.copy()
    bent[:, :, skeleton.LEFT, 8] += [0.0, 0.021, 0.0]  # one left-hand joint 21 mm off: 1 mm over 21 joints
    assert mpjpe(torch.as_tensor(true), torch.as_tensor(bent)) == pytest.approx(0.0005)  # averaged with the right's 0
    with pytest.raises(ValueError, match=r"\(N, T, 2, 21, 3\)"):
        mpjpe(true, true[:, :4])


# --- training --------------------------------------------------------------------------------------------------



def test_tiny_tokenizer_overfits_a_few_synthetic_windows(tmp_path, one_thread):
    write_synthetic(3, 11, tmp_path / "s", progress=False)
    store = Store(tmp_path / "s")
    clips = np.stack([store.motion(i) for i in range(3)]).astype(np.float64)  # (3, 60, 2, 21, 3)
    windows = np.concatenate([clips[:, s:s + 16] for s in (0, 22, 44)])  # (9, 16, 2, 21, 3)
    features = local288.encode(windows)[0]  # (9, 16, 288), each window from its own right wrist
    stats = FeatureStats.fit([features])
    mean, std = _stats_tensors(stats)
    x = torch.as_tensor(stats.normalize(features), dtype=torch.float32)
    truth = local288.decode(features)  # (9, 16, 2, 21, 3)

    torch.manual_seed(0)
    net = MotionTokenizer(TokenizerConfig.preset("tiny"))

    def reconstruction_error() -> float:
        with torch.no_grad():
            joints = local288.decode(stats.denormalize(net.decode(net.encode(x))))  # (9, 16, 2, 21, 3)
        assert joints.shape == (9, 16, 2, 21, 3) and torch.isfinite(joints).all()
        return mpjpe(truth, joints)

    before = reconstruction_error()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(200):
        optimizer.zero_grad()
        tokenizer_loss(x, net(x).recon, mean, std).total.backward()
        optimizer.step()
    after = reconstruction_error()
    assert after < before / 6, (before, after)  # about 0.05 m → 0.007 m
