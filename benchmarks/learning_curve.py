"""Learning curve of a diffusion run: the benchmark's metrics of every kept checkpoint against samples seen.

Each checkpoint's EMA weights generate one clip per held-out test item (first text variant; DDIM, guidance 2.5)
and the evaluator scores them with ``handx eval``'s protocol (one group, ``--replications`` rounds): R-precision
top-3, FID, diversity, contact F1, jerk and bone drift. Writes a JSON file; docs/training.md tabulates it.

    python benchmarks/learning_curve.py --run runs/builtin/generator --evaluator handx-eval-synth \\
        --data runs/builtin/synth --out docs/learning_curve.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from handx.assets import resolve_run  # noqa: E402
from handx.eval.protocol import EvalSettings, evaluate  # noqa: E402
from handx.eval.submission import load_eval_set  # noqa: E402
from handx.evaluator import Evaluator  # noqa: E402
from handx.motion import Triplet  # noqa: E402
from handx.sampling.generate import Generator  # noqa: E402

KEYS = ("r_precision_top3", "fid", "diversity", "contact_f1", "jerk", "bone_drift_pct")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--evaluator", required=True, help="evaluator run or built-in name")
    parser.add_argument("--data", type=Path, required=True, help="store with the held-out test split")
    parser.add_argument("--limit", type=int, default=256, help="test items scored per checkpoint (default 256)")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps (default 25)")
    parser.add_argument("--replications", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    evaluator = Evaluator.load(resolve_run(args.evaluator, kind="evaluator"))
    eval_set = load_eval_set(str(args.data), split="test", variant=0, limit=args.limit)
    config = json.loads((args.run / "config.json").read_text(encoding="utf-8"))
    batch = int(config["train"]["batch_size"])
    texts = [Triplet(*t) for t in zip(*eval_set.texts)]
    done = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    points = list(done.get("points", []))  # a rerun scores only the checkpoints not scored yet
    scored = {p["step"] for p in points}
    report = None
    for ckpt in sorted((args.run / "checkpoints").glob("step-*")):
        if int(ckpt.name.split("-")[1]) in scored:
            continue
        generator = Generator.load(args.run, checkpoint=ckpt)
        motion = generator.generate_batch(texts, steps=args.steps, seed=0)[:, None]  # (N, 1, T, 2, 21, 3)
        report = evaluate(evaluator, eval_set, {"gen": motion},
                          settings=EvalSettings(replications=args.replications, seed=0), progress=False)
        step = int(ckpt.name.split("-")[1])
        row = report.rows["gen"]
        points.append({"step": step, "samples": step * batch,
                       **{k: [round(row[k].mean, 4), round(row[k].ci95, 4)] for k in KEYS}})
        print(json.dumps(points[-1]), flush=True)
        real = report.rows["Real"]
        done = {"run": str(args.run), "items": int(eval_set.motion.shape[0]), "ddim_steps": args.steps,
                "real": {k: [round(real[k].mean, 4), round(real[k].ci95, 4)] for k in KEYS},
                "points": sorted(points, key=lambda p: p["step"])}
        args.out.write_text(json.dumps(done, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
