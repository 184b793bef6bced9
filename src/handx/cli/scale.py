"""``handx scale run`` and ``handx scale report``: scaling sweeps of a generator family, and their report."""

from __future__ import annotations

import argparse
from pathlib import Path

from handx.cli import options


def _floats(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in value.split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, e.g. 0.05,0.2,1, got {value!r}")


def _names(value: str) -> tuple[str, ...]:
    return tuple(part for part in value.split(",") if part)


def register(groups: argparse._SubParsersAction) -> None:
    scale = groups.add_parser("scale", help="scaling sweeps: model size × data, fits and plots",
                              description="Train a grid of model sizes × data fractions of one generator family, "
                                          "score every cell with the same evaluator on the same test split, and "
                                          "fit each metric against log10(training FLOPs) (docs/scaling/).")
    kinds = scale.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = kinds.add_parser(
        "run", help="train and evaluate the grid (resumable)",
        description="Train every cell (preset × data fraction) for --steps optimiser steps or as many as "
                    "--flops-budget training FLOPs buy, evaluate it (handx eval's protocol: --eval-items clips of "
                    "--eval-split, --replications rounds) and write OUT/table.md and OUT/table.json. Rerunning the "
                    "same command skips finished cells and resumes an interrupted one. --cell K runs only cell K "
                    "(0-based, presets outer, fractions inner), e.g. one cluster job per cell; under torchrun a "
                    "cell's training is data-parallel.")
    r.add_argument("--data", type=Path, required=True, action="append", metavar="DIR",
                   help="annotated store; repeat to pool several (the first one's test split scores by default)")
    r.add_argument("--family", required=True, choices=["diffusion", "ar"], help="the generator family to sweep")
    r.add_argument("--presets", required=True, type=_names,
                   help="model presets, comma-separated, e.g. cpu-2x64,cpu-2x128,cpu-4x128 (diffusion) or "
                        "tiny,2x128,small (ar)")
    r.add_argument("--fractions", default=(1.0,), type=_floats,
                   help="data fractions, comma-separated (nested subsets of the training clips; default 1)")
    budget = r.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, help="optimiser steps per cell")
    budget.add_argument("--flops-budget", type=float, metavar="F",
                        help="training FLOPs per cell (steps = F / (batch × FLOPs per sample))")
    r.add_argument("--out", type=Path, required=True, metavar="DIR", help="sweep directory")
    r.add_argument("--tokenizer", default=None, metavar="RUN", help="tokenizer run shared by the AR cells")
    r.add_argument("--batch-size", type=int, default=64, help="global batch per step (default 64)")
    r.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    r.add_argument("--warmup", type=int, default=50, help="warm-up steps (default 50)")
    r.add_argument("--evaluator", default="handx-eval-synth", metavar="RUN",
                   help="evaluator run or built-in name (default handx-eval-synth)")
    r.add_argument("--eval-data", type=Path, default=None, metavar="DIR",
                   help="store whose --eval-split scores every cell (default: the first --data)")
    r.add_argument("--eval-split", default="test", help="split to score on (default test)")
    r.add_argument("--eval-items", type=int, default=256, help="test clips per cell (default 256)")
    r.add_argument("--groups", type=int, default=1, help="generations per test clip (default 1)")
    r.add_argument("--replications", type=int, default=10, help="evaluation rounds (default 10)")
    r.add_argument("--cell", type=int, default=None, metavar="K", help="run only cell K of the grid")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", type=options.device_or_auto,
                   help="auto, cpu or cuda (default auto: cuda when torch sees a GPU)")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    r.set_defaults(func=_run)

    p = kinds.add_parser("report", help="fits, plots and a Markdown report of a sweep",
                         description="Fit R@3, FID and contact F1 against log10(training FLOPs) per family (all "
                                     "cells, the model axis and the data axis; slope, bootstrap interval, r), plot "
                                     "each against FLOPs, parameters and data, and write DIR/report.md.")
    p.add_argument("sweep", type=Path, metavar="DIR", help="sweep directory (handx scale run --out)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="where the report goes (default DIR)")
    p.set_defaults(func=_report)


def _run(args: argparse.Namespace) -> int:
    from handx.errors import HandxInputError
    from handx.scaling.sweep import SweepConfig, run_sweep

    try:
        cfg = SweepConfig(data=tuple(str(d) for d in args.data), out=str(args.out), family=args.family,
                          presets=args.presets, fractions=args.fractions, steps=args.steps,
                          flops_budget=args.flops_budget, batch_size=args.batch_size, lr=args.lr,
                          warmup=args.warmup, tokenizer=args.tokenizer, evaluator=args.evaluator,
                          eval_data=None if args.eval_data is None else str(args.eval_data),
                          eval_split=args.eval_split, eval_items=args.eval_items, groups=args.groups,
                          replications=args.replications, seed=args.seed, device=args.device)
    except ValueError as exc:
        raise HandxInputError(None, str(exc)) from exc
    rows = run_sweep(cfg, cell=args.cell, progress=not args.no_progress)
    print(f"{len(rows)} finished cell(s) in {args.out}/table.md")
    return 0


def _report(args: argparse.Namespace) -> int:
    from handx.errors import HandxInputError
    from handx.scaling.report import write_report

    try:
        path = write_report(args.sweep, args.out)
    except FileNotFoundError as exc:
        raise HandxInputError(args.sweep, str(exc)) from None
    print(f"wrote {path}")
    return 0
