"""Analytic FLOPs (:mod:`handx.scaling.flops`) against :class:`torch.utils.flop_counter.FlopCounterMode`.

Every preset of both families is built on the ``meta`` device (nothing allocated, even for the 3B LM) and run
forward, and forward + backward, under the counter. On meta, ``scaled_dot_product_attention`` dispatches to its
math kernel (``bmm``), which the counter sees; on CPU it dispatches to ``_scaled_dot_product_flash_attention_for_cpu``,
which the counter does not know and counts as 0, so the CPU tests (real sampling loops) force the math kernel.
The models' data-dependent input checks (``bool(mask.any(...).all())``) cannot run on meta tensors; the meta tests
skip them the way ``torch.compile`` does (``torch.compiler.is_compiling``). The FSQ quantiser reads its levels
with ``.item()`` when built, so the tokenizer (11 M parameters at most) is built and run on CPU.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from handx.models import ar as ar_model
from handx.models import diffusion as diffusion_model
from handx.models import tokenizer as tokenizer_model
from handx.models.ar import ARConfig, PrefixLM
from handx.models.diffusion import DiffusionConfig, TrebleDenoiser
from handx.models.tokenizer import MotionTokenizer, TokenizerConfig
from handx.sampling import DDIMScheduler, sample
from handx.sampling.ar_decode import DecodeSettings, decode
from handx.scaling import flops

#: the acceptance bound of the scaling study (the formulas are in fact exact: every case below agrees to the FLOP)
TOLERANCE = 0.10
#: (batch, frames, text tokens per branch): a full window, and an odd one (patch padding, short texts)
DIFFUSION_SHAPES = ((2, 60, 77), (1, 37, 5))
#: (batch, text tokens per branch, codes): a full 60-frame clip, and an empty motion
AR_SHAPES = ((1, 20, 30), (2, 4, 0))


def relative_error(analytic: int, measured: int) -> float:
    return abs(analytic - measured) / measured


def counted(run) -> int:
    """Total FLOPs that ``FlopCounterMode`` records while ``run()`` executes."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def counted_training(run) -> tuple[int, int]:
    """(forward, forward + backward) FLOPs of ``run()`` (a scalar-summed output) and of its backward."""
    with FlopCounterMode(display=False) as forward:
        loss = run().sum()
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    return forward.get_total_flops(), forward.get_total_flops() + backward.get_total_flops()


@pytest.fixture
def no_fastpath():
    """Inference (eval, no grad) sends ``nn.MultiheadAttention`` to the fused ``_native_multi_head_attention``,
    which the counter does not know (it then misses a third of the denoiser's FLOPs); count the composite path."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(enabled)


@pytest.fixture
def meta(monkeypatch):
    """Build and run on the meta device, with the models' data-dependent input checks skipped."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with torch.device("meta"):
        yield


def diffusion_inputs(config: DiffusionConfig, batch: int, frames: int, text: int):
    x = torch.randn(batch, frames, config.features)  # (B, T, F)
    t = torch.zeros(batch, dtype=torch.long)  # (B,)
    tokens = torch.randn(3, batch, text, config.text_dim)  # (3, B, L, D)
    mask = torch.ones(3, batch, text, dtype=torch.bool)  # (3, B, L)
    return x, t, tokens, mask


def ar_inputs(config: ARConfig, batch: int, text: int, codes: int):
    tokens = torch.randn(3, batch, text, config.text_dim)  # (3, B, L, D)
    mask = torch.ones(3, batch, text, dtype=torch.bool)  # (3, B, L)
    return tokens, mask, torch.zeros(batch, codes, dtype=torch.long)  # (B, S)


# ------------------------------------------------------------------------------------------ forward, every preset
@pytest.mark.parametrize("preset", list(diffusion_model.PRESETS))
def test_diffusion_forward_and_backward_match_counter(meta, preset):
    config = DiffusionConfig.preset(preset)
    model = TrebleDenoiser(config)
    for batch, frames, text in DIFFUSION_SHAPES:
        inputs = diffusion_inputs(config, batch, frames, text)
        measured, both = counted_training(lambda: model(*inputs))
        analytic = flops.diffusion_forward_flops(config, batch=batch, frames=frames, text_tokens=text)
        training = flops.diffusion_training_flops(config, batch=batch, frames=frames, text_tokens=text)
        assert relative_error(analytic, measured) < TOLERANCE, (preset, batch, frames, text, analytic, measured)
        assert relative_error(training, both) < TOLERANCE, (preset, batch, frames, text, training, both)
        assert relative_error(flops.training_flops(analytic), both) < TOLERANCE  # 3 × forward: ≤ 8 % (cpu-2x64)


@pytest.mark.parametrize("preset", list(tokenizer_model.PRESETS))
def test_tokenizer_forward_and_backward_match_counter(preset):
    config = TokenizerConfig.preset(preset)
    model = MotionTokenizer(config)
    for batch, frames in ((2, 60), (1, 16)):
        x = torch.randn(batch, frames, config.features)  # (B, T, F)
        measured, both = counted_training(lambda: model(x).recon)
        analytic = flops.tokenizer_forward_flops(config, frames=frames, batch=batch)
        training = flops.tokenizer_training_flops(config, frames=frames, batch=batch)
        assert relative_error(analytic, measured) < TOLERANCE, (preset, batch, frames, analytic, measured)
        assert relative_error(training, both) < TOLERANCE, (preset, batch, frames, training, both)
    # 3 × forward misses the first convolution's skipped input gradient: 11 % for tiny, under 7 % above it
    assert (relative_error(flops.training_flops(analytic), both) < TOLERANCE) == (preset != "tiny")


@pytest.mark.parametrize("preset", list(ar_model.PRESETS))
def test_ar_forward_matches_counter(meta, preset):
    config = ARConfig.preset(preset)
    model = PrefixLM(config)
    shapes = AR_SHAPES if config.parameter_count() < 1e8 else AR_SHAPES[:1]  # the odd shape on the small ones
    for batch, text, codes in shapes:
        inputs = ar_inputs(config, batch, text, codes)
        measured = counted(lambda: model(*inputs))
        analytic = flops.ar_forward_flops(config, text_tokens=text, codes=codes, batch=batch)
        assert relative_error(analytic, measured) < TOLERANCE, (preset, batch, text, codes, analytic, measured)


@pytest.mark.parametrize("preset", ["tiny", "small", "44M", "111M"])
def test_ar_training_matches_counter(meta, preset):
    config = ARConfig.preset(preset)
    model = PrefixLM(config)
    batch, text, codes = AR_SHAPES[0]
    inputs = ar_inputs(config, batch, text, codes)
    _, both = counted_training(lambda: model(*inputs))
    training = flops.ar_training_flops(config, text_tokens=text, codes=codes, batch=batch)
    forward = flops.ar_forward_flops(config, text_tokens=text, codes=codes, batch=batch)
    assert relative_error(training, both) < TOLERANCE, (preset, training, both)
    assert relative_error(flops.training_flops(forward), both) < TOLERANCE


# ------------------------------------------------------------------------------------ sampling, real loops on CPU
def diffusion_denoiser(model: TrebleDenoiser, tokens: torch.Tensor, mask: torch.Tensor):
    every = torch.ones(3, tokens.shape[1], dtype=torch.bool)  # (3, B): the unconditional pass drops all texts

    def denoise(x_t: torch.Tensor, t: torch.Tensor, conditional: bool) -> torch.Tensor:
        return model(x_t, t, tokens, mask, None if conditional else every)
    return denoise


@pytest.mark.parametrize("preset", ["tiny", "cpu"])
@pytest.mark.parametrize("guidance", [1.0, 0.0, 2.5])
def test_diffusion_sampling_matches_counted_sample_loop(no_fastpath, preset, guidance):
    config = DiffusionConfig.preset(preset)
    model = TrebleDenoiser(config).eval()
    batch, frames, text, steps = 2, 20, 6, 3
    _, _, tokens, mask = diffusion_inputs(config, batch, frames, text)
    denoise = diffusion_denoiser(model, tokens, mask)
    generator = torch.Generator().manual_seed(0)
    with sdpa_kernel(SDPBackend.MATH):
        measured = counted(lambda: sample(denoise, (batch, frames, config.features), DDIMScheduler(),
                                          num_steps=steps, guidance_scale=guidance, generator=generator))
    analytic = flops.diffusion_sampling_flops(config, steps=steps, guidance=guidance, batch=batch, frames=frames,
                                              text_tokens=text)
    assert relative_error(analytic, measured) < TOLERANCE, (analytic, measured)


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_ar_sampling_matches_counted_decode(no_fastpath, cached, guidance):
    config = ARConfig.preset("tiny")
    model = PrefixLM(config).eval()
    batch, text, codes = 2, 5, 6
    tokens, mask, _ = ar_inputs(config, batch, text, 0)
    settings = DecodeSettings(guidance=guidance, max_tokens=codes, min_tokens=codes, use_cache=cached)
    with sdpa_kernel(SDPBackend.MATH):
        measured = counted(lambda: decode(model, tokens, mask, settings=settings))
    # decode stops at max_tokens without predicting END
    analytic = flops.ar_sampling_flops(config, text_tokens=text, codes=codes, guidance=guidance, cached=cached,
                                       end=False, batch=batch)
    assert relative_error(analytic, measured) < TOLERANCE, (analytic, measured)


def test_tokenizer_decode_matches_counter():
    config = TokenizerConfig.preset("small")
    model = MotionTokenizer(config)
    indices = torch.randint(0, config.codebook_size, (2, 15))  # (B, N)
    measured = counted(lambda: model.decode(indices))
    assert relative_error(flops.tokenizer_decode_flops(config, codes=15, batch=2), measured) < TOLERANCE


def test_attention_convention_matches_the_math_kernel():
    """4·q·k·d over all heads (QKᵀ and AV), queries and keys of different lengths."""
    q, k = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 9, 4)  # (B, H, N, hd)
    with sdpa_kernel(SDPBackend.MATH):
        measured = counted(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, k))
    assert measured == 2 * flops.attention(5, 9, 3 * 4)


# -------------------------------------------------------------------------------------------------- properties
@pytest.mark.parametrize("preset", ["tiny", "cpu", "base"])
def test_diffusion_sampling_scales_with_steps_and_guidance(preset):
    config = DiffusionConfig.preset(preset)
    forward = flops.diffusion_forward_flops(config)
    for steps in (1, 10, 50):
        assert flops.diffusion_sampling_flops(config, steps=steps) == steps * forward
        assert flops.diffusion_sampling_flops(config, steps=steps, guidance=0.0) == steps * forward
        for guidance in (0.5, 2.5, 7.0):
            assert flops.diffusion_sampling_flops(config, steps=steps, guidance=guidance) == 2 * steps * forward
    assert flops.diffusion_forward_flops(config, batch=4) == 4 * forward


def test_fused_patched_pooled_denoiser_is_cheaper_per_clip():
    treble = DiffusionConfig.preset("4x256")
    cpu = DiffusionConfig.preset("cpu")  # same size, 4-frame tokens, one fused pass over pooled texts
    assert flops.diffusion_forward_flops(cpu) * 10 < flops.diffusion_forward_flops(treble)


@pytest.mark.parametrize("preset", ["tiny", "111M", "3B"])
def test_ar_sampling_scales_with_guidance_and_cache(preset):
    config = ARConfig.preset(preset)
    for codes in (0, 1, 30):
        one = flops.ar_sampling_flops(config, codes=codes)
        assert flops.ar_sampling_flops(config, codes=codes, guidance=0.0) == one
        assert flops.ar_sampling_flops(config, codes=codes, guidance=1.5) == 2 * one
        assert flops.ar_sampling_flops(config, codes=codes, batch=3) == 3 * one
        uncached = flops.ar_sampling_flops(config, codes=codes, cached=False)
        assert uncached >= one  # equal for one prediction: the prefill is the one forward
        assert (uncached > one) == (codes > 0)
        if codes:  # predicting END after the codes is one more prediction
            assert flops.ar_sampling_flops(config, codes=codes - 1) == flops.ar_sampling_flops(
                config, codes=codes, end=False)
    # each cached step costs about 2·(parameters outside the embeddings), far below a full forward
    steps = flops.ar_sampling_flops(config, codes=30) - flops.ar_sampling_flops(config, codes=0)
    assert steps < 30 * flops.ar_forward_flops(config) / 10


@pytest.mark.parametrize("preset", ["44M", "3B"])
def test_ar_forward_is_about_twice_the_parameters_per_position(preset):
    """Kaplan's C_forward ≈ 2·N per token: the block and head matrices, weighted by the positions they see."""
    config = ARConfig.preset(preset)
    text, codes = 20, 30
    positions = 3 * (text + 1) + codes
    d, f = config.width, config.ff
    dense = config.layers * (4 * d * d + 3 * d * f)
    forward = flops.ar_forward_flops(config, text_tokens=text, codes=codes)
    attention = config.layers * flops.attention(positions, positions, d)
    head = flops.linear(codes + 1, d, config.vocab)
    text_projection = flops.linear(3 * text, config.text_dim, d)
    assert forward == 2 * dense * positions + attention + head + text_projection


def test_summaries_and_table():
    rows = [flops.diffusion_summary("base"), flops.tokenizer_summary("paper"),
            flops.ar_summary("111M", tokenizer=TokenizerConfig.preset("paper"))]
    assert rows[0].sampling == 50 * 2 * rows[0].forward  # 50 DDIM steps at guidance 2.5
    assert rows[2].tokens == 31 and rows[2].training_per_token == rows[2].training / 31
    table = flops.describe(rows)
    assert len(table.splitlines()) == 2 + len(rows) and "111M" in table


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="multiple of 2 frames"):
        flops.tokenizer_forward_flops(TokenizerConfig.preset("tiny"), frames=15)
    with pytest.raises(ValueError, match="steps"):
        flops.diffusion_sampling_flops(DiffusionConfig.preset("tiny"), steps=0)
    with pytest.raises(ValueError, match="guidance"):
        flops.guidance_passes(-1.0)
    with pytest.raises(ValueError, match="predictions"):
        flops.ar_sampling_flops(ARConfig.preset("tiny"), codes=0, end=False)
