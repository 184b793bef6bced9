"""DDIM sampling (Song et al. 2021, eqs. 12 and 16) with an x₀-predicting denoiser.

The handx default sampler (DESIGN.md, Deviations: few-step DDIM instead of the reference's 1000-step ancestral
loop, which stays available as :class:`handx.sampling.ddpm.DDPMScheduler`). One step from t to its scheduled
predecessor p::

    ε̂ = (x_t − √ᾱ_t x̂₀) / √(1 − ᾱ_t)
    σ = η √((1 − ᾱ_p)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_p)
    x_p = √ᾱ_p x̂₀ + √(1 − ᾱ_p − σ²) ε̂ + σ ε,   ε ~ N(0, I)

At η = 0 the chain is deterministic, and the final step (p = −1, ᾱ_p = 1) returns x̂₀ exactly. The
predecessor is the next scheduled timestep (diffusers' DDIM assumes ``t − T // n``, which agrees whenever n
divides T).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from handx.sampling.schedule import NoiseSchedule, Scheduler, randn


class DDIMScheduler(Scheduler):
    """DDIM with any number of steps; ``eta`` = 0 is deterministic, ``eta`` = 1 has DDPM-like variance."""

    def __init__(
        self, schedule: NoiseSchedule | None = None, *, eta: float = 0.0, timestep_spacing: str = "trailing"
    ):
        if not (eta >= 0.0 and math.isfinite(eta)):
            raise ValueError(f"DDIMScheduler: eta must be a finite number >= 0, got {eta}")
        super().__init__(schedule, timestep_spacing=timestep_spacing)
        self.eta = float(eta)

    def step(
        self,
        x0_pred: Tensor,
        t: int | Tensor,
        x_t: Tensor,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        _, alpha_bar_t, alpha_bar_prev = self._alpha_bars(t)
        eps = (x_t - math.sqrt(alpha_bar_t) * x0_pred) / math.sqrt(1.0 - alpha_bar_t)  # ε̂
        variance = (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_prev)
        sigma = self.eta * math.sqrt(variance)
        x_prev = math.sqrt(alpha_bar_prev) * x0_pred + math.sqrt(max(1.0 - alpha_bar_prev - sigma**2, 0.0)) * eps
        if sigma > 0.0:
            if noise is None:
                noise = randn(x_t.shape, generator=generator, like=x_t)
            x_prev = x_prev + sigma * noise
        return x_prev
