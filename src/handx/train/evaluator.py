"""Training the text–motion evaluator (handx-reference.md §7.4): its losses and its step on the shared runner.

Setup: the clips' preprocessing (:mod:`handx.representations.positions126`, fitted on the training clips and
written into ``config.json``). Step (:func:`evaluator_step`): each of the three texts picks its own variant
(§7.4) → encode both sides, sample the latents, decode both → loss. The runner (:mod:`handx.train.runner`)
clips gradients, steps AdamW, logs a validation retrieval number (:func:`handx.retrieval.r_precision`) and
writes checkpoints, on CPU, one GPU or under ``torchrun``.

Loss (TMR-style, §7.4), with q_m = q(z | motion), q_t = q(z | texts), z sampled by reparameterisation:

    L = SmoothL1(x, D(z_m)) + SmoothL1(x, D(z_t))                               (λ_rec = 1)
      + 0.05·[KL(q_t ‖ q_m) + KL(q_m ‖ q_t)]                                     (each KL averaged over B × d)
      + 0.05·SmoothL1(z_t, z_m)                                                  (latent manifold)
      + 0.6·InfoNCE(μ_m, μ_t)         (cosine logits / 0.05, cross-entropy averaged over both directions)

No KL to N(0, I) and no similarity filtering of negatives, as in the reference.

The run keeps no EMA: the evaluator is a fixed judge, read from its last checkpoint, so the checkpoint's
``ema.safetensors`` holds the same weights as ``model.safetensors`` (the run layout of :mod:`handx.runs`
is shared with the generators).

Determinism and exact resume: the clips of step k come from :meth:`TextMotionData.step_items` (a function of
(seed, k)); their text variants from a generator seeded with (seed, k), drawn for the global batch so they do not
depend on the number of processes; the latent noise and dropout masks from generators seeded with (seed, k, rank).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from handx.errors import HandxInputError
from handx.models.evaluator import TMR, EvaluatorConfig, TMROutput
from handx.representations.positions126 import CENTRINGS, Preprocess
from handx.retrieval import r_precision
from handx.text import CachedTextEncoder, TextEncoder, encode_branches, load_text_encoder
from handx.runs import latest_checkpoint, read_config, write_config
from handx.train.data import BRANCHES, TextMotionData
from handx.train.runner import Distributed, Job, RunnerSettings, StepContext, TrainResult, fit, setup_distributed

log = logging.getLogger(__name__)
VAL_POOL = 32


# ---------------------------------------------------------------------------------------------------- losses


@dataclasses.dataclass(frozen=True)
class EvaluatorLossWeights:
    """λ of each term and the InfoNCE temperature (reference §7.4 defaults)."""

    reconstruction: float = 1.0
    kl: float = 0.05
    latent: float = 0.05
    contrastive: float = 0.6
    temperature: float = 0.05


@dataclasses.dataclass(frozen=True)
class EvaluatorLossTerms:
    """The total loss and its unweighted parts (each a scalar tensor)."""

    total: torch.Tensor
    recon_motion: torch.Tensor
    recon_text: torch.Tensor
    kl: torch.Tensor
    latent: torch.Tensor
    contrastive: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).detach()) for f in dataclasses.fields(self)}


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
                ) -> torch.Tensor:
    """KL(q ‖ p) of diagonal Gaussians, averaged over every element ``(B, d)``:
    ½·[log σ_p² − log σ_q² + (σ_q² + (μ_q − μ_p)²) / σ_p² − 1]."""
    return 0.5 * torch.mean(logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1)


def info_nce(x: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE of paired rows ``(B, d)``: logits = cos(x_i, y_j) / temperature, cross-entropy with
    the diagonal as targets, averaged over the x→y and y→x directions."""
    logits = F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T / temperature  # (B, B)
    targets = torch.arange(x.shape[0], device=x.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def evaluator_loss(motion: torch.Tensor, out: TMROutput,
                   weights: EvaluatorLossWeights = EvaluatorLossWeights()) -> EvaluatorLossTerms:
    """The §7.4 loss for normalised frames ``motion`` ``(B, T, 126)`` and the training pass ``out``."""
    recon_m = F.smooth_l1_loss(out.recon_from_motion, motion)
    recon_t = F.smooth_l1_loss(out.recon_from_text, motion)
    kl = (gaussian_kl(out.text_mu, out.text_logvar, out.motion_mu, out.motion_logvar)
          + gaussian_kl(out.motion_mu, out.motion_logvar, out.text_mu, out.text_logvar))
    latent = F.smooth_l1_loss(out.text_z, out.motion_z)
    contrastive = info_nce(out.motion_mu, out.text_mu, weights.temperature)
    total = (weights.reconstruction * (recon_m + recon_t) + weights.kl * kl + weights.latent * latent
             + weights.contrastive * contrastive)
    return EvaluatorLossTerms(total, recon_m, recon_t, kl, latent, contrastive)


# ---------------------------------------------------------------------------------------------------- the loop


@dataclasses.dataclass(frozen=True)
class EvaluatorTrainConfig:
    """Settings of an evaluator training run (defaults follow reference §7.4: the base preset, AdamW at lr 1e-4 with
    PyTorch's default weight decay 0.01, on matrices only, batch 128; the reference trains up to 1500 epochs).

    The CPU presets learn faster at a higher rate: ``benchmarks/evaluator_synth.py`` trains ``small`` with lr 1e-3,
    50 warm-up steps and batch 64. ``batch_size`` is the global batch, split evenly over the processes of a
    distributed run; InfoNCE's negatives are the other rows of each process's share. ``val_split`` names a store
    split whose first 32 clips (first text variant) are retrieved among each other every ``eval_every`` steps
    (skipped when the store has no such split).
    """

    data: str
    out: str
    preset: str = "base"
    steps: int = 10_000
    batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: int = 0
    grad_clip: float = 1.0
    centring: str = "clip"
    seed: int = 0
    save_every: int = 1000
    log_every: int = 10
    trim_every: int = 25  # steps between handing freed memory back to the OS (0: never; handx.train.memory)
    eval_every: int = 500
    text_encoder: str = "glove"
    split: str | None = "train"
    val_split: str | None = "test"
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "save_every", "log_every", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"EvaluatorTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError(f"EvaluatorTrainConfig.batch_size must be >= 2 (InfoNCE needs negatives), "
                             f"got {self.batch_size}")
        if self.lr <= 0 or self.grad_clip <= 0 or self.weight_decay < 0 or self.warmup < 0:
            raise ValueError(f"EvaluatorTrainConfig: lr and grad_clip must be > 0, weight_decay and warmup >= 0; got "
                             f"{self.lr}, {self.grad_clip}, {self.weight_decay}, {self.warmup}")
        if self.centring not in CENTRINGS:
            raise ValueError(f"EvaluatorTrainConfig.centring must be one of {', '.join(CENTRINGS)}, "
                             f"got {self.centring!r}")
        if self.trim_every < 0:
            raise ValueError(f"EvaluatorTrainConfig.trim_every must be >= 0, got {self.trim_every}")
        EvaluatorConfig.preset(self.preset)  # a clear error for an unknown preset, before any work


def fit_preprocess(data: TextMotionData, centring: str, batch_size: int = 1024) -> Preprocess:
    """The evaluator's preprocessing fitted on every frame of the clips of ``data``."""
    return Preprocess.fit((np.stack([data.store.motion(int(i)) for i in data.clips[lo:lo + batch_size]])
                           for lo in range(0, len(data.clips), batch_size)), centring)


def step_variants(counts: np.ndarray, step: int, seed: int) -> np.ndarray:
    """The text variant of each of the three texts of each row of global batch ``step``, each drawn on its own
    (reference §7.4): ``(3, B)`` int64 from a generator seeded with (seed, step); ``counts`` ``(3, B)`` holds how
    many variants each text has."""
    u = np.random.default_rng([seed, step, 0x7E47]).random(counts.shape)  # (3, B) in [0, 1)
    return np.minimum((u * counts).astype(np.int64), counts - 1)


def evaluator_step(cfg: EvaluatorTrainConfig, data: TextMotionData, preprocess: Preprocess,
                   encoder: CachedTextEncoder, latent: int, dist: Distributed
                   ) -> Callable[[torch.nn.Module, int, StepContext], EvaluatorLossTerms]:
    """The step function of an evaluator run: the step's clips (its batch is the step number), a variant for
    each of their three texts, both encoders, the latents sampled, both decoders → loss."""
    records = data.store.records

    def step(net: torch.nn.Module, step: int, ctx: StepContext) -> EvaluatorLossTerms:
        items = data.step_items(step, cfg.batch_size, cfg.seed)  # (B, 3) global batch: store, clip, variant
        counts = np.array([[len(records[int(c)].texts[key]) for c in items[:, 1]] for key in BRANCHES])
        variants = step_variants(counts, step, cfg.seed)[:, dist.rank::dist.world]  # (3, b)
        clips = items[dist.rank::dist.world, 1]  # (b,)
        motion = torch.from_numpy(preprocess(np.stack([data.store.motion(int(c)) for c in clips]))
                                  ).to(ctx.device)  # (b, T, 126)
        batch_texts = tuple([records[int(c)].texts[key][int(v)] for c, v in zip(clips, variants[k])]
                            for k, key in enumerate(BRANCHES))
        tokens, mask = encode_branches(encoder, batch_texts, ctx.device)  # (3, b, L, D), (3, b, L)
        noise = torch.randn((2, len(clips), latent), generator=ctx.generator).to(ctx.device)
        with ctx.autocast():
            out = net(motion, tokens, mask, noise)
        out = TMROutput(*(getattr(out, f.name).float() for f in dataclasses.fields(TMROutput)))
        return evaluator_loss(motion, out)

    return step


def train_evaluator(cfg: EvaluatorTrainConfig, *, progress: bool = True, text_encoder: TextEncoder | None = None,
                    model_config: EvaluatorConfig | None = None) -> TrainResult:
    """Train (or resume) an evaluator run in ``cfg.out``; returns where it stopped.

    ``model_config`` replaces the preset named in ``cfg`` for a new run (its text width is set from the encoder).
    """
    dist = setup_distributed(cfg.device)
    dist.check_batch(cfg.batch_size, minimum=2)
    run = Path(cfg.out)
    encoder = CachedTextEncoder(text_encoder or load_text_encoder(cfg.text_encoder))

    # ---- data and the run's self-description
    data = TextMotionData(cfg.data, split=cfg.split)
    if latest_checkpoint(run) is not None:
        saved = read_config(run)
        if saved.get("kind") != "evaluator":
            raise ValueError(f"{run}: holds a {saved.get('kind')!r} run, not an evaluator")
        model_cfg = EvaluatorConfig.from_json(saved["model"])
        preprocess = Preprocess.from_json(saved["preprocess"])
    else:
        model_cfg = dataclasses.replace(model_config or EvaluatorConfig.preset(cfg.preset), text_dim=encoder.dim)
        preprocess = fit_preprocess(data, cfg.centring)
        if dist.main:
            run.mkdir(parents=True, exist_ok=True)
            write_config(run, {"kind": "evaluator", "model": model_cfg.to_json(), "preprocess": preprocess.to_json(),
                               "text_encoder": cfg.text_encoder, "text_encoder_name": encoder.name,
                               "train": dataclasses.asdict(cfg)})
    if model_cfg.text_dim != encoder.dim:
        raise ValueError(f"{run}: the model expects {model_cfg.text_dim}-d text features, the text encoder "
                         f"{encoder.name} gives {encoder.dim}-d")
    texts = data.unique_texts()
    if len(texts) <= encoder.max_items:  # the text encoder is frozen: encode every text once, in large batches
        for lo in tqdm(range(0, len(texts), 256), desc="encode texts", disable=not (progress and dist.main)):
            encoder.encode(texts[lo:lo + 256])
    validation = _validation_batch(cfg, data, preprocess, encoder, dist.device) if dist.main else None

    torch.manual_seed(cfg.seed)
    model = TMR(model_cfg).to(dist.device)
    job = Job("train evaluator", model, lambda start, end: range(start, end),
              evaluator_step(cfg, data, preprocess, encoder, model_cfg.latent, dist),
              validate=None if validation is None else (lambda m: validate(m, *validation)))
    settings = RunnerSettings(steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, schedule="constant",
                              warmup=cfg.warmup, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip,
                              ema_decay=None, seed=cfg.seed, save_every=cfg.save_every, log_every=cfg.log_every,
                              eval_every=cfg.eval_every, trim_every=cfg.trim_every)
    return fit(job, settings, run, dist, progress=progress)


@torch.no_grad()
def validate(model: TMR, motion: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """R-precision top-1 and top-3 of the validation pool (μ embeddings, eval mode; reference §7.3) and its
    size."""
    was_training = model.training
    model.eval()
    motion_mu, _ = model.encode_motion(motion)
    text_mu, _ = model.encode_text(tokens, mask)
    model.train(was_training)
    hits = r_precision(text_mu.double().cpu().numpy(), motion_mu.double().cpu().numpy(), pool=VAL_POOL, top_k=3)
    return {"val_r1": float(hits[0]), "val_r3": float(hits[2]), "val_pool": motion.shape[0]}


def _validation_batch(cfg: EvaluatorTrainConfig, data: TextMotionData, preprocess: Preprocess,
                      encoder: CachedTextEncoder, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The first 32 clips of ``cfg.val_split`` with their first text variants: motion ``(n, T, 126)``, tokens
    ``(3, n, L, D)``, mask ``(3, n, L)``; None without a validation split."""
    if cfg.val_split is None:
        return None
    if cfg.val_split not in data.store.splits():
        log.info("%s: no split %r, so no validation retrieval during training", cfg.data, cfg.val_split)
        return None
    try:
        clips = TextMotionData(cfg.data, split=cfg.val_split).clips[:VAL_POOL]
    except HandxInputError:  # the split has no clip with texts
        clips = np.zeros(0, dtype=np.int64)
    if len(clips) < 2:
        log.info("%s: split %r has fewer than 2 clips with texts, so no validation", cfg.data, cfg.val_split)
        return None
    records = data.store.records
    motion = torch.from_numpy(preprocess(np.stack([data.store.motion(int(c)) for c in clips]))).to(device)
    texts = tuple([records[int(c)].texts[key][0] for c in clips] for key in BRANCHES)
    return (motion, *encode_branches(encoder, texts, device))
