"""The contract every generator family meets, and the loader that picks a family from a run (issue: two
generator families on one pipeline; DESIGN.md, "pipelines/").

A pipeline turns description triplets into two-hand motion:

    pipeline.generate(triplets, num=2, seed=0, constraints=None, settings=None) -> (len(triplets)·num, T, 2, 21, 3)

rows ordered triplet-major (the ``num`` samples of triplet 0 first), float32 metres, one window of
``pipeline.frames`` frames each; and one long motion that follows one triplet per segment (reference §5, long
horizon):

    pipeline.generate_take(segments, length=None, overlap=10, num=1, seed=0) -> (num, length, 2, 21, 3)

``settings`` is the family's own sampler-settings dataclass (``pipeline.Settings``), every field with a default
(:func:`make_settings` builds it from generic options); ``constraints`` is a
:class:`handx.sampling.condition.Condition`, refused with a clear message when the family does not support its
mode (``pipeline.modes``); ``pipeline.constrained_joints(constraints)`` says which joints it keeps (to mark them
in a render). Saving what was generated is family-independent too (:mod:`handx.pipelines.io`).
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
from handx.sampling.condition import DEFAULT_OVERLAP, Condition

#: run kind → the module of its family (each defines ``PIPELINE``, a class with ``load(run, device, checkpoint)``)
FAMILIES: dict[str, str] = {"diffusion": "handx.pipelines.diffusion", "ar": "handx.pipelines.ar"}


class TextToMotion(Protocol):
    """A loaded generator of one family."""

    family: ClassVar[str]
    Settings: ClassVar[type]
    modes: ClassVar[frozenset[str]]
    source: str  # what the pipeline was loaded from (a run directory), for reports and errors
    frames: int  # the window: frames of one generate() sample, and of a condition's motion

    def generate(self, triplets: Sequence[Triplet], *, num: int = 1, seed: int = 0,
                 constraints: Condition | None = None, settings: Any = None, batch_size: int = 64,
                 progress: bool = False) -> np.ndarray:
        """``(len(triplets)·num, frames, 2, 21, 3)`` float32 metres, triplet-major; the same arguments give the
        same motion."""
        ...

    def generate_take(self, segments: Sequence[Triplet], *, length: int | None = None,
                      overlap: int = DEFAULT_OVERLAP, num: int = 1, seed: int = 0,
                      constraints: Condition | None = None, settings: Any = None) -> np.ndarray:
        """``num`` long motions, each following ``segments`` in order (one triplet per segment):
        ``(num, length, 2, 21, 3)`` float32 metres. Windows are chained with ``overlap`` frames; ``length``
        None: one window per segment less the overlaps. One segment and ``length <= frames`` is one window (cut
        to ``length``), the only take a condition applies to. The same arguments give the same motion."""
        ...

    def constrained_joints(self, constraints: Condition) -> np.ndarray:
        """How strongly ``constraints`` keeps each joint: ``(frames, 2, 21)`` float32 in [0, 1] (1: reproduced
        exactly, 0: generated, soft conditions in between), e.g. to mark constrained joints in a render."""
        ...


def pipeline_class(run: str | os.PathLike | Run) -> type:
    """The pipeline class of ``run``'s family (a run directory, a built-in's name, or an opened :class:`Run`),
    weights not loaded: its ``family``, ``Settings`` and ``modes``, e.g. to check settings before loading."""
    opened = run if isinstance(run, Run) else open_run(run)
    module_name = FAMILIES.get(opened.config.kind)
    if module_name is None:
        raise HandxInputError(opened.path, f"a {opened.config.kind} run does not generate motion; give a run of "
                                           f"one of the generator families: {', '.join(FAMILIES)}")
    return importlib.import_module(module_name).PIPELINE


def load_pipeline(run: str | os.PathLike | Run, *, device: str = "cpu",
                  checkpoint: str | os.PathLike | None = None) -> TextToMotion:
    """The pipeline of ``run`` (a run directory, a built-in's name, or an opened :class:`Run`)."""
    opened = run if isinstance(run, Run) else open_run(run)
    return pipeline_class(opened).load(opened, device=device, checkpoint=checkpoint)


def make_settings(pipeline: TextToMotion | type, **options: Any) -> Any:
    """The family's settings from generic options: ``None`` values and options the family does not have are
    left out (a family without a guidance scale ignores ``guidance``), the rest is validated by its dataclass.
    ``pipeline``: a loaded pipeline or its class (:func:`pipeline_class`)."""
    fields = {f.name for f in dataclasses.fields(pipeline.Settings)}
    return pipeline.Settings(**{k: v for k, v in options.items() if v is not None and k in fields})


def check_constraints(pipeline: TextToMotion, constraints: Condition | None) -> None:
    """Refuse a conditioning mode the family cannot honour, naming what it supports."""
    if constraints is not None and constraints.mode not in pipeline.modes:
        supported = ", ".join(sorted(pipeline.modes)) or "none (text only)"
        raise HandxInputError(pipeline.source, f"the {pipeline.family} family cannot generate with a "
                                               f"{constraints.mode!r} condition; it supports: {supported}")
