"""The cosine noise schedule and the scheduler contract that every sampler follows (reference §4.4).

* :func:`cosine_betas` is the schedule of the reference (improved-DDPM cosine, T = 1000, s = 0.008):
  ``ᾱ(t) = cos²(((t/T) + s)/(1 + s) · π/2)`` and ``β_t = min(1 − ᾱ(t+1)/ᾱ(t), 0.999)``, in float64.
* :class:`NoiseSchedule` holds ``β_t`` and ``ᾱ_t = Π(1 − β_s)`` and draws ``q(x_t | x₀)``.
* :class:`Scheduler` is the small contract between a denoiser and a sampler (STYLE point 4, the shape of
  diffusers' schedulers): ``set_timesteps(n)``, ``timesteps`` (descending), ``step(x̂₀, t, x_t)`` from ``t`` to
  the previous timestep of the chosen schedule, ``add_noise(x₀, ε, t)`` and ``previous_timestep(t)``. Every
  step is x₀-parameterised, because the HandX denoiser predicts x₀.

Timestep spacing (which ``n`` of the ``T`` training timesteps a sampler visits):

* ``"trailing"`` (the handx default): ``t_i = round(T − i·T/n) − 1``, e.g. 999, 979, …, 19 for n = 50. The
  chain starts at t = 999, where ``ᾱ ≈ 0`` and x_T ~ N(0, I) is what the denoiser saw in training, and the last
  step goes from t = 19 straight to the clean sample (Lin et al. 2024, "Common diffusion noise schedules and
  sample steps are flawed", Table 2).
* ``"leading"`` (diffusers' DDIM default with ``steps_offset=0``): ``t_i = (n − 1 − i)·(T // n)``, e.g. 980,
  960, …, 0; it never visits t ≥ 981 and spends its last step on t = 0 → clean.
* ``"linspace"``: ``round(linspace(0, T − 1, n))`` reversed.

With n = T every spacing gives 999, 998, …, 0. The step after the last timestep lands on ``ᾱ = 1`` (diffusers'
``set_alpha_to_one=True``; guided-diffusion's ``ᾱ_{−1} = 1``), so the final sample is x₀-clean.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

TimestepSpacing = Literal["trailing", "leading", "linspace"]
SPACINGS: tuple[str, ...] = ("trailing", "leading", "linspace")
NUM_TRAIN_TIMESTEPS = 1000


def cosine_betas(num_steps: int = NUM_TRAIN_TIMESTEPS, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """β_t of the cosine schedule (reference §4.4), float64 ``(num_steps,)``: β_0 ≈ 4.1e-5, β_999 = 0.999."""
    if num_steps < 1:
        raise ValueError(f"cosine_betas: num_steps must be >= 1, got {num_steps}")
    if s < 0:
        raise ValueError(f"cosine_betas: s must be >= 0, got {s}")
    if not 0.0 < max_beta < 1.0:
        raise ValueError(f"cosine_betas: max_beta must lie in (0, 1), got {max_beta}")
    t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps  # t/T, (T+1,)
    alpha_bar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2  # ᾱ(t/T), (T+1,)
    return (1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)  # β_t, (T,)


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """A discrete Gaussian diffusion: ``betas`` β_t ``(T,)`` float64, and derived ``alphas`` α_t = 1 − β_t and
    ``alphas_cumprod`` ᾱ_t = Π_{s≤t} α_s (both ``(T,)`` float64)."""

    betas: Tensor
    alphas: Tensor = field(init=False)
    alphas_cumprod: Tensor = field(init=False)

    def __post_init__(self) -> None:
        betas = torch.as_tensor(self.betas, dtype=torch.float64).detach().cpu()
        if betas.ndim != 1 or betas.numel() == 0:
            raise ValueError(f"NoiseSchedule.betas must be a non-empty 1-D tensor, got shape {tuple(betas.shape)}")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("NoiseSchedule.betas must all lie in (0, 1)")
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "alphas", 1.0 - betas)
        object.__setattr__(self, "alphas_cumprod", torch.cumprod(1.0 - betas, dim=0))

    @classmethod
    def cosine(cls, num_steps: int = NUM_TRAIN_TIMESTEPS, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        """The reference schedule (§4.4)."""
        return cls(cosine_betas(num_steps, s, max_beta))

    @property
    def num_steps(self) -> int:
        """T, the number of training timesteps."""
        return int(self.betas.numel())

    @property
    def posterior_variance(self) -> Tensor:
        """β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), ``(T,)`` float64, with ᾱ_{−1} = 1 (so β̃_0 = 0)."""
        prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        return self.betas * (1.0 - prev) / (1.0 - self.alphas_cumprod)

    def alpha_bar(self, t: int) -> float:
        """ᾱ_t as a Python float; ``t < 0`` means the clean end of the chain (ᾱ = 1)."""
        if t >= self.num_steps:
            raise ValueError(f"timestep {t} is out of range for a schedule of {self.num_steps} steps")
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def q_sample(self, x0: Tensor, noise: Tensor, t: int | Tensor) -> Tensor:
        """x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε, for one timestep (int or 0-d) or one per sample (LongTensor ``(B,)``)."""
        if noise.shape != x0.shape:
            raise ValueError(f"q_sample: noise shape {tuple(noise.shape)} differs from x0 shape {tuple(x0.shape)}")
        t = torch.as_tensor(t, dtype=torch.long)
        if t.ndim > 1 or (t.ndim == 1 and t.numel() != x0.shape[0]):
            raise ValueError(f"q_sample: t must be a scalar or have shape ({x0.shape[0]},), got {tuple(t.shape)}")
        if bool(((t < 0) | (t >= self.num_steps)).any()):
            raise ValueError(f"q_sample: timesteps must lie in [0, {self.num_steps - 1}], got {t.tolist()}")
        alpha_bar = self.alphas_cumprod.to(x0.dtype).to(x0.device)[t.to(x0.device)]  # ᾱ_t, () or (B,)
        alpha_bar = alpha_bar.reshape(alpha_bar.shape + (1,) * (x0.ndim - alpha_bar.ndim))  # (B, 1, …) or ()
        return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise


def spaced_timesteps(num_train_timesteps: int, num_inference_steps: int, spacing: str) -> Tensor:
    """The descending LongTensor ``(num_inference_steps,)`` of timesteps a sampler visits (see module doc)."""
    total, n = num_train_timesteps, num_inference_steps
    if not 1 <= n <= total:
        raise ValueError(f"num_inference_steps must lie in [1, {total}], got {n}")
    if spacing == "trailing":
        steps = torch.round(torch.tensor([total * (n - i) / n for i in range(n)], dtype=torch.float64)) - 1
    elif spacing == "leading":
        steps = torch.arange(n - 1, -1, -1, dtype=torch.float64) * (total // n)
    elif spacing == "linspace":
        steps = torch.round(torch.linspace(0, total - 1, n, dtype=torch.float64)).flip(0)
    else:
        raise ValueError(f"timestep_spacing must be one of {SPACINGS}, got {spacing!r}")
    steps = steps.to(torch.long)
    if bool((steps[1:] >= steps[:-1]).any()):  # cannot happen for n <= T; guards future spacings
        raise AssertionError(f"{spacing} spacing gave timesteps that are not strictly descending: {steps.tolist()}")
    return steps


def randn(shape: torch.Size | tuple[int, ...], *, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Standard normal noise with ``like``'s dtype and device, drawn on the generator's device (as diffusers'
    ``randn_tensor``), so that a CPU generator gives the same numbers whatever device the model runs on."""
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


class Scheduler(ABC):
    """The sampler contract (STYLE point 4): timesteps, one reverse step, forward noising.

    Subclasses implement :meth:`step`. ``timesteps`` is the descending LongTensor set by :meth:`set_timesteps`
    (the full ``T`` steps after construction).
    """

    def __init__(self, schedule: NoiseSchedule | None = None, *, timestep_spacing: str = "trailing"):
        if timestep_spacing not in SPACINGS:
            raise ValueError(f"timestep_spacing must be one of {SPACINGS}, got {timestep_spacing!r}")
        self.schedule = schedule if schedule is not None else NoiseSchedule.cosine()
        self.timestep_spacing = timestep_spacing
        self.set_timesteps(self.schedule.num_steps)

    @property
    def num_train_timesteps(self) -> int:
        return self.schedule.num_steps

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Choose the ``num_inference_steps`` timesteps to visit (spacing: see the module docstring)."""
        self.timesteps = spaced_timesteps(self.num_train_timesteps, num_inference_steps, self.timestep_spacing)
        self.num_inference_steps = num_inference_steps
        previous = self.timesteps[1:].tolist() + [-1]
        self._previous = dict(zip(self.timesteps.tolist(), previous))

    def previous_timestep(self, t: int | Tensor) -> int:
        """The timestep after ``t`` in the reverse chain; −1 after the last one (the clean sample)."""
        key = int(t)
        if key not in self._previous:
            raise ValueError(f"timestep {key} is not one of the {self.num_inference_steps} scheduled timesteps")
        return self._previous[key]

    def add_noise(self, x0: Tensor, noise: Tensor, t: int | Tensor) -> Tensor:
        """q(x_t | x₀): see :meth:`NoiseSchedule.q_sample`."""
        return self.schedule.q_sample(x0, noise, t)

    def _alpha_bars(self, t: int | Tensor) -> tuple[int, float, float]:
        """(previous timestep, ᾱ_t, ᾱ_prev) for the step from ``t``."""
        prev = self.previous_timestep(t)
        return prev, self.schedule.alpha_bar(int(t)), self.schedule.alpha_bar(prev)

    @abstractmethod
    def step(
        self,
        x0_pred: Tensor,
        t: int | Tensor,
        x_t: Tensor,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """x_prev from x_t and the predicted x̂₀, for the step from ``t`` to :meth:`previous_timestep` (t).

        ``noise`` overrides the standard normal draw from ``generator`` where the step is stochastic.
        """
