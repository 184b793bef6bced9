"""Training the diffusion generator: its run setup and its step function on the shared runner.

Setup: text and motion features computed once per store (:mod:`handx.train.data`), the run's config (model,
statistics, text encoder, noise schedule, skeleton, settings) written once. Step (:func:`diffusion_step`): noise
a batch (x₀-prediction diffusion, reference §4.4) → denoise with independent per-branch text dropout (reference
§4.3) → loss (reference §4.5). Everything around it (schedule, clipping, EMA, logging, validation, checkpoints,
DDP, exact resume) is :mod:`handx.train.runner`'s.

The items of step k are a pure function of (seed, k), and the noise, timesteps and text dropout of step k come
from the runner's generator seeded with (seed, k, rank), so a resumed run continues as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from handx.kinematics import skeleton_from_clips
from handx.models.diffusion import DiffusionConfig, TrebleDenoiser
from handx.representations.stats import FeatureStats
from handx.sampling.schedule import cosine_betas
from handx.errors import HandxInputError
from handx.text import TextEncoder, load_text_encoder
from handx.runs import latest_checkpoint, read_config, write_config
from handx.train.data import Batch, TextMotionData, step_loader, store_list
from handx.train.losses import LossTerms, LossWeights, diffusion_loss
from handx.train.runner import SCHEDULES, Job, RunnerSettings, StepContext, TrainResult, fit, setup_distributed

log = logging.getLogger(__name__)
NUM_TRAIN_STEPS = 1000


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of a diffusion training run (defaults follow reference §4.1 and §4.6 where they apply).

    ``data`` is one store or several (``"a,b"`` or a tuple): their items are pooled. ``batch_size`` is the
    global batch, split evenly over the processes of a distributed run. The learning rate warms up linearly for
    ``warmup`` steps, then follows ``schedule``: ``cosine`` decays to ``lr · min_lr`` at ``steps``; ``constant``
    stays at ``lr``. Every ``eval_every`` steps the EMA model's diffusion loss on ``val_items`` held-out items
    (split ``val_split`` of the first store) is logged, and with ``val_evaluator`` (an evaluator run) the
    R-precision of ``val_items`` generated clips as well; the best checkpoint by that metric (else by the loss)
    is kept in ``RUN/best``. ``stop_at`` ends this call after that step with a checkpoint, as an interruption
    would (the schedule still spans ``steps``; running again without it continues). ``data_fraction`` trains
    on that fraction of the clips (nested: a smaller fraction's clips are among a larger one's), for data-scaling
    sweeps.
    """

    data: str | tuple[str, ...]
    out: str
    preset: str = "tiny"
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-4
    min_lr: float = 0.1
    schedule: str = "cosine"
    weight_decay: float = 5e-6
    warmup: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_drop: float = 0.1
    contact_loss: float = 0.0
    seed: int = 0
    save_every: int = 500
    keep: int = 3
    log_every: int = 10
    eval_every: int = 500
    val_split: str | None = "test"
    val_items: int = 128
    val_evaluator: str | None = None
    val_steps: int = 10
    trim_every: int = 25  # steps between handing freed memory back to the OS (0: never; handx.train.memory)
    text_encoder: str = "minilm"
    split: str | None = "train"
    data_fraction: float = 1.0
    workers: int = 0
    stop_at: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.stop_at is not None and not 1 <= self.stop_at <= self.steps:
            raise ValueError(f"TrainConfig.stop_at must be in [1, steps={self.steps}], got {self.stop_at}")
        for name in ("steps", "batch_size", "save_every", "keep", "log_every", "eval_every", "val_items", "val_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.lr and grad_clip must be > 0, got {self.lr}, {self.grad_clip}")
        if not 0 <= self.min_lr <= 1:
            raise ValueError(f"TrainConfig.min_lr is a fraction of lr in [0, 1], got {self.min_lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not 0 <= self.ema_decay < 1 or not 0 <= self.cond_drop < 1:
            raise ValueError(f"TrainConfig.ema_decay and cond_drop must be in [0, 1), got {self.ema_decay}, "
                             f"{self.cond_drop}")
        if not 0 <= self.contact_loss <= 100:
            raise ValueError(f"TrainConfig.contact_loss is a loss weight in [0, 100], got {self.contact_loss}")
        if self.warmup < 0 or self.trim_every < 0 or self.workers < 0:
            raise ValueError(f"TrainConfig.warmup, trim_every and workers must be >= 0, got {self.warmup}, "
                             f"{self.trim_every}, {self.workers}")

    @property
    def stores(self) -> tuple[str, ...]:
        return store_list(self.data)


    def runner_settings(self) -> RunnerSettings:
        """What the shared runner does around the diffusion steps."""
        return RunnerSettings(
            steps=self.steps, lr=self.lr, batch_size=self.batch_size, min_lr=self.min_lr, schedule=self.schedule,
            warmup=self.warmup, weight_decay=self.weight_decay, betas=(0.9, 0.95), eps=1e-8,
            grad_clip=self.grad_clip, ema_decay=self.ema_decay, seed=self.seed, save_every=self.save_every,
            keep=self.keep, log_every=self.log_every, eval_every=self.eval_every, trim_every=self.trim_every,
            stop_at=self.stop_at)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based): linear warm-up, then the schedule."""
    return cfg.runner_settings().learning_rate(step)


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, x0: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor, *,
                  timesteps: int = 8, seed: int = 0) -> float:
    """Mean diffusion loss of ``model`` on clean features ``x0`` ``(B, T, 168)`` over a fixed grid of
    ``timesteps`` noise levels (evenly spaced over the schedule) and fixed noise: comparable across training."""
    alphas_cumprod = torch.cumprod(1 - cosine_betas(NUM_TRAIN_STEPS), 0).to(x0.device, torch.float32)
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    total = 0.0
    for t_value in torch.linspace(0, NUM_TRAIN_STEPS - 1, timesteps).long().tolist():
        t = torch.full((x0.shape[0],), t_value, dtype=torch.long, device=x0.device)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        a = alphas_cumprod[t_value]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        total += float(diffusion_loss(x0, model(x_t, t, tokens, mask, None).float()).total)
    model.train(was_training)
    return total / timesteps


def diffusion_step(cfg: TrainConfig, stats: FeatureStats, device: torch.device
                   ) -> Callable[[torch.nn.Module, Batch, StepContext], LossTerms]:
    """The step function of a diffusion run: batch → noised x_t → x̂₀ under per-branch text dropout → loss."""
    alphas_cumprod = torch.cumprod(1 - cosine_betas(NUM_TRAIN_STEPS), 0).to(device, torch.float32)
    loss_weights = LossWeights(contact=cfg.contact_loss)
    stats_t = tuple(torch.tensor(np.array(a), device=device) for a in (stats.mean, stats.std))

    def step(net: torch.nn.Module, batch: Batch, ctx: StepContext) -> LossTerms:
        x0 = torch.from_numpy(batch.features).to(ctx.device)  # (b, T, 168)
        assert batch.tokens is not None and batch.mask is not None
        tokens, mask = batch.tokens.to(ctx.device), batch.mask.to(ctx.device)  # (3, b, L, D), (3, b, L)
        b = x0.shape[0]
        t = torch.randint(0, NUM_TRAIN_STEPS, (b,), generator=ctx.generator).to(ctx.device)
        noise = torch.randn(x0.shape, generator=ctx.generator).to(ctx.device)
        drop = (torch.rand((3, b), generator=ctx.generator) < cfg.cond_drop).to(ctx.device)
        a = alphas_cumprod[t].view(-1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise  # q(x_t | x0)
        with ctx.autocast():
            x0_hat = net(x_t, t, tokens, mask, drop)
        return diffusion_loss(x0, x0_hat.float(), loss_weights, stats_t)

    return step


def train_diffusion(cfg: TrainConfig, *, progress: bool = True, text_encoder: TextEncoder | None = None,
                    model_config: DiffusionConfig | None = None) -> TrainResult:
    """Train (or resume) a diffusion run in ``cfg.out``; returns where it stopped.

    ``model_config`` replaces the preset named in ``cfg`` for a new run (its text width is set from the encoder).
    """
    dist = setup_distributed(cfg.device)
    dist.check_batch(cfg.batch_size)
    run = Path(cfg.out)
    encoder = text_encoder or load_text_encoder(cfg.text_encoder)

    # ---- data (motion and text features computed once per store) and the run's self-description
    data = TextMotionData(cfg.stores, split=cfg.split, fraction=cfg.data_fraction)
    data.prepare(encoder, progress=progress and dist.main)
    if latest_checkpoint(run) is not None:
        saved = read_config(run)
        model_cfg = DiffusionConfig.from_json(saved["model"])
        stats = FeatureStats.from_json(saved["stats"])
    else:
        model_cfg = dataclasses.replace(model_config or DiffusionConfig.preset(cfg.preset), text_dim=encoder.dim,
                                        cond_drop=cfg.cond_drop)
        stats = data.fit_stats()
        if dist.main:
            run.mkdir(parents=True, exist_ok=True)
            write_config(run, {"kind": "diffusion", "model": model_cfg.to_json(), "stats": stats.to_json(),
                               "text_encoder": cfg.text_encoder,
                               "schedule": {"kind": "cosine", "steps": NUM_TRAIN_STEPS},
                               "skeleton": skeleton_from_clips(data.clip_batches()),
                               "train": {**dataclasses.asdict(cfg), "data": list(cfg.stores)}})
    torch.manual_seed(cfg.seed)
    model = TrebleDenoiser(model_cfg).to(dist.device)

    def batches(start: int, end: int):
        return step_loader(data, stats, batch_size=cfg.batch_size, seed=cfg.seed, start=start, steps=end,
                           rank=dist.rank, world=dist.world, workers=cfg.workers)

    job = Job("train diffusion", model, batches, diffusion_step(cfg, stats, dist.device),
              validate=_validation(cfg, data, stats, encoder) if dist.main else None,
              best=(("val_r3", 1.0), ("val_loss", -1.0)))
    return fit(job, cfg.runner_settings(), run, dist, progress=progress)


def _validation(cfg: TrainConfig, data: TextMotionData, stats: FeatureStats, encoder: TextEncoder):
    """The held-out check of a run: a function of the EMA model → scores, or None without a held-out split.

    ``val_loss`` is :func:`evaluate_loss` on the first ``val_items`` items of ``cfg.val_split`` (fixed noise, a
    fixed grid of noise levels: comparable across the run). With ``cfg.val_evaluator``, one clip is generated
    for each of those items (DDIM, ``val_steps`` steps, guidance 2.5) and ranked by the evaluator: ``val_r3`` is
    R-precision top-3 in pools of 32 (reference §7.3), ``val_r3_real`` the same for the real clips.
    """
    if cfg.val_split is None:
        return None
    try:
        held = TextMotionData(cfg.stores[0], split=cfg.val_split)
    except HandxInputError:
        return None
    if cfg.val_split not in held.store.splits():
        log.info("%s: no split %r, so no held-out validation", cfg.stores[0], cfg.val_split)
        return None
    held.prepare(encoder, progress=False)
    first = held.items[:, 2] == 0  # every held-out clip with its first text variant
    rows = np.flatnonzero(first)[:cfg.val_items]
    batch = held.batch(rows, stats)
    x0 = torch.from_numpy(batch.features)
    assert batch.tokens is not None and batch.mask is not None
    tokens, mask = batch.tokens, batch.mask
    evaluator = None
    if cfg.val_evaluator:
        from handx.evaluator import Evaluator
        evaluator = Evaluator.load(cfg.val_evaluator)
        real = np.stack([held.motion(int(s), int(c)) for s, c, _ in batch.items])
        text_mu = evaluator.embed_text(*batch.texts)
        real_mu = evaluator.embed_motion(real)

    def check(model: torch.nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        scores = {"val_loss": evaluate_loss(model, x0.to(device), tokens.to(device), mask.to(device))}
        if evaluator is not None:
            from handx.representations.joints168 import decode
            from handx.retrieval import r_precision
            from handx.sampling.ddim import DDIMScheduler
            from handx.sampling.loop import sample

            drop_all = torch.ones(tokens.shape[:2], dtype=torch.bool, device=device)
            tok, msk = tokens.to(device), mask.to(device)

            @torch.no_grad()
            def denoise(x_t: torch.Tensor, t: torch.Tensor, conditional: bool) -> torch.Tensor:
                return model(x_t, t, tok, msk, None if conditional else drop_all)

            gen = torch.Generator().manual_seed(cfg.seed)
            out = sample(denoise, tuple(x0.shape), DDIMScheduler(), num_steps=cfg.val_steps, guidance_scale=2.5,
                         generator=gen, device=device)
            motions = decode(stats.denormalize(out.cpu().double().numpy()))  # (n, T, 2, 21, 3)
            motion_mu = evaluator.embed_motion(np.asarray(motions, dtype=np.float32))
            scores["val_r3"] = float(r_precision(text_mu, motion_mu, pool=32, top_k=3)[2])
            scores["val_r3_real"] = float(r_precision(text_mu, real_mu, pool=32, top_k=3)[2])
        return scores

    return check
