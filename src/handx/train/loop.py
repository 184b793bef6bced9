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
import os
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from handx.models.diffusion import DiffusionConfig, TrebleDenoiser
from handx.models.representation import FeatureStats
from handx.sampling.schedule import cosine_betas
from handx.text import CachedTextEncoder, TextEncoder, encode_branches, load_text_encoder
from handx.train.checkpoint import latest_checkpoint, load_checkpoint, read_config, save_checkpoint, write_config
from handx.train.data import TextMotionData
from handx.train.losses import diffusion_loss
from handx.train.memory import release_freed_memory

log = logging.getLogger(__name__)
NUM_TRAIN_STEPS = 1000


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of a diffusion training run (defaults follow reference §4.1 and §4.6 where they apply).

    ``batch_size`` is the global batch, split evenly over the processes of a distributed run.
    """

    data: str
    out: str
    preset: str = "tiny"
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 5e-6
    warmup: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_drop: float = 0.1
    seed: int = 0
    save_every: int = 500
    log_every: int = 10
    trim_every: int = 25  # steps between handing freed memory back to the OS (0: never; handx.train.memory)
    text_encoder: str = "minilm"
    split: str | None = "train"
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.lr and grad_clip must be > 0, got {self.lr}, {self.grad_clip}")
        if not 0 <= self.ema_decay < 1 or not 0 <= self.cond_drop < 1:
            raise ValueError(f"TrainConfig.ema_decay and cond_drop must be in [0, 1), got {self.ema_decay}, "
                             f"{self.cond_drop}")
        if self.warmup < 0 or self.trim_every < 0:
            raise ValueError(f"TrainConfig.warmup and trim_every must be >= 0, got {self.warmup}, {self.trim_every}")


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
    encoder = CachedTextEncoder(text_encoder or load_text_encoder(cfg.text_encoder))

    # ---- data and the run's self-description
    data = TextMotionData(cfg.data, split=cfg.split)
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
                               "text_encoder": cfg.text_encoder, "schedule": {"kind": "cosine",
                                                                              "steps": NUM_TRAIN_STEPS},
                               "train": dataclasses.asdict(cfg)})

    texts = data.unique_texts()
    if len(texts) <= encoder.max_items:  # the text encoder is frozen: encode every text once, in large batches
        for lo in tqdm(range(0, len(texts), 256), desc="encode texts", disable=not (progress and dist.main)):
            encoder.encode(texts[lo:lo + 256])

    # ---- model, EMA, optimiser (restored on resume)
    torch.manual_seed(cfg.seed)
    model = TrebleDenoiser(model_cfg).to(dist.device)
    ema = TrebleDenoiser(model_cfg).to(dist.device).eval().requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8)
    start = 0
    if resume is not None:
        ckpt = load_checkpoint(resume)
        model.load_state_dict(ckpt.model)
        ema.load_state_dict(ckpt.ema)
        if ckpt.optimizer is not None:
            optimizer.load_state_dict(ckpt.optimizer)
        start = ckpt.step
        log.info("resuming %s from step %d", run, start)
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dist.device.index] if
                                                        dist.device.type == "cuda" else None)

    alphas_cumprod = torch.cumprod(1 - cosine_betas(NUM_TRAIN_STEPS), 0).to(dist.device, torch.float32)
    local_batch = cfg.batch_size // dist.world
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if dist.device.type == "cuda"
                else contextlib.nullcontext())
    metrics = open(run / "metrics.jsonl", "a") if dist.main else None
    bar = tqdm(total=cfg.steps, initial=start, desc="train diffusion", unit="step",
               disable=not (progress and dist.main))
    last = None
    try:
        for step in range(start, cfg.steps):
            # ---- data
            items = data.step_items(step, cfg.batch_size, cfg.seed)[dist.rank::dist.world]
            batch = data.batch(items, stats)
            x0 = torch.from_numpy(batch.features).to(dist.device)  # (b, T, 168)
            tokens, mask = encode_branches(encoder, batch.texts, dist.device)

            # ---- noise, timesteps and text dropout of this step
            gen = torch.Generator().manual_seed(_step_seed(cfg.seed, step, dist.rank))
            t = torch.randint(0, NUM_TRAIN_STEPS, (local_batch,), generator=gen).to(dist.device)
            noise = torch.randn(x0.shape, generator=gen).to(dist.device)
            drop = (torch.rand((3, local_batch), generator=gen) < cfg.cond_drop).to(dist.device)
            torch.manual_seed(_step_seed(cfg.seed, step, dist.rank) + 1)  # dropout masks
            a = alphas_cumprod[t].view(-1, 1, 1)
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise  # q(x_t | x0)

            # ---- step: loss, clip before the optimiser step, EMA
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
            net.train()
            with autocast:
                x0_hat = net(x_t, t, tokens, mask, drop)
            loss = diffusion_loss(x0, x0_hat.float())
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters()):
                    p_ema.lerp_(p, 1 - cfg.ema_decay)
            last = float(loss.total.detach())
            bar.update(1)

            if cfg.trim_every and (step + 1) % cfg.trim_every == 0:
                release_freed_memory()

            # ---- log and checkpoint
            if metrics is not None and ((step + 1) % cfg.log_every == 0 or step == start):
                metrics.write(json.dumps({"step": step + 1, "lr": optimizer.param_groups[0]["lr"],
                                          "grad_norm": float(grad_norm), **loss.as_floats()}) + "\n")
                metrics.flush()
                bar.set_postfix(loss=f"{last:.4f}")
            if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps:
                if dist.main:
                    save_checkpoint(run, step + 1, model, ema, optimizer, {"seed": cfg.seed})
                if dist.world > 1:
                    torch.distributed.barrier()
    finally:
        bar.close()
        if metrics is not None:
            metrics.close()
    return TrainResult(run, max(start, cfg.steps), last)

