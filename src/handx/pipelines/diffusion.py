"""The diffusion family behind :class:`~handx.pipelines.base.TextToMotion` (reference §4–5): the treble
denoiser sampled with DDIM or DDPM, classifier-free guidance, every conditioning mode of
:data:`handx.sampling.condition.MODES` by inpainting, long takes by chained windows, projection onto one skeleton
per hand and temporal smoothing (:class:`handx.sampling.generate.Generator` does the work).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from handx.motion import Triplet
from handx.pipelines.base import check_constraints
from handx.runs import Run
from handx.sampling.condition import DEFAULT_OVERLAP, MODES, Condition
from handx.sampling.generate import (DEFAULT_PROJECTION, DEFAULT_SMOOTHING, GenerateRequest, Generator,
                                     check_sampler_settings)


@dataclasses.dataclass(frozen=True)
class DiffusionSettings:
    """How to sample a diffusion run: ``sampler`` ``ddim`` | ``ddpm``, ``steps``, classifier-free ``guidance``,
    ``projection`` onto the skeleton (``end`` | ``x0`` | ``none``), ``hand_size`` (a factor of the nominal adult
    hand; ``None``: the run's skeleton), temporal ``smoothing`` (Gaussian σ in frames). Checked as
    :class:`handx.sampling.generate.GenerateRequest` checks them."""

    sampler: str = "ddim"
    steps: int = 50
    guidance: float = 2.5
    projection: str = DEFAULT_PROJECTION
    hand_size: float | None = None
    smoothing: float = DEFAULT_SMOOTHING

    def __post_init__(self) -> None:
        check_sampler_settings("DiffusionSettings", self.sampler, self.steps, self.guidance, self.projection,
                               self.hand_size, self.smoothing)

    def request(self, texts: tuple[Triplet, ...], **fields: Any) -> GenerateRequest:
        return GenerateRequest(texts=texts, **dataclasses.asdict(self), **fields)

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class DiffusionPipeline:
    """A loaded diffusion run as a :class:`~handx.pipelines.base.TextToMotion`."""

    family: ClassVar[str] = "diffusion"
    Settings: ClassVar[type] = DiffusionSettings
    modes: ClassVar[frozenset[str]] = frozenset(MODES)

    def __init__(self, generator: Generator, source: str):
        self.generator = generator
        self.source = source
        self.frames = int(generator.config.frames)

    @classmethod
    def load(cls, run: Run, *, device: str = "cpu", checkpoint: str | os.PathLike | None = None
             ) -> "DiffusionPipeline":
        return cls(Generator.load(run.path, checkpoint=checkpoint, device=device), os.fspath(run.path))

    def _settings(self, settings: DiffusionSettings | None) -> DiffusionSettings:
        if settings is None:
            return DiffusionSettings()
        if not isinstance(settings, DiffusionSettings):
            raise TypeError(f"the diffusion family takes DiffusionSettings, got {type(settings).__name__}")
        return settings

    def generate(self, triplets: Sequence[Triplet], *, num: int = 1, seed: int = 0,
                 constraints: Condition | None = None, settings: DiffusionSettings | None = None,
                 batch_size: int = 64, progress: bool = False) -> np.ndarray:
        settings = self._settings(settings)
        triplets = tuple(triplets)
        if num < 1:
            raise ValueError(f"num must be >= 1, got {num}")
        check_constraints(self, constraints)
        if constraints is None:  # many texts at once, in batches (a benchmark's whole split)
            rows = [t for t in triplets for _ in range(num)]
            return self.generator.generate_batch(rows, seed=seed, batch_size=batch_size, progress=progress,
                                                 **dataclasses.asdict(settings))
        out = [self.generator.generate(settings.request((t,), num=num, seed=seed, condition=constraints)).joints
               for t in triplets]
        return np.concatenate(out)

    def generate_take(self, segments: Sequence[Triplet], *, length: int | None = None,
                      overlap: int = DEFAULT_OVERLAP, num: int = 1, seed: int = 0,
                      constraints: Condition | None = None, settings: DiffusionSettings | None = None
                      ) -> np.ndarray:
        settings = self._settings(settings)
        check_constraints(self, constraints)
        request = settings.request(tuple(segments), num=num, seed=seed, length=length, overlap=overlap,
                                   condition=constraints)
        return self.generator.generate(request).joints  # (num, length, 2, 21, 3)

    def constrained_joints(self, constraints: Condition) -> np.ndarray:
        check_constraints(self, constraints)
        return self.generator.constrained_joints(constraints)  # (frames, 2, 21)


PIPELINE = DiffusionPipeline
