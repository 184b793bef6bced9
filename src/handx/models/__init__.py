"""Networks only (STYLE.md 3): the diffusion denoiser and the evaluator's encoders.

``diffusion`` holds :class:`TrebleDenoiser` and its :class:`DiffusionConfig` (reference §4.2–4.3); the motion
features the networks read live in :mod:`handx.representations`.
"""

from handx.models.diffusion import DiffusionConfig, TrebleDenoiser

__all__ = ["DiffusionConfig", "TrebleDenoiser"]
