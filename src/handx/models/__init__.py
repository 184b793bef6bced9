"""Networks only (STYLE.md 3): the diffusion denoiser and its motion representation.

``representation`` turns clips into the diffusion model's per-frame features and back (reference §1.5);
``diffusion`` holds :class:`TrebleDenoiser` and its :class:`DiffusionConfig` (reference §4.2–4.3).
"""

from handx.models.diffusion import DiffusionConfig, TrebleDenoiser
from handx.models.representation import FeatureStats, decode, encode, scalar_bend

__all__ = ["DiffusionConfig", "FeatureStats", "TrebleDenoiser", "decode", "encode", "scalar_bend"]
