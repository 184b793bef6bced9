"""``handx models``: list the built-in models (trained by handx's own recipe and shipped in the package)."""

from __future__ import annotations

import argparse
import json


def register(groups: argparse._SubParsersAction) -> None:
    p = groups.add_parser("models", help="list the built-in models",
                          description="List the models shipped inside handx (trained by recipes/builtin.sh): "
                                      "name, kind (generator or evaluator), training data, licence, size and "
                                      "measured scores. Give a name wherever a run directory is expected "
                                      "(--ckpt, --evaluator); handx generate and handx eval use the defaults "
                                      "when none is given.")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=_models)


def _models(args: argparse.Namespace) -> int:
    from handx.assets import builtin_models

    models = [m.summary() for m in builtin_models()]
    if args.json:
        print(json.dumps(models, indent=2))
        return 0
    if not models:
        print("no built-in models are installed")
        return 0
    for m in models:
        scores = _scores(m["scores"])
        print(f"{m['name']}{' (default)' if m['default'] else ''}  [{m['kind']}]  "
              f"{m['parameters'] / 1e6:.2f} M parameters, {m['size_bytes'] / 1e6:.1f} MB")
        print(f"    {m['description']}")
        print(f"    trained on: {m['training_data']}")
        print(f"    licence: {m['licence']}")
        print(f"    scores: {scores}")
    return 0


def _scores(scores: dict) -> str:
    """A one-line summary of recorded scores: R@3, FID, contact F1 and jerk of the model and of real motion."""
    if not scores:
        return "not scored"
    keys = (("r_precision_top3", "R@3"), ("fid", "FID"), ("contact_f1", "contact F1"), ("jerk", "jerk"))
    parts = []
    for row in ("generated", "real"):
        if row in scores:
            values = ", ".join(f"{name} {scores[row][k][0]:.3g}" for k, name in keys if k in scores[row])
            parts.append(f"{'this model' if row == 'generated' else 'real motion'}: {values}")
    return "; ".join(parts) + (f" ({scores['benchmark']})" if "benchmark" in scores else "")
