"""The autoregressive family behind :class:`~handx.pipelines.base.TextToMotion` (reference §6): the text-prefix LM
decodes FSQ motion codes (:mod:`handx.sampling.ar_decode`: KV-cached; greedy, temperature, top-k, top-p;
classifier-free guidance), the tokenizer's decoder turns them into ``local288`` features and
:func:`handx.representations.local288.decode` into joints, which are put on the run's skeleton
(:func:`handx.kinematics.project_to_skeleton`) like the diffusion family's.

* **Long takes** continue one token stream: each segment after the first starts from the last
  ``overlap / frames_per_token`` codes of the stream with its own triplet, and the whole stream is decoded by the
  (fully convolutional) tokenizer decoder at once, so segments join without a seam.
* **Conditioning**: mode ``continue`` (the first ``k`` frames of a clip; the first half of in-betweening). The
  clip's first ``k`` frames are encoded into the codes the decoding continues from, and, with a hard condition,
  copied into the result exactly. Other modes are refused (:func:`~handx.pipelines.base.check_constraints`).
* A row that ends (END) before the window is full repeats its last code to the window's length.

An AR run holds its tokenizer in ``RUN/tokenizer`` (a tokenizer run of its own, :data:`TOKENIZER_DIR`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from handx.errors import HandxInputError
from handx.kinematics import hand_lengths_for_size, median_bone_lengths, project_to_skeleton, skeleton_lengths
from handx.models.ar import ARConfig, PrefixLM
from handx.models.tokenizer import MotionTokenizer, TokenizerConfig
from handx.motion import Triplet, smooth_time, validate_clip
from handx.pipelines.base import check_constraints
from handx.representations import local288
from handx.representations.stats import FeatureStats
from handx.runs import Run, load_checkpoint, open_run
from handx.sampling.ar_decode import DecodeSettings, decode
from handx.sampling.condition import DEFAULT_OVERLAP, Condition
from handx.text import CachedTextEncoder, encode_branches, load_text_encoder

#: where an AR run keeps the tokenizer its codes come from
TOKENIZER_DIR = "tokenizer"
PROJECTIONS = ("end", "none")


def load_tokenizer(run: str | os.PathLike, *, checkpoint: str | os.PathLike | None = None,
                   device: str | torch.device = "cpu") -> tuple[MotionTokenizer, FeatureStats]:
    """A trained tokenizer (eval mode) and its ``local288`` statistics from a tokenizer run (its ``best``
    checkpoint when it has one, else the newest)."""
    opened = open_run(run, kind="tokenizer")
    if checkpoint is None and (opened.path / "best").is_dir():
        checkpoint = "best"
    if opened.config.stats is None:
        raise HandxInputError(opened.path, "a tokenizer run must record its feature statistics", "stats")
    try:
        model = MotionTokenizer(TokenizerConfig.from_json(opened.config.model))
    except ValueError as exc:
        raise HandxInputError(opened.path / "config.json", str(exc), "model") from exc
    model.load_state_dict(load_checkpoint(opened.checkpoint(checkpoint), optimizer=False).ema)
    return model.to(device).eval(), FeatureStats.from_json(opened.config.stats)


@dataclasses.dataclass(frozen=True)
class ARSettings:
    """How to decode an AR run: ``greedy`` (the reference's default: one motion per text) or sampling with
    ``temperature``, ``top_k`` and nucleus ``top_p``; classifier-free ``guidance`` (1 = off); ``projection`` onto
    the skeleton (``end`` | ``none``); ``hand_size`` (a factor of the nominal adult hand; None: the run's
    skeleton); temporal ``smoothing`` (Gaussian σ in frames; 0 = off)."""

    greedy: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = 0.95
    guidance: float = 1.5
    projection: str = "end"
    hand_size: float | None = None
    smoothing: float = 0.0

    def __post_init__(self) -> None:
        self.decode_settings(None)  # the decoder's own checks
        if self.projection not in PROJECTIONS:
            raise ValueError(f"ARSettings.projection must be one of {', '.join(PROJECTIONS)}, got "
                             f"{self.projection!r}")
        if self.hand_size is not None and not 0.5 <= self.hand_size <= 2:
            raise ValueError(f"ARSettings.hand_size is a factor of the nominal hand in [0.5, 2], got {self.hand_size}")
        if not 0 <= self.smoothing <= 10:
            raise ValueError(f"ARSettings.smoothing is a Gaussian σ in frames in [0, 10], got {self.smoothing}")

    def decode_settings(self, max_tokens: int | None) -> DecodeSettings:
        if self.greedy:
            return DecodeSettings(greedy=True, guidance=self.guidance, max_tokens=max_tokens)
        return DecodeSettings(greedy=False, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                              guidance=self.guidance, max_tokens=max_tokens)

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ARPipeline:
    """A loaded AR run as a :class:`~handx.pipelines.base.TextToMotion`."""

    family: ClassVar[str] = "ar"
    Settings: ClassVar[type] = ARSettings
    modes: ClassVar[frozenset[str]] = frozenset({"continue"})

    def __init__(self, model: PrefixLM, tokenizer: MotionTokenizer, stats: FeatureStats, encoder, *,
                 frames: int, skeleton: np.ndarray, source: str):
        self.model, self.tokenizer, self.stats, self.encoder = model, tokenizer, stats, encoder
        self.device = next(model.parameters()).device
        self.per_token = tokenizer.config.frames_per_token
        self.frames = frames
        self.skeleton = skeleton
        self.source = source

    @classmethod
    def load(cls, run: Run, *, device: str = "cpu", checkpoint: str | os.PathLike | None = None) -> "ARPipeline":
        config_path = run.path / "config.json"
        try:
            model_cfg = ARConfig.from_json(run.config.model)
        except ValueError as exc:
            raise HandxInputError(config_path, str(exc), "model") from exc
        tokenizer_dir = run.config.extra.get("tokenizer", TOKENIZER_DIR)
        if tokenizer_dir != TOKENIZER_DIR:
            raise HandxInputError(config_path, f"names tokenizer {tokenizer_dir!r}; an AR run keeps its tokenizer "
                                               f"in {TOKENIZER_DIR!r}", "tokenizer")
        tokenizer, stats = load_tokenizer(run.path / TOKENIZER_DIR, device=device)
        if tokenizer.config.codebook_size != model_cfg.codebook:
            raise HandxInputError(config_path, f"the model predicts {model_cfg.codebook} codes, its tokenizer has "
                                               f"{tokenizer.config.codebook_size}", "model.codebook")
        model = PrefixLM(model_cfg)
        model.load_state_dict(load_checkpoint(run.checkpoint(checkpoint), optimizer=False).ema)
        encoder = CachedTextEncoder(load_text_encoder(run.config.text_encoder, device=device))
        frames = int(run.config.extra.get("frames", model_cfg.max_tokens * tokenizer.config.frames_per_token))
        return cls(model.to(device).eval(), tokenizer, stats, encoder, frames=frames,
                   skeleton=skeleton_lengths(run.config.extra.get("skeleton")), source=os.fspath(run.path))

    # ---- the protocol
    def generate(self, triplets: Sequence[Triplet], *, num: int = 1, seed: int = 0,
                 constraints: Condition | None = None, settings: ARSettings | None = None, batch_size: int = 64,
                 progress: bool = False) -> np.ndarray:
        settings = self._settings(settings)
        if num < 1:
            raise ValueError(f"num must be >= 1, got {num}")
        check_constraints(self, constraints)
        rows = [t for t in triplets for _ in range(num)]
        out = []
        for lo in tqdm(range(0, len(rows), batch_size), desc="generate", unit="batch", disable=not progress):
            part = rows[lo:lo + batch_size]
            prefix = self._prefix(constraints, len(part))
            codes = self._decode_codes(part, prefix, settings, seed=seed + lo, tokens=self.model.config.max_tokens)
            out.append(self._joints(codes, settings, constraints, self.frames))
        return np.concatenate(out) if out else np.zeros((0, self.frames, 2, 21, 3), np.float32)

    def generate_take(self, segments: Sequence[Triplet], *, length: int | None = None,
                      overlap: int = DEFAULT_OVERLAP, num: int = 1, seed: int = 0,
                      constraints: Condition | None = None, settings: ARSettings | None = None) -> np.ndarray:
        settings = self._settings(settings)
        check_constraints(self, constraints)
        segments = list(segments)
        if not segments or num < 1:
            raise ValueError(f"generate_take needs at least one segment and num >= 1, got {len(segments)}, {num}")
        window = self.model.config.max_tokens
        keep = overlap // self.per_token  # codes a segment continues from
        if not 0 <= overlap < self.frames or (len(segments) > 1 and keep < 1):
            raise ValueError(f"overlap must lie in [{self.per_token}, {self.frames - 1}] frames to chain segments, "
                             f"got {overlap}")
        if length is None:
            length = self.frames + (len(segments) - 1) * (window - keep) * self.per_token
        if length < 1:
            raise ValueError(f"length must be >= 1 frame, got {length}")
        stream = self._decode_codes([segments[0]] * num, self._prefix(constraints, num), settings, seed=seed,
                                    tokens=window)  # (num, S)
        k = 1
        while stream.shape[1] * self.per_token < length:  # later segments (the last one repeats if asked for more)
            segment = segments[min(k, len(segments) - 1)]
            more = self._decode_codes([segment] * num, stream[:, -keep:], settings, seed=seed + 7919 * k,
                                      tokens=window)
            stream = torch.cat([stream, more[:, keep:]], dim=1)
            k += 1
        return self._joints(stream, settings, constraints, length)

    def constrained_joints(self, constraints: Condition) -> np.ndarray:
        check_constraints(self, constraints)
        out = np.zeros((self.frames, 2, 21), dtype=np.float32)
        if constraints.hard:
            out[:constraints.k] = 1.0
        return out

    # ---- the work
    def _settings(self, settings: ARSettings | None) -> ARSettings:
        if settings is None:
            return ARSettings()
        if not isinstance(settings, ARSettings):
            raise TypeError(f"the ar family takes ARSettings, got {type(settings).__name__}")
        return settings

    def _prefix(self, constraints: Condition | None, rows: int) -> torch.Tensor | None:
        """The codes of the condition's first ``k`` frames, ``(rows, ceil(k / frames_per_token))``, or None."""
        if constraints is None:
            return None
        motion = validate_clip(constraints.motion, item="condition motion")
        if motion.shape[0] != self.frames:
            raise HandxInputError(None, f"condition motion has {motion.shape[0]} frames, the model makes "
                                        f"{self.frames}")
        if not 1 <= constraints.k < self.frames:
            raise HandxInputError(None, f"continue: k must lie in [1, {self.frames - 1}], got {constraints.k}")
        frames = -(-constraints.k // self.per_token) * self.per_token  # k rounded up to whole tokens
        features = local288.encode(motion[None, :frames].astype(np.float64))[0]  # (1, frames, 288)
        x = torch.from_numpy(self.stats.normalize(features).astype(np.float32)).to(self.device)
        with torch.no_grad():
            codes = self.tokenizer.encode(x)  # (1, frames / per_token)
        return codes.expand(rows, -1).contiguous()

    @torch.no_grad()
    def _decode_codes(self, triplets: Sequence[Triplet], prefix: torch.Tensor | None, settings: ARSettings, *,
                      seed: int, tokens: int) -> torch.Tensor:
        """``(B, tokens)`` codes for ``triplets`` (rows ended early repeat their last code)."""
        left, right, relation = zip(*[tuple(t) for t in triplets])
        text, mask = encode_branches(self.encoder, (list(left), list(right), list(relation)), self.device)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        result = decode(self.model, text, mask, settings=settings.decode_settings(tokens), generator=generator,
                        prefix_codes=prefix)
        codes = result.codes[:, :tokens]  # (B, ≤ tokens)
        if codes.shape[1] < tokens:
            codes = torch.cat([codes, codes.new_full((codes.shape[0], tokens - codes.shape[1]),
                                                     self.model.config.end_id)], dim=1)
        index = torch.arange(tokens, device=codes.device)
        last = (result.lengths.to(codes.device).clamp(min=1, max=tokens) - 1)  # (B,) the last real code
        ended = index[None, :] > last[:, None]
        return torch.where(ended, codes.gather(1, last[:, None]), codes)  # (B, tokens)

    def _joints(self, codes: torch.Tensor, settings: ARSettings, constraints: Condition | None,
                length: int) -> np.ndarray:
        """Codes ``(B, S)`` → joints ``(B, length, 2, 21, 3)`` float32 metres (module docstring)."""
        with torch.no_grad():
            features = self.tokenizer.decode(codes.to(self.device)).float().cpu().numpy()  # (B, S·f, 288)
        origin = None
        if constraints is not None:
            origin = np.broadcast_to(constraints.motion[0, 1, 0], (len(codes), 3)).astype(np.float64)
        joints = np.asarray(local288.decode(self.stats.denormalize(features.astype(np.float64)), origin))
        joints = joints[:, :length]  # (B, length, 2, 21, 3)
        if settings.smoothing > 0:
            joints = smooth_time(joints, settings.smoothing, axis=1)
        fixed = None
        if constraints is not None and constraints.hard:
            k = min(constraints.k, length)
            joints[:, :k] = constraints.motion[:k]
            fixed = np.zeros(joints.shape[:-1], dtype=bool)
            fixed[:, :k] = True
        if settings.projection == "end":
            if constraints is not None:  # the condition clip's hands
                lengths = median_bone_lengths(np.asarray(constraints.motion, dtype=np.float64))
            elif settings.hand_size is not None:
                lengths = hand_lengths_for_size(settings.hand_size)
            else:
                lengths = self.skeleton
            joints = project_to_skeleton(joints, lengths, fixed=fixed)
        return joints.astype(np.float32)


PIPELINE = ARPipeline
