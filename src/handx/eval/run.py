"""``handx eval`` as one library call: load the evaluator and the test split, gather every generator's motions
(sampled from runs or read from files), score them with the protocol and write the report."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from handx.errors import HandxInputError
from handx.eval.protocol import REAL, EvalReport, EvalSettings, evaluate
from handx.eval.report import write_report
from handx.eval.submission import load_eval_set, load_generated

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """An evaluation job.

    ``runs`` are run directories of any generator family to sample from (``groups`` generations per item; the
    sampler options that are None take each family's defaults, e.g. DDIM, 50 steps and guidance 2.5 for
    diffusion, guidance 1.5 for the AR family); ``generated`` are files or folders of generations (any layout of
    :mod:`handx.eval.submission`), one generator per path. The report and the sampled generations go to ``out``.
    """

    evaluator: str
    data: str
    out: str
    runs: tuple[str, ...] = ()
    generated: tuple[str, ...] = ()
    split: str | None = "test"
    variant: int = 0
    limit: int | None = None
    groups: int = 4
    replications: int = 20
    seed: int = 0
    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    batch_size: int = 64
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.groups < 1 or self.replications < 1 or self.batch_size < 1:
            raise ValueError("BenchmarkConfig.groups, replications and batch_size must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"BenchmarkConfig.limit must be >= 1, got {self.limit}")


def _names(paths: tuple[str, ...], taken: set[str]) -> list[str]:
    names = []
    for p in paths:
        base = Path(p).stem if Path(p).suffix == ".npz" else Path(p).name
        name, k = base or "generated", 2
        while name in taken or name == REAL:
            name, k = f"{base}-{k}", k + 1
        taken.add(name)
        names.append(name)
    return names


def run_benchmark(cfg: BenchmarkConfig, *, progress: bool = True) -> EvalReport:
    """Evaluate the ground truth and every generator of ``cfg``; writes ``results.json``/``results.md``."""
    from handx.eval.generation import generate_for_eval
    from handx.evaluator import Evaluator
    from handx.pipelines import load_pipeline, make_settings

    if not cfg.runs and not cfg.generated:
        log.info("no generator given: reporting the ground truth only")
    from handx.assets import resolve_run

    evaluator = Evaluator.load(resolve_run(cfg.evaluator, kind="evaluator"), device=cfg.device)
    eval_set = load_eval_set(cfg.data, split=cfg.split, variant=cfg.variant, limit=cfg.limit)
    if eval_set.motion.shape[0] < 2:
        raise HandxInputError(cfg.data, "an evaluation needs at least 2 items")
    generated: dict[str, np.ndarray] = {}
    notes: dict[str, dict] = {}
    taken: set[str] = set()
    out = Path(cfg.out)
    for run, name in zip(cfg.runs, _names(cfg.runs, taken)):
        pipeline = load_pipeline(resolve_run(run, kind="generator"), device=cfg.device)
        settings = make_settings(pipeline, sampler=cfg.sampler, steps=cfg.steps, guidance=cfg.guidance)
        generated[name] = generate_for_eval(
            pipeline, eval_set, out / "generated" / f"{name}.npz", groups=cfg.groups, seed=cfg.seed,
            settings=settings, batch_size=cfg.batch_size, progress=progress, describe={"run": str(run)})
        notes[name] = {"run": str(run), "family": pipeline.family, **settings.describe(), "groups": cfg.groups}
    for path, name in zip(cfg.generated, _names(cfg.generated, taken)):
        generated[name], notes[name] = load_generated([path], eval_set)
        if notes[name]["dropped_generations"]:
            log.warning("%s: %d generation(s) beyond %d per item are not used", path,
                        notes[name]["dropped_generations"], notes[name]["groups"])
    settings = EvalSettings(replications=cfg.replications, seed=cfg.seed)
    report = evaluate(evaluator, eval_set, generated, settings=settings, progress=progress,
                      notes={"generators": notes})
    write_report(report, out)
    return report
