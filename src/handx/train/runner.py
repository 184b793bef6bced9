"""The one training runner every model shares: devices, DDP, resume, schedule, clipping, EMA, logging, checkpoints.

A model family contributes a :class:`Job`: its network (already built from the run's config), the batches of
steps ``start … end``, a short *step function* (batch → loss terms) and optionally a validation function. The
runner owns everything else, in visible stages:

    data → learning rate of the step → step function (forward under autocast, loss) → backward → clip gradients
    *before* the optimiser step (the reference clips after it, so never) → AdamW → EMA → free memory → log →
    validate (keep the best) → checkpoint

and it is the same for the diffusion generator (:mod:`handx.train.diffusion`), the evaluator
(:mod:`handx.train.evaluator`), the FSQ tokenizer (:mod:`handx.train.tokenizer`) and the prefix LM
(:mod:`handx.train.ar`). Runs on CPU or one GPU as is, and on several GPUs or nodes under ``torchrun`` (PyTorch
DDP: NCCL on GPU, gloo on CPU); bf16 autocast on GPU.

Determinism and exact resume: a job's batch of step k is a pure function of (seed, k); the step function's
random draws come from :attr:`StepContext.generator`, seeded with (seed, k, rank), and dropout masks from the
global generator, reseeded with (seed, k, rank) + 1 before every step. A run resumed from a checkpoint
therefore continues as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from handx.runs import latest_checkpoint, load_checkpoint, save_checkpoint
from handx.train.memory import release_freed_memory

log = logging.getLogger(__name__)

SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass(frozen=True)
class RunnerSettings:
    """What the runner does around a job's steps.

    The learning rate warms up linearly for ``warmup`` steps, then follows ``schedule``: ``cosine`` decays to
    ``lr · min_lr`` at ``steps``; ``constant`` stays at ``lr``. Weight decay applies to matrices only (reference
    §4.6). ``ema_decay`` None keeps no EMA: the checkpoint's EMA slot then holds the model's own weights.
    ``batch_size`` is the global batch (for the ``samples`` count of the log). ``stop_at`` ends this call after
    that step with a checkpoint, as an interruption would (the schedule still spans ``steps``).
    """

    steps: int
    lr: float
    batch_size: int
    min_lr: float = 0.1
    schedule: str = "cosine"
    warmup: int = 0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0
    ema_decay: float | None = None
    seed: int = 0
    save_every: int = 500
    keep: int = 3
    log_every: int = 10
    eval_every: int = 500
    trim_every: int = 25  # steps between handing freed memory back to the OS (0: never; handx.train.memory)
    stop_at: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "save_every", "keep", "log_every", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError(f"lr and grad_clip must be > 0, got {self.lr}, {self.grad_clip}")
        if not 0 <= self.min_lr <= 1:
            raise ValueError(f"min_lr is a fraction of lr in [0, 1], got {self.min_lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.warmup < 0 or self.trim_every < 0 or self.weight_decay < 0:
            raise ValueError(f"warmup, trim_every and weight_decay must be >= 0, got {self.warmup}, "
                             f"{self.trim_every}, {self.weight_decay}")
        if self.stop_at is not None and not 1 <= self.stop_at <= self.steps:
            raise ValueError(f"stop_at must be in [1, steps={self.steps}], got {self.stop_at}")

    def learning_rate(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based): linear warm-up, then the schedule."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.schedule == "constant":
            return self.lr
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return self.lr * (self.min_lr + (1 - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress)))


class LossTerms(Protocol):
    """What a step function returns: the total to minimise and its parts for the log."""

    total: torch.Tensor

    def as_floats(self) -> dict[str, float]: ...


@dataclasses.dataclass(frozen=True)
class StepContext:
    """What a step function may use besides the network and the batch.

    Attributes:
        step: the 0-based optimiser step.
        rank: this process's rank in a distributed run (0 otherwise).
        device: where the network lives.
        generator: a CPU generator seeded with (seed, step, rank): draw noise, timesteps and text dropout from it.
        autocast: the mixed-precision context to run the forward pass under (bf16 on GPU, nothing on CPU).
    """

    step: int
    rank: int
    device: torch.device
    generator: torch.Generator
    autocast: Callable[[], contextlib.AbstractContextManager]


@dataclasses.dataclass
class Job:
    """One family's part of a training run.

    Attributes:
        name: the progress bar's label (``train diffusion``).
        model: the network, built from the run's config and on its device (the runner loads the checkpoint).
        batches: a function ``(start, end) → iterable`` of the batches of steps ``start … end − 1`` on this rank.
        step: the step function ``(net, batch, context) → loss terms`` (``net`` may be DDP-wrapped).
        validate: ``model → scores`` (the EMA model when there is one), run on the main process every
            ``eval_every`` steps and at the end; None: no validation.
        best: the scores that choose ``RUN/best`` in order of preference, as (name, +1 higher is better or −1
            lower is better); the first one the scores hold decides. Empty: no ``best`` folder.
        state: extra fields recorded in every checkpoint's ``state.json``.
    """

    name: str
    model: torch.nn.Module
    batches: Callable[[int, int], Iterable[Any]]
    step: Callable[[torch.nn.Module, Any, StepContext], LossTerms]
    validate: Callable[[torch.nn.Module], dict[str, float]] | None = None
    best: tuple[tuple[str, float], ...] = ()
    state: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    run: Path
    step: int
    last_loss: float | None


@dataclasses.dataclass(frozen=True)
class Distributed:
    """This process's place in a (possibly one-process) run."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def check_batch(self, batch_size: int, minimum: int = 1) -> int:
        """The per-process share of global batch ``batch_size``; ``ValueError`` when it does not divide evenly
        or a share has fewer than ``minimum`` rows."""
        if batch_size % self.world or batch_size // self.world < minimum:
            raise ValueError(f"batch_size {batch_size} must divide evenly over {self.world} processes"
                             + (f", with at least {minimum} rows each" if minimum > 1 else ""))
        return batch_size // self.world


def setup_distributed(device: str = "auto") -> Distributed:
    """Join the ``torchrun`` process group when there is one (``WORLD_SIZE`` > 1) and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return Distributed(rank, world, torch.device("cuda", local))
    return Distributed(rank, world, torch.device("cpu" if device == "auto" else device))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only (reference §4.6)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of step ``step``'s random draws on rank ``rank``."""
    return (seed * 1_000_003 + step * 7_919 + rank * 104_729) % (2**63)


def fit(job: Job, settings: RunnerSettings, run: str | os.PathLike, dist: Distributed, *,
        progress: bool = True) -> TrainResult:
    """Train ``job`` in run directory ``run`` (its config already written) from its newest checkpoint, or from
    scratch, up to ``settings.steps`` (or ``stop_at``); returns where it stopped."""
    run = Path(run)
    model = job.model
    ema = None
    if settings.ema_decay is not None:
        import copy

        ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(param_groups(model, settings.weight_decay), lr=settings.lr,
                                  betas=settings.betas, eps=settings.eps)

    # ---- resume
    start, best = 0, {}
    resume = latest_checkpoint(run)
    if resume is not None:
        ckpt = load_checkpoint(resume)
        model.load_state_dict(ckpt.model)
        if ema is not None:
            ema.load_state_dict(ckpt.ema)
        if ckpt.optimizer is not None:
            optimizer.load_state_dict(ckpt.optimizer)
        start, best = ckpt.step, dict(ckpt.state.get("best", {}))
        log.info("resuming %s from step %d", run, start)
    judged = ema if ema is not None else model
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dist.device.index] if
                                                        dist.device.type == "cuda" else None)

    def autocast() -> contextlib.AbstractContextManager:
        if dist.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    metrics = open(run / "metrics.jsonl", "a") if dist.main else None
    bar = tqdm(total=settings.steps, initial=start, desc=job.name, unit="step", disable=not (progress and dist.main))
    end = settings.steps if settings.stop_at is None else max(start, settings.stop_at)
    last = None

    def write(record: dict[str, Any]) -> None:
        assert metrics is not None
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()

    try:
        for step, batch in zip(range(start, end), job.batches(start, end)):
            # ---- the step's randomness, learning rate and loss
            seed = step_seed(settings.seed, step, dist.rank)
            context = StepContext(step, dist.rank, dist.device, torch.Generator().manual_seed(seed), autocast)
            torch.manual_seed(seed + 1)  # dropout masks
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate(step)
            net.train()
            terms = job.step(net, batch, context)

            # ---- backward, clip before the optimiser step, EMA
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            if ema is not None:
                with torch.no_grad():
                    decay = min(settings.ema_decay, (1 + step) / (10 + step))  # short runs: EMA warms up too
                    for p_ema, p in zip(ema.parameters(), model.parameters()):
                        p_ema.lerp_(p, 1 - decay)
            last = float(terms.total.detach())
            bar.update(1)
            if settings.trim_every and (step + 1) % settings.trim_every == 0:
                release_freed_memory()

            # ---- log, validate, checkpoint
            samples = (step + 1) * settings.batch_size
            if metrics is not None and ((step + 1) % settings.log_every == 0 or step == start):
                write({"step": step + 1, "samples": samples, "lr": optimizer.param_groups[0]["lr"],
                       "grad_norm": float(grad_norm), **terms.as_floats()})
                bar.set_postfix(loss=f"{last:.4f}")
            improved = False
            if (metrics is not None and job.validate is not None
                    and ((step + 1) % settings.eval_every == 0 or step + 1 == settings.steps)):
                scores = job.validate(judged)
                write({"step": step + 1, "samples": samples, **scores})
                chosen = next(((k, sign) for k, sign in job.best if k in scores), None)
                if chosen is not None:
                    key, sign = chosen
                    if not best or best.get("metric") != key or sign * scores[key] > sign * best["value"]:
                        best = {"step": step + 1, "metric": key, "value": scores[key], **scores}
                        improved = True
            if (step + 1) % settings.save_every == 0 or step + 1 in (settings.steps, end) or improved:
                if dist.main:
                    save_checkpoint(run, step + 1, model, judged, optimizer,
                                    {"seed": settings.seed, "best": best, **job.state}, keep=settings.keep)
                    if improved:
                        save_best(run, step + 1, judged, best)
                if dist.world > 1:
                    torch.distributed.barrier()
    finally:
        bar.close()
        if metrics is not None:
            metrics.close()
    return TrainResult(run, max(start, end), last)


def save_best(run: str | os.PathLike, step: int, ema: torch.nn.Module, best: dict[str, Any]) -> None:
    """``RUN/best/``: the weights of the best validated step (safetensors) and its scores, atomically."""
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
