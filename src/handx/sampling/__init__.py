"""Sampling from the x₀-predicting diffusion model (reference §4.3–4.4, §5).

Samplers are separate from denoisers (STYLE point 4): a :class:`Scheduler` (``set_timesteps``, ``timesteps``,
``step``, ``add_noise``, ``previous_timestep``) drives any denoiser ``denoise(x_t, t, conditional) -> x̂₀``
through :func:`sample`, with classifier-free guidance and inpainting (:mod:`handx.sampling.modes`) shared by
DDIM (default, few steps) and 1000-step ancestral DDPM.
"""

from handx.sampling.ddim import DDIMScheduler
from handx.sampling.ddpm import DDPMScheduler
from handx.sampling.guidance import Denoiser, guided_prediction, guided_x0
from handx.sampling.inpaint import Inpainting, frame_weights, region_mask
from handx.sampling.loop import WindowSampler, sample, sample_long
from handx.sampling.modes import contact_keyframe, hand_reaction, inbetween, keyframes, prefix, wrist_trajectories
from handx.sampling.schedule import SPACINGS, NoiseSchedule, Scheduler, cosine_betas

__all__ = [
    "SPACINGS",
    "DDIMScheduler",
    "DDPMScheduler",
    "Denoiser",
    "Inpainting",
    "NoiseSchedule",
    "Scheduler",
    "WindowSampler",
    "contact_keyframe",
    "cosine_betas",
    "frame_weights",
    "guided_prediction",
    "guided_x0",
    "hand_reaction",
    "inbetween",
    "keyframes",
    "prefix",
    "region_mask",
    "sample",
    "sample_long",
    "wrist_trajectories",
]
