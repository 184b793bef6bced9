"""Text (and constraints) → two-hand motion with a trained diffusion run (reference §4, §5).

``Generator.load(run)`` rebuilds the denoiser from the run's ``config.json`` only (never from today's defaults)
with the EMA weights of its newest checkpoint, and ``generate(request)`` samples ``(K, T, 2, 21, 3)`` joints in
metres: DDIM with few steps by default, 1000-step ancestral DDPM on request, classifier-free guidance with the
learned null text per branch, and any conditioning mode of reference §5 by inpainting.

Valid hands: the decoded joints are projected onto a fixed skeleton per hand
(:func:`handx.kinematics.project_to_skeleton`: wrists kept, bone directions kept, bone lengths set), so every
generated hand keeps its bone lengths over the clip. The skeleton is the condition clip's (median bone lengths
over its frames, per hand) when a condition is given, else that of ``hand_size`` (a factor of the nominal adult
hand, :func:`handx.kinematics.hand_lengths_for_size`), else the run's training-set median hand (its
``config.json`` ``"skeleton"`` record, :func:`handx.kinematics.skeleton_from_clips`; runs without one use the
nominal adult hand, 18.3 cm wrist to middle fingertip). Joints a hard condition constrains are copied from the
condition clip and kept exactly. ``projection``: ``"end"`` (default) projects the final sample once; ``"x0"``
also projects the denoiser's x̂₀ before every sampler step; ``"none"`` returns the raw sample. Measured on a
tiny trained model (``docs/diffusion.md``, "Valid hands"): both remove the bone drift; ``"x0"`` moves the
motion further from the raw sample without making it smoother, so ``"end"`` is the default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from handx.errors import HandxInputError
from handx.kinematics import hand_lengths_for_size, median_bone_lengths, project_to_skeleton, skeleton_lengths
from handx.models.diffusion import DiffusionConfig, TrebleDenoiser
from handx.motion import Triplet, smooth_time, validate_clip
from handx.representations.joints168 import LAYOUT, decode, encode
from handx.representations.stats import FeatureStats
from handx.runs import CONFIG, load_checkpoint, open_run
from handx.sampling import modes
from handx.sampling.condition import DEFAULT_OVERLAP, Condition
from handx.sampling.ddim import DDIMScheduler
from handx.sampling.ddpm import DDPMScheduler
from handx.sampling.inpaint import Inpainting
from handx.sampling.loop import sample, sample_long
from handx.sampling.schedule import NoiseSchedule
from handx.skeleton import NUM_HANDS, NUM_JOINTS
from handx.text import CachedTextEncoder, TextEncoder, encode_branches, load_text_encoder

#: Where generated joints are projected onto the fixed skeleton (module docstring): once at the end, also on
#: every step's x̂₀, or not at all.
PROJECTIONS = ("end", "x0", "none")
DEFAULT_PROJECTION = "end"
#: Gaussian low-pass of generated joints along time, σ in frames (0: off), before constraints and projection.
DEFAULT_SMOOTHING = 1.5


@dataclasses.dataclass(frozen=True)
class GenerateRequest:
    """What to generate: ``num`` samples for ``texts`` (one triplet per segment; several for a long take of
    ``length`` frames), with the sampler settings.

    ``projection`` (one of :data:`PROJECTIONS`) and ``hand_size`` (a factor in [0.5, 2] of the nominal adult
    hand, 18.3 cm wrist to middle fingertip; None = the run's training-set median hand) choose how and onto
    which skeleton samples are made valid hands (module docstring). With a condition the skeleton is the
    condition clip's, so ``hand_size`` cannot be given with one.
    """

    texts: tuple[Triplet, ...]
    num: int = 1
    sampler: str = "ddim"
    steps: int = 50
    guidance: float = 2.5
    seed: int = 0
    length: int | None = None
    overlap: int = DEFAULT_OVERLAP
    condition: Condition | None = None
    projection: str = DEFAULT_PROJECTION
    hand_size: float | None = None
    smoothing: float = DEFAULT_SMOOTHING

    def __post_init__(self) -> None:
        if not self.texts:
            raise ValueError("GenerateRequest.texts needs at least one triplet")
        if self.num < 1:
            raise ValueError(f"GenerateRequest.num must be >= 1, got {self.num}")
        check_sampler_settings("GenerateRequest", self.sampler, self.steps, self.guidance, self.projection,
                               self.hand_size, self.smoothing)
        if self.hand_size is not None and self.condition is not None:
            raise ValueError("GenerateRequest.hand_size cannot be given with a condition: the condition clip's "
                             "hands set the skeleton")


def check_sampler_settings(owner: str, sampler: str, steps: int, guidance: float, projection: str,
                           hand_size: float | None, smoothing: float) -> None:
    """``ValueError`` naming ``owner.field`` for a sampler setting out of range (shared by :class:`GenerateRequest`
    and the diffusion pipeline's settings)."""
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"{owner}.sampler must be 'ddim' or 'ddpm', got {sampler!r}")
    if steps < 1:
        raise ValueError(f"{owner}.steps must be >= 1, got {steps}")
    if guidance < 0:
        raise ValueError(f"{owner}.guidance must be >= 0, got {guidance}")
    if not (isinstance(smoothing, (int, float)) and 0 <= smoothing <= 10):
        raise ValueError(f"{owner}.smoothing is a Gaussian σ in frames in [0, 10], got {smoothing!r}")
    if projection not in PROJECTIONS:
        raise ValueError(f"{owner}.projection must be one of {', '.join(PROJECTIONS)}, got {projection!r}")
    if hand_size is not None:
        try:
            hand_lengths_for_size(hand_size)
        except ValueError as exc:
            raise ValueError(f"{owner}.hand_size: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Generated:
    """Generated motion: ``joints`` float32 ``(K, T, 2, 21, 3)`` metres, right wrist at the origin at frame 0, or,
    with a condition, in the condition motion's frame (so constrained joints are where the condition put them)."""

    joints: np.ndarray
    request: GenerateRequest


class Generator:
    """A loaded diffusion run ready to sample.

    ``skeleton``: bone lengths ``(2, 20)`` in metres of the training set's median hand, the default skeleton of
    generated hands (None: the nominal adult hand).
    """

    def __init__(self, model: TrebleDenoiser, config: DiffusionConfig, stats: FeatureStats, encoder: TextEncoder,
                 device: torch.device, skeleton: np.ndarray | None = None, *,
                 schedule: NoiseSchedule | None = None, source: str = "generator"):
        self.model = model.eval()
        self.schedule = schedule or NoiseSchedule.cosine()  # the run's (Generator.load), else the reference's
        self.config = config
        self.stats = stats
        self.encoder = CachedTextEncoder(encoder)
        self.device = device
        self.source = source  # what errors name: the run directory when loaded from one
        self.skeleton = skeleton_lengths(None) if skeleton is None else skeleton_lengths({"lengths": skeleton})

    @classmethod
    def load(cls, run: str | os.PathLike, *, checkpoint: str | os.PathLike | None = None, ema: bool = True,
             device: str = "cpu", text_encoder: TextEncoder | None = None) -> "Generator":
        opened = open_run(run, kind="diffusion")
        saved, config_file = opened.config, opened.path / CONFIG
        path = opened.checkpoint(checkpoint)
        try:
            config = DiffusionConfig.from_json(saved.model)
            stats = FeatureStats.from_json(saved.stats)
            skeleton = skeleton_lengths(saved.extra.get("skeleton"))
        except (KeyError, TypeError, ValueError) as exc:  # checked before anything is allocated
            raise HandxInputError(config_file, f"invalid diffusion run config ({exc})") from None
        model = TrebleDenoiser(config)
        ckpt = load_checkpoint(path, optimizer=False)
        model.load_state_dict(ckpt.ema if ema else ckpt.model)
        encoder = text_encoder or load_text_encoder(saved.text_encoder, device=device)
        if encoder.dim != config.text_dim:
            raise HandxInputError(opened.path, f"text encoder gives {encoder.dim}-d features, the model expects "
                                               f"{config.text_dim}")
        dev = torch.device(device)
        return cls(model.to(dev), config, stats, encoder, dev, skeleton, schedule=saved.noise_schedule(),
                   source=os.fspath(opened.path))

    def _text(self, triplet: Triplet, num: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._texts([triplet] * num)

    def _texts(self, batch: Sequence[Triplet]) -> tuple[torch.Tensor, torch.Tensor]:
        """One triplet per row → tokens ``(3, B, L, D)`` and mask ``(3, B, L)``."""
        branches = [list(texts) for texts in zip(*batch)]  # (3, B) in BRANCHES order
        tokens, mask = encode_branches(self.encoder, branches, self.device)
        # training reads text features from float16 side files (handx.text.feature_file): give the same values
        return tokens.half().float(), mask

    def _denoiser(self, tokens: torch.Tensor, mask: torch.Tensor):
        drop_all = torch.ones(tokens.shape[:2], dtype=torch.bool, device=self.device)  # (3, K)

        @torch.no_grad()
        def denoise(x_t: torch.Tensor, t: torch.Tensor, conditional: bool) -> torch.Tensor:
            return self.model(x_t, t, tokens, mask, None if conditional else drop_all)

        return denoise

    def _scheduler(self, request: GenerateRequest):
        # the noise schedule the run was trained with (handx.runs.RunConfig.noise_schedule)
        return (DDIMScheduler(self.schedule) if request.sampler == "ddim" else DDPMScheduler(self.schedule))

    def _condition(self, condition: Condition, num: int) -> Inpainting:
        motion = validate_clip(condition.motion, item="condition motion")
        if motion.shape[0] != self.config.frames:
            raise HandxInputError(None, f"condition motion has {motion.shape[0]} frames, the model makes "
                                        f"{self.config.frames}")
        values = torch.from_numpy(self.stats.normalize(encode(motion[None].astype(np.float64))[0])).float()
        values = values.expand(num, -1, -1).contiguous()  # (K, T, 168)
        builders = {
            "left-hand": lambda: modes.hand_reaction(values, "left", hard=condition.hard),
            "right-hand": lambda: modes.hand_reaction(values, "right", hard=condition.hard),
            "wrists": lambda: modes.wrist_trajectories(values, hard=condition.hard),
            "inbetween": lambda: modes.inbetween(values, condition.k, hard=condition.hard),
            "continue": lambda: modes.prefix(values, condition.k, hard=condition.hard),
            "keyframes": lambda: modes.keyframes(values, condition.frames, hard=condition.hard),
        }
        return builders[condition.mode]()

    def constraint_mask(self, condition: Condition) -> np.ndarray:
        """Which features ``(T, 168)`` a condition constrains (1 = kept from the condition motion; soft masks
        have values in between)."""
        return self._condition(condition, 1).mask[0].cpu().numpy()

    def constrained_joints(self, condition: Condition) -> np.ndarray:
        """How strongly a condition keeps each joint's position: ``(T, 2, 21)`` float32 in [0, 1], the weight of
        the joint's x, y, z features in :meth:`constraint_mask` (1: reproduced exactly under a hard mask; soft
        masks in between; 0: generated), e.g. to show constrained joints in a render."""
        mask = self.constraint_mask(condition)  # (T, 168)
        xyz = mask[:, LAYOUT.columns(channels=("pos",))]  # (T, 126), hand-, joint- then axis-major
        return xyz.reshape(mask.shape[0], NUM_HANDS, NUM_JOINTS, 3).min(axis=-1).astype(np.float32)  # (T, 2, 21)

    def _lengths(self, request: GenerateRequest) -> np.ndarray:
        """The skeleton ``(2, 20)`` generated hands are projected onto (module docstring)."""
        if request.condition is not None:
            return median_bone_lengths(validate_clip(request.condition.motion).astype(np.float64))
        if request.hand_size is not None:
            return hand_lengths_for_size(request.hand_size)
        return self.skeleton

    def _fixed(self, condition: Condition | None) -> np.ndarray | None:
        """Joints ``(T, 2, 21)`` a hard condition reproduces exactly (positions masked 1), or None."""
        if condition is None or not condition.hard:
            return None
        return self.constrained_joints(condition) == 1  # (T, 2, 21)

    def _project_x0(self, lengths: np.ndarray):
        """The ``project_x0`` hook of :func:`handx.sampling.loop.sample`: x̂₀ (normalised features) → the same
        with its joint positions on the skeleton ``lengths`` (bend channels unchanged)."""

        def project(x0_hat: torch.Tensor) -> torch.Tensor:
            features = self.stats.denormalize(x0_hat.detach().cpu().numpy().astype(np.float64))  # (B, T, 168)
            xyz = LAYOUT.columns(channels=("pos",))  # (126,) hand-, joint- then axis-major
            joints = features[..., xyz].reshape(*features.shape[:-1], NUM_HANDS, NUM_JOINTS, 3)  # (B, T, 2, 21, 3)
            features[..., xyz] = project_to_skeleton(joints, lengths).reshape(*features.shape[:-1], -1)  # centred
            return torch.from_numpy(self.stats.normalize(features)).to(x0_hat)

        return project

    def _hook(self, request: GenerateRequest, lengths: np.ndarray):
        return self._project_x0(lengths) if request.projection == "x0" else None

    def _decode(self, features: torch.Tensor, centre: np.ndarray | None, request: GenerateRequest,
                lengths: np.ndarray) -> np.ndarray:
        """Samples (normalised features) → joints ``(K, T, 2, 21, 3)`` float32: hard-constrained joints copied
        from the condition clip, then, unless ``request.projection == "none"``, projected onto ``lengths``."""
        denorm = self.stats.denormalize(features.detach().cpu().numpy().astype(np.float64))
        if not np.isfinite(denorm).all():  # never hand out (or save) all-NaN motion as if it were a sample
            bad = int((~np.isfinite(denorm)).any(axis=(1, 2)).sum())
            raise HandxInputError(self.source, f"the model produced NaN or infinite motion for {bad} of "
                                               f"{len(denorm)} sample(s); its weights or statistics are broken")
        joints = decode(denorm, centre)  # (K, T, 2, 21, 3) float64
        if request.smoothing > 0:  # the x̂₀ predictor's frame-to-frame noise (docs/diffusion.md, "Smoothing")
            joints = smooth_time(joints, request.smoothing, axis=1)
        fixed = self._fixed(request.condition)
        if fixed is not None:  # exactly the condition's values (decoding is exact only to float32 rounding)
            frames = joints.shape[1]  # a request may keep fewer frames than the window
            fixed = fixed[:frames]  # (T, 2, 21)
            motion = validate_clip(request.condition.motion)[:frames].astype(np.float64)  # (T, 2, 21, 3)
            joints = np.where(fixed[..., None], motion, joints)
        if request.projection != "none":
            joints = project_to_skeleton(joints, lengths, fixed=fixed)
        return np.asarray(joints, dtype=np.float32)

    def generate_batch(self, texts: Sequence[Triplet], *, sampler: str = "ddim", steps: int = 50,
                       guidance: float = 2.5, seed: int = 0, batch_size: int = 64, progress: bool = False,
                       projection: str = DEFAULT_PROJECTION, hand_size: float | None = None,
                       smoothing: float = DEFAULT_SMOOTHING) -> np.ndarray:
        """One window per triplet, many different triplets at once: ``(N, T, 2, 21, 3)`` float32 metres.

        Used to generate for a whole test split (``handx eval``). Row i depends only on ``texts``, the settings,
        ``seed`` and ``batch_size`` (rows are sampled in batches of ``batch_size`` with one generator seeded by
        ``seed``), so the same call reproduces the same motions. ``projection`` and ``hand_size`` as in
        :class:`GenerateRequest`.
        """
        request = GenerateRequest(texts=tuple(texts), sampler=sampler, steps=steps, guidance=guidance, seed=seed,
                                  projection=projection, hand_size=hand_size, smoothing=smoothing)
        lengths = self._lengths(request)
        if batch_size < 1:
            raise ValueError(f"generate_batch: batch_size must be >= 1, got {batch_size}")
        gen = torch.Generator().manual_seed(request.seed)
        scheduler = self._scheduler(request)
        out = []
        for lo in tqdm(range(0, len(request.texts), batch_size), desc="generate", unit="batch",
                       disable=not progress, leave=False):
            chunk = request.texts[lo:lo + batch_size]
            tokens, mask = self._texts(chunk)
            shape = (len(chunk), self.config.frames, self.config.features)
            x0 = sample(self._denoiser(tokens, mask), shape, scheduler, num_steps=request.steps,
                        guidance_scale=request.guidance, generator=gen, device=self.device,
                        project_x0=self._hook(request, lengths))
            out.append(self._decode(x0, None, request, lengths))
        return np.concatenate(out)

    def generate(self, request: GenerateRequest) -> Generated:
        """Sample ``request.num`` motions (see :class:`GenerateRequest`)."""
        gen = torch.Generator().manual_seed(request.seed)
        window = self.config.frames
        shape = (request.num, window, self.config.features)
        scheduler = self._scheduler(request)
        length = request.length or window * len(request.texts) - request.overlap * (len(request.texts) - 1)
        lengths = self._lengths(request)
        if length <= window and len(request.texts) == 1:
            tokens, mask = self._text(request.texts[0], request.num)
            inpainting = self._condition(request.condition, request.num) if request.condition else None
            x0 = sample(self._denoiser(tokens, mask), shape, scheduler, num_steps=request.steps,
                        guidance_scale=request.guidance, inpainting=inpainting, generator=gen, device=self.device,
                        project_x0=self._hook(request, lengths))
            centre = None
            if request.condition is not None:  # in the condition motion's frame: constrained joints match it
                centre = encode(validate_clip(request.condition.motion)[None].astype(np.float64))[1]
                centre = np.broadcast_to(centre, (request.num, 3))
            return Generated(self._decode(x0[:, :length], centre, request, lengths), request)
        if request.condition is not None:
            raise HandxInputError(None, "conditioning modes apply to one window; long takes chain windows by "
                                        "their overlap instead")
        segments = _split_length(length, len(request.texts))
        texts = [self._text(t, request.num) for t in request.texts]

        def sample_window(inpainting: Inpainting | None, s: int) -> torch.Tensor:
            return sample(self._denoiser(*texts[s]), shape, scheduler, num_steps=request.steps,
                          guidance_scale=request.guidance, inpainting=inpainting, generator=gen,
                          device=self.device, project_x0=self._hook(request, lengths))

        x0 = sample_long(sample_window, segments, window=window, overlap=request.overlap)
        return Generated(self._decode(x0, None, request, lengths), request)


def _split_length(length: int, parts: int) -> list[int]:
    base, extra = divmod(length, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
