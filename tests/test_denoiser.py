"""The treble-residual denoiser (reference §4.2–4.3): batched branches, null text, sizes, config."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
import torch

from handx.models.diffusion import (
    NUM_BRANCHES,
    PAPER_PARAMETERS,
    PRESETS,
    DiffusionConfig,
    TrebleDenoiser,
    sample_text_drop,
    sinusoidal,
)

TINY = dataclasses.replace(DiffusionConfig.preset("tiny"), text_dim=24)


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def inputs(config: DiffusionConfig, batch: int = 4, frames: int | None = None, length: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = config.frames if frames is None else frames
    x_t = torch.randn(batch, frames, config.features, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    tokens = torch.randn(NUM_BRANCHES, batch, length, config.text_dim, generator=g)
    lengths = torch.randint(1, length + 1, (NUM_BRANCHES, batch), generator=g)
    mask = torch.arange(length) < lengths[..., None]  # (3, B, L): padded texts of different lengths
    return x_t, t, tokens, mask


@pytest.fixture()
def model() -> TrebleDenoiser:
    torch.manual_seed(0)
    return TrebleDenoiser(TINY).eval()


# ------------------------------------------------------------------------------------------------ behaviour


def test_shapes(model):
    x_t, t, tokens, mask = inputs(TINY, batch=3)
    with torch.no_grad():
        assert model(x_t, t, tokens, mask).shape == (3, 60, 168)
        x_t, t, tokens, mask = inputs(TINY, batch=2, frames=30, length=1)  # shorter windows, one-token texts
        assert model(x_t, t, tokens, mask, torch.zeros(3, 2, dtype=torch.bool)).shape == (2, 30, 168)


@pytest.mark.parametrize("drop_pattern", ["none", "mixed"])
def test_batched_equals_sequential(model, drop_pattern):
    x_t, t, tokens, mask = inputs(TINY, batch=5)
    drop = None if drop_pattern == "none" else torch.tensor([[1, 0, 0, 1, 0], [0, 0, 1, 1, 0], [0, 1, 0, 1, 0]],
                                                             dtype=torch.bool)
    with torch.no_grad():
        batched = model(x_t, t, tokens, mask, drop)
        sequential = model.forward_sequential(x_t, t, tokens, mask, drop)
    torch.testing.assert_close(batched, sequential, rtol=0, atol=1e-5)
    # and each sample is computed independently of the others in the batch
    with torch.no_grad():
        single = model(x_t[2:3], t[2:3], tokens[:, 2:3], mask[:, 2:3], None if drop is None else drop[:, 2:3])
    torch.testing.assert_close(single, batched[2:3], rtol=0, atol=1e-5)


def test_dropped_text_is_ignored(model):
    x_t, t, tokens, mask = inputs(TINY, seed=1)
    _, _, other_tokens, other_mask = inputs(TINY, seed=2, length=11)
    everything = torch.ones(3, 4, dtype=torch.bool)
    with torch.no_grad():
        null_a = model(x_t, t, tokens, mask, everything)
        null_b = model(x_t, t, other_tokens, other_mask, everything)
        null_c = model(x_t, t, torch.full_like(tokens, float("nan")), torch.zeros_like(mask), everything)
        cond_a = model(x_t, t, tokens, mask)
        cond_b = model(x_t, t, other_tokens, other_mask, torch.zeros(3, 4, dtype=torch.bool))
    torch.testing.assert_close(null_a, null_b, rtol=0, atol=1e-6)
    torch.testing.assert_close(null_a, null_c, rtol=0, atol=1e-6)
    # N(0, 0.02) init keeps the text path small at first, yet far above float noise (1e-7)
    assert (cond_a - cond_b).abs().max() > 1e-5  # kept texts change the prediction
    assert (cond_a - null_a).abs().max() > 1e-5  # and the null path differs from the conditional one


def test_drop_one_branch(model):
    x_t, t, tokens, mask = inputs(TINY, seed=3)
    changed = tokens.clone()
    changed[1] = torch.randn_like(changed[1])  # new right-hand texts
    drop_right = torch.zeros(3, 4, dtype=torch.bool)
    drop_right[1] = True
    with torch.no_grad():
        a = model(x_t, t, tokens, mask, drop_right)
        b = model(x_t, t, changed, mask, drop_right)
        c = model(x_t, t, changed, mask)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert (b - c).abs().max() > 1e-5


def test_every_parameter_gets_gradient():
    torch.manual_seed(0)
    model = TrebleDenoiser(TINY).train()
    x_t, t, tokens, mask = inputs(TINY, batch=4)
    drop = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.bool)  # some of each branch
    model(x_t, t, tokens, mask, drop).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name

    model.zero_grad(set_to_none=True)
    model(x_t, t, tokens, mask).square().mean().backward()  # no drop: only the null texts are unused
    unused = {name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0}
    assert unused == {"null_text"}

    model.zero_grad(set_to_none=True)
    model(x_t, t, tokens, mask, torch.ones(3, 4, dtype=torch.bool)).square().mean().backward()
    unused = {name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0}
    assert unused == {"text_proj.weight", "text_proj.bias"}  # all dropped: the text path is cut


def test_tiny_model_fits_one_batch():
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, dropout=0.0)
    model = TrebleDenoiser(config)
    x_t, t, tokens, mask = inputs(config, batch=2, frames=8)
    target = torch.randn(2, 8, 168, generator=torch.Generator().manual_seed(5))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = (model(x_t, t, tokens, mask) - target).square().mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_rebuilt_from_config_json(model):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert "positions" not in model.state_dict()  # derived from the config, not stored
    rebuilt = TrebleDenoiser(DiffusionConfig.from_json(json.loads(json.dumps(model.config.to_json())))).eval()
    buffer.seek(0)
    rebuilt.load_state_dict(torch.load(buffer, weights_only=True))
    x_t, t, tokens, mask = inputs(TINY)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x_t, t, tokens, mask), model(x_t, t, tokens, mask), rtol=0, atol=0)


def test_input_errors(model):
    x_t, t, tokens, mask = inputs(TINY)
    with pytest.raises(ValueError, match="x_t"):
        model(x_t[..., :100], t, tokens, mask)
    with pytest.raises(ValueError, match="60"):
        model(torch.randn(4, 61, 168), t, tokens, mask)
    with pytest.raises(ValueError, match="t must be integer"):
        model(x_t, t.float(), tokens, mask)
    with pytest.raises(ValueError, match="text_tokens"):
        model(x_t, t, tokens[:2], mask)
    with pytest.raises(ValueError, match="text_mask"):
        model(x_t, t, tokens, mask.float())
    with pytest.raises(ValueError, match="drop"):
        model(x_t, t, tokens, mask, torch.zeros(3, 3, dtype=torch.bool))
    empty = mask.clone()
    empty[2, 1] = False
    with pytest.raises(ValueError, match="two_hands_relation text of sample 1"):
        model(x_t, t, tokens, empty)
    drop = torch.zeros(3, 4, dtype=torch.bool)
    drop[2, 1] = True
    with torch.no_grad():
        assert torch.isfinite(model(x_t, t, tokens, empty, drop)).all()  # an empty text is fine when dropped


# ---------------------------------------------------------------------------------------------- sizes, init


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS))
def test_paper_parameter_counts(name):
    config = DiffusionConfig.preset(name)
    with torch.device("meta"):
        model = TrebleDenoiser(config)
    n = count(model)
    assert n == config.parameter_count()
    assert abs(n / PAPER_PARAMETERS[name] - 1) < 0.03, (name, n)


@pytest.mark.parametrize("config", [TINY, DiffusionConfig(layers=3, width=96, heads=3, ff=200, text_dim=768)])
def test_parameter_count_formula(config):
    assert config.parameter_count() == count(TrebleDenoiser(config))


def test_initialisation():
    torch.manual_seed(0)
    model = TrebleDenoiser(DiffusionConfig.preset("4x256"))
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Linear)]
                        + [m.in_proj_weight.flatten() for m in model.modules()
                           if isinstance(m, torch.nn.MultiheadAttention)])
    assert abs(weights.std().item() - 0.02) < 5e-4 and abs(weights.mean().item()) < 5e-4
    biases = [m.bias for m in model.modules() if isinstance(m, torch.nn.Linear)]
    biases += [m.in_proj_bias for m in model.modules() if isinstance(m, torch.nn.MultiheadAttention)]
    assert all(bool((b == 0).all()) for b in biases)


def test_sinusoidal_table():
    pe = sinusoidal(torch.arange(5), 8)
    assert pe.shape == (5, 8)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 4))
    torch.testing.assert_close(pe[3, 0], torch.sin(torch.tensor(3.0)))
    torch.testing.assert_close(pe[3, 3], torch.cos(torch.tensor(3.0 * 10000 ** (-2 / 8))))


def test_sample_text_drop():
    g = torch.Generator().manual_seed(0)
    assert not sample_text_drop(5, 0.0, generator=g).any()
    assert sample_text_drop(5, 1.0, generator=g).all()
    drop = sample_text_drop(10000, 0.1, generator=g)
    assert drop.shape == (3, 10000) and drop.dtype == torch.bool
    assert abs(drop.float().mean().item() - 0.1) < 0.01


# ------------------------------------------------------------------------------------------------ config


def test_presets_and_json():
    assert DiffusionConfig.preset("base") == DiffusionConfig.preset("12x512") == DiffusionConfig()
    for name in [*PRESETS, "base"]:
        config = DiffusionConfig.preset(name)
        assert DiffusionConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert DiffusionConfig.preset("16x768").width == 768 and DiffusionConfig.preset("4x256").layers == 4


@pytest.mark.parametrize(("field", "value"), [
    ("layers", 0), ("width", 63), ("width", 2.0), ("heads", 3), ("ff", -1), ("text_dim", True), ("frames", 0),
    ("features", 0), ("max_text_tokens", 0), ("dropout", 1.0), ("dropout", -0.1), ("cond_drop", 1.5),
])
def test_config_validation(field, value):
    with pytest.raises(ValueError, match=rf"DiffusionConfig\.{field} "):
        dataclasses.replace(DiffusionConfig.preset("tiny"), **{field: value})


def test_config_errors():
    with pytest.raises(ValueError, match="heads must divide width 64"):
        dataclasses.replace(DiffusionConfig.preset("tiny"), heads=3)
    with pytest.raises(ValueError, match="unknown DiffusionConfig preset 'huge'.*12x512"):
        DiffusionConfig.preset("huge")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['depth'\]"):
        DiffusionConfig.from_json({"depth": 3})


# ------------------------------------------------------------------------------- patches, fused, pooled text

CPU_LIKE = dataclasses.replace(DiffusionConfig.preset("cpu"), layers=2, width=32, heads=2, ff=64, text_dim=24)


@pytest.mark.parametrize("changes", [{}, {"branches": "treble"}, {"text_pool": False}, {"patch": 3},
                                     {"patch": 1, "branches": "fused"}])
def test_cpu_variants_count_their_parameters_and_keep_shapes(changes):
    config = dataclasses.replace(CPU_LIKE, **changes)
    model = TrebleDenoiser(config).eval()
    assert count(model) == config.parameter_count()
    with torch.no_grad():
        for frames in (60, 30, 7):  # windows that are not a multiple of the patch
            x_t, t, tokens, mask = inputs(config, batch=2, frames=frames)
            assert model(x_t, t, tokens, mask).shape == (2, frames, 168)


def test_pooled_text_is_the_mean_of_the_real_tokens():
    torch.manual_seed(0)
    pooled = TrebleDenoiser(CPU_LIKE).eval()
    tokens_model = TrebleDenoiser(dataclasses.replace(CPU_LIKE, text_pool=False)).eval()
    tokens_model.load_state_dict(pooled.state_dict())
    x_t, t, tokens, mask = inputs(CPU_LIKE, batch=3)
    means = torch.stack([torch.stack([tokens[b, i, mask[b, i]].mean(0) for i in range(3)]) for b in range(3)])
    with torch.no_grad():
        want = tokens_model(x_t, t, means[:, :, None], torch.ones(3, 3, 1, dtype=torch.bool))
        torch.testing.assert_close(pooled(x_t, t, tokens, mask), want)


@pytest.mark.parametrize("config", [CPU_LIKE, dataclasses.replace(CPU_LIKE, text_pool=False)])
def test_fused_branches_ignore_dropped_texts(config):
    torch.manual_seed(0)
    model = TrebleDenoiser(config).eval()
    x_t, t, tokens, mask = inputs(config, batch=2)
    drop = torch.tensor([[True, False], [True, False], [True, False]])
    other = torch.randn_like(tokens)
    with torch.no_grad():
        a, b = model(x_t, t, tokens, mask, drop), model(x_t, t, other, mask, drop)
    torch.testing.assert_close(a[0], b[0])  # sample 0: every branch dropped, so its text does not matter
    assert not torch.allclose(a[1], b[1])  # sample 1 keeps its texts
