"""The training loop of the diffusion generator: one readable function with visible stages.

data → noise a batch (x₀-prediction diffusion, reference §4.4) → denoise with independent per-branch text
dropout (reference §4.3) → loss (reference §4.5) → clip gradients *before* the AdamW step (the reference clips
after it, so never) → EMA → log → checkpoint. Runs on CPU or one GPU as is, and on several GPUs or nodes under
``torchrun`` (PyTorch DDP: NCCL on GPU, gloo on CPU). bf16 autocast on GPU.

Determinism and exact resume: the items of step k are a pure function of (seed, k) (:mod:`handx.train.data`),
and the noise, timesteps, text dropout and dropout masks of step k come from generators seeded with
(seed, k, rank), so a run resumed from a checkpoint continues as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from handx.kinematics import skeleton_from_clips
from handx.models.diffusion import DiffusionConfig, TrebleDenoiser
from handx.representations.stats import FeatureStats
from handx.sampling.schedule import cosine_betas
from handx.errors import HandxInputError
from handx.text import TextEncoder, load_text_encoder
from handx.runs import latest_checkpoint, load_checkpoint, read_config, save_checkpoint, write_config
from handx.train.data import TextMotionData, step_loader
from handx.train.losses import LossWeights, diffusion_loss
from handx.train.memory import release_freed_memory

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
    would (the schedule still spans ``steps``; running again without it continues).
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
        if isinstance(self.data, str):
            return tuple(part for part in self.data.split(",") if part)
        return tuple(str(part) for part in self.data)


SCHEDULES = ("cosine", "constant")


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based): linear warm-up, then the schedule."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr + (1 - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclasses.dataclass(frozen=True)
class TrainResult:
    run: Path
    step: int
    last_loss: float | None


@dataclasses.dataclass(frozen=True)
class _Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return _Dist(rank, world, torch.device("cuda", local))
    return _Dist(rank, world, torch.device("cpu" if device == "auto" else device))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only (reference §4.6)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


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


def _step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + rank * 104_729) % (2**63)


def train_diffusion(cfg: TrainConfig, *, progress: bool = True, text_encoder: TextEncoder | None = None,
                    model_config: DiffusionConfig | None = None) -> TrainResult:
    """Train (or resume) a diffusion run in ``cfg.out``; returns where it stopped.

    ``model_config`` replaces the preset named in ``cfg`` for a new run (its text width is set from the encoder).
    """
    dist = _setup_distributed(cfg.device)
    if cfg.batch_size % dist.world:
        raise ValueError(f"batch_size {cfg.batch_size} must divide evenly over {dist.world} processes")
    run = Path(cfg.out)
    encoder = text_encoder or load_text_encoder(cfg.text_encoder)

    # ---- data (motion and text features computed once per store) and the run's self-description
    data = TextMotionData(cfg.stores, split=cfg.split)
    data.prepare(encoder, progress=progress and dist.main)
    resume = latest_checkpoint(run)
    if resume is not None:
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
    validation = _validation(cfg, data, stats, encoder) if dist.main else None

    # ---- model, EMA, optimiser (restored on resume)
    torch.manual_seed(cfg.seed)
    model = TrebleDenoiser(model_cfg).to(dist.device)
    ema = TrebleDenoiser(model_cfg).to(dist.device).eval().requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8)
    start = 0
    best: dict[str, Any] = {}
    if resume is not None:
        ckpt = load_checkpoint(resume)
        model.load_state_dict(ckpt.model)
        ema.load_state_dict(ckpt.ema)
        if ckpt.optimizer is not None:
            optimizer.load_state_dict(ckpt.optimizer)
        start = ckpt.step
        best = dict(ckpt.state.get("best", {}))
        log.info("resuming %s from step %d", run, start)
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dist.device.index] if
                                                        dist.device.type == "cuda" else None)

    alphas_cumprod = torch.cumprod(1 - cosine_betas(NUM_TRAIN_STEPS), 0).to(dist.device, torch.float32)
    loss_weights = LossWeights(contact=cfg.contact_loss)
    stats_t = tuple(torch.tensor(np.array(a), device=dist.device) for a in (stats.mean, stats.std))
    local_batch = cfg.batch_size // dist.world
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if dist.device.type == "cuda"
                else contextlib.nullcontext())
    metrics = open(run / "metrics.jsonl", "a") if dist.main else None
    bar = tqdm(total=cfg.steps, initial=start, desc="train diffusion", unit="step",
               disable=not (progress and dist.main))
    end = cfg.steps if cfg.stop_at is None else max(start, cfg.stop_at)
    batches = step_loader(data, stats, batch_size=cfg.batch_size, seed=cfg.seed, start=start, steps=end,
                          rank=dist.rank, world=dist.world, workers=cfg.workers)
    last = None
    try:
        for step, batch in zip(range(start, end), batches):
            # ---- data: gathered by index from the precomputed features
            x0 = torch.from_numpy(batch.features).to(dist.device)  # (b, T, 168)
            assert batch.tokens is not None and batch.mask is not None
            tokens, mask = batch.tokens.to(dist.device), batch.mask.to(dist.device)  # (3, b, L, D), (3, b, L)

            # ---- noise, timesteps and text dropout of this step
            gen = torch.Generator().manual_seed(_step_seed(cfg.seed, step, dist.rank))
            t = torch.randint(0, NUM_TRAIN_STEPS, (local_batch,), generator=gen).to(dist.device)
            noise = torch.randn(x0.shape, generator=gen).to(dist.device)
            drop = (torch.rand((3, local_batch), generator=gen) < cfg.cond_drop).to(dist.device)
            torch.manual_seed(_step_seed(cfg.seed, step, dist.rank) + 1)  # dropout masks
            a = alphas_cumprod[t].view(-1, 1, 1)
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise  # q(x_t | x0)

            # ---- step: schedule, loss, clip before the optimiser step, EMA
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step)
            net.train()
            with autocast:
                x0_hat = net(x_t, t, tokens, mask, drop)
            loss = diffusion_loss(x0, x0_hat.float(), loss_weights, stats_t)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            with torch.no_grad():
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))  # short runs: EMA warms up with the model
                for p_ema, p in zip(ema.parameters(), model.parameters()):
                    p_ema.lerp_(p, 1 - decay)
            last = float(loss.total.detach())
            bar.update(1)

            if cfg.trim_every and (step + 1) % cfg.trim_every == 0:
                release_freed_memory()

            # ---- log, validate, checkpoint
            if metrics is not None and ((step + 1) % cfg.log_every == 0 or step == start):
                metrics.write(json.dumps({"step": step + 1, "samples": (step + 1) * cfg.batch_size,
                                          "lr": optimizer.param_groups[0]["lr"], "grad_norm": float(grad_norm),
                                          **loss.as_floats()}) + "\n")
                metrics.flush()
                bar.set_postfix(loss=f"{last:.4f}")
            improved = False
            if validation is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
                scores = validation(ema)
                assert metrics is not None
                metrics.write(json.dumps({"step": step + 1, "samples": (step + 1) * cfg.batch_size, **scores})
                              + "\n")
                metrics.flush()
                key, sign = ("val_r3", 1.0) if "val_r3" in scores else ("val_loss", -1.0)
                if not best or sign * scores[key] > sign * best["value"]:
                    best = {"step": step + 1, "metric": key, "value": scores[key], **scores}
                    improved = True
            if (step + 1) % cfg.save_every == 0 or step + 1 in (cfg.steps, end) or improved:
                if dist.main:
                    save_checkpoint(run, step + 1, model, ema, optimizer, {"seed": cfg.seed, "best": best},
                                    keep=cfg.keep)
                    if improved:
                        save_best(run, step + 1, ema, best)
                if dist.world > 1:
                    torch.distributed.barrier()
    finally:
        bar.close()
        if metrics is not None:
            metrics.close()
    return TrainResult(run, max(start, end), last)


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


def save_best(run: str | os.PathLike, step: int, ema: torch.nn.Module, best: dict[str, Any]) -> None:
    """``RUN/best/``: the EMA weights of the best validated step (safetensors) and its scores, atomically."""
    import shutil

    from safetensors.torch import save_file

    from handx.io.atomic import write_json

    folder = Path(run) / "best"
    tmp = Path(run) / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = {k: v.detach().contiguous().cpu() for k, v in ema.state_dict().items()}
    save_file(state, os.fspath(tmp / "ema.safetensors"))  # load_checkpoint serves it as the model weights too
    write_json(tmp / "state.json", {"step": step, "best": best})
    old = Path(run) / ".best.old"
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
