"""The contract every generator family meets, and the loader that picks a family from a run (issue: two
generator families on one pipeline; DESIGN.md, "pipelines/").

A pipeline turns description triplets into two-hand motion:

    pipeline.generate(triplets, num=2, seed=0, constraints=None, settings=None) -> (len(triplets)·num, T, 2, 21, 3)

rows ordered triplet-major (the ``num`` samples of triplet 0 first), float32 metres. ``settings`` is the family's
own sampler-settings dataclass (``pipeline.Settings``), every field with a default; ``constraints`` is a
:class:`handx.sampling.modes`-style condition, refused with a clear message when the family does not support its
mode (``pipeline.modes``).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from handx.errors import HandxInputError
from handx.motion import Triplet
from handx.runs import Run, open_run

#: run kind → the module of its family (each defines ``PIPELINE``, a class with ``load(run, device, checkpoint)``)
FAMILIES: dict[str, str] = {"diffusion": "handx.pipelines.diffusion"}


class TextToMotion(Protocol):
    """A loaded generator of one family."""

    family: ClassVar[str]
    Settings: ClassVar[type]
    modes: ClassVar[frozenset[str]]
    source: str  # what the pipeline was loaded from (a run directory), for reports and errors

    def generate(self, triplets: Sequence[Triplet], *, num: int = 1, seed: int = 0, constraints: Any = None,
                 settings: Any = None, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """``(len(triplets)·num, T, 2, 21, 3)`` float32 metres, triplet-major; the same arguments give the same
        motion."""
        ...


def load_pipeline(run: str | os.PathLike | Run, *, device: str = "cpu",
                  checkpoint: str | os.PathLike | None = None) -> TextToMotion:
    """The pipeline of ``run`` (a run directory, a built-in's name, or an opened :class:`Run`)."""
    opened = run if isinstance(run, Run) else open_run(run)
    module_name = FAMILIES.get(opened.config.kind)
    if module_name is None:
        raise HandxInputError(opened.path, f"a {opened.config.kind} run does not generate motion; give a run of "
                                           f"one of the generator families: {', '.join(FAMILIES)}")
    family = importlib.import_module(module_name).PIPELINE
    return family.load(opened, device=device, checkpoint=checkpoint)


def make_settings(pipeline: TextToMotion, **options: Any) -> Any:
    """The family's settings from generic options: ``None`` values and options the family does not have are
    left out (a family without a guidance scale ignores ``guidance``), the rest is validated by its dataclass."""
    fields = {f.name for f in dataclasses.fields(pipeline.Settings)}
    return pipeline.Settings(**{k: v for k, v in options.items() if v is not None and k in fields})


def check_constraints(pipeline: TextToMotion, constraints: Any) -> None:
    """Refuse a conditioning mode the family cannot honour, naming what it supports."""
    if constraints is not None and constraints.mode not in pipeline.modes:
        supported = ", ".join(sorted(pipeline.modes)) or "none (text only)"
        raise HandxInputError(pipeline.source, f"the {pipeline.family} family cannot generate with a "
                                               f"{constraints.mode!r} condition; it supports: {supported}")
