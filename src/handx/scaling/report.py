"""Scaling fits, plots and the Markdown report of a sweep (``handx scale report DIR``).

For each family and metric (R@3, FID, contact F1) a least-squares line ``metric = a·log10(FLOPs) + b`` over the
finished cells, with Pearson's r and a bootstrap 95 % interval of the slope (cells resampled with replacement,
2,000 rounds, seeded), fitted on all cells and along each axis: the model axis (the largest data fraction,
presets varying) and the data axis (the largest model, fractions varying). HandX's own fit is
R@3 = 0.4391·log10(FLOPs) − 3.87 with r = 0.96 (reference Appendix B). A trend is called *not shown* when the
slope's interval contains 0; no trend is claimed from fewer than 3 distinct compute levels (a sweep with a fixed
number of steps gives every data fraction of a model the same FLOPs, so its data axis has one level). Plots
(PNG, matplotlib): each metric against training FLOPs, parameters and data fraction, one series per family (and per
data fraction or preset).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from handx.io.atomic import atomic_open
from handx.scaling.sweep import load_rows, table_markdown

#: metric → (display name, higher is better)
FIT_METRICS = {"r3": ("R@3", True), "fid": ("FID", False), "contact_f1": ("contact F1", True)}
BOOTSTRAP = 2000


@dataclasses.dataclass(frozen=True)
class Fit:
    """``metric = slope·log10(FLOPs) + intercept`` over ``n`` cells, Pearson ``r``, the slope's 95 % interval."""

    family: str
    metric: str
    axis: str  # all | model | data
    n: int
    levels: int  # distinct training-FLOP values among the cells
    slope: float
    intercept: float
    r: float
    slope_low: float
    slope_high: float

    @property
    def shown(self) -> bool:
        """Whether the cells show a trend: 3 or more compute levels and a slope interval that excludes 0."""
        return self.levels >= 3 and not self.slope_low <= 0 <= self.slope_high


def fit_line(x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> tuple[float, float, float, float, float]:
    """(slope, intercept, r, slope_low, slope_high) of least squares ``y ≈ slope·x + intercept`` with Pearson r
    and a bootstrap 95 % interval of the slope; NaN where undefined (fewer than 2 distinct x)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    nan = float("nan")
    if len(x) < 2 or np.ptp(x) == 0:
        return nan, nan, nan, nan, nan
    slope, intercept = np.polyfit(x, y, 1)
    r = float(np.corrcoef(x, y)[0, 1]) if np.ptp(y) > 0 else nan
    rng = np.random.default_rng(seed)
    slopes = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(x), len(x))
        if np.ptp(x[pick]) > 0:
            slopes.append(np.polyfit(x[pick], y[pick], 1)[0])
    low, high = (np.percentile(slopes, [2.5, 97.5]) if slopes else (nan, nan))
    return float(slope), float(intercept), r, float(low), float(high)


def fits(rows: list[dict[str, Any]]) -> list[Fit]:
    """Every fit of the report (module docstring)."""
    out = []
    for family in sorted({r["family"] for r in rows}):
        mine = [r for r in rows if r["family"] == family]
        top_fraction = max(r["fraction"] for r in mine)
        top_params = max(r["parameters"] for r in mine)
        axes = {"all": mine, "model": [r for r in mine if r["fraction"] == top_fraction],
                "data": [r for r in mine if r["parameters"] == top_params]}
        for metric in FIT_METRICS:
            for axis, cells in axes.items():
                x = np.log10([r["train_flops"] for r in cells])
                y = [r.get(metric, float("nan")) for r in cells]
                out.append(Fit(family, metric, axis, len(cells), len(set(np.round(x, 9))), *fit_line(x, y)))
    return out


def _fmt(value: float, spec: str = ".3f") -> str:
    return "–" if value is None or math.isnan(value) else format(value, spec)


def plot(rows: list[dict[str, Any]], folder: Path) -> list[str]:
    """PNG plots of each fitted metric against FLOPs, parameters and data fraction; the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for metric, (title, _) in FIT_METRICS.items():
        for x_key, x_title, log in (("train_flops", "training FLOPs", True), ("parameters", "parameters", True),
                                    ("fraction", "data fraction", True)):
            fig, ax = plt.subplots(figsize=(5, 3.6), dpi=110)
            for family in sorted({r["family"] for r in rows}):
                mine = [r for r in rows if r["family"] == family]
                group_key = "fraction" if x_key != "fraction" else "preset"
                for group in sorted({r[group_key] for r in mine}, key=str):
                    cells = sorted((r for r in mine if r[group_key] == group), key=lambda r: r[x_key])
                    label = f"{family}, {'data ' + format(group, 'g') if group_key == 'fraction' else group}"
                    ax.plot([r[x_key] for r in cells], [r.get(metric) for r in cells], "o-", label=label)
            if log:
                ax.set_xscale("log")
            ax.set_xlabel(x_title)
            ax.set_ylabel(title)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
            fig.tight_layout()
            name = f"{metric}_vs_{x_key}.png"
            fig.savefig(folder / name)
            plt.close(fig)
            names.append(name)
    return names


def write_report(sweep: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """``report.md`` with the table, the fits and the plots of the sweep in ``sweep`` (into ``out``, default the
    sweep directory); returns its path."""
    rows = load_rows(sweep)
    folder = Path(out) if out is not None else Path(sweep)
    folder.mkdir(parents=True, exist_ok=True)
    if not rows:
        raise FileNotFoundError(f"{sweep}: no finished cell (run handx scale run first)")
    images = plot(rows, folder)
    lines = ["# Scaling sweep", "", f"{len(rows)} cells: "
             + ", ".join(f"{f} ({sum(r['family'] == f for r in rows)})" for f in sorted({r['family'] for r in rows}))
             + f"; device: {', '.join(sorted({r['device'] for r in rows}))}.", "", "## Cells", "",
             table_markdown(rows), "## Fits against log10(training FLOPs)", "",
             "metric = slope·log10(FLOPs) + intercept; r: Pearson; slope interval: bootstrap 95 %. "
             "HandX's fit for diffusion: R@3 = 0.4391·log10(FLOPs) − 3.87, r = 0.96.", "",
             "| family | metric | axis | cells | FLOP levels | slope | 95 % interval | intercept | r | trend |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for f in fits(rows):
        name, higher = FIT_METRICS[f.metric]
        if f.levels < 3:
            verdict = f"no trend claimed ({f.levels} compute level{'s' if f.levels != 1 else ''})"
        elif not f.shown:
            verdict = "not shown (interval contains 0)"
        else:
            verdict = "better with compute" if (f.slope > 0) == higher else "worse with compute"
        lines.append(f"| {f.family} | {name} | {f.axis} | {f.n} | {f.levels} | {_fmt(f.slope, '.4f')} | "
                     f"[{_fmt(f.slope_low, '.4f')}, {_fmt(f.slope_high, '.4f')}] | {_fmt(f.intercept)} | "
                     f"{_fmt(f.r, '.2f')} | {verdict} |")
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images] + [""]
    path = folder / "report.md"
    with atomic_open(path, "w") as handle:
        handle.write("\n".join(lines))
    return path
