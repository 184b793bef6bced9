"""The treble-residual transformer denoiser of HandX's diffusion model (reference §4.2, §4.3).

The network predicts x₀ from a noisy feature sequence x_t ``(B, T, 168)`` (:mod:`handx.representations.joints168`),
the timestep t and three texts: left hand, right hand and two-hands relation. For each text branch b:

    tgt_b = [time token, CLS_b, m_1 … m_T] + PE        (T + 2 tokens, m = Linear(168 → d)(x_t))
    o_b   = Decoder(tgt_b, memory = text_b)[2:]        (one shared post-LN GELU nn.TransformerDecoder)

and ``x̂₀ = Linear(d → 168)(m + o_left + o_right + o_relation)``. The three branches run as one decoder call on a
batch of 3B. A branch whose text is dropped (``drop``) cross-attends to that branch's learned null text
embedding instead; the training loop drops at random (``cond_drop``) and classifier-free guidance drops every
branch for its unconditional pass (DESIGN.md deviation: the reference code's guidance never uses the null
text). Every Linear and attention projection starts as N(0, 0.02) with zero bias.

Presets (trainable parameters, text encoder excluded, text projection Linear(384 → d) included; the paper's
counts, Appendix B, use the 768-d T5-base text features):

    ========  ======  =====  =====  ======  ============  ========  ============================
    preset    layers  width  heads  ff      params        paper     note
    ========  ======  =====  =====  ======  ============  ========  ============================
    tiny      2       64     2      128     0.156 M       –         tests and demos
    4x256     4       256    4      1024    4.532 M       4.63 M    −2.1 %; 4.630 M with 768-d text
    8x512     8       512    4      1024    26.134 M      26.33 M   −0.7 %; 26.330 M with 768-d text
    12x512    12      512    4      1024    38.751 M      38.95 M   −0.5 %; 38.948 M with 768-d text
    16x768    16      768    4      7424    259.993 M     260.97 M  −0.4 %; 260.288 M with 768-d text
    ========  ======  =====  =====  ======  ============  ========  ============================

``base`` is ``12x512``, the configuration the reference code trains (reference §4.1: 4 heads, FFN 1024; with
768-d text and a single null embedding this reproduces the paper's counts for 4x256, 8x512 and 12x512 exactly).
The paper's 16×768 count cannot come from FFN 1024 (that gives 102.9 M); it implies an FFN width of about 7452
(9.7 × 768), and we use 7424 = 58 × 128, the nearest multiple of 128. Heads do not change the count; all paper
presets keep the reference's 4. One difference from the reference: the null text embedding is learned per branch
((3, d) rather than one (1, d)), which adds 2d parameters.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import Tensor, nn

from handx.motion import BRANCHES
from handx.models.limits import check_parameter_count, check_size_field
from handx.representations.joints168 import NUM_FEATURES

NUM_BRANCHES = len(BRANCHES)
INIT_STD = 0.02


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """Size and conditioning settings of :class:`TrebleDenoiser` (defaults: the ``base`` preset).

    Attributes:
        layers: decoder layers.
        width: model width d (even, divisible by ``heads``).
        heads: attention heads.
        ff: feed-forward width of each decoder layer.
        dropout: dropout inside the decoder and on the input tokens, in [0, 1).
        text_dim: width of the text encoder's token features (384: MiniLM; 768: T5-base).
        frames: frames per window; the longest sequence the positional table covers.
        features: features per frame (168 = 42 joints × [x, y, z, s]).
        max_text_tokens: text tokens per branch the text encoder is expected to give (documentation only:
            the network accepts any length).
        cond_drop: probability that training drops one branch's text for one sample, in [0, 1].
        patch: frames per motion token (1: one token per frame, as the reference; 4: a 60-frame window is 15
            tokens, about 4× less compute; the input and output projections cover ``patch`` frames).
        branches: ``treble`` (the reference: one decoder pass per text branch, summed) or ``fused`` (one pass
            that cross-attends to the three texts at once, each marked by a learned branch embedding; 3× less
            compute).
        text_pool: cross-attend to each text's mean-pooled token feature (one memory token per branch; for
            MiniLM this is its sentence embedding) instead of every token.
    """

    layers: int = 12
    width: int = 512
    heads: int = 4
    ff: int = 1024
    dropout: float = 0.1
    text_dim: int = 384
    frames: int = 60
    features: int = NUM_FEATURES
    max_text_tokens: int = 77
    cond_drop: float = 0.1
    patch: int = 1
    branches: str = "treble"
    text_pool: bool = False

    def __post_init__(self) -> None:
        if self.branches not in ("treble", "fused"):
            raise ValueError(f"DiffusionConfig.branches must be 'treble' or 'fused', got {self.branches!r}")
        if not isinstance(self.text_pool, bool):
            raise ValueError(f"DiffusionConfig.text_pool must be true or false, got {self.text_pool!r}")
        for name in ("layers", "width", "heads", "ff", "text_dim", "frames", "features", "max_text_tokens",
                     "patch"):
            check_size_field("DiffusionConfig", name, getattr(self, name))
        if self.width % 2:
            raise ValueError(f"DiffusionConfig.width must be even (sinusoidal encodings), got {self.width}")
        if self.width % self.heads:
            raise ValueError(f"DiffusionConfig.heads must divide width {self.width}, got {self.heads}")
        for name, upper_open in (("dropout", True), ("cond_drop", False)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
                allowed = "[0, 1)" if upper_open else "[0, 1]"
                raise ValueError(f"DiffusionConfig.{name} must be a number in {allowed}, got {value!r}")
        check_parameter_count("DiffusionConfig", self.parameter_count())

    @classmethod
    def preset(cls, name: str) -> DiffusionConfig:
        """A named size: ``tiny``, ``4x256``, ``8x512``, ``12x512`` (alias ``base``) or ``16x768``.

        Change other fields with ``dataclasses.replace(DiffusionConfig.preset("base"), text_dim=768)``.
        """
        key = PRESET_ALIASES.get(name, name)
        if key not in PRESETS:
            allowed = ", ".join([*PRESETS, *PRESET_ALIASES])
            raise ValueError(f"unknown DiffusionConfig preset {name!r}; expected one of {allowed}")
        return cls(**PRESETS[key])

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DiffusionConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"DiffusionConfig.from_json: unknown field(s) {unknown}; expected some of {sorted(known)}")
        return cls(**data)

    def parameter_count(self) -> int:
        """Trainable parameters of :class:`TrebleDenoiser` with this config, from the shapes alone."""
        d, f = self.width, self.ff
        layer = 2 * (4 * d * d + 4 * d) + (2 * d * f + f + d) + 3 * 2 * d  # 2 attentions, FFN, 3 LayerNorms
        f_in = self.features * self.patch
        projections = (f_in * d + d) + (d * f_in + f_in) + (self.text_dim * d + d)
        time_mlp = 2 * (d * d + d)
        tokens = 2 * NUM_BRANCHES * d  # CLS and null text per branch (fused: branch embedding and null text)
        return self.layers * layer + projections + time_mlp + tokens


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"layers": 2, "width": 64, "heads": 2, "ff": 128},
    "4x256": {"layers": 4, "width": 256, "heads": 4, "ff": 1024},
    "8x512": {"layers": 8, "width": 512, "heads": 4, "ff": 1024},
    "12x512": {"layers": 12, "width": 512, "heads": 4, "ff": 1024},
    "16x768": {"layers": 16, "width": 768, "heads": 4, "ff": 7424},
    # the built-in CPU model: 4-frame tokens, one fused pass over pooled texts (DESIGN.md deviations)
    "cpu": {"layers": 4, "width": 256, "heads": 4, "ff": 1024, "patch": 4, "branches": "fused", "text_pool": True},
    # the CPU scaling ladder (docs/scaling): the cpu architecture at sizes a 2-core machine trains in minutes
    "cpu-2x64": {"layers": 2, "width": 64, "heads": 2, "ff": 256, "patch": 4, "branches": "fused", "text_pool": True},
    "cpu-2x128": {"layers": 2, "width": 128, "heads": 4, "ff": 512, "patch": 4, "branches": "fused",
                  "text_pool": True},
    "cpu-4x128": {"layers": 4, "width": 128, "heads": 4, "ff": 512, "patch": 4, "branches": "fused",
                  "text_pool": True},
    "cpu-6x384": {"layers": 6, "width": 384, "heads": 6, "ff": 1536, "patch": 4, "branches": "fused",
                  "text_pool": True},
}
PRESET_ALIASES: dict[str, str] = {"base": "12x512"}
#: Peak learning rates per preset (small networks train stably at 1e-3; the paper's sizes use 1e-4, reference §4.6).
PRESET_LR: dict[str, float] = {"tiny": 1e-3, "cpu": 1e-3, "cpu-2x64": 1e-3, "cpu-2x128": 1e-3, "cpu-4x128": 1e-3,
                               "cpu-6x384": 1e-3}


def default_lr(preset: str) -> float:
    """The peak learning rate a preset trains with by default."""
    return PRESET_LR.get(PRESET_ALIASES.get(preset, preset), 1e-4)
#: Trainable parameters the paper reports per preset (Appendix B, Table C).
PAPER_PARAMETERS: dict[str, float] = {"4x256": 4.63e6, "8x512": 26.33e6, "12x512": 38.95e6, "16x768": 260.97e6}


def sinusoidal(positions: Tensor, dim: int) -> Tensor:
    """Sinusoidal encoding of positions ``(...,)`` → ``(..., dim)``, float32.

    ``pe[2i] = sin(p · 10000^(−2i/dim))``, ``pe[2i + 1] = cos(p · 10000^(−2i/dim))`` (reference §4.2: the same
    table encodes token positions and diffusion timesteps).
    """
    freqs = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device)
                      * (-math.log(10000.0) / dim))  # (dim/2,)
    angles = positions.to(torch.float32)[..., None] * freqs  # (..., dim/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (..., dim), sin/cos interleaved


def _pool(text_tokens: Tensor, text_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of each text's real tokens: ``(3, B, L, D)`` → ``(3, B, 1, D)`` with an all-True mask."""
    weights = text_mask.to(text_tokens.dtype).unsqueeze(-1)  # (3, B, L, 1)
    pooled = (text_tokens * weights).sum(dim=2, keepdim=True) / weights.sum(dim=2, keepdim=True).clamp(min=1)
    return pooled, torch.ones(text_mask.shape[:2] + (1,), dtype=torch.bool, device=text_mask.device)


def sample_text_drop(batch: int, probability: float, *, device: torch.device | str | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """Independent per-branch, per-sample text dropout for training: ``(3, batch)`` bool, True = dropped."""
    return torch.rand(NUM_BRANCHES, batch, device=device, generator=generator) < probability


class TrebleDenoiser(nn.Module):
    """x₀ predictor with three cross-attended text branches (reference §4.2); see the module docstring."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        self.input_proj = nn.Linear(config.features * config.patch, d)
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.text_proj = nn.Linear(config.text_dim, d)
        # treble: CLS_b, one per branch; fused: the embedding that marks branch b's memory tokens
        self.cls_tokens = nn.Parameter(torch.empty(NUM_BRANCHES, d))
        self.null_text = nn.Parameter(torch.empty(NUM_BRANCHES, d))  # memory of a dropped branch
        layer = nn.TransformerDecoderLayer(d, config.heads, config.ff, config.dropout, activation="gelu",
                                           batch_first=True, norm_first=False)
        self.decoder = nn.TransformerDecoder(layer, config.layers)
        self.token_dropout = nn.Dropout(config.dropout)
        self.output_proj = nn.Linear(d, config.features * config.patch)
        tokens = -(-config.frames // config.patch)  # motion tokens of a full window
        self.register_buffer("positions", sinusoidal(torch.arange(tokens + 2), d), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 0.02) weights and zero biases for every Linear and attention projection; N(0, 0.02) tokens."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, INIT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                nn.init.normal_(module.in_proj_weight, 0.0, INIT_STD)
                nn.init.zeros_(module.in_proj_bias)
        nn.init.normal_(self.cls_tokens, 0.0, INIT_STD)
        nn.init.normal_(self.null_text, 0.0, INIT_STD)

    def forward(self, x_t: Tensor, t: Tensor, text_tokens: Tensor, text_mask: Tensor,
                drop: Tensor | None = None) -> Tensor:
        """Predict x₀, running the three branches as one decoder call on a batch of 3B.

        Args:
            x_t: ``(B, T, features)`` noisy normalised features, T ≤ ``config.frames``.
            t: ``(B,)`` integer timesteps.
            text_tokens: ``(3, B, L, text_dim)`` token features of the left, right and relation texts.
            text_mask: ``(3, B, L)`` bool, True where a token is valid; every kept text needs one valid token.
            drop: ``(3, B)`` bool or None; True replaces that branch's text of that sample by the null text.

        Returns:
            x̂₀ ``(B, T, features)``.
        """
        batch, frames = self._check(x_t, t, text_tokens, text_mask, drop)
        if self.config.text_pool:
            text_tokens, text_mask = _pool(text_tokens, text_mask)  # (3, B, 1, D), (3, B, 1)
        if self.config.patch > 1 or self.config.branches == "fused":
            return self._forward_patched(x_t, t, text_tokens, text_mask, drop)
        x_emb = self.input_proj(x_t)  # (B, T, d): m_1 … m_T
        time = self._time_token(t)  # (B, 1, d)
        tgt = torch.cat([time.expand(NUM_BRANCHES, -1, -1, -1),
                         self.cls_tokens[:, None, None, :].expand(-1, batch, -1, -1),
                         x_emb.expand(NUM_BRANCHES, -1, -1, -1)], dim=2)  # (3, B, T + 2, d)
        tgt = self.token_dropout(tgt + self.positions[:frames + 2])
        memory, padding = self._memory(text_tokens, text_mask, drop)  # (3, B, L, d), (3, B, L)
        out = self.decoder(tgt.flatten(0, 1), memory.flatten(0, 1),
                           memory_key_padding_mask=padding.flatten(0, 1))  # (3B, T + 2, d)
        out = out.unflatten(0, (NUM_BRANCHES, batch))[:, :, 2:]  # (3, B, T, d): o_left, o_right, o_relation
        return self.output_proj(x_emb + out.sum(dim=0))  # (B, T, features)

    def _forward_patched(self, x_t: Tensor, t: Tensor, text_tokens: Tensor, text_mask: Tensor,
                         drop: Tensor | None) -> Tensor:
        """The forward pass with ``patch`` frames per token, treble or fused (see :class:`DiffusionConfig`)."""
        cfg = self.config
        batch, frames = x_t.shape[:2]
        tokens = -(-frames // cfg.patch)
        pad = tokens * cfg.patch - frames
        x = torch.nn.functional.pad(x_t, (0, 0, 0, pad))  # (B, tokens·patch, F)
        x_emb = self.input_proj(x.reshape(batch, tokens, cfg.patch * cfg.features))  # (B, N, d)
        time = self._time_token(t)[0]  # (B, 1, d)
        memory, padding = self._memory(text_tokens, text_mask, drop)  # (3, B, L, d), (3, B, L)
        if cfg.branches == "fused":
            tgt = self.token_dropout(torch.cat([time, x_emb], dim=1) + self.positions[1:tokens + 2])  # (B, N+1, d)
            memory = memory + self.cls_tokens[:, None, None, :]  # mark each branch's tokens
            memory = memory.permute(1, 0, 2, 3).flatten(1, 2)  # (B, 3L, d)
            padding = padding.permute(1, 0, 2).flatten(1, 2)  # (B, 3L)
            out = self.decoder(tgt, memory, memory_key_padding_mask=padding)[:, 1:]  # (B, N, d)
        else:
            tgt = torch.cat([time[None].expand(NUM_BRANCHES, -1, -1, -1),
                             self.cls_tokens[:, None, None, :].expand(-1, batch, -1, -1),
                             x_emb.expand(NUM_BRANCHES, -1, -1, -1)], dim=2)  # (3, B, N + 2, d)
            tgt = self.token_dropout(tgt + self.positions[:tokens + 2])
            out = self.decoder(tgt.flatten(0, 1), memory.flatten(0, 1),
                               memory_key_padding_mask=padding.flatten(0, 1))  # (3B, N + 2, d)
            out = out.unflatten(0, (NUM_BRANCHES, batch))[:, :, 2:].sum(dim=0)  # (B, N, d)
        y = self.output_proj(x_emb + out)  # (B, N, patch·F)
        return y.reshape(batch, tokens * cfg.patch, cfg.features)[:, :frames]  # (B, T, F)

    def forward_sequential(self, x_t: Tensor, t: Tensor, text_tokens: Tensor, text_mask: Tensor,
                           drop: Tensor | None = None) -> Tensor:
        """The same prediction as :meth:`forward` with one decoder call per branch (the reference's loop).

        Slower; kept as the definition that the batched call is tested against.
        """
        batch, frames = self._check(x_t, t, text_tokens, text_mask, drop)
        x_emb = self.input_proj(x_t)  # (B, T, d)
        time = self._time_token(t)[0]  # (B, 1, d)
        h = x_emb
        for b in range(NUM_BRANCHES):
            cls = self.cls_tokens[b].expand(batch, 1, -1)  # (B, 1, d)
            tgt = self.token_dropout(torch.cat([time, cls, x_emb], dim=1) + self.positions[:frames + 2])
            memory = self.text_proj(text_tokens[b])  # (B, L, d)
            valid = text_mask[b]  # (B, L)
            if drop is not None:
                memory = torch.where(drop[b, :, None, None], self.null_text[b].expand_as(memory), memory)
                valid = valid | drop[b, :, None]
            h = h + self.decoder(tgt, memory, memory_key_padding_mask=~valid)[:, 2:]  # (B, T, d)
        return self.output_proj(h)

    def _time_token(self, t: Tensor) -> Tensor:
        """``(B,)`` timesteps → ``(1, B, 1, d)`` time tokens."""
        return self.time_mlp(sinusoidal(t, self.config.width))[None, :, None, :]

    def _memory(self, text_tokens: Tensor, text_mask: Tensor, drop: Tensor | None) -> tuple[Tensor, Tensor]:
        """Cross-attention memory ``(3, B, L, d)`` and key-padding mask ``(3, B, L)`` (True = ignore)."""
        memory = self.text_proj(text_tokens)  # (3, B, L, d)
        valid = text_mask  # (3, B, L)
        if drop is not None:
            null = self.null_text[:, None, None, :].expand_as(memory)  # (3, B, L, d)
            memory = torch.where(drop[:, :, None, None], null, memory)
            valid = valid | drop[:, :, None]  # a dropped text is L copies of the null embedding, all valid
        return memory, ~valid

    def _check(self, x_t: Tensor, t: Tensor, text_tokens: Tensor, text_mask: Tensor,
               drop: Tensor | None) -> tuple[int, int]:
        cfg = self.config
        if x_t.ndim != 3 or x_t.shape[-1] != cfg.features:
            raise ValueError(f"x_t must be (B, T, {cfg.features}), got {tuple(x_t.shape)}")
        batch, frames = x_t.shape[:2]
        if frames > cfg.frames:
            raise ValueError(f"x_t has {frames} frames; this model's positional table covers {cfg.frames}")
        if t.shape != (batch,) or t.is_floating_point() or t.is_complex():
            raise ValueError(f"t must be integer timesteps of shape ({batch},), got {t.dtype} {tuple(t.shape)}")
        if text_tokens.ndim != 4 or text_tokens.shape[:2] != (NUM_BRANCHES, batch) \
                or text_tokens.shape[-1] != cfg.text_dim:
            raise ValueError(f"text_tokens must be ({NUM_BRANCHES}, {batch}, L, {cfg.text_dim}), "
                             f"got {tuple(text_tokens.shape)}")
        if text_mask.shape != text_tokens.shape[:3] or text_mask.dtype != torch.bool:
            raise ValueError(f"text_mask must be bool {tuple(text_tokens.shape[:3])}, "
                             f"got {text_mask.dtype} {tuple(text_mask.shape)}")
        if drop is not None and (drop.shape != (NUM_BRANCHES, batch) or drop.dtype != torch.bool):
            raise ValueError(f"drop must be bool ({NUM_BRANCHES}, {batch}) or None, "
                             f"got {drop.dtype} {tuple(drop.shape)}")
        if not torch.compiler.is_compiling():
            kept = text_mask.any(dim=-1) if drop is None else text_mask.any(dim=-1) | drop  # (3, B)
            if not bool(kept.all()):
                branch, sample = (int(i) for i in torch.nonzero(~kept)[0])
                raise ValueError(f"text_mask has no valid token for the {BRANCHES[branch]} text of sample {sample} "
                                 "(drop it instead)")
        return batch, frames
