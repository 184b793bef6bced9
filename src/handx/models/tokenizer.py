"""The FSQ motion tokenizer of HandX's autoregressive model (reference §6.1, §6.2), on ``local288`` features.

A z-normalised feature sequence x ``(B, T, 288)`` (:mod:`handx.representations.local288`) becomes T / 2ᵈᵒʷⁿ
discrete tokens and back:

    z  = E(x)                      (B, T / 2ᵈᵒʷⁿ, width)     encoder, §6.1
    ẑ  = FSQ(z)                    (B, T / 2ᵈᵒʷⁿ, width)     project_in → bound → round → /⌊L/2⌋ → project_out, §6.2
    x̂  = D(ẑ)                      (B, T, 288)               decoder, §6.1

Encoder: ``Conv1d(288 → w, k3)`` → ReLU → ``down`` × [``Conv1d(w → w, k4, s2, p1)`` → Resnet1D] →
``Conv1d(w → w, k3)``. Decoder: ``Conv1d(w → w, k3)`` → ReLU → ``down`` × [Resnet1D → nearest upsample ×2 →
``Conv1d(w → w, k3)``] → ``Conv1d(w → w, k3)`` → ReLU → ``Conv1d(w → 288, k3)``. A Resnet1D is ``depth`` residual
blocks ``x + Conv(k1)(ReLU(LN(Conv(k3, dilation d)(ReLU(LN(x))))))`` with d = g^(depth−1), …, g, 1 (g =
``dilation_growth``; 9, 3, 1 for the reference's depth 3), in the encoder and the decoder alike, as in the
reference code. The reference's wavelet patcher is an identity at its shipped setting (§6.1) and is left out.

The quantiser is ``vector_quantize_pytorch.FSQ(levels, dim=width)``: it owns the two projections of §6.2,
``project_in: Linear(width → len(levels))`` and ``project_out: Linear(len(levels) → width)`` (with bias; none
when width equals the number of levels), and uses the reference's bound ``tanh(z + atanh(o/h))·h − o``, the
straight-through rounding and the index ``Σ_k (c_k·⌊L_k/2⌋ + ⌊L_k/2⌋)·basis_k``. It runs in float32 with
autocast off, whatever precision the rest of the network uses. There is no commitment loss.

Vocabulary: a *code* is a point of the FSQ lattice, ``(..., len(levels))`` with entries in [−1, 1]
(:meth:`MotionTokenizer.indices_to_codes`); an *index* (token) is its integer id in ``[0, codebook_size)``.

Presets (trainable parameters; ``down`` 1, 2 frames per token):

    =======  =====  =====  ===============  =====  ===========
    preset   width  depth  levels           codes  parameters
    =======  =====  =====  ===============  =====  ===========
    tiny     64     2      (8, 5, 5, 5)     1000   0.244 M
    small    128    3      (7, 5, 5, 5, 5)  4375   0.884 M
    paper    512    3      (7, 5, 5, 5, 5)  4375   11.398 M
    =======  =====  =====  ===============  =====  ===========

``paper`` is the reference's setting (§6.1: width = code_dim = output_emb_width = 512, depth 3, down_t 1; §6.2:
``--nb-code 4096`` → levels (7, 5, 5, 5, 5), 4375 codes).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import Tensor, nn
from vector_quantize_pytorch import FSQ

from handx.models.limits import FIELD_LIMITS, check_parameter_count, check_size_field
from handx.representations.local288 import NUM_FEATURES

#: the most FSQ dimensions (entries of ``levels``) a config may ask for; the codebook size is bounded by
#: ``FIELD_LIMITS["codebook"]`` (the quantiser holds its whole codebook, ``codebook_size × len(levels)`` floats)
MAX_FSQ_DIMS = 16
#: FSQ needs at least 3 levels per dimension (2 levels only with the library's symmetric variant, not used here)
MIN_LEVEL = 3


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """Size settings of :class:`MotionTokenizer` (defaults: the ``paper`` preset).

    Attributes:
        features: features per frame (288 for ``local288``).
        width: channels of every convolution and the quantiser's input and output (the reference's width,
            code_dim and output_emb_width, all equal).
        depth: residual blocks per Resnet1D.
        dilation_growth: g; the blocks of a Resnet1D use dilations g^(depth−1), …, g, 1.
        down: temporal ×2 downsamplings; a token covers ``2 ** down`` frames.
        levels: FSQ levels per code dimension, each at least 3; the codebook has their product of codes.
    """

    features: int = NUM_FEATURES
    width: int = 512
    depth: int = 3
    dilation_growth: int = 3
    down: int = 1
    levels: tuple[int, ...] = (7, 5, 5, 5, 5)

    def __post_init__(self) -> None:
        for name in ("features", "width", "depth", "dilation_growth", "down"):
            check_size_field("TokenizerConfig", name, getattr(self, name))
        levels = self.levels
        if not isinstance(levels, (tuple, list)) or not 1 <= len(levels) <= MAX_FSQ_DIMS:
            raise ValueError(f"TokenizerConfig.levels must be a tuple of 1 to {MAX_FSQ_DIMS} integers, got {levels!r}")
        upper = FIELD_LIMITS["levels"]
        for level in levels:
            if isinstance(level, bool) or not isinstance(level, int) or not MIN_LEVEL <= level <= upper:
                raise ValueError(f"TokenizerConfig.levels entries must be integers in [{MIN_LEVEL}, {upper}], "
                                 f"got {level!r} in {tuple(levels)}")
        object.__setattr__(self, "levels", tuple(levels))  # a JSON list becomes the tuple the dataclass holds
        if self.codebook_size > FIELD_LIMITS["codebook"]:
            raise ValueError(f"TokenizerConfig.levels {self.levels} give {self.codebook_size:,} codes, more than "
                             f"the {FIELD_LIMITS['codebook']:,} handx builds")
        if self.dilation_growth ** (self.depth - 1) > FIELD_LIMITS["frames"]:
            raise ValueError(f"TokenizerConfig.dilation_growth {self.dilation_growth} with depth {self.depth}: the "
                             f"largest dilation, dilation_growth ** (depth - 1), must be at most "
                             f"{FIELD_LIMITS['frames']}")
        check_parameter_count("TokenizerConfig", self.parameter_count())

    @classmethod
    def preset(cls, name: str) -> TokenizerConfig:
        """A named size: ``tiny``, ``small`` or ``paper`` (module docstring).

        Change other fields with ``dataclasses.replace(TokenizerConfig.preset("small"), down=2)``.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown TokenizerConfig preset {name!r}; expected one of {', '.join(PRESETS)}")
        return cls(**PRESETS[name])

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["levels"] = list(self.levels)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenizerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"TokenizerConfig.from_json: unknown field(s) {unknown}; expected some of {sorted(known)}")
        return cls(**data)

    @property
    def codebook_size(self) -> int:
        """Number of codes: the product of the levels."""
        return math.prod(self.levels)

    @property
    def frames_per_token(self) -> int:
        """Frames each token covers: ``2 ** down``."""
        return 2 ** self.down

    def parameter_count(self) -> int:
        """Trainable parameters of :class:`MotionTokenizer` with this config, from the shapes alone."""
        w, f, d = self.width, self.features, len(self.levels)

        def conv(c_in: int, c_out: int, k: int) -> int:
            return c_in * c_out * k + c_out

        resnet = self.depth * (2 * 2 * w + conv(w, w, 3) + conv(w, w, 1))  # per block: 2 LayerNorms, 2 convs
        encoder = conv(f, w, 3) + self.down * (conv(w, w, 4) + resnet) + conv(w, w, 3)
        decoder = conv(w, w, 3) + self.down * (resnet + conv(w, w, 3)) + conv(w, w, 3) + conv(w, f, 3)
        projections = (w * d + d) + (d * w + w) if w != d else 0  # FSQ project_in, project_out
        return encoder + projections + decoder


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"width": 64, "depth": 2, "levels": (8, 5, 5, 5)},
    "small": {"width": 128, "depth": 3, "levels": (7, 5, 5, 5, 5)},
    "paper": {"width": 512, "depth": 3, "levels": (7, 5, 5, 5, 5)},
}


@dataclasses.dataclass(frozen=True)
class TokenizerOutput:
    """What :meth:`MotionTokenizer.forward` returns.

    Attributes:
        recon: float ``(B, T, F)``, the reconstruction x̂ in the input's normalised feature space.
        indices: int64 ``(B, T / frames_per_token)``, the tokens.
    """

    recon: Tensor
    indices: Tensor


class ResBlock1D(nn.Module):
    """``x + Conv(k1)(ReLU(LN(Conv(k3, dilation)(ReLU(LN(x))))))`` on ``(B, C, T)``; LN over channels."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.norm2 = nn.LayerNorm(width)
        self.conv2 = nn.Conv1d(width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.norm1(x.transpose(1, 2)).transpose(1, 2))  # (B, C, T)
        h = self.conv1(h)
        h = torch.relu(self.norm2(h.transpose(1, 2)).transpose(1, 2))
        return x + self.conv2(h)


def resnet1d(width: int, depth: int, growth: int) -> nn.Sequential:
    """``depth`` :class:`ResBlock1D` with dilations growth^(depth−1), …, growth, 1 (the reference's reversed order)."""
    return nn.Sequential(*[ResBlock1D(width, growth ** k) for k in reversed(range(depth))])


class MotionTokenizer(nn.Module):
    """FSQ autoencoder over normalised feature sequences (reference §6.1, §6.2); see the module docstring."""

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        w, f, c = config.width, config.features, config
        self.encoder = nn.Sequential(
            nn.Conv1d(f, w, 3, padding=1), nn.ReLU(),
            *[nn.Sequential(nn.Conv1d(w, w, 4, stride=2, padding=1), resnet1d(w, c.depth, c.dilation_growth))
              for _ in range(c.down)],
            nn.Conv1d(w, w, 3, padding=1),
        )
        self.quantizer = FSQ(list(c.levels), dim=w)
        self.decoder = nn.Sequential(
            nn.Conv1d(w, w, 3, padding=1), nn.ReLU(),
            *[nn.Sequential(resnet1d(w, c.depth, c.dilation_growth), nn.Upsample(scale_factor=2, mode="nearest"),
                            nn.Conv1d(w, w, 3, padding=1))
              for _ in range(c.down)],
            nn.Conv1d(w, w, 3, padding=1), nn.ReLU(),
            nn.Conv1d(w, f, 3, padding=1),
        )

    def _check_motion(self, x: Tensor, name: str) -> None:
        f, step = self.config.features, self.config.frames_per_token
        if x.ndim != 3 or x.shape[-1] != f or x.shape[1] == 0 or x.shape[1] % step:
            raise ValueError(f"MotionTokenizer.{name} expects features of shape (B, T, {f}) with T a positive "
                             f"multiple of {step} frames per token, got {tuple(x.shape)}")

    def _check_indices(self, indices: Tensor, name: str) -> None:
        size = self.config.codebook_size
        if indices.dtype.is_floating_point or indices.dtype == torch.bool or indices.dtype.is_complex:
            raise ValueError(f"MotionTokenizer.{name} expects integer indices, got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= size):
            raise ValueError(f"MotionTokenizer.{name}: indices must lie in [0, {size}), got values in "
                             f"[{int(indices.min())}, {int(indices.max())}]")

    def _quantize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """FSQ in float32 with autocast off: ``(B, N, w)`` → (ẑ ``(B, N, w)``, indices int64 ``(B, N)``)."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            z_hat, indices = self.quantizer(z.float())
        return z_hat, indices.long()

    def _decode_latent(self, z_hat: Tensor) -> Tensor:
        return self.decoder(z_hat.transpose(1, 2)).transpose(1, 2)  # (B, N, w) → (B, T, F)

    def forward(self, x: Tensor) -> TokenizerOutput:
        """Reconstruct ``(B, T, F)`` normalised features through the codebook (straight-through gradients)."""
        self._check_motion(x, "forward")
        z = self.encoder(x.transpose(1, 2)).transpose(1, 2)  # (B, T/2^down, w)
        z_hat, indices = self._quantize(z)
        return TokenizerOutput(recon=self._decode_latent(z_hat), indices=indices)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Tokens of ``(B, T, F)`` normalised features: int64 ``(B, T / frames_per_token)``."""
        self._check_motion(x, "encode")
        z = self.encoder(x.transpose(1, 2)).transpose(1, 2)  # (B, N, w)
        return self._quantize(z)[1]

    def decode(self, indices: Tensor) -> Tensor:
        """Normalised features of tokens ``(B, N)``: ``(B, N · frames_per_token, F)``."""
        if indices.ndim != 2:
            raise ValueError(f"MotionTokenizer.decode expects indices of shape (B, N), got {tuple(indices.shape)}")
        codes = self.indices_to_codes(indices)  # (B, N, len(levels))
        with torch.autocast(device_type=codes.device.type, enabled=False):
            z_hat = self.quantizer.project_out(codes)  # (B, N, w)
        return self._decode_latent(z_hat)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """FSQ lattice points of indices ``(...)``: float32 ``(..., len(levels))``, entries in [−1, 1]."""
        self._check_indices(indices, "indices_to_codes")
        return self.quantizer.implicit_codebook[indices.long()]

    def codes_to_indices(self, codes: Tensor) -> Tensor:
        """Indices of FSQ lattice points ``(..., len(levels))``: int64 ``(...)``."""
        d = len(self.config.levels)
        if codes.ndim < 1 or codes.shape[-1] != d:
            raise ValueError(f"MotionTokenizer.codes_to_indices expects codes of shape (..., {d}), "
                             f"got {tuple(codes.shape)}")
        return self.quantizer.codes_to_indices(codes.float()).long()
