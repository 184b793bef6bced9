"""Training losses of the diffusion generator (reference §4.5), in normalised feature space.

With x₀ and x̂₀ of shape ``(B, T, 168)`` (42 joints × [x, y, z, s], joint-major):

    L = mse(x₀[xyz], x̂₀[xyz]) + 0.5·mse(x₀, x̂₀) + 0.2·mse(Δx₀[xyz], Δx̂₀[xyz]) + 0.1·mean(|Δ²x̂₀|²)

The last term is a smoothness prior on the prediction (the ground truth is not used), as in the reference.
"""

from __future__ import annotations

import dataclasses

import torch

JOINTS, CHANNELS = 42, 4
XYZ = torch.tensor([j * CHANNELS + c for j in range(JOINTS) for c in range(3)])  # (126,) feature indices


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """λ of each term (reference §4.5 defaults)."""

    position: float = 1.0
    representation: float = 0.5
    velocity: float = 0.2
    acceleration: float = 0.1


@dataclasses.dataclass(frozen=True)
class LossTerms:
    """The total loss and its parts (each a scalar tensor)."""

    total: torch.Tensor
    position: torch.Tensor
    representation: torch.Tensor
    velocity: torch.Tensor
    acceleration: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).detach()) for f in dataclasses.fields(self)}


def diffusion_loss(x0: torch.Tensor, x0_hat: torch.Tensor, weights: LossWeights = LossWeights()) -> LossTerms:
    """Reference §4.5 loss for ``(B, T, 168)`` targets and predictions."""
    xyz = XYZ.to(x0.device)
    pos = torch.mean((x0[..., xyz] - x0_hat[..., xyz]) ** 2)
    rep = torch.mean((x0 - x0_hat) ** 2)
    vel_true = x0[:, 1:, xyz] - x0[:, :-1, xyz]  # (B, T-1, 126)
    vel_pred = x0_hat[:, 1:, xyz] - x0_hat[:, :-1, xyz]
    vel = torch.mean((vel_true - vel_pred) ** 2)
    acc = torch.mean((x0_hat[:, 2:] - 2 * x0_hat[:, 1:-1] + x0_hat[:, :-2]) ** 2)
    total = (weights.position * pos + weights.representation * rep + weights.velocity * vel
             + weights.acceleration * acc)
    return LossTerms(total, pos, rep, vel, acc)
