"""Analytic training and sampling FLOPs of both generator families, from a config and the input sizes alone.

Scaling study, item 1. Convention (the one of :mod:`torch.utils.flop_counter`): a multiply-add is 2 FLOPs, and
only matrix products are counted: ``Linear`` (``mm``/``addmm``), the two batched products of attention
(``QKᵀ`` and ``AV``, ``bmm``) and convolutions. Elementwise work (biases, norms, activations, softmax, RoPE,
dropout, masking, residual sums, the sampler's update) and lookups (``Embedding``, FSQ rounding) are not. The
text encoder is excluded: both families read precomputed token features. Attention is counted *dense*, as it
runs: padded text positions and the causal/prefix mask still cost their ``QKᵀ`` and ``AV`` entries.

Building blocks (rows r, widths a → b; queries q, keys k, width d; kernel κ, output length t)::

    linear(r, a, b)    = 2·r·a·b
    attention(q, k, d) = 4·q·k·d                 (QKᵀ and AV, all heads together)
    conv1d(t, a, b, κ) = 2·t·a·b·κ

Diffusion denoiser (:mod:`handx.models.diffusion`; d width, f ff, ℓ layers, F features, p patch, T frames,
L text tokens per branch, D text_dim), per sample::

    n = ⌈T / p⌉ motion tokens;  m = 1 with text_pool, else L memory tokens per branch
    treble: 3 decoder sequences of q = n + 2 tokens over k = m memory tokens
    fused:  1 decoder sequence  of q = n + 1 tokens over k = 3m memory tokens
    layer   = [linear(q, d, 3d) + attention(q, q, d) + linear(q, d, d)]                     self-attention
            + [linear(q, d, d) + linear(k, d, 2d) + attention(q, k, d) + linear(q, d, d)]  cross-attention
            + [linear(q, d, f) + linear(q, f, d)]                                          feed-forward
    forward = linear(n, pF, d) + linear(n, d, pF) + 2·linear(1, d, d) + 3·linear(m, D, d) + sequences·ℓ·layer

FSQ tokenizer (:mod:`handx.models.tokenizer`; w width, r depth, F features, c = len(levels), T frames,
N = T / 2^down tokens)::

    resnet(t) = r·[conv1d(t, w, w, 3) + conv1d(t, w, w, 1)]
    encoder   = conv1d(T, F, w, 3) + Σ_{i=1..down} [conv1d(T/2^i, w, w, 4) + resnet(T/2^i)] + conv1d(N, w, w, 3)
    decoder   = conv1d(N, w, w, 3) + Σ_{i=0..down−1} [resnet(N·2^i) + conv1d(N·2^(i+1), w, w, 3)]
                + conv1d(T, w, w, 3) + conv1d(T, w, F, 3)
    forward   = encoder + linear(N, w, c) + linear(N, c, w) + decoder   (no projections when w = c)

Prefix LM (:mod:`handx.models.ar`; d width, f ff, ℓ layers, V = K + 1, L text tokens per branch, S codes)::

    P = 3(L + 1) prefix positions;  N = P + S positions
    block(q, k) = linear(q, d, 3d) + attention(q, k, d) + linear(q, d, d) + 2·linear(q, d, f) + linear(q, f, d)
    forward     = linear(3L, D, d) + ℓ·block(N, N) + linear(S + 1, d, V)    (teacher forcing: S + 1 logit rows)
    prefill     = linear(3L, D, d) + ℓ·block(N, N) + linear(1, d, V)        (only the last row's logits)
    step(j)     = ℓ·block(1, P + j) + linear(1, d, V)                        (feeds code j; P + j keys cached)

Training: ``training = 3 · forward − leaf``. The backward of a product ``Y = XW`` is two products of the same size
(``∂X = ∂Y Wᵀ`` and ``∂W = Xᵀ ∂Y``; for attention, two per ``QKᵀ`` and two per ``AV``), so backward = 2 · forward
except for the input gradients of the products whose input is a leaf that needs none (``leaf``, one forward's
worth of those products): diffusion ``linear(n, pF, d) + linear(1, d, d) + 3·linear(m, D, d)`` (input projection,
the time MLP's first layer on the sinusoid, text projection), tokenizer ``conv1d(T, F, w, 3)`` (the first
convolution), AR ``linear(3L, D, d)`` (text projection; the code embedding is a lookup). ``3 · forward`` alone,
the usual rule, overestimates by ``leaf / (3 · forward − leaf)``: at most 1.5 % from the diffusion ``cpu`` and
``4x256``, AR ``small`` and tokenizer ``paper`` sizes up (full clip, 77 text tokens), but up to 8 % for the
smallest denoisers (``tiny``, ``cpu-2x64``), 6.6 % for the ``small`` tokenizer and 11 % for the ``tiny`` one,
whose 288 → 64 first convolution is 29 % of its forward.

Sampling one clip (:mod:`handx.sampling`): classifier-free guidance runs the conditional and the unconditional
pass (2 passes) unless its scale is 1 or 0 (1 pass, :func:`handx.sampling.guidance.guided_prediction`; the AR
decoder batches the two as 2B rows, same count). Diffusion: ``steps · passes · forward``. AR, predicting S codes
and then END (S + 1 predictions): KV-cached ``passes · [prefill + Σ_{j=1..S} step(j)]``, uncached (the whole
sequence re-run every step, as the reference) ``passes · Σ_{s=0..S} forward(S = s)``. Add
:func:`tokenizer_decode_flops` for the codes → features decode (decoder half of the tokenizer).

Per token: diffusion FLOPs over its n = ⌈T/p⌉ motion tokens; AR FLOPs over its S + 1 predicted tokens
(codes and END), i.e. the supervised targets of :func:`handx.models.ar.ar_loss`.
"""

from __future__ import annotations

import dataclasses
import math

from handx.models.ar import NUM_BRANCHES, ARConfig
from handx.models.diffusion import DiffusionConfig
from handx.models.tokenizer import TokenizerConfig

#: multiplier from one forward pass to one training step (forward + backward ≈ 2 × forward)
TRAINING_MULTIPLIER = 3


# ------------------------------------------------------------------------------------------------ building blocks
def linear(rows: int, n_in: int, n_out: int) -> int:
    """FLOPs of ``Linear(n_in → n_out)`` on ``rows`` rows (bias not counted)."""
    return 2 * rows * n_in * n_out


def attention(queries: int, keys: int, width: int) -> int:
    """FLOPs of ``softmax(QKᵀ)V`` for ``queries`` × ``keys`` positions at model width ``width`` (all heads)."""
    return 4 * queries * keys * width


def conv1d(length_out: int, c_in: int, c_out: int, kernel: int) -> int:
    """FLOPs of ``Conv1d(c_in → c_out, kernel)`` producing ``length_out`` outputs (any stride or dilation)."""
    return 2 * length_out * c_in * c_out * kernel


def guidance_passes(scale: float) -> int:
    """Model passes per sampling step under classifier-free guidance ``scale``: 1 at scale 1 or 0, else 2."""
    if not (math.isfinite(scale) and scale >= 0.0):
        raise ValueError(f"guidance scale must be a finite number >= 0, got {scale}")
    return 1 if scale in (0.0, 1.0) else 2


def training_flops(forward: int, *, leaf_products: int = 0) -> int:
    """FLOPs of one training step (forward and backward) whose forward costs ``forward``: 3 × forward, less the
    input gradients the backward skips (``leaf_products``: the FLOPs of the products whose input needs no
    gradient; the family's ``*_training_flops`` passes them, 0 gives the usual 3 × forward)."""
    return TRAINING_MULTIPLIER * forward - leaf_products


def _check_count(owner: str, name: str, value: int, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise ValueError(f"{owner}: {name} must be an integer >= {lowest}, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------------ diffusion
def diffusion_tokens(config: DiffusionConfig, frames: int | None = None) -> int:
    """Motion tokens n = ⌈T / patch⌉ of a ``frames``-frame window (default: the config's full window)."""
    frames = config.frames if frames is None else frames
    return -(-frames // config.patch)


def diffusion_forward_flops(config: DiffusionConfig, *, batch: int = 1, frames: int | None = None,
                            text_tokens: int | None = None) -> int:
    """FLOPs of one :class:`~handx.models.diffusion.TrebleDenoiser` forward on ``batch`` windows of ``frames``
    frames (default ``config.frames``) with ``text_tokens`` tokens per text (default ``config.max_text_tokens``)."""
    frames = config.frames if frames is None else frames
    text_tokens = config.max_text_tokens if text_tokens is None else text_tokens
    _check_count("diffusion_forward_flops", "batch", batch, 1)
    _check_count("diffusion_forward_flops", "frames", frames, 1)
    _check_count("diffusion_forward_flops", "text_tokens", text_tokens, 1)
    d, f, pf = config.width, config.ff, config.patch * config.features
    n = diffusion_tokens(config, frames)
    m = 1 if config.text_pool else text_tokens  # memory tokens per branch
    if config.branches == "treble":
        sequences, q, k = NUM_BRANCHES, n + 2, m  # [time, CLS_b, m_1 … m_n] per branch
    else:
        sequences, q, k = 1, n + 1, NUM_BRANCHES * m  # [time, m_1 … m_n] over the three texts
    self_attention = linear(q, d, 3 * d) + attention(q, q, d) + linear(q, d, d)
    cross_attention = linear(q, d, d) + linear(k, d, 2 * d) + attention(q, k, d) + linear(q, d, d)
    feed_forward = linear(q, d, f) + linear(q, f, d)
    decoder = sequences * config.layers * (self_attention + cross_attention + feed_forward)
    projections = linear(n, pf, d) + linear(n, d, pf) + 2 * linear(1, d, d) \
        + NUM_BRANCHES * linear(m, config.text_dim, d)  # input, output, time MLP, text
    return batch * (projections + decoder)


def diffusion_training_flops(config: DiffusionConfig, *, batch: int = 1, frames: int | None = None,
                             text_tokens: int | None = None) -> int:
    """FLOPs of one training step (forward and backward) of the denoiser; arguments of
    :func:`diffusion_forward_flops`."""
    forward = diffusion_forward_flops(config, batch=batch, frames=frames, text_tokens=text_tokens)
    text_tokens = config.max_text_tokens if text_tokens is None else text_tokens
    d, m = config.width, 1 if config.text_pool else text_tokens
    leaf = linear(diffusion_tokens(config, frames), config.patch * config.features, d) + linear(1, d, d) \
        + NUM_BRANCHES * linear(m, config.text_dim, d)  # input projection, time MLP on the sinusoid, text
    return training_flops(forward, leaf_products=batch * leaf)


def diffusion_sampling_flops(config: DiffusionConfig, *, steps: int, guidance: float = 1.0, batch: int = 1,
                             frames: int | None = None, text_tokens: int | None = None) -> int:
    """FLOPs of sampling ``batch`` clips with ``steps`` DDIM (or DDPM) steps under guidance scale ``guidance``."""
    _check_count("diffusion_sampling_flops", "steps", steps, 1)
    forward = diffusion_forward_flops(config, batch=batch, frames=frames, text_tokens=text_tokens)
    return steps * guidance_passes(guidance) * forward


# ------------------------------------------------------------------------------------------------------ tokenizer
def _resnet(config: TokenizerConfig, length: int) -> int:
    w = config.width
    return config.depth * (conv1d(length, w, w, 3) + conv1d(length, w, w, 1))


def _tokenizer_decoder(config: TokenizerConfig, tokens: int) -> int:
    w, t = config.width, tokens
    total = conv1d(t, w, w, 3)
    for _ in range(config.down):
        total += _resnet(config, t)
        t *= 2
        total += conv1d(t, w, w, 3)  # after the nearest ×2 upsampling
    return total + conv1d(t, w, w, 3) + conv1d(t, w, config.features, 3)


def _check_frames(owner: str, config: TokenizerConfig, frames: int) -> int:
    _check_count(owner, "frames", frames, 1)
    if frames % config.frames_per_token:
        raise ValueError(f"{owner}: frames must be a multiple of {config.frames_per_token} frames per token, "
                         f"got {frames}")
    return frames // config.frames_per_token


def tokenizer_forward_flops(config: TokenizerConfig, *, frames: int, batch: int = 1) -> int:
    """FLOPs of one :class:`~handx.models.tokenizer.MotionTokenizer` forward (encode, FSQ, decode) on ``batch``
    clips of ``frames`` frames (a multiple of ``config.frames_per_token``)."""
    _check_count("tokenizer_forward_flops", "batch", batch, 1)
    tokens = _check_frames("tokenizer_forward_flops", config, frames)
    w, c = config.width, len(config.levels)
    encoder, t = conv1d(frames, config.features, w, 3), frames
    for _ in range(config.down):
        t //= 2
        encoder += conv1d(t, w, w, 4) + _resnet(config, t)  # stride-2 downsampling, then a Resnet1D
    encoder += conv1d(t, w, w, 3)
    projections = linear(tokens, w, c) + linear(tokens, c, w) if w != c else 0  # FSQ project_in, project_out
    return batch * (encoder + projections + _tokenizer_decoder(config, tokens))


def tokenizer_training_flops(config: TokenizerConfig, *, frames: int, batch: int = 1) -> int:
    """FLOPs of one training step (forward and backward) of the tokenizer on ``batch`` clips of ``frames`` frames."""
    forward = tokenizer_forward_flops(config, frames=frames, batch=batch)
    leaf = conv1d(frames, config.features, config.width, 3)  # the first convolution reads the features
    return training_flops(forward, leaf_products=batch * leaf)


def tokenizer_decode_flops(config: TokenizerConfig, *, codes: int, batch: int = 1) -> int:
    """FLOPs of :meth:`~handx.models.tokenizer.MotionTokenizer.decode` of ``codes`` tokens per clip (FSQ
    ``project_out`` and the decoder)."""
    _check_count("tokenizer_decode_flops", "codes", codes, 1)
    _check_count("tokenizer_decode_flops", "batch", batch, 1)
    w, c = config.width, len(config.levels)
    project_out = linear(codes, c, w) if w != c else 0
    return batch * (project_out + _tokenizer_decoder(config, codes))


# ------------------------------------------------------------------------------------------------------------- AR
def _ar_block(config: ARConfig, queries: int, keys: int) -> int:
    d, f = config.width, config.ff
    assert f is not None  # resolved by ARConfig.__post_init__
    return linear(queries, d, 3 * d) + attention(queries, keys, d) + linear(queries, d, d) \
        + 2 * linear(queries, d, f) + linear(queries, f, d)  # q, k, v; QKᵀ, AV; out; SwiGLU w1, w3; w2


def _ar_sizes(owner: str, config: ARConfig, text_tokens: int | None, codes: int | None) -> tuple[int, int]:
    text_tokens = config.max_text_tokens if text_tokens is None else text_tokens
    codes = config.max_tokens if codes is None else codes
    _check_count(owner, "text_tokens", text_tokens, 1)
    _check_count(owner, "codes", codes, 0)
    return text_tokens, codes


def _ar_run(config: ARConfig, text_tokens: int, codes: int, logit_rows: int) -> int:
    """One full pass over the prefix and ``codes`` codes with ``logit_rows`` rows through the head."""
    positions = NUM_BRANCHES * (text_tokens + 1) + codes  # N = P + S
    return linear(NUM_BRANCHES * text_tokens, config.text_dim, config.width) \
        + config.layers * _ar_block(config, positions, positions) + linear(logit_rows, config.width, config.vocab)


def ar_forward_flops(config: ARConfig, *, text_tokens: int | None = None, codes: int | None = None,
                     batch: int = 1) -> int:
    """FLOPs of one teacher-forced :meth:`~handx.models.ar.PrefixLM.forward` on ``batch`` sequences of
    ``text_tokens`` tokens per text (default ``config.max_text_tokens``) and ``codes`` codes (default
    ``config.max_tokens``)."""
    _check_count("ar_forward_flops", "batch", batch, 1)
    text_tokens, codes = _ar_sizes("ar_forward_flops", config, text_tokens, codes)
    return batch * _ar_run(config, text_tokens, codes, codes + 1)


def ar_training_flops(config: ARConfig, *, text_tokens: int | None = None, codes: int | None = None,
                      batch: int = 1) -> int:
    """FLOPs of one teacher-forced training step (forward and backward); arguments of :func:`ar_forward_flops`."""
    forward = ar_forward_flops(config, text_tokens=text_tokens, codes=codes, batch=batch)
    text_tokens, _ = _ar_sizes("ar_training_flops", config, text_tokens, codes)
    leaf = linear(NUM_BRANCHES * text_tokens, config.text_dim, config.width)  # text projection
    return training_flops(forward, leaf_products=batch * leaf)


def ar_sampling_flops(config: ARConfig, *, text_tokens: int | None = None, codes: int | None = None,
                      guidance: float = 1.0, cached: bool = True, end: bool = True, batch: int = 1) -> int:
    """FLOPs of decoding ``codes`` codes (default ``config.max_tokens``) per clip with
    :func:`handx.sampling.ar_decode.decode`, then END when ``end`` (decode does not predict END once a row holds
    ``max_tokens`` codes: pass ``end=False`` there), KV-cached or not, under guidance scale ``guidance``."""
    _check_count("ar_sampling_flops", "batch", batch, 1)
    text_tokens, codes = _ar_sizes("ar_sampling_flops", config, text_tokens, codes)
    predictions = codes + 1 if end else codes
    _check_count("ar_sampling_flops", "predictions (codes, plus END when end=True)", predictions, 1)
    if cached:
        prefix = NUM_BRANCHES * (text_tokens + 1)
        head = linear(1, config.width, config.vocab)
        total = _ar_run(config, text_tokens, 0, 1) + sum(
            config.layers * _ar_block(config, 1, prefix + j) + head for j in range(1, predictions))
    else:
        total = sum(_ar_run(config, text_tokens, s, s + 1) for s in range(predictions))
    return batch * guidance_passes(guidance) * total


# --------------------------------------------------------------------------------------------------------- tables
@dataclasses.dataclass(frozen=True)
class FlopSummary:
    """FLOPs of one preset for one clip.

    Attributes:
        family: ``diffusion``, ``tokenizer`` or ``ar``.
        preset: the preset's name.
        parameters: trainable parameters (the config's ``parameter_count``).
        tokens: tokens per clip (diffusion: motion tokens; tokenizer: codes; AR: codes + END).
        forward: FLOPs of one forward pass on one clip.
        training: FLOPs of one training step on one clip (forward and backward, the family's
            ``*_training_flops``).
        sampling: FLOPs of sampling one clip (0 for the tokenizer; AR: KV-cached decoding plus the tokenizer
            decode when the summary was made with a tokenizer config).
    """

    family: str
    preset: str
    parameters: int
    tokens: int
    forward: int
    training: int
    sampling: int

    @property
    def training_per_token(self) -> float:
        return self.training / self.tokens

    @property
    def sampling_per_token(self) -> float:
        return self.sampling / self.tokens


def diffusion_summary(preset: str, *, steps: int = 50, guidance: float = 2.5) -> FlopSummary:
    """FLOPs of a :class:`DiffusionConfig` preset on a full window (defaults: the diffusion pipeline's sampler)."""
    config = DiffusionConfig.preset(preset)
    forward = diffusion_forward_flops(config)
    sampling = diffusion_sampling_flops(config, steps=steps, guidance=guidance)
    return FlopSummary("diffusion", preset, config.parameter_count(), diffusion_tokens(config), forward,
                       diffusion_training_flops(config), sampling)


def tokenizer_summary(preset: str, *, frames: int = 60) -> FlopSummary:
    """FLOPs of a :class:`TokenizerConfig` preset on one ``frames``-frame clip."""
    config = TokenizerConfig.preset(preset)
    forward = tokenizer_forward_flops(config, frames=frames)
    return FlopSummary("tokenizer", preset, config.parameter_count(), frames // config.frames_per_token, forward,
                       tokenizer_training_flops(config, frames=frames), 0)


def ar_summary(preset: str, *, guidance: float = 1.5, tokenizer: TokenizerConfig | None = None) -> FlopSummary:
    """FLOPs of an :class:`ARConfig` preset on a full clip (``max_tokens`` codes, ``max_text_tokens`` per text;
    default guidance: the AR pipeline's), sampling with the KV cache, plus ``tokenizer``'s decode if given."""
    config = ARConfig.preset(preset)
    forward = ar_forward_flops(config)
    sampling = ar_sampling_flops(config, guidance=guidance, end=False)  # decode stops at max_tokens codes
    if tokenizer is not None:
        sampling += tokenizer_decode_flops(tokenizer, codes=config.max_tokens)
    return FlopSummary("ar", preset, config.parameter_count(), config.max_tokens + 1, forward,
                       ar_training_flops(config), sampling)


def describe(rows: list[FlopSummary]) -> str:
    """A plain-text table of summaries (GFLOPs per clip, MFLOPs per token)."""
    header = (f"{'family':<10} {'preset':<8} {'params':>10} {'tokens':>6} {'fwd GF':>10} {'train GF':>10} "
              f"{'train MF/tok':>12} {'sample GF':>11}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.family:<10} {r.preset:<8} {r.parameters / 1e6:>9.2f}M {r.tokens:>6} {r.forward / 1e9:>10.3f} "
                     f"{r.training / 1e9:>10.3f} {r.training_per_token / 1e6:>12.1f} {r.sampling / 1e9:>11.2f}")
    return "\n".join(lines)
