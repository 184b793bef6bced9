"""Training the prefix LM of the autoregressive family (reference §6.4–6.6): run setup and step function.

Setup: a trained tokenizer run (:mod:`handx.train.tokenizer`) is copied into ``RUN/tokenizer`` so the AR run
loads on its own; every training clip's ``local288`` features are encoded once into motion codes (reference
§6.4: a 60-frame clip is 30 codes); the three texts' token features come from the store's text feature files
(:mod:`handx.train.data`). Step (:func:`ar_step`): the batch's codes with their texts, each text branch dropped
independently with probability ``cond_drop`` (for classifier-free guidance; the reference trains without it)
→ next-token cross-entropy over the codes and END (:func:`handx.models.ar.ar_loss`). Validation: the loss and
teacher-forced top-1 accuracy on held-out items (the best checkpoint is kept by the loss). Everything else is
the runner's (:mod:`handx.train.runner`).

Deviation: an item's three texts share one variant index (as the diffusion family's data), where the reference
draws each branch's variant independently.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from handx.errors import HandxInputError
from handx.kinematics import skeleton_from_clips
from handx.models.ar import ARConfig, PrefixLM, ar_loss
from handx.models.diffusion import sample_text_drop
from handx.pipelines.ar import TOKENIZER_DIR, load_tokenizer
from handx.representations import local288
from handx.runs import latest_checkpoint, open_run, read_config, write_config
from handx.text import TextEncoder, load_text_encoder
from handx.train.data import TextMotionData, store_list
from handx.train.runner import Job, RunnerSettings, StepContext, TrainResult, fit, setup_distributed

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ARTrainConfig:
    """Settings of a prefix-LM run (reference §6.6 where they apply: AdamW betas (0.9, 0.999), eps 1e-6, weight
    decay 1e-6, warm-up then cosine; CPU defaults otherwise).

    ``data``: one store or several (``"a,b"`` or a tuple), pooled; ``tokenizer``: the tokenizer run whose codes
    the model learns. ``batch_size`` is the global batch. ``data_fraction`` trains on that fraction of the clips
    (nested across fractions, for data-scaling sweeps). Held-out check every ``eval_every`` steps on the first
    ``val_items`` items of split ``val_split`` of the first store.
    """

    data: str | tuple[str, ...]
    out: str
    tokenizer: str
    preset: str = "tiny"
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 0.0
    warmup: int = 100
    weight_decay: float = 1e-6
    grad_clip: float = 1.0
    cond_drop: float = 0.1
    seed: int = 0
    save_every: int = 500
    keep: int = 3
    log_every: int = 10
    eval_every: int = 500
    text_encoder: str = "minilm"
    split: str | None = "train"
    data_fraction: float = 1.0
    val_split: str | None = "test"
    val_items: int = 256
    stop_at: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        ARConfig.preset(self.preset)  # a clear error for an unknown preset, before any work
        if not 0 <= self.cond_drop < 1:
            raise ValueError(f"ARTrainConfig.cond_drop must be in [0, 1), got {self.cond_drop}")
        if self.val_items < 1:
            raise ValueError(f"ARTrainConfig.val_items must be >= 1, got {self.val_items}")
        self.runner_settings()

    @property
    def stores(self) -> tuple[str, ...]:
        return store_list(self.data)

    def runner_settings(self) -> RunnerSettings:
        return RunnerSettings(steps=self.steps, lr=self.lr, batch_size=self.batch_size, min_lr=self.min_lr,
                              warmup=self.warmup, weight_decay=self.weight_decay, betas=(0.9, 0.999), eps=1e-6,
                              grad_clip=self.grad_clip, ema_decay=None, seed=self.seed, save_every=self.save_every,
                              keep=self.keep, log_every=self.log_every, eval_every=self.eval_every,
                              stop_at=self.stop_at)


@dataclasses.dataclass(frozen=True)
class ARLossTerms:
    """The loss of a step and its teacher-forced top-1 accuracy over the supervised targets."""

    total: torch.Tensor
    accuracy: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {"total": float(self.total.detach()), "accuracy": float(self.accuracy)}


@dataclasses.dataclass(frozen=True)
class CodeBatch:
    """A training batch: codes ``(b, S)`` long, token features ``(3, b, L, D)``, mask ``(3, b, L)`` bool."""

    codes: torch.Tensor
    tokens: torch.Tensor
    mask: torch.Tensor


def encode_clips(tokenizer: torch.nn.Module, stats, data: TextMotionData, batch_size: int = 256) -> list[np.ndarray]:
    """Motion codes of every clip of every store of ``data``: one ``(N_s, S)`` int64 array per store (§6.4)."""
    device = next(tokenizer.parameters()).device
    out = []
    for s, store in enumerate(data.stores):
        codes = []
        for lo in range(0, len(store), batch_size):
            keys = np.stack([np.full(min(batch_size, len(store) - lo), s), np.arange(lo, min(lo + batch_size,
                                                                                            len(store)))], 1)
            x = torch.from_numpy(stats.normalize(data.clip_features(keys)).astype(np.float32)).to(device)
            codes.append(tokenizer.encode(x).cpu().numpy())  # (b, S)
        out.append(np.concatenate(codes) if codes else np.zeros((0, 0), dtype=np.int64))
    return out


def _codes_of(codes: list[np.ndarray], items: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([codes[int(s)][int(c)] for s, c in items[:, :2]])).long()  # (b, S)


def ar_step(cfg: ARTrainConfig) -> Callable[[torch.nn.Module, CodeBatch, StepContext], ARLossTerms]:
    """The step function of an AR run: codes and texts, per-branch text dropout → cross-entropy."""

    def step(net: torch.nn.Module, batch: CodeBatch, ctx: StepContext) -> ARLossTerms:
        codes = batch.codes.to(ctx.device)
        drop = sample_text_drop(codes.shape[0], cfg.cond_drop, generator=ctx.generator).to(ctx.device)
        with ctx.autocast():
            logits = net(batch.tokens.to(ctx.device), batch.mask.to(ctx.device), codes, drop)
        return _terms(logits, codes)

    return step


def _terms(logits: torch.Tensor, codes: torch.Tensor) -> ARLossTerms:
    end = logits.shape[-1] - 1
    targets = torch.cat([codes, codes.new_full((codes.shape[0], 1), end)], dim=1)  # (b, S + 1)
    accuracy = (logits.detach().argmax(-1) == targets).float().mean()
    return ARLossTerms(ar_loss(logits.float(), codes), accuracy)


def _validation(cfg: ARTrainConfig, codes_of: Callable[[TextMotionData], list[np.ndarray]], encoder: TextEncoder
                ) -> Callable[[torch.nn.Module], dict[str, float]] | None:
    if cfg.val_split is None:
        return None
    try:
        held = TextMotionData(cfg.stores[0], split=cfg.val_split, representation=local288.NAME)
    except HandxInputError:
        return None
    if cfg.val_split not in held.store.splits():
        log.info("%s: no split %r, so no held-out validation", cfg.stores[0], cfg.val_split)
        return None
    held.prepare(encoder, progress=False)
    rows = np.flatnonzero(held.items[:, 2] == 0)[:cfg.val_items]  # each held-out clip with its first variant
    codes = _codes_of(codes_of(held), held.items[rows])
    tokens, mask = held.text_batch(rows)

    @torch.no_grad()
    def check(model: torch.nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        terms = _terms(model(tokens.to(device), mask.to(device), codes.to(device), None), codes.to(device))
        model.train(was_training)
        return {"val_loss": float(terms.total), "val_accuracy": float(terms.accuracy), "val_items": len(rows)}

    return check


def copy_tokenizer(tokenizer: str | os.PathLike, run: Path) -> Path:
    """Copy the tokenizer run's config and the checkpoint the AR run uses (``best``, else the newest) into
    ``run/tokenizer`` (a run of its own, so an AR run loads without the tokenizer's directory)."""
    source = open_run(tokenizer, kind="tokenizer")
    checkpoint = source.checkpoint("best" if (source.path / "best").is_dir() else None)
    target = run / TOKENIZER_DIR
    tmp = run / f".{TOKENIZER_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoints" / "step-00000000").mkdir(parents=True)
    shutil.copy2(source.path / "config.json", tmp / "config.json")
    for name in ("ema.safetensors", "state.json"):
        shutil.copy2(checkpoint / name, tmp / "checkpoints" / "step-00000000" / name)
    (tmp / "latest").write_text("step-00000000\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def train_ar(cfg: ARTrainConfig, *, progress: bool = True, text_encoder: TextEncoder | None = None,
             model_config: ARConfig | None = None) -> TrainResult:
    """Train (or resume) a prefix-LM run in ``cfg.out`` on the codes of ``cfg.tokenizer``; returns where it
    stopped. ``model_config`` replaces the preset named in ``cfg`` for a new run (its codebook and text width are
    set from the tokenizer and the encoder)."""
    dist = setup_distributed(cfg.device)
    dist.check_batch(cfg.batch_size)
    run = Path(cfg.out)
    encoder = text_encoder or load_text_encoder(cfg.text_encoder)
    data = TextMotionData(cfg.stores, split=cfg.split, representation=local288.NAME, fraction=cfg.data_fraction)
    data.prepare(encoder, progress=progress and dist.main)
    resume = latest_checkpoint(run) is not None
    if resume:
        saved = read_config(run)
        if saved.get("kind") != "ar":
            raise HandxInputError(run, f"holds a {saved.get('kind')!r} run, not an ar run")
        model_cfg = ARConfig.from_json(saved["model"])
    elif dist.main:
        run.mkdir(parents=True, exist_ok=True)
        copy_tokenizer(cfg.tokenizer, run)
    if dist.world > 1:
        torch.distributed.barrier()
    tokenizer, stats = load_tokenizer(run / TOKENIZER_DIR, device=dist.device)
    codes = encode_clips(tokenizer, stats, data)
    steps_per_clip = codes[0].shape[1]
    if not resume:
        model_cfg = (model_config or ARConfig.preset(cfg.preset))
        model_cfg = dataclasses.replace(model_cfg, codebook=tokenizer.config.codebook_size, text_dim=encoder.dim,
                                        max_tokens=steps_per_clip, cond_drop=cfg.cond_drop)
        if dist.main:
            frames = int(data.clip_features(data.clip_keys[:1]).shape[1])
            write_config(run, {"kind": "ar", "model": model_cfg.to_json(), "representation": local288.NAME,
                               "stats": stats.to_json(), "text_encoder": cfg.text_encoder,
                               "tokenizer": TOKENIZER_DIR, "frames": frames,
                               "skeleton": skeleton_from_clips(data.clip_batches()),
                               "train": {**dataclasses.asdict(cfg), "data": list(cfg.stores)}})
    if model_cfg.codebook != tokenizer.config.codebook_size or model_cfg.text_dim != encoder.dim:
        raise HandxInputError(run, f"the model expects {model_cfg.codebook} codes and {model_cfg.text_dim}-d text; "
                                   f"the tokenizer has {tokenizer.config.codebook_size} codes and the text encoder "
                                   f"gives {encoder.dim}-d")
    torch.manual_seed(cfg.seed)
    model = PrefixLM(model_cfg).to(dist.device)

    def batches(start: int, end: int) -> Iterator[CodeBatch]:
        for step in range(start, end):
            rows = data.step_rows(step, cfg.batch_size, cfg.seed)[dist.rank::dist.world]
            yield CodeBatch(_codes_of(codes, data.items[rows]), *data.text_batch(rows))

    job = Job("train ar", model, batches, ar_step(cfg),
              validate=(_validation(cfg, lambda d: encode_clips(tokenizer, stats, d), encoder)
                        if dist.main else None),
              best=(("val_loss", -1.0),))
    return fit(job, cfg.runner_settings(), run, dist, progress=progress)
