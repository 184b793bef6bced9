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
        scores = ", ".join(f"{k} {v}" for k, v in m["scores"].items()) or "not scored"
        print(f"{m['name']}{' (default)' if m['default'] else ''}  [{m['kind']}]  "
              f"{m['parameters'] / 1e6:.2f} M parameters, {m['size_bytes'] / 1e6:.1f} MB")
        print(f"    {m['description']}")
        print(f"    trained on: {m['training_data']}")
        print(f"    licence: {m['licence']}")
        print(f"    scores: {scores}")
    return 0
