"""The TMR-style text–motion evaluator networks (handx-reference.md §7.2): two encoders into one latent space
and a motion decoder used only for training.

Each encoder is a transformer over its input tokens with two learned distribution tokens prepended; their outputs
are the mean μ and log-variance log σ² of a Gaussian q(z | input) in the ``latent``-d space. The embedding used by
every metric is μ (§7.3).

* :class:`MotionEncoder`: ``x (B, T, 126)`` → ``Linear(126 → d)`` → ``[μ-token, logσ²-token, m_1 … m_T]``
  ``+ PE`` → encoder → (μ, log σ²) from the first two outputs.
* :class:`TextEncoderHead`: the three texts of a clip (left, right, two-hands relation), each as frozen token
  features from a :class:`handx.text.TextEncoder`. Every token is projected ``Linear(text_dim → d)`` (the
  reference puts a ReLU before the projection because its features are T5 hidden states; GloVe vectors are signed
  word coordinates, so ours is a plain Linear), a learned branch embedding ``(3, d)`` is added so the network
  knows which hand a text is about, and sinusoidal positions count within each branch. The three sequences are
  concatenated (real tokens first), the two distribution tokens are prepended, and the encoder gives (μ, log σ²).
  The reference instead joins the three texts into one string with marker words (§7.1). Padding is never attended
  to, so it changes nothing; the head therefore packs it out and encodes rows of similar length together (the
  result is the same, up to float rounding, for any padding and any batch).
* :class:`MotionDecoder`: queries ``0 + PE_t`` for each frame cross-attend to the single latent token ``z``;
  ``Linear(d → 126)`` gives the reconstruction ``(B, T, 126)``.

All three use GELU transformer layers with ``layers`` layers, ``heads`` heads, FFN ``ff``. :class:`TMR` bundles
them.

Presets (parameters with 50-d GloVe features):

    ======  ======  ======  =====  =====  ========  ======  =======  ==========================================
    preset  latent  layers  heads  ff     params    LN      dropout  use
    ======  ======  ======  =====  =====  ========  ======  =======  ==========================================
    tiny    64      1       2      128    0.14 M    pre     0        tests and demos
    small   128     2       4      256    0.97 M    pre     0        CPU training (benchmarks/evaluator_synth.py)
    base    256     4       4      1024   10.61 M   post    0.1      the reference evaluator (§7.2); GPU
    ======  ======  ======  =====  =====  ========  ======  =======  ==========================================

``base`` is the reference exactly: post-LN, dropout 0.1 on the residual, feed-forward and attention weights.
The CPU presets differ on purpose. Dropout is off: on a CPU, drawing dropout masks takes about a third of a
training step, and attention-weight dropout has no fused kernel, so PyTorch falls back to an attention path about
20× slower (torch 2.13, 300 tokens); the five text variants of every clip already vary the inputs. Their layers
are pre-LN (with a final LayerNorm), which trains faster at the higher learning rate a short CPU run needs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from handx.models.diffusion import sinusoidal
from handx.motion import BRANCHES
from handx.models.limits import check_parameter_count, check_size_field

NUM_BRANCHES = len(BRANCHES)  # left, right, two-hands relation
GROUP_ROWS = 32  # texts encoded together; rows are grouped by length so that little padding is computed


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig:
    """Sizes of :class:`TMR` (defaults: the ``base`` preset, the reference's §7.2).

    Attributes:
        latent: width d of every transformer and of the latent space (even, divisible by ``heads``).
        layers: layers of each of the three transformers.
        heads: attention heads.
        ff: feed-forward width.
        dropout: dropout on the residual and feed-forward branches of the transformers, in [0, 1).
        attention_dropout: dropout on the attention weights, in [0, 1) (the reference: 0.1, like ``dropout``).
        norm_first: pre-LN transformer layers (LayerNorm before attention and FFN, and once after the stack);
            False is the reference's post-LN.
        text_dim: width of the text encoder's token features (50: GloVe 6B 50-d; set from the encoder).
        motion_dim: features per frame (126 = 2 hands × 21 joints × xyz, :mod:`handx.representations.positions126`).
        frames: frames per window; the longest motion the positional table covers.
        max_text_tokens: tokens per text the text encoder gives at most (documentation: the head accepts any).
    """

    latent: int = 256
    layers: int = 4
    heads: int = 4
    ff: int = 1024
    dropout: float = 0.1
    attention_dropout: float = 0.1
    norm_first: bool = False
    text_dim: int = 50
    motion_dim: int = 126
    frames: int = 60
    max_text_tokens: int = 128

    def __post_init__(self) -> None:
        for name in ("latent", "layers", "heads", "ff", "text_dim", "motion_dim", "frames", "max_text_tokens"):
            check_size_field("EvaluatorConfig", name, getattr(self, name))
        # two transformer encoders (text, motion): attention and feed-forward weights dominate
        check_parameter_count("EvaluatorConfig", 2 * self.layers * (4 * self.latent ** 2 + 2 * self.latent * self.ff))
        if self.latent % 2:
            raise ValueError(f"EvaluatorConfig.latent must be even (sinusoidal encodings), got {self.latent}")
        if self.latent % self.heads:
            raise ValueError(f"EvaluatorConfig.heads must divide latent {self.latent}, got {self.heads}")
        if not isinstance(self.norm_first, bool):
            raise ValueError(f"EvaluatorConfig.norm_first must be True or False, got {self.norm_first!r}")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"EvaluatorConfig.{name} must be a number in [0, 1), got {value!r}")

    @classmethod
    def preset(cls, name: str) -> EvaluatorConfig:
        """A named size: ``tiny``, ``small`` or ``base`` (the reference). Change other fields with
        ``dataclasses.replace(EvaluatorConfig.preset("base"), text_dim=768)``."""
        if name not in PRESETS:
            raise ValueError(f"unknown EvaluatorConfig preset {name!r}; expected one of {', '.join(PRESETS)}")
        return cls(**PRESETS[name])

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvaluatorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"EvaluatorConfig.from_json: unknown field(s) {unknown}; expected some of {sorted(known)}")
        return cls(**data)


_CPU = {"dropout": 0.0, "attention_dropout": 0.0, "norm_first": True}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"latent": 64, "layers": 1, "heads": 2, "ff": 128, **_CPU},
    "small": {"latent": 128, "layers": 2, "heads": 4, "ff": 256, **_CPU},
    "base": {"latent": 256, "layers": 4, "heads": 4, "ff": 1024},
}


def _encoder(config: EvaluatorConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(config.latent, config.heads, config.ff, config.dropout, activation="gelu",
                                       batch_first=True, norm_first=config.norm_first)
    layer.self_attn.dropout = config.attention_dropout
    return nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False,
                                 norm=nn.LayerNorm(config.latent) if config.norm_first else None)


class MotionEncoder(nn.Module):
    """q(z | motion): ``(B, T, motion_dim)`` normalised frames → μ, log σ² ``(B, latent)`` each."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        self.input_proj = nn.Linear(config.motion_dim, config.latent)
        self.dist_tokens = nn.Parameter(torch.randn(2, config.latent))  # the μ and log σ² tokens
        self.encoder = _encoder(config)
        self.register_buffer("positions", sinusoidal(torch.arange(config.frames + 2), config.latent),
                             persistent=False)

    def forward(self, motion: Tensor) -> tuple[Tensor, Tensor]:
        cfg = self.config
        if motion.ndim != 3 or motion.shape[2] != cfg.motion_dim or not 1 <= motion.shape[1] <= cfg.frames:
            raise ValueError(f"MotionEncoder: expected motion (B, T ≤ {cfg.frames}, {cfg.motion_dim}), "
                             f"got {tuple(motion.shape)}")
        x = self.input_proj(motion)  # (B, T, d)
        x = torch.cat([self.dist_tokens.expand(x.shape[0], -1, -1), x], dim=1)  # (B, T + 2, d)
        out = self.encoder(x + self.positions[: x.shape[1]])  # (B, T + 2, d)
        return out[:, 0], out[:, 1]


class TextEncoderHead(nn.Module):
    """q(z | texts): the token features of the three texts → μ, log σ² ``(B, latent)`` each."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        self.token_proj = nn.Linear(config.text_dim, config.latent)
        self.branch_embedding = nn.Parameter(torch.randn(NUM_BRANCHES, config.latent))
        self.dist_tokens = nn.Parameter(torch.randn(2, config.latent))
        self.encoder = _encoder(config)

    def forward(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Args:
            tokens: ``(3, B, L, text_dim)`` token features of the left, right and relation texts.
            mask: ``(3, B, L)`` bool, True for a real token; every text needs one.
        """
        if tokens.ndim != 4 or tokens.shape[0] != NUM_BRANCHES or tokens.shape[3] != self.config.text_dim:
            raise ValueError(f"TextEncoderHead: expected tokens (3, B, L, {self.config.text_dim}), "
                             f"got {tuple(tokens.shape)}")
        if tuple(mask.shape) != tuple(tokens.shape[:3]) or mask.dtype != torch.bool:
            raise ValueError(f"TextEncoderHead: expected a bool mask {tuple(tokens.shape[:3])}, got "
                             f"{mask.dtype} {tuple(mask.shape)}")
        _, batch, length, _ = tokens.shape
        d = self.config.latent
        pe = sinusoidal(torch.arange(length + 2, device=tokens.device), d)  # (L + 2, d)
        x = (self.token_proj(tokens) + self.branch_embedding[:, None, None, :]
             + pe[2:])  # (3, B, L, d): positions 2 … L + 1 within each branch
        x = x.permute(1, 0, 2, 3).reshape(batch, NUM_BRANCHES * length, d)  # (B, 3L, d)
        valid = mask.permute(1, 0, 2).reshape(batch, NUM_BRANCHES * length)  # (B, 3L)
        dist = (self.dist_tokens + pe[:2]).expand(batch, -1, -1)  # (B, 2, d)
        by_length = torch.argsort(valid.sum(dim=1))
        parts = []
        for rows in by_length.split(GROUP_ROWS):  # rows of similar length together: little padding per group
            xg, vg = _pack(x[rows], valid[rows])  # (b, S, d), S = the most real tokens of these rows ≤ 3L
            xg = torch.cat([dist[rows], xg], dim=1)  # (b, S + 2, d)
            vg = torch.cat([vg.new_ones(len(rows), 2), vg], dim=1)  # (b, S + 2)
            parts.append(self.encoder(xg, src_key_padding_mask=~vg)[:, :2])  # (b, 2, d)
        out = torch.cat(parts)[torch.argsort(by_length)]  # (B, 2, d) back in the input order
        return out[:, 0], out[:, 1]


def _pack(x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Move the real tokens of each row to the front, in order, and cut the padding every row shares.

    ``x`` ``(B, N, d)``, ``valid`` ``(B, N)`` → ``(B, S, d)``, ``(B, S)`` with S the largest count of real tokens.
    Attention ignores padded keys and every token carries its own branch and position encoding, so this changes
    no output; it only spares the work on the padding between the three branches.
    """
    order = torch.argsort((~valid).to(torch.uint8), dim=1, stable=True)  # (B, N): real tokens first, in order
    size = int(valid.sum(dim=1).max())
    order = order[:, :size]  # (B, S)
    return (torch.gather(x, 1, order[..., None].expand(-1, -1, x.shape[2])),
            torch.gather(valid, 1, order))


class MotionDecoder(nn.Module):
    """p(motion | z): latent ``(B, latent)`` → normalised frames ``(B, T, motion_dim)``."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        layer = nn.TransformerDecoderLayer(config.latent, config.heads, config.ff, config.dropout,
                                           activation="gelu", batch_first=True, norm_first=config.norm_first)
        layer.self_attn.dropout = layer.multihead_attn.dropout = config.attention_dropout
        self.decoder = nn.TransformerDecoder(layer, config.layers,
                                             norm=nn.LayerNorm(config.latent) if config.norm_first else None)
        self.output_proj = nn.Linear(config.latent, config.motion_dim)
        self.register_buffer("positions", sinusoidal(torch.arange(config.frames), config.latent), persistent=False)

    def forward(self, z: Tensor, frames: int | None = None) -> Tensor:
        frames = self.config.frames if frames is None else frames
        if not 1 <= frames <= self.config.frames:
            raise ValueError(f"MotionDecoder: frames must be in [1, {self.config.frames}], got {frames}")
        queries = self.positions[:frames].expand(z.shape[0], -1, -1)  # (B, T, d): zeros + PE
        return self.output_proj(self.decoder(queries, z[:, None, :]))  # (B, T, motion_dim)


@dataclasses.dataclass(frozen=True, eq=False)
class TMROutput:
    """Everything one training pass computes (B clips, d = latent).

    Attributes:
        motion_mu, motion_logvar: ``(B, d)`` q(z | motion).
        text_mu, text_logvar: ``(B, d)`` q(z | texts).
        motion_z, text_z: ``(B, d)`` reparameterised samples ``μ + σ·ε``.
        recon_from_motion, recon_from_text: ``(B, T, motion_dim)`` decodings of ``motion_z`` and ``text_z``.
    """

    motion_mu: Tensor
    motion_logvar: Tensor
    text_mu: Tensor
    text_logvar: Tensor
    motion_z: Tensor
    text_z: Tensor
    recon_from_motion: Tensor
    recon_from_text: Tensor


class TMR(nn.Module):
    """The evaluator: motion encoder, text head and (training only) motion decoder (see the module docstring)."""

    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        self.config = config
        self.motion_encoder = MotionEncoder(config)
        self.text_encoder = TextEncoderHead(config)
        self.motion_decoder = MotionDecoder(config)

    def encode_motion(self, motion: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, T, motion_dim)`` → (μ, log σ²), ``(B, latent)`` each."""
        return self.motion_encoder(motion)

    def encode_text(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(3, B, L, text_dim)`` tokens and ``(3, B, L)`` mask → (μ, log σ²), ``(B, latent)`` each."""
        return self.text_encoder(tokens, mask)

    def decode(self, z: Tensor, frames: int | None = None) -> Tensor:
        """``(B, latent)`` → ``(B, frames, motion_dim)`` (``frames`` defaults to ``config.frames``)."""
        return self.motion_decoder(z, frames)

    def forward(self, motion: Tensor, tokens: Tensor, mask: Tensor, noise: Tensor) -> TMROutput:
        """The training pass: encode both sides, sample ``z = μ + exp(log σ² / 2)·ε`` with the given standard
        normal ``noise`` ``(2, B, latent)`` (ε of the motion, then of the text) and decode both samples.

        Args:
            motion: ``(B, T, motion_dim)`` normalised frames.
            tokens, mask: ``(3, B, L, text_dim)`` and ``(3, B, L)``, as :meth:`encode_text`.
            noise: ``(2, B, latent)``.
        """
        motion_mu, motion_logvar = self.encode_motion(motion)
        text_mu, text_logvar = self.encode_text(tokens, mask)
        if tuple(noise.shape) != (2, *motion_mu.shape):
            raise ValueError(f"TMR: expected noise (2, {motion_mu.shape[0]}, {motion_mu.shape[1]}), "
                             f"got {tuple(noise.shape)}")
        motion_z = motion_mu + torch.exp(0.5 * motion_logvar) * noise[0]
        text_z = text_mu + torch.exp(0.5 * text_logvar) * noise[1]
        recon = self.decode(torch.cat([motion_z, text_z]), motion.shape[1])  # (2B, T, motion_dim)
        return TMROutput(motion_mu, motion_logvar, text_mu, text_logvar, motion_z, text_z,
                         recon[: motion.shape[0]], recon[motion.shape[0]:])
