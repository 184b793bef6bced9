"""Classifier-free guidance on x₀ predictions (reference §4.3).

``x̂₀ = u + s · (c − u)`` with c the conditional and u the null-text prediction. The reference's sampler had
no effect (its null text was only used in training, so u = c); handx really runs the null-text pass
(DESIGN.md, Deviations). Scale 1 is the conditional prediction itself and scale 0 the unconditional one, so
:func:`guided_prediction` then calls the denoiser once per step instead of twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor

#: ``denoise(x_t (B, T, F), t LongTensor (B,), conditional) -> x̂₀ (B, T, F)``; conditional=False is null text.
Denoiser = Callable[[Tensor, Tensor, bool], Tensor]


def check_scale(scale: float) -> float:
    """The guidance scale as a float; it must be finite and >= 0."""
    if not (math.isfinite(scale) and scale >= 0.0):
        raise ValueError(f"guidance_scale must be a finite number >= 0, got {scale}")
    return float(scale)


def guided_x0(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    """u + s·(c − u); returns ``cond`` itself at s = 1."""
    if scale == 1.0:
        return cond
    return uncond + scale * (cond - uncond)


def guided_prediction(denoise: Denoiser, x_t: Tensor, t: Tensor, scale: float) -> Tensor:
    """x̂₀ at (x_t, t) under guidance ``scale``, with one denoiser call at s = 1 (or 0) and two otherwise."""
    if scale == 1.0:
        return denoise(x_t, t, True)
    if scale == 0.0:
        return denoise(x_t, t, False)
    return guided_x0(denoise(x_t, t, True), denoise(x_t, t, False), scale)
