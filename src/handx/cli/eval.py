"""``handx eval``: score generators (runs or files) and the ground truth against a test split."""

from __future__ import annotations

import argparse
from pathlib import Path

from handx.cli import options


def register(groups: argparse._SubParsersAction) -> None:
    p = groups.add_parser(
        "eval", help="benchmark generators against a test split",
        description="Score the ground truth ('Real') and each generator with a trained evaluator (handx train "
                    "evaluator): R-precision top-1/2/3 in pools of 32, FID, matching score, diversity, "
                    "multimodality, MPJPE, intra/inter-hand contact precision/recall/F1, and physical "
                    "plausibility (interpenetration, jerk, bone-length drift, contact sliding). Generators are "
                    "runs of any generator family (--ckpt, repeatable: diffusion and AR side by side; sampled here; "
                    "generations are saved under OUT/generated and an "
                    "interrupted job resumes) and/or files (--generated: handx generations npz with ids + joints, "
                    "handx generate outputs, or the HandX release layout; see docs/evaluation.md). Each metric is "
                    "the mean over --replications rounds ± the half-width of its 95 %% interval; the same --seed "
                    "reproduces the table exactly. Writes OUT/results.json and OUT/results.md.")
    p.add_argument("--evaluator", default=None, metavar="RUN",
                   help="evaluator run (handx train evaluator) or built-in name (handx models); default: the "
                        "built-in synthetic-benchmark evaluator")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="annotated store holding the test split")
    p.add_argument("--split", default="test", help="split to evaluate on (default test; 'none': every clip)")
    p.add_argument("--ckpt", action="append", default=[], metavar="RUN",
                   help="diffusion run to sample from (repeat for several)")
    p.add_argument("--generated", type=Path, action="append", default=[], metavar="PATH",
                   help="file or folder of generations to score (repeat for several generators)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="where results and generations go")
    p.add_argument("--replications", type=int, default=20, help="evaluation rounds (default 20)")
    p.add_argument("--groups", type=int, default=4,
                   help="generations per item sampled from each --ckpt run (default 4, as the paper)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling and of the rounds (default 0)")
    p.add_argument("--variant", type=int, default=0, help="text variant each item is scored with (default 0)")
    p.add_argument("--limit", type=int, help="evaluate only the first N items of the split")
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default=None,
                   help="sampler for diffusion --ckpt runs (default ddim)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps for diffusion --ckpt runs (default 50)")
    p.add_argument("--guidance", type=float, default=None,
                   help="guidance scale for --ckpt runs (default: the family's, 2.5 for diffusion, 1.5 for AR)")
    p.add_argument("--batch-size", type=int, default=64, help="items sampled at once (default 64)")
    p.add_argument("--device", default="cpu", type=options.device, help="cpu or cuda (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from handx.errors import HandxInputError
    from handx.eval.report import to_markdown
    from handx.eval.run import BenchmarkConfig, run_benchmark

    evaluator = args.evaluator
    if evaluator is None:
        from handx.assets import DEFAULT_EVALUATOR, default_run

        evaluator = str(default_run("evaluator"))
        print(f"no --evaluator given: using the built-in evaluator {DEFAULT_EVALUATOR}")
    try:
        cfg = BenchmarkConfig(evaluator=str(evaluator), data=str(args.data), out=str(args.out),
                              runs=tuple(map(str, args.ckpt)), generated=tuple(map(str, args.generated)),
                              split=None if args.split == "none" else args.split, variant=args.variant,
                              limit=args.limit, groups=args.groups, replications=args.replications, seed=args.seed,
                              sampler=args.sampler, steps=args.steps, guidance=args.guidance,
                              batch_size=args.batch_size, device=args.device)
    except ValueError as exc:
        raise HandxInputError(None, str(exc)) from exc
    report = run_benchmark(cfg, progress=not args.no_progress)
    print(to_markdown(report), end="")
    print(f"results written to {args.out}/results.json and results.md")
    return 0
