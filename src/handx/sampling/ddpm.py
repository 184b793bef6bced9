"""Ancestral DDPM sampling with an x₀-predicting denoiser and fixed-small variance (reference §4.4).

One reverse step from t to its predecessor p (p = t − 1 for the full 1000-step chain of the reference; any
scheduled predecessor when respaced, as guided-diffusion's ``respace.py`` and diffusers' ``DDPMScheduler``)::

    α = ᾱ_t / ᾱ_p,  β = 1 − α                                  (β = β_t when p = t − 1)
    μ = √ᾱ_p β / (1 − ᾱ_t) · x̂₀ + √α (1 − ᾱ_p) / (1 − ᾱ_t) · x_t   (posterior mean q(x_p | x_t, x̂₀))
    σ² = β̃ = β (1 − ᾱ_p) / (1 − ᾱ_t)                          (FIXED_SMALL)
    x_p = μ + σ ε,  ε ~ N(0, I), and no noise on the final step (p = −1, ᾱ_p = 1)

``clip_denoised`` is off, as in the reference. Noise is drawn with ``torch.randn(shape, generator=…)`` exactly
when p ≥ 0, so a generator seeded like diffusers' gives the same chain.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from handx.sampling.schedule import NoiseSchedule, Scheduler, randn


class DDPMScheduler(Scheduler):
    """Ancestral sampler; 1000 steps by default, fewer by respacing (``set_timesteps(n)``)."""

    def __init__(self, schedule: NoiseSchedule | None = None, *, timestep_spacing: str = "trailing"):
        super().__init__(schedule, timestep_spacing=timestep_spacing)

    def step(
        self,
        x0_pred: Tensor,
        t: int | Tensor,
        x_t: Tensor,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        prev, alpha_bar_t, alpha_bar_prev = self._alpha_bars(t)
        alpha = alpha_bar_t / alpha_bar_prev  # α_t of this (possibly respaced) step
        beta = 1.0 - alpha
        coef_x0 = math.sqrt(alpha_bar_prev) * beta / (1.0 - alpha_bar_t)
        coef_xt = math.sqrt(alpha) * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t)
        mean = coef_x0 * x0_pred + coef_xt * x_t  # μ̃_t(x_t, x̂₀)
        if prev < 0:
            return mean
        variance = beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t)  # β̃_t
        if noise is None:
            noise = randn(x_t.shape, generator=generator, like=x_t)
        return mean + math.sqrt(variance) * noise
