"""The text-prefix autoregressive transformer of HandX's AR model (reference §6.5), with a KV cache for decoding.

A LLaMA-style decoder (pre-RMSNorm, bias-free attention with RoPE, SwiGLU MLP, untied embedding and head) reads
the three texts as a prefix and then predicts the FSQ motion codes (§6.2, §6.4) one after another:

    prefix = [left_1 … left_L, SEP_0, right_1 … right_L, SEP_1, relation_1 … relation_L, SEP_2]
    text_b,j = Linear(text_dim → d)(token feature) + branch_b          (b = 0, 1, 2)
    input    = prefix ++ [wte(c_1) … wte(c_S)]
    logits   = lm_head(RMSNorm(h[SEP_2, c_1 … c_S]))                    (S + 1 rows over K codes + END)

The final separator predicts the first code, code i predicts code i + 1, and the last code predicts END (id K).
The vocabulary is the K codes plus END; END is also the input row used for padding after a sequence's end
(it is never fed as a real input, and the positions it occupies are ignored by :func:`ar_loss`).

* **Text input** is the diffusion denoiser's (``handx.text.encode_branches``): ``tokens (3, B, L, text_dim)`` and
  ``mask (3, B, L)`` (True = real token). Each branch is packed as a fixed L-long block; padded positions are
  removed from attention as keys, so padding (and what it holds) never changes a real position's output.
* **RoPE positions** are compact: a real prefix position's index counts only the real positions before it
  (``cumsum(valid) − 1``), and motion token i sits at ``prefix_length + i``. A sample's output therefore does
  not depend on how far its batch padded the texts (the reference instead left-aligns one T5 caption).
* **Attention** (the reference's prefix-LM mask): bidirectional among the real prefix positions, causal for
  motion positions, which see the whole real prefix and the earlier motion tokens. Prefix positions never see
  motion tokens.
* **Dropped text** (``drop (3, B)`` bool, True = dropped; training drops each branch with ``cond_drop`` for
  classifier-free guidance, the unconditional pass drops all three): the branch's block becomes one real position
  holding that branch's learned null embedding ``null_b`` (no branch embedding added), the rest padding. This is a
  handx addition: the reference trains with no text dropout (§6.6).

Parameter counts (``ARConfig.parameter_count``; every trainable tensor: blocks, final norm, text projection with
bias, branch/SEP/null embeddings (9d), input embedding (K + 1 rows) and untied head (K + 1 outputs)). With
K = 4375 and T5-base 768-d text, against the paper (Appendix B, Table C) and §6.5's arithmetic:

    ======  ======  =====  =====  ======  =============  ========  ============================================
    preset  layers  heads  width  ff      ours (768-d)   paper     note
    ======  ======  =====  =====  ======  =============  ========  ============================================
    44M     8       8      512    1536    32.151 M       29.63 M   +8.5 %; 29.637 M (+0.02 %) with K = 1920
    111M    12      12     768    2048    92.273 M       92.27 M   +0.003 %
    222M    16      16     1024   2816    215.313 M      215.31 M  +0.002 %
    343M    24      16     1024   2816    318.090 M      –
    775M    36      20     1280   3584    743.7 M        –
    1B      48      24     1536   4096    1373.7 M       –
    3B      24      32     3200   8704    3019.1 M       –
    ======  ======  =====  =====  ======  =============  ========  ============================================

The paper counts everything, as we do: the reference model (``wte`` K + 2 rows, head K + 1, ``llama_proj``
with bias, RMSNorm weights) gives 92,266,752 and 215,305,216 for 111M and 222M at K = 4375, which the paper
prints as 92.27 M and 215.31 M; ours adds 9d for the branch, SEP and null embeddings and has one embedding row
fewer (no PAD). No counting convention reproduces the 44M row at K = 4375 while keeping the other two (leaving
out the head gives 29.91 M but 88.91 M, −3.6 %, for 111M): the 44M row is the reference model with the 2048-code
tokenizer (real K = 1920, §6.2), which gives exactly 29,633,024 (ours: 29,637,120). With our 384-d MiniLM text
the text projection is 384·d smaller: −0.197 M (44M), −0.295 M (111M), −0.393 M (222M).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from handx.models.limits import check_parameter_count, check_size_field
from handx.motion import BRANCHES

NUM_BRANCHES = len(BRANCHES)
INIT_STD = 0.02


def swiglu_hidden(width: int) -> int:
    """The LLaMA SwiGLU hidden width ``256·ceil((2/3·4·d)/256)`` (reference §6.5)."""
    return 256 * math.ceil((2 / 3 * 4 * width) / 256)


@dataclasses.dataclass(frozen=True)
class ARConfig:
    """Size and conditioning settings of :class:`PrefixLM` (defaults: the ``111M`` preset, the shipped one).

    Attributes:
        layers: decoder blocks.
        heads: attention heads; ``width / heads`` must be even (RoPE rotates pairs).
        width: model width d (d_model).
        ff: SwiGLU hidden width; None resolves to :func:`swiglu_hidden` of ``width``.
        codebook: K, the number of motion codes (the FSQ tokenizer's real size, 4375 for ``--nb-code 4096``);
            the vocabulary is K codes + END, END id = K.
        text_dim: width of the text encoder's token features (384: MiniLM; 768: T5-base).
        max_tokens: motion tokens per sequence at most (30 = a 60-frame clip); END follows the last.
        max_text_tokens: text tokens per branch the text encoder is expected to give (documentation only: the
            network accepts any length, RoPE positions are computed, not tabled).
        cond_drop: probability that training drops one branch's text for one sample, in [0, 1].
        rope_base: RoPE base θ.
        norm_eps: RMSNorm epsilon.
    """

    layers: int = 12
    heads: int = 12
    width: int = 768
    ff: int | None = None
    codebook: int = 4375
    text_dim: int = 384
    max_tokens: int = 30
    max_text_tokens: int = 77
    cond_drop: float = 0.1
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.ff is None:
            check_size_field("ARConfig", "width", self.width)
            object.__setattr__(self, "ff", swiglu_hidden(self.width))
        for name in ("layers", "heads", "width", "ff", "codebook", "text_dim", "max_tokens", "max_text_tokens"):
            check_size_field("ARConfig", name, getattr(self, name))
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ValueError(f"ARConfig.heads must divide width {self.width} into an even head width (RoPE), "
                             f"got {self.heads}")
        if isinstance(self.cond_drop, bool) or not isinstance(self.cond_drop, (int, float)) \
                or not 0.0 <= self.cond_drop <= 1.0:
            raise ValueError(f"ARConfig.cond_drop must be a number in [0, 1], got {self.cond_drop!r}")
        for name, upper in (("rope_base", 1e9), ("norm_eps", 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < upper:
                raise ValueError(f"ARConfig.{name} must be a number in (0, {upper:g}), got {value!r}")
        check_parameter_count("ARConfig", self.parameter_count())

    @property
    def end_id(self) -> int:
        """The END token id, K."""
        return self.codebook

    @property
    def vocab(self) -> int:
        """K codes + END."""
        return self.codebook + 1

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ARConfig:
        """A named size (``tiny``, ``small``, ``44M``, ``111M`` (alias ``base``), ``222M``, ``343M``, ``775M``,
        ``1B``, ``3B``) with any other field changed, e.g. ``ARConfig.preset("44M", codebook=1000, text_dim=768)``.

        ``ff`` follows the preset's width unless given.
        """
        key = PRESET_ALIASES.get(name, name)
        if key not in PRESETS:
            allowed = ", ".join([*PRESETS, *PRESET_ALIASES])
            raise ValueError(f"unknown ARConfig preset {name!r}; expected one of {allowed}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"ARConfig.preset: unknown field(s) {unknown}; expected some of {sorted(known)}")
        return cls(**{**PRESETS[key], **overrides})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ARConfig:
        if not isinstance(data, dict):
            raise ValueError(f"ARConfig.from_json: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"ARConfig.from_json: unknown field(s) {unknown}; expected some of {sorted(known)}")
        return cls(**data)

    def parameter_count(self) -> int:
        """Trainable parameters of :class:`PrefixLM` with this config, from the shapes alone (module docstring)."""
        d, f = self.width, self.ff
        assert f is not None  # resolved in __post_init__
        block = 4 * d * d + 3 * d * f + 2 * d  # q, k, v, o; SwiGLU w1, w3, w2; two RMSNorms
        text = self.text_dim * d + d + 3 * NUM_BRANCHES * d  # projection with bias; branch, SEP, null embeddings
        embeddings = 2 * self.vocab * d  # input embedding and untied head
        return self.layers * block + d + text + embeddings  # + final RMSNorm


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"layers": 2, "heads": 2, "width": 64},
    "2x128": {"layers": 2, "heads": 4, "width": 128},
    "small": {"layers": 4, "heads": 4, "width": 256},
    "44M": {"layers": 8, "heads": 8, "width": 512},
    "111M": {"layers": 12, "heads": 12, "width": 768},
    "222M": {"layers": 16, "heads": 16, "width": 1024},
    "343M": {"layers": 24, "heads": 16, "width": 1024},
    "775M": {"layers": 36, "heads": 20, "width": 1280},
    "1B": {"layers": 48, "heads": 24, "width": 1536},
    "3B": {"layers": 24, "heads": 32, "width": 3200},
}
PRESET_ALIASES: dict[str, str] = {"base": "111M"}
#: Trainable parameters the paper reports (Appendix B, Table C); 44M was counted with K = 1920 (module docstring).
PAPER_PARAMETERS: dict[str, float] = {"44M": 29.63e6, "111M": 92.27e6, "222M": 215.31e6}


# ----------------------------------------------------------------------------------------------------------- cache
@dataclasses.dataclass(frozen=True, eq=False)
class LayerCache:
    """One block's keys (RoPE applied) and values: ``(B, H, T, d/H)`` each."""

    keys: Tensor
    values: Tensor


@dataclasses.dataclass(frozen=True, eq=False)
class PrefixCache:
    """What :meth:`PrefixLM.step` needs to continue a sequence.

    layers: one :class:`LayerCache` per block.
    valid: ``(B, T)`` bool, True where a cached position may be attended (False: text padding).
    position: ``(B,)`` long, the RoPE position the next token takes.
    """

    layers: tuple[LayerCache, ...]
    valid: Tensor
    position: Tensor

    @property
    def length(self) -> int:
        """T, the cached positions (padding included)."""
        return self.valid.shape[1]


# ---------------------------------------------------------------------------------------------------------- blocks
def rope(x: Tensor, positions: Tensor, base: float) -> Tensor:
    """Rotate ``x (B, H, N, hd)`` by RoPE at ``positions (B, N)``; pairs are (i, i + hd/2) (HF LLaMA layout)."""
    half = x.shape[-1] // 2
    inv_freq = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)  # (hd/2,)
    angles = positions.to(torch.float32)[:, None, :, None] * inv_freq  # (B, 1, N, hd/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    """Bias-free multi-head self-attention with RoPE, optionally continuing from cached keys and values."""

    def __init__(self, config: ARConfig) -> None:
        super().__init__()
        self.heads, self.base = config.heads, config.rope_base
        self.qkv = nn.Linear(config.width, 3 * config.width, bias=False)
        self.out = nn.Linear(config.width, config.width, bias=False)

    def forward(self, x: Tensor, positions: Tensor, allowed: Tensor, past: LayerCache | None = None
                ) -> tuple[Tensor, LayerCache]:
        """``x (B, N, d)``, ``positions (B, N)``, ``allowed (B, 1, N, T_past + N)`` bool → ``(B, N, d)`` and the
        keys/values of all T_past + N positions."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)  # each (B, H, N, hd)
        q, k = rope(q, positions, self.base), rope(k, positions, self.base)
        if past is not None:
            k, v = torch.cat([past.keys, k], dim=2), torch.cat([past.values, v], dim=2)  # (B, H, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, H, N, hd)
        return self.out(y.transpose(1, 2).flatten(2)), LayerCache(k, v)


class SwiGLU(nn.Module):
    """``w2(silu(w1 x) · w3 x)``, bias-free."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(width, hidden, bias=False)
        self.w3 = nn.Linear(width, hidden, bias=False)
        self.w2 = nn.Linear(hidden, width, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    """Pre-norm decoder block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, config: ARConfig) -> None:
        super().__init__()
        assert config.ff is not None
        self.attn_norm = nn.RMSNorm(config.width, eps=config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = nn.RMSNorm(config.width, eps=config.norm_eps)
        self.mlp = SwiGLU(config.width, config.ff)

    def forward(self, x: Tensor, positions: Tensor, allowed: Tensor, past: LayerCache | None = None
                ) -> tuple[Tensor, LayerCache]:
        h, cache = self.attn(self.attn_norm(x), positions, allowed, past)
        x = x + h
        return x + self.mlp(self.mlp_norm(x)), cache


# ----------------------------------------------------------------------------------------------------------- model
class PrefixLM(nn.Module):
    """Text-prefix LM over motion codes (reference §6.5); see the module docstring for the layout."""

    def __init__(self, config: ARConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        self.text_proj = nn.Linear(config.text_dim, d)
        self.branch_embedding = nn.Parameter(torch.empty(NUM_BRANCHES, d))
        self.separators = nn.Parameter(torch.empty(NUM_BRANCHES, d))
        self.null_text = nn.Parameter(torch.empty(NUM_BRANCHES, d))  # the one position of a dropped branch
        self.wte = nn.Embedding(config.vocab, d)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = nn.RMSNorm(d, eps=config.norm_eps)
        self.lm_head = nn.Linear(d, config.vocab, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 0.02) weights and embeddings, zero biases, unit norms; residual output projections (attention
        ``out``, SwiGLU ``w2``) N(0, 0.02/√(2·layers)) as in GPT-2."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, INIT_STD)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.RMSNorm):
                nn.init.ones_(module.weight)
        for block in self.blocks:
            for linear in (block.attn.out, block.mlp.w2):
                nn.init.normal_(linear.weight, 0.0, INIT_STD / math.sqrt(2 * self.config.layers))
        for parameter in (self.branch_embedding, self.separators, self.null_text):
            nn.init.normal_(parameter, 0.0, INIT_STD)

    def forward(self, tokens: Tensor, mask: Tensor, codes: Tensor, drop: Tensor | None = None) -> Tensor:
        """Next-token logits for every motion position (teacher forcing).

        Args:
            tokens: ``(3, B, L, text_dim)`` token features of the left, right and relation texts.
            mask: ``(3, B, L)`` bool, True for a real token; a kept text needs at least one.
            codes: ``(B, S)`` long motion codes in [0, K], S ≤ ``max_tokens`` (S = 0 allowed); END (K) may pad
                after a sequence's end.
            drop: ``(3, B)`` bool or None; True replaces that branch's text by its null embedding.

        Returns:
            logits ``(B, S + 1, K + 1)``: row 0 predicts code 0 (from the final SEP), row i predicts code i, row S
            predicts what follows code S − 1 (END for a full sequence).
        """
        logits, _ = self._run(tokens, mask, codes, drop, all_positions=True)
        return logits

    def prefill(self, tokens: Tensor, mask: Tensor, drop: Tensor | None = None, codes: Tensor | None = None
                ) -> tuple[Tensor, PrefixCache]:
        """Encode the prefix (and optional given ``codes (B, S)``) in one pass for decoding.

        Returns the logits ``(B, K + 1)`` for the next code (the last row of :meth:`forward`) and the cache.
        """
        if codes is None:
            codes = torch.empty(tokens.shape[1], 0, dtype=torch.long, device=tokens.device)
        logits, cache = self._run(tokens, mask, codes, drop, all_positions=False)
        return logits[:, 0], cache

    def step(self, code: Tensor, cache: PrefixCache) -> tuple[Tensor, PrefixCache]:
        """Feed one code per row, ``code (B,)`` long → next-code logits ``(B, K + 1)`` and the extended cache."""
        batch = cache.valid.shape[0]
        if code.shape != (batch,) or code.dtype != torch.long:
            raise ValueError(f"code must be long ({batch},), got {code.dtype} {tuple(code.shape)}")
        x = self.wte(code)[:, None]  # (B, 1, d)
        valid = torch.cat([cache.valid, cache.valid.new_ones(batch, 1)], dim=1)  # (B, T + 1)
        allowed = valid[:, None, None, :]  # (B, 1, 1, T + 1)
        positions = cache.position[:, None]  # (B, 1)
        layers = []
        for block, past in zip(self.blocks, cache.layers, strict=True):
            x, layer = block(x, positions, allowed, past)
            layers.append(layer)
        logits = self.lm_head(self.norm(x[:, 0]))  # (B, K + 1)
        return logits, PrefixCache(tuple(layers), valid, cache.position + 1)

    def _prefix(self, tokens: Tensor, mask: Tensor, drop: Tensor | None) -> tuple[Tensor, Tensor]:
        """Packed prefix embeddings ``(B, 3(L + 1), d)`` and their validity ``(B, 3(L + 1))``."""
        batch, length = tokens.shape[1], tokens.shape[2]
        text = self.text_proj(tokens) + self.branch_embedding[:, None, None, :]  # (3, B, L, d)
        valid = mask  # (3, B, L)
        if drop is not None:
            first = torch.arange(length, device=tokens.device) == 0  # (L,)
            null = self.null_text[:, None, None, :] * first[:, None].to(text.dtype)  # (3, 1, L, d)
            text = torch.where(drop[:, :, None, None], null, text)
            valid = torch.where(drop[:, :, None], first, valid)
        sep = self.separators[:, None, None, :].expand(-1, batch, 1, -1)  # (3, B, 1, d)
        blocks = torch.cat([text, sep], dim=2)  # (3, B, L + 1, d)
        valid = torch.cat([valid, valid.new_ones(NUM_BRANCHES, batch, 1)], dim=2)  # (3, B, L + 1)
        return blocks.transpose(0, 1).flatten(1, 2), valid.transpose(0, 1).flatten(1, 2)  # (B, P, d), (B, P)

    def _run(self, tokens: Tensor, mask: Tensor, codes: Tensor, drop: Tensor | None, *, all_positions: bool
             ) -> tuple[Tensor, PrefixCache]:
        batch, steps = self._check(tokens, mask, codes, drop)
        prefix, prefix_valid = self._prefix(tokens, mask, drop)  # (B, P, d), (B, P)
        p = prefix.shape[1]
        x = torch.cat([prefix, self.wte(codes)], dim=1)  # (B, N = P + S, d)
        valid = torch.cat([prefix_valid, prefix_valid.new_ones(batch, steps)], dim=1)  # (B, N)
        prefix_length = prefix_valid.sum(dim=1)  # (B,)
        motion = torch.arange(steps, device=codes.device)  # (S,)
        positions = torch.cat([prefix_valid.cumsum(dim=1) - 1, prefix_length[:, None] + motion], dim=1)  # (B, N)
        index = torch.arange(p + steps, device=codes.device)  # (N,)
        causal = (index[None, :] < p) | (index[None, :] <= index[:, None])  # (N, N): prefix keys or earlier
        allowed = (valid[:, None, :] & causal)[:, None]  # (B, 1, N, N)
        layers = []
        for block in self.blocks:
            x, layer = block(x, positions, allowed)
            layers.append(layer)
        out = x[:, p - 1:] if all_positions else x[:, -1:]  # (B, S + 1, d) or (B, 1, d)
        cache = PrefixCache(tuple(layers), valid, prefix_length + steps)
        return self.lm_head(self.norm(out)), cache

    def _check(self, tokens: Tensor, mask: Tensor, codes: Tensor, drop: Tensor | None) -> tuple[int, int]:
        cfg = self.config
        if tokens.ndim != 4 or tokens.shape[0] != NUM_BRANCHES or tokens.shape[2] < 1 \
                or tokens.shape[-1] != cfg.text_dim:
            raise ValueError(f"tokens must be ({NUM_BRANCHES}, B, L ≥ 1, {cfg.text_dim}), got {tuple(tokens.shape)}")
        batch = tokens.shape[1]
        if mask.shape != tokens.shape[:3] or mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool {tuple(tokens.shape[:3])}, got {mask.dtype} {tuple(mask.shape)}")
        if codes.ndim != 2 or codes.shape[0] != batch or codes.dtype != torch.long:
            raise ValueError(f"codes must be long ({batch}, S), got {codes.dtype} {tuple(codes.shape)}")
        if codes.shape[1] > cfg.max_tokens:
            raise ValueError(f"codes has {codes.shape[1]} tokens; this model takes at most {cfg.max_tokens}")
        if drop is not None and (drop.shape != (NUM_BRANCHES, batch) or drop.dtype != torch.bool):
            raise ValueError(f"drop must be bool ({NUM_BRANCHES}, {batch}) or None, got {drop.dtype} "
                             f"{tuple(drop.shape)}")
        if not torch.compiler.is_compiling():
            if codes.numel() and not (0 <= int(codes.min()) and int(codes.max()) <= cfg.end_id):
                raise ValueError(f"codes must lie in [0, {cfg.end_id}] (K codes and END), got values in "
                                 f"[{int(codes.min())}, {int(codes.max())}]")
            kept = mask.any(dim=-1) if drop is None else mask.any(dim=-1) | drop  # (3, B)
            if not bool(kept.all()):
                branch, sample = (int(i) for i in torch.nonzero(~kept)[0])
                raise ValueError(f"mask has no real token for the {BRANCHES[branch]} text of sample {sample} "
                                 "(drop it instead)")
        return batch, codes.shape[1]


def ar_loss(logits: Tensor, codes: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Mean next-token cross-entropy over the codes and the END that follows them (reference §6.5 "Loss").

    Args:
        logits: ``(B, S + 1, K + 1)`` from :meth:`PrefixLM.forward` on ``codes``.
        codes: ``(B, S)`` long targets.
        lengths: ``(B,)`` codes per sample (≤ S) or None (all S); target ``lengths[b]`` is END and later
            targets are ignored.

    Returns:
        A scalar: the mean over the ``sum(lengths + 1)`` supervised targets.
    """
    batch, steps = codes.shape
    end = logits.shape[-1] - 1
    if logits.shape[:2] != (batch, steps + 1):
        raise ValueError(f"logits must be ({batch}, {steps + 1}, K + 1) for codes {tuple(codes.shape)}, "
                         f"got {tuple(logits.shape)}")
    if lengths is None:
        lengths = torch.full((batch,), steps, dtype=torch.long, device=codes.device)
    elif lengths.shape != (batch,) or bool(((lengths < 0) | (lengths > steps)).any()):
        raise ValueError(f"lengths must be ({batch},) in [0, {steps}], got {lengths.tolist()}")
    index = torch.arange(steps + 1, device=codes.device)  # (S + 1,)
    targets = torch.cat([codes, codes.new_full((batch, 1), end)], dim=1)  # (B, S + 1)
    targets = torch.where(index == lengths[:, None], end, targets)
    targets = torch.where(index > lengths[:, None], -100, targets)  # ignored
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
