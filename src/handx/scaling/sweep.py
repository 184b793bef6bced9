"""Scaling sweeps: train a grid of model sizes × data fractions, score every cell the same way, tabulate.

``handx scale run`` (:func:`run_sweep`) trains each cell (preset, data fraction) of one family with the shared
training code (:mod:`handx.train.diffusion`, :mod:`handx.train.ar`) for a fixed number of steps or a fixed
training-FLOP budget, then scores it with the evaluation suite (:func:`handx.eval.run.run_benchmark`) on the same
test split with the same evaluator, and writes one row per cell:

    family, preset, parameters, data fraction, training clips, samples seen, training FLOPs, R@1/2/3, FID,
    contact F1, jerk, bone drift, wall time, device

Layout of a sweep directory::

    cells/<family>-<preset>-f<fraction>/run/        the cell's training run (resumable)
    cells/<family>-<preset>-f<fraction>/eval/       its evaluation (generations resume too)
    cells/<family>-<preset>-f<fraction>/cell.json   the finished row: a cell with it is never run again
    table.json, table.md                            every finished cell of the sweep (all families)

A killed sweep rerun with the same command finishes only what is missing: finished cells are skipped, and an
interrupted cell resumes its run from its newest checkpoint. ``--cell K`` runs only the K-th cell of the grid
(0-based), so a cluster can run cells as separate jobs; under ``torchrun`` a cell's training is data-parallel
and its evaluation runs on rank 0.

Training FLOPs are analytic (:mod:`handx.scaling.flops`): the forward and backward FLOPs of one training sample
(:func:`~handx.scaling.flops.diffusion_training_flops`, :func:`~handx.scaling.flops.ar_training_flops`) × the
samples seen (the AR family's tokenizer, trained once and shared by its cells, is not counted).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from handx.errors import HandxInputError
from handx.io.atomic import write_json

log = logging.getLogger(__name__)

FAMILIES = ("diffusion", "ar")
#: text tokens per branch assumed by the FLOP count (MiniLM tokens of a typical description)
TEXT_TOKENS = 24
FRAMES = 60
#: metrics copied from the evaluation into a cell's row: row key → (report key, display)
ROW_METRICS = {"r1": "r_precision_top1", "r2": "r_precision_top2", "r3": "r_precision_top3", "fid": "fid",
               "contact_f1": "contact_f1", "jerk": "jerk", "bone_drift_pct": "bone_drift_pct"}


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep over ``presets`` × ``fractions`` of one ``family``.

    Each cell trains ``steps`` optimiser steps of ``batch_size``, or, with ``flops_budget``, as many steps as that
    many training FLOPs buy (at least 1). The AR family needs ``tokenizer`` (a tokenizer run shared by its cells).
    Every cell is evaluated by ``evaluator`` on the first ``eval_items`` clips of split ``eval_split`` of
    ``eval_data`` (default: the first store), ``groups`` generations per item, ``replications`` rounds.
    """

    data: tuple[str, ...]
    out: str
    family: str
    presets: tuple[str, ...]
    fractions: tuple[float, ...] = (1.0,)
    steps: int | None = None
    flops_budget: float | None = None
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 50
    tokenizer: str | None = None
    evaluator: str = "handx-eval-synth"
    eval_data: str | None = None
    eval_split: str = "test"
    eval_items: int = 256
    groups: int = 1
    replications: int = 10
    text_encoder: str = "minilm"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if not self.presets or not self.fractions or not self.data:
            raise ValueError("a sweep needs at least one store, one preset and one data fraction")
        if (self.steps is None) == (self.flops_budget is None):
            raise ValueError("give exactly one of steps and flops_budget")
        if self.steps is not None and self.steps < 1 or self.flops_budget is not None and self.flops_budget <= 0:
            raise ValueError(f"steps must be >= 1 and flops_budget > 0, got {self.steps}, {self.flops_budget}")
        bad = [f for f in self.fractions if not 0 < f <= 1]
        if bad:
            raise ValueError(f"data fractions must lie in (0, 1], got {bad}")
        if self.family == "ar" and not self.tokenizer:
            raise ValueError("an AR sweep needs a tokenizer run (handx train tokenizer)")
        for preset in self.presets:
            self.model_config(preset)  # unknown presets fail before any work

    def cells(self) -> list[tuple[str, float]]:
        """The grid in order: every preset with every fraction."""
        return [(p, f) for p in self.presets for f in self.fractions]

    def cell_dir(self, preset: str, fraction: float) -> Path:
        return Path(self.out) / "cells" / f"{self.family}-{preset}-f{fraction:g}"

    def model_config(self, preset: str):
        """The network config a cell of ``preset`` trains (text width of MiniLM; the tokenizer's codebook)."""
        if self.family == "diffusion":
            from handx.models.diffusion import DiffusionConfig

            return dataclasses.replace(DiffusionConfig.preset(preset), text_dim=384)
        from handx.models.ar import ARConfig

        codebook = 4375
        if self.tokenizer:
            from handx.models.tokenizer import TokenizerConfig
            from handx.runs import open_run

            codebook = TokenizerConfig.from_json(open_run(self.tokenizer, kind="tokenizer").config.model).codebook_size
        return ARConfig.preset(preset, codebook=codebook, text_dim=384, max_tokens=FRAMES // 2)

    def sample_flops(self, preset: str) -> float:
        """Training FLOPs of one sample (forward and backward) of a cell of ``preset``."""
        from handx.scaling import flops

        config = self.model_config(preset)
        if self.family == "diffusion":
            return float(flops.diffusion_training_flops(config, batch=1, frames=FRAMES, text_tokens=TEXT_TOKENS))
        return float(flops.ar_training_flops(config, text_tokens=TEXT_TOKENS, codes=config.max_tokens))

    def steps_for(self, preset: str) -> int:
        if self.steps is not None:
            return self.steps
        assert self.flops_budget is not None
        return max(1, int(self.flops_budget // (self.sample_flops(preset) * self.batch_size)))


def _train(cfg: SweepConfig, preset: str, fraction: float, run: Path, steps: int) -> int:
    """Train (or resume) a cell's run; returns its number of training clips."""
    common = dict(data=tuple(cfg.data), out=str(run), preset=preset, steps=steps, batch_size=cfg.batch_size,
                  lr=cfg.lr, warmup=min(cfg.warmup, max(0, steps - 1)), seed=cfg.seed, save_every=max(1, steps // 4),
                  eval_every=steps, text_encoder=cfg.text_encoder, data_fraction=fraction, device=cfg.device)
    if cfg.family == "diffusion":
        from handx.train.diffusion import TrainConfig, train_diffusion

        train_cfg = TrainConfig(**common)
        train_diffusion(train_cfg, progress=False)
    else:
        from handx.train.ar import ARTrainConfig, train_ar

        train_cfg = ARTrainConfig(tokenizer=str(cfg.tokenizer), **common)
        train_ar(train_cfg, progress=False)
    from handx.train.data import TextMotionData

    return len(TextMotionData(cfg.data, split=train_cfg.split, fraction=fraction).clip_keys)


def run_cell(cfg: SweepConfig, preset: str, fraction: float) -> dict[str, Any] | None:
    """Train and evaluate one cell unless it is finished; its row (None on ranks other than 0)."""
    folder = cfg.cell_dir(preset, fraction)
    done = folder / "cell.json"
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    rank = int(os.environ.get("RANK", "0"))
    steps = cfg.steps_for(preset)
    started = time.perf_counter()
    clips = _train(cfg, preset, fraction, folder / "run", steps)
    train_seconds = time.perf_counter() - started
    if rank != 0:
        return None
    from handx.eval.run import BenchmarkConfig, run_benchmark

    started = time.perf_counter()
    report = run_benchmark(BenchmarkConfig(
        evaluator=cfg.evaluator, data=cfg.eval_data or cfg.data[0], out=str(folder / "eval"),
        runs=(str(folder / "run"),), split=cfg.eval_split, limit=cfg.eval_items, groups=cfg.groups,
        replications=cfg.replications, seed=cfg.seed, device="cpu" if cfg.device == "auto" else cfg.device),
        progress=False)
    eval_seconds = time.perf_counter() - started
    estimates = report.rows["run"]
    model_cfg = cfg.model_config(preset)
    row = {
        "family": cfg.family, "preset": preset, "parameters": int(model_cfg.parameter_count()),
        "fraction": fraction, "clips": clips, "steps": steps, "samples": steps * cfg.batch_size,
        "train_flops": cfg.sample_flops(preset) * steps * cfg.batch_size,
        **{key: estimates[name].mean for key, name in ROW_METRICS.items()},
        **{f"{key}_ci95": estimates[name].ci95 for key, name in ROW_METRICS.items()},
        "real_r3": report.rows["Real"]["r_precision_top3"].mean,
        "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
        "device": _device_name(cfg.device),
    }
    write_json(done, row)
    return row


def _device_name(device: str) -> str:
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return f"{torch.cuda.get_device_name(0)} × {int(os.environ.get('WORLD_SIZE', '1'))}"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


def run_sweep(cfg: SweepConfig, *, cell: int | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run every unfinished cell (or only cell number ``cell``) and rewrite the sweep's table."""
    cells = cfg.cells()
    if cell is not None:
        if not 0 <= cell < len(cells):
            raise HandxInputError(cfg.out, f"--cell {cell} is outside the grid of {len(cells)} cells (0-{len(cells) - 1})")
        cells = [cells[cell]]
    from tqdm.auto import tqdm

    for preset, fraction in tqdm(cells, desc=f"scale {cfg.family}", unit="cell", disable=not progress):
        log.info("cell %s × %g", preset, fraction)
        run_cell(cfg, preset, fraction)
    rows = load_rows(cfg.out)
    if int(os.environ.get("RANK", "0")) == 0:
        write_table(rows, cfg.out)
    return rows


def load_rows(out: str | os.PathLike) -> list[dict[str, Any]]:
    """Every finished cell under ``out`` (all families), ordered by family, parameters and fraction."""
    rows = []
    for path in sorted((Path(out) / "cells").glob("*/cell.json")):
        try:
            rows.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as exc:
            raise HandxInputError(path, f"unreadable cell result ({exc})") from None
    return sorted(rows, key=lambda r: (r["family"], r["parameters"], r["fraction"]))


COLUMNS = (("family", "family", "{}"), ("preset", "preset", "{}"), ("parameters", "params", "{:,}"),
           ("fraction", "data", "{:g}"), ("clips", "clips", "{:,}"), ("samples", "samples seen", "{:,}"),
           ("train_flops", "train FLOPs", "{:.3g}"), ("r1", "R@1", "{:.3f}"), ("r2", "R@2", "{:.3f}"),
           ("r3", "R@3", "{:.3f}"), ("fid", "FID", "{:.2f}"), ("contact_f1", "contact F1", "{:.3f}"),
           ("jerk", "jerk", "{:.1f}"), ("bone_drift_pct", "bone drift %", "{:.2f}"),
           ("train_seconds", "train s", "{:.0f}"), ("device", "device", "{}"))


def table_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            value = row.get(key)
            cells.append("–" if value is None or (isinstance(value, float) and math.isnan(value))
                         else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict[str, Any]], out: str | os.PathLike) -> None:
    write_json(Path(out) / "table.json", {"format": "handx-scaling", "version": 1, "rows": rows})
    from handx.io.atomic import atomic_open

    with atomic_open(Path(out) / "table.md", "w") as handle:
        handle.write(table_markdown(rows))
