"""Training the FSQ motion tokenizer of the autoregressive family (reference §6.3): run setup and step function.

Data: the ``local288`` features (reference §1.6, :mod:`handx.representations.local288`) of every training clip,
computed once per store into a memory-mapped side file (:mod:`handx.train.data`), normalised with statistics
fitted on them. A step takes ``batch_size`` random windows of ``window`` frames (reference: 48-frame windows of
60-frame clips), drawn as a pure function of (seed, step). Step (:func:`tokenizer_step`): encode → FSQ →
decode → the §6.3 loss (:mod:`handx.train.tokenizer_loss`). Validation: the held-out clips at full length,
reconstructed and decoded to joints, scored by per-hand root-relative MPJPE (the best checkpoint is kept by it),
with the codebook usage and perplexity of their codes. Everything else is the runner's
(:mod:`handx.train.runner`).

Defaults are for a CPU: the ``small`` preset at lr 1e-3 with cosine decay (the reference trains 600 k steps at
2e-4 with batch 512 on a GPU).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from handx.errors import HandxInputError
from handx.models.tokenizer import MotionTokenizer, TokenizerConfig
from handx.representations import local288
from handx.representations.stats import FeatureStats
from handx.runs import latest_checkpoint, read_config, write_config
from handx.train.data import TextMotionData, store_list
from handx.train.runner import Job, RunnerSettings, StepContext, TrainResult, fit, setup_distributed
from handx.train.tokenizer_loss import TokenizerLossTerms, codebook_usage, mpjpe, tokenizer_loss

log = logging.getLogger(__name__)
REPRESENTATION = local288.NAME


@dataclasses.dataclass(frozen=True)
class TokenizerTrainConfig:
    """Settings of a tokenizer run.

    ``data`` is one store or several (``"a,b"`` or a tuple), pooled; clips of split ``split`` of each (every clip
    of a store without splits). ``window`` frames per training window (a multiple of the tokenizer's frames per
    token, at most the clips' length). Held-out check every ``eval_every`` steps on the first ``val_clips`` clips
    of split ``val_split`` of ``val_data`` (default: the first store). ``balance_stores`` draws each window's store
    uniformly before its clip, so a small store (the real captures beside a large synthetic corpus) is seen as
    often as a large one.
    """

    data: str | tuple[str, ...]
    out: str
    preset: str = "small"
    steps: int = 3000
    batch_size: int = 128
    window: int = 48
    lr: float = 1e-3
    min_lr: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    save_every: int = 500
    keep: int = 3
    log_every: int = 10
    eval_every: int = 500
    split: str | None = "train"
    val_data: str | None = None
    val_split: str | None = "test"
    val_clips: int = 256
    balance_stores: bool = False
    stop_at: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        TokenizerConfig.preset(self.preset)  # a clear error for an unknown preset, before any work
        for name in ("window", "val_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"TokenizerTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        self.runner_settings()  # the shared settings' checks

    @property
    def stores(self) -> tuple[str, ...]:
        return store_list(self.data)

    def runner_settings(self) -> RunnerSettings:
        return RunnerSettings(steps=self.steps, lr=self.lr, batch_size=self.batch_size, min_lr=self.min_lr,
                              warmup=self.warmup, weight_decay=self.weight_decay, betas=(0.9, 0.99),
                              grad_clip=self.grad_clip, ema_decay=None, seed=self.seed, save_every=self.save_every,
                              keep=self.keep, log_every=self.log_every, eval_every=self.eval_every,
                              stop_at=self.stop_at)


def clip_data(stores: tuple[str, ...], split: str | None) -> TextMotionData:
    """The clips of ``stores`` with their ``local288`` features prepared (texts are not needed)."""
    data = TextMotionData(stores, split=split, representation=REPRESENTATION)
    data.prepare(None, progress=False)
    return data


def window_clips(keys: np.ndarray, rng: np.random.Generator, batch_size: int, balance_stores: bool) -> np.ndarray:
    """Rows of ``keys`` ``(C, 2)`` (store, clip; sorted, as :attr:`TextMotionData.clip_keys`) for the
    ``batch_size`` windows of a global batch: uniformly over clips, or over stores first (``balance_stores``)."""
    if not balance_stores:
        return rng.integers(0, len(keys), batch_size)
    stores, first, sizes = np.unique(keys[:, 0], return_index=True, return_counts=True)  # keys sorted by store
    pick = rng.integers(0, len(stores), batch_size)  # (B,) a store per window
    return first[pick] + (rng.random(batch_size) * sizes[pick]).astype(np.int64)  # (B,) a clip of that store


def step_windows(data: TextMotionData, stats: FeatureStats, *, batch_size: int, window: int, seed: int,
                 start: int, end: int, rank: int = 0, world: int = 1, balance_stores: bool = False
                 ) -> Iterator[np.ndarray]:
    """The normalised windows ``(b, window, 288)`` float32 of steps ``start … end − 1`` (this rank's share of
    each global batch): clips uniformly with replacement (or a store uniformly, then one of its clips, with
    ``balance_stores``), offsets uniform, from a generator seeded with (seed, step)."""
    keys = data.clip_keys  # (C, 2)
    for step in range(start, end):
        rng = np.random.default_rng([seed, step, 0x70C])
        rows = window_clips(keys, rng, batch_size, balance_stores)[rank::world]
        raw = data.clip_features(keys[rows])  # (b, T, 288)
        offsets = rng.integers(0, raw.shape[1] - window + 1, batch_size)[rank::world]
        index = offsets[:, None] + np.arange(window)[None, :]  # (b, window)
        yield stats.normalize(np.take_along_axis(raw, index[..., None], axis=1)).astype(np.float32)


def tokenizer_step(stats: FeatureStats, device: torch.device
                   ) -> Callable[[torch.nn.Module, np.ndarray, StepContext], TokenizerLossTerms]:
    """The step function of a tokenizer run: windows → reconstruction → §6.3 loss."""
    mean, std = (torch.tensor(np.asarray(a), dtype=torch.float32, device=device) for a in (stats.mean, stats.std))

    def step(net: torch.nn.Module, windows: np.ndarray, ctx: StepContext) -> TokenizerLossTerms:
        x = torch.from_numpy(windows).to(ctx.device)  # (b, W, 288)
        with ctx.autocast():
            out = net(x)
        return tokenizer_loss(x, out.recon.float(), mean, std)

    return step


def reconstruct(model: MotionTokenizer, stats: FeatureStats, features: np.ndarray, batch_size: int = 256
                ) -> tuple[np.ndarray, np.ndarray]:
    """Joints ``(N, T, 2, 21, 3)`` of the reconstructions of raw features ``(N, T, 288)`` and their codes
    ``(N, T / frames_per_token)`` (eval mode, no gradients)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    recon, codes = [], []
    with torch.no_grad():
        for lo in range(0, len(features), batch_size):
            x = torch.from_numpy(stats.normalize(features[lo:lo + batch_size]).astype(np.float32)).to(device)
            out = model(x)
            recon.append(out.recon.float().cpu().numpy())
            codes.append(out.indices.cpu().numpy())
    model.train(was_training)
    joints = local288.decode(stats.denormalize(np.concatenate(recon).astype(np.float64)))
    return np.asarray(joints), np.concatenate(codes)


def _validation(cfg: TokenizerTrainConfig, stats: FeatureStats, codebook: int
                ) -> Callable[[torch.nn.Module], dict[str, float]] | None:
    """The held-out check (module docstring), or None without held-out clips."""
    if cfg.val_split is None:
        return None
    store = cfg.val_data or cfg.stores[0]
    try:
        held = TextMotionData(store, split=cfg.val_split, representation=REPRESENTATION)
    except HandxInputError:
        return None
    if cfg.val_split not in held.store.splits():
        log.info("%s: no split %r, so no held-out validation", store, cfg.val_split)
        return None
    held.prepare(None, progress=False)
    keys = held.clip_keys[:cfg.val_clips]
    features = held.clip_features(keys)  # (n, T, 288)
    truth = np.asarray(local288.decode(features.astype(np.float64)))  # (n, T, 2, 21, 3), the features' own joints

    def check(model: torch.nn.Module) -> dict[str, float]:
        joints, codes = reconstruct(model, stats, features)
        usage, perplexity = codebook_usage(codes, codebook)
        return {"val_mpjpe": mpjpe(truth, joints), "val_usage": usage, "val_perplexity": perplexity,
                "val_clips": len(keys)}

    return check


def train_tokenizer(cfg: TokenizerTrainConfig, *, progress: bool = True,
                    model_config: TokenizerConfig | None = None) -> TrainResult:
    """Train (or resume) a tokenizer run in ``cfg.out``; returns where it stopped. ``model_config`` replaces
    the preset named in ``cfg`` for a new run."""
    dist = setup_distributed(cfg.device)
    dist.check_batch(cfg.batch_size)
    run = Path(cfg.out)
    data = clip_data(cfg.stores, cfg.split)
    if latest_checkpoint(run) is not None:
        saved = read_config(run)
        if saved.get("kind") != "tokenizer":
            raise HandxInputError(run, f"holds a {saved.get('kind')!r} run, not a tokenizer run")
        model_cfg = TokenizerConfig.from_json(saved["model"])
        stats = FeatureStats.from_json(saved["stats"])
    else:
        model_cfg = model_config or TokenizerConfig.preset(cfg.preset)
        stats = data.fit_stats()
        if dist.main:
            run.mkdir(parents=True, exist_ok=True)
            write_config(run, {"kind": "tokenizer", "model": model_cfg.to_json(), "representation": REPRESENTATION,
                               "stats": stats.to_json(),
                               "train": {**dataclasses.asdict(cfg), "data": list(cfg.stores)}})
    frames = data.clip_features(data.clip_keys[:1]).shape[1]
    if cfg.window % model_cfg.frames_per_token or not model_cfg.frames_per_token <= cfg.window <= frames:
        raise ValueError(f"window {cfg.window} must be a multiple of {model_cfg.frames_per_token} frames per token "
                         f"and at most the clips' {frames} frames")
    torch.manual_seed(cfg.seed)
    model = MotionTokenizer(model_cfg).to(dist.device)

    def batches(start: int, end: int) -> Iterator[np.ndarray]:
        return step_windows(data, stats, batch_size=cfg.batch_size, window=cfg.window, seed=cfg.seed,
                            start=start, end=end, rank=dist.rank, world=dist.world,
                            balance_stores=cfg.balance_stores)

    job = Job("train tokenizer", model, batches, tokenizer_step(stats, dist.device),
              validate=_validation(cfg, stats, model_cfg.codebook_size) if dist.main else None,
              best=(("val_mpjpe", -1.0),))
    return fit(job, cfg.runner_settings(), run, dist, progress=progress)

