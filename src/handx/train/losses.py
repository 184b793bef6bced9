"""Training losses of the diffusion generator (reference §4.5), in normalised feature space.

With x₀ and x̂₀ of shape ``(B, T, 168)`` (42 joints × [x, y, z, s], joint-major):

    L = mse(x₀[xyz], x̂₀[xyz]) + 0.5·mse(x₀, x̂₀) + 0.2·mse(Δx₀[xyz], Δx̂₀[xyz]) + 0.1·mean(|Δ²x̂₀|²)

The last term is a smoothness prior on the prediction (the ground truth is not used), as in the reference.

Optional contact term (reference §4.5 lists a contact loss, off by default; weight ``LossWeights.contact``): for
each hand and frame, the thumb-tip → other-fingertip distances d (metres; reference §2.9's intra-hand contact is
d < τ = 2 cm). On every entry where the ground truth or the prediction is in contact, the predicted distance is
matched to the true one capped at 1.5 τ, in units of τ, averaged over those entries:

    L_contact = Σ_{(b,t,h,f) ∈ C} ((d(x̂₀) − min(d(x₀), 1.5τ)) / τ)² / |C|,   C = {d(x₀) < τ or d(x̂₀) < τ}

True contacts pull the prediction to the true distance; a contact the truth does not hold pushes the fingertips
apart until they leave the threshold (the cap keeps a far-apart truth from giving a large push). Clip-level
contact F1 (reference §7.3) counts a clip as touching when one frame touches, so both misses and passing touches
cost it. Distances are measured on denormalised positions, so the loss needs the features' statistics. The
reference's version pulls contacting pairs to distance 0; matching the true distance keeps fingers from being
pulled into each other. Small contact distances are a tiny part of the position error in normalised space, so
without this term the model learns to bring fingertips near each other but rarely within the threshold
(docs/training.md, "What moved the numbers").
"""

from __future__ import annotations

import dataclasses

import torch

from handx.features.contacts import INTRA_TIP_CONTACT
from handx.features.signals import INTRA_TIP_FINGERS
from handx.representations.joints168 import LAYOUT
from handx.skeleton import NUM_HANDS, NUM_JOINTS, TIPS

#: the position columns of the 168-d features, hand-, joint- then axis-major ``(126,)``, from the representation's layout
XYZ = torch.as_tensor(LAYOUT.columns(channels=("pos",)))
THUMB_TIP = TIPS["thumb"]
#: a true distance beyond the contact threshold is matched only up to this many thresholds (module docstring)
CONTACT_CAP = 1.5
OTHER_TIPS = torch.tensor([TIPS[f] for f in INTRA_TIP_FINGERS])  # (4,) joints within a hand


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """λ of each term (reference §4.5 defaults)."""

    position: float = 1.0
    representation: float = 0.5
    velocity: float = 0.2
    acceleration: float = 0.1
    contact: float = 0.0


@dataclasses.dataclass(frozen=True)
class LossTerms:
    """The total loss and its parts (each a scalar tensor)."""

    total: torch.Tensor
    position: torch.Tensor
    representation: torch.Tensor
    velocity: torch.Tensor
    acceleration: torch.Tensor
    contact: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).detach()) for f in dataclasses.fields(self)}


def intra_tip_distances(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Thumb tip → index/middle/ring/pinky tip distances in metres of normalised features ``(B, T, 168)``
    with per-feature statistics ``(168,)``: ``(B, T, 2, 4)``."""
    xyz = XYZ.to(x.device)
    joints = (x[..., xyz] * std[xyz] + mean[xyz]).unflatten(-1, (NUM_HANDS, NUM_JOINTS, 3))  # (B, T, 2, 21, 3) m
    thumb = joints[..., THUMB_TIP:THUMB_TIP + 1, :]  # (B, T, 2, 1, 3)
    return torch.linalg.vector_norm(joints[..., OTHER_TIPS.to(x.device), :] - thumb, dim=-1)  # (B, T, 2, 4)


def contact_loss(x0: torch.Tensor, x0_hat: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The optional contact term (module docstring): 0 when neither motion holds an intra-hand contact."""
    true = intra_tip_distances(x0, mean, std)
    pred = intra_tip_distances(x0_hat, mean, std)
    scored = (true < INTRA_TIP_CONTACT) | (pred.detach() < INTRA_TIP_CONTACT)  # (B, T, 2, 4)
    target = true.clamp(max=CONTACT_CAP * INTRA_TIP_CONTACT)
    error = torch.where(scored, (pred - target) / INTRA_TIP_CONTACT, torch.zeros_like(pred))
    return (error ** 2).sum() / scored.sum().clamp(min=1)


def diffusion_loss(x0: torch.Tensor, x0_hat: torch.Tensor, weights: LossWeights = LossWeights(),
                   stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> LossTerms:
    """Reference §4.5 loss for ``(B, T, 168)`` targets and predictions; ``stats`` (mean, std) ``(168,)`` are
    needed when ``weights.contact`` is not 0."""
    xyz = XYZ.to(x0.device)
    pos = torch.mean((x0[..., xyz] - x0_hat[..., xyz]) ** 2)
    rep = torch.mean((x0 - x0_hat) ** 2)
    vel_true = x0[:, 1:, xyz] - x0[:, :-1, xyz]  # (B, T-1, 126)
    vel_pred = x0_hat[:, 1:, xyz] - x0_hat[:, :-1, xyz]
    vel = torch.mean((vel_true - vel_pred) ** 2)
    acc = torch.mean((x0_hat[:, 2:] - 2 * x0_hat[:, 1:-1] + x0_hat[:, :-2]) ** 2)
    total = (weights.position * pos + weights.representation * rep + weights.velocity * vel
             + weights.acceleration * acc)
    if weights.contact:
        if stats is None:
            raise ValueError("diffusion_loss: the contact term needs the features' statistics (mean, std)")
        contact = contact_loss(x0, x0_hat, *stats)
        total = total + weights.contact * contact
    else:
        contact = torch.zeros((), device=x0.device)
    return LossTerms(total, pos, rep, vel, acc, contact)
