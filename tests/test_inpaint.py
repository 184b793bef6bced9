"""Inpainting masks (hard and soft, reference §5) and the conditioning modes built on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handx.sampling import (
    DDIMScheduler,
    DDPMScheduler,
    Inpainting,
    contact_keyframe,
    frame_weights,
    hand_reaction,
    inbetween,
    keyframes,
    prefix,
    region_mask,
    sample,
    wrist_trajectories,
)

T, F = 16, 168
RAMP_VALUES = [0.70, 0.55, 0.40, 0.25, 0.10]


def constant_denoiser(target: torch.Tensor):
    return lambda x_t, t, conditional: target.expand_as(x_t).clone()


def columns(joints, features=range(4)) -> list[int]:
    """Feature indices j*4 + f of joints × features."""
    return [j * 4 + f for j in joints for f in features]


# ---------------------------------------------------------------- masks


def test_soft_frame_weights_follow_the_reference_ramp():
    weights = frame_weights(30, range(10, 15), soft=True)
    expected = torch.zeros(30)
    expected[10:15] = 0.85
    expected[5:10] = torch.tensor(RAMP_VALUES[::-1])
    expected[15:20] = torch.tensor(RAMP_VALUES)
    torch.testing.assert_close(weights, expected)


def test_soft_ramps_of_nearby_runs_take_the_maximum():
    weights = frame_weights(12, [0, 1, 2, 6, 7, 8], soft=True)
    torch.testing.assert_close(weights[3:6], torch.tensor([0.70, 0.55, 0.70]))
    torch.testing.assert_close(weights[9:12], torch.tensor([0.70, 0.55, 0.40]))


def test_reference_inbetweening_mask():
    """Reference §5: frames {0–9} ∪ {50–59} constrained, ramps on frames 10–14 and 45–49."""
    mask = inbetween(torch.zeros(60, F), k=10, hard=False).mask[0]  # (60, 168)
    per_frame = mask[:, 0]
    torch.testing.assert_close(per_frame[10:15], torch.tensor(RAMP_VALUES))
    torch.testing.assert_close(per_frame[45:50], torch.tensor(RAMP_VALUES[::-1]))
    assert bool((per_frame[:10] == 0.85).all() and (per_frame[50:] == 0.85).all() and (per_frame[15:45] == 0).all())
    assert bool((mask == per_frame[:, None]).all())  # all joints, all features


def test_hard_frame_weights_and_region_mask_layout():
    torch.testing.assert_close(frame_weights(8, [2, 5], soft=False), torch.tensor([0, 0, 1, 0, 0, 1, 0, 0.0]))
    mask = region_mask(8, [2, 5], [0, 23], soft=False, features=[0, 1, 2])
    assert mask.shape == (8, F) and mask.dtype == torch.float32
    on = torch.zeros(F, dtype=torch.bool)
    on[columns([0, 23], [0, 1, 2])] = True
    assert bool((mask[[2, 5]][:, on] == 1).all()) and bool((mask[:, ~on] == 0).all())
    assert bool((mask[[0, 1, 3, 4, 6, 7]] == 0).all())


def test_mask_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="frames"):
        frame_weights(8, [8], soft=False)
    with pytest.raises(ValueError, match="frames is empty"):
        frame_weights(8, [], soft=True)
    with pytest.raises(ValueError, match="joints"):
        region_mask(8, [0], [42], soft=False)
    with pytest.raises(ValueError, match="core"):
        frame_weights(8, [0], soft=True, core=1.5)
    with pytest.raises(ValueError, match="hard"):
        Inpainting(torch.zeros(1, 4, 3), torch.full((1, 4, 3), 0.5), hard=True)
    with pytest.raises(ValueError, match="shape"):
        Inpainting(torch.zeros(1, 4, 3), torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="finite"):
        Inpainting(torch.full((1, 4, 3), float("nan")), torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Inpainting(torch.zeros(1, 4, 3), torch.full((1, 4, 3), 2.0), hard=False)
    with pytest.raises(ValueError, match="values must have shape"):
        keyframes(torch.zeros(T, 100), [0])
    with pytest.raises(ValueError, match="k must"):
        inbetween(torch.zeros(T, F), k=9)


# ---------------------------------------------------------------- modes


def expected_region(mode: str) -> tuple[list[int], list[int]]:
    """(frames, feature columns) each mode constrains in a T-frame clip."""
    every = list(range(T))
    return {
        "hand_reaction_left": (every, columns(range(21))),
        "hand_reaction_right": (every, columns(range(21, 42))),
        "wrists": (every, columns([0, 21])),
        "wrists_xyz": (every, columns([0, 21], [0, 1, 2])),
        "right_wrist": (every, columns([21])),
        "inbetween": ([0, 1, 2, 3, 12, 13, 14, 15], columns(range(42))),
        "keyframes": ([3, 9], columns([5, 30])),
        "contact_keyframe": ([7], columns(range(42))),
        "prefix": ([0, 1, 2, 3, 4, 5], columns(range(42))),
    }[mode]


def build(mode: str, values, hard: bool = True) -> Inpainting:
    return {
        "hand_reaction_left": lambda: hand_reaction(values, "left", hard=hard),
        "hand_reaction_right": lambda: hand_reaction(values, "right", hard=hard),
        "wrists": lambda: wrist_trajectories(values, hard=hard),
        "wrists_xyz": lambda: wrist_trajectories(values, features="xyz", hard=hard),
        "right_wrist": lambda: wrist_trajectories(values, ["right"], hard=hard),
        "inbetween": lambda: inbetween(values, k=4, hard=hard),
        "keyframes": lambda: keyframes(values, [3, 9], joints=[5, 30], hard=hard),
        "contact_keyframe": lambda: contact_keyframe(values, 7, hard=hard),
        "prefix": lambda: prefix(values, 6, hard=hard),
    }[mode]()


MODES = ["hand_reaction_left", "hand_reaction_right", "wrists", "wrists_xyz", "right_wrist", "inbetween",
         "keyframes", "contact_keyframe", "prefix"]


@pytest.mark.parametrize("mode", MODES)
def test_hard_mode_masks_cover_exactly_their_region(mode):
    inpainting = build(mode, torch.zeros(T, F))
    frames, cols = expected_region(mode)
    expected = torch.zeros(1, T, F)
    expected[0, torch.tensor(frames)[:, None], torch.tensor(cols)[None, :]] = 1.0
    assert inpainting.hard
    torch.testing.assert_close(inpainting.mask, expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scheduler, steps", [(DDIMScheduler(), 10), (DDPMScheduler(), 1000)],
                         ids=["ddim10", "ddpm1000"])
def test_hard_masks_reproduce_the_values_exactly(mode, scheduler, steps):
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(3, T, F, generator=gen).clamp(-3, 3)
    target = 5.0 + 0.1 * torch.randn(1, T, F, generator=gen)  # what the denoiser wants, far from the values
    inpainting = build(mode, values)
    out = sample(constant_denoiser(target), (3, T, F), scheduler, num_steps=steps, inpainting=inpainting,
                 generator=gen)
    constrained = inpainting.mask.bool()
    torch.testing.assert_close(out[constrained], values[constrained], rtol=0, atol=0)
    free = out[~constrained]
    assert (free - values[~constrained]).abs().min() > 1.0  # unconstrained entries are generated
    if isinstance(scheduler, DDIMScheduler):
        torch.testing.assert_close(free, target.expand(3, T, F)[~constrained], rtol=0, atol=0)


def test_one_clip_of_values_broadcasts_over_the_batch():
    values = np.random.default_rng(0).normal(size=(T, F)).astype(np.float32)
    inpainting = keyframes(values, [0, 15])
    assert inpainting.values.shape == (1, T, F)
    out = sample(constant_denoiser(torch.zeros(1, T, F)), (4, T, F), DDIMScheduler(), num_steps=5,
                 inpainting=inpainting, generator=torch.Generator().manual_seed(0))
    for b in range(4):
        torch.testing.assert_close(out[b, [0, 15]], torch.from_numpy(values[[0, 15]]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="cannot apply"):
        sample(constant_denoiser(torch.zeros(1, T - 1, F)), (1, T - 1, F), DDIMScheduler(), num_steps=2,
               inpainting=inpainting)


@pytest.mark.parametrize("mode", ["inbetween", "keyframes", "contact_keyframe", "hand_reaction_left", "prefix"])
def test_soft_masks_blend_the_last_step(mode):
    """Soft (reference) masks end at m·values + (1 − m)·x̂₀: 85 % of the target on the region, never exact."""
    gen = torch.Generator().manual_seed(1)
    values, target = torch.randn(2, T, F, generator=gen), torch.randn(1, T, F, generator=gen)
    inpainting = build(mode, values, hard=False)
    assert not inpainting.hard and inpainting.mask.max() == pytest.approx(0.85)
    out = sample(constant_denoiser(target), (2, T, F), DDIMScheduler(), num_steps=10, inpainting=inpainting,
                 generator=gen)
    m = inpainting.mask
    torch.testing.assert_close(out, m * values + (1 - m) * target)
    core = m == 0.85
    assert (out[core] - values[core]).abs().min() > 0


def test_soft_prefix_keeps_its_ramp_inside_the_given_frames():
    per_frame = prefix(torch.zeros(T, F), 10, hard=False).mask[0, :, 0]
    torch.testing.assert_close(per_frame[:10], torch.tensor([0.85] * 5 + RAMP_VALUES))
    assert bool((per_frame[10:] == 0).all())
    torch.testing.assert_close(prefix(torch.zeros(T, F), 3, hard=False).mask[0, :4, 0],
                               torch.tensor([0.85, 0.475, 0.10, 0.0]))


def test_apply_renoises_the_targets_before_the_last_step():
    scheduler = DDIMScheduler()
    values, x = torch.ones(1, 4, 8), torch.zeros(1, 4, 8)
    inpainting = Inpainting(values, torch.ones(1, 4, 8), hard=True)
    noise_gen, apply_gen = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    expected = scheduler.add_noise(values, torch.randn(1, 4, 8, generator=noise_gen), 500)
    torch.testing.assert_close(inpainting.apply(x, 500, scheduler, apply_gen), expected)
    torch.testing.assert_close(inpainting.apply(x, -1, scheduler, apply_gen), values)
