"""Evaluation reports as JSON (every replication kept) and Markdown tables (mean ± 95 % interval)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from handx.eval.protocol import METRICS, EvalReport, Estimate
from handx.io.atomic import atomic_open

TABLES: dict[str, tuple[str, ...]] = {
    "Text–motion": ("r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "matching_score",
                    "diversity", "multimodality", "mpjpe_mm"),
    "Contacts (clip-level labels)": ("contact_precision", "contact_recall", "contact_f1", "intra_precision",
                                     "intra_recall", "intra_f1", "inter_precision", "inter_recall", "inter_f1"),
    "Physical plausibility": ("penetration_mm", "penetration_max_mm", "penetration_frames", "jerk",
                              "bone_drift_pct", "sliding_mm_s"),
}


def _digits(key: str) -> int:
    return 1 if key in ("mpjpe_mm", "jerk", "sliding_mm_s") else 3


def format_estimate(key: str, estimate: Estimate) -> str:
    if math.isnan(estimate.mean):
        return "–"
    d = _digits(key)
    return f"{estimate.mean:.{d}f} ± {estimate.ci95:.{d}f}"


def to_markdown(report: EvalReport) -> str:
    s = report.settings
    protocol = s["protocol"]
    lines = [
        "# Evaluation",
        "",
        f"Data: `{s['data'].get('store')}` split `{s['data'].get('split')}`, {s['items']} items, text variant "
        f"{s['data'].get('variant')}. Evaluator: `{s['evaluator'].get('run')}` (step {s['evaluator'].get('step')}, "
        f"centring {s['evaluator'].get('centring')}, text encoder {s['evaluator'].get('text_encoder')}).",
        f"{protocol['replications']} replications, seed {protocol['seed']}, R-precision pools of {protocol['pool']}, "
        f"{protocol['diversity_pairs']} diversity pairs; mean ± 1.96·s/√n. Generation groups: "
        + (", ".join(f"{k} {v}" for k, v in s["groups"].items()) or "none") + ".",
        "",
    ]
    for title, keys in TABLES.items():
        header = ["", *(METRICS[k][0] + (f" ({METRICS[k][1]})" if METRICS[k][1] else "") for k in keys)]
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, row in report.rows.items():
            lines.append("| " + " | ".join([name, *(format_estimate(k, row[k]) for k in keys)]) + " |")
        lines.append("")
    lines.append("Definitions: docs/metrics.md. Protocol: docs/evaluation.md.")
    return "\n".join(lines) + "\n"


def write_report(report: EvalReport, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into the folder ``out`` (atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "results.json", out / "results.md"
    with atomic_open(paths[0], "w", encoding="utf-8") as handle:
        handle.write(json.dumps(report.to_json(), indent=1, sort_keys=False) + "\n")
    with atomic_open(paths[1], "w", encoding="utf-8") as handle:
        handle.write(to_markdown(report))
    return paths
