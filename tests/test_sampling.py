"""Schedules, DDPM/DDIM steps (against diffusers), guidance, the sampling loop and the long-horizon mode."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from handx.sampling import (
    DDIMScheduler,
    DDPMScheduler,
    Inpainting,
    NoiseSchedule,
    cosine_betas,
    guided_x0,
    sample,
    sample_long,
)
from handx.sampling.loop import window_plan
from handx.sampling.schedule import spaced_timesteps

F = 168


def constant_denoiser(target: torch.Tensor, uncond: torch.Tensor | None = None, calls: list | None = None):
    """Predicts x̂₀ = target (conditional) or uncond (null text) whatever x_t; records (t, conditional)."""

    def denoise(x_t, t, conditional):
        if calls is not None:
            calls.append((int(t[0]), conditional))
        out = target if conditional or uncond is None else uncond
        return out.expand_as(x_t).clone()

    return denoise


# ---------------------------------------------------------------- schedule


def test_cosine_betas_reference_values():
    betas = cosine_betas()
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    assert betas[0].item() == pytest.approx(4.1e-5, abs=0.05e-5)
    assert betas[-1].item() == 0.999
    assert bool((betas[1:] >= betas[:-1]).all())

    def alpha_bar(u):  # reference §4.4, written out per step
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    expected = [min(1 - alpha_bar((i + 1) / 1000) / alpha_bar(i / 1000), 0.999) for i in range(1000)]
    torch.testing.assert_close(betas, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-15)


def test_noise_schedule_fields():
    schedule = NoiseSchedule.cosine()
    torch.testing.assert_close(schedule.alphas_cumprod, torch.cumprod(1 - schedule.betas, 0))
    assert schedule.alphas_cumprod.dtype == torch.float64
    assert schedule.alpha_bar(-1) == 1.0
    assert schedule.posterior_variance[0].item() == 0.0
    t = 500
    expected = schedule.betas[t] * (1 - schedule.alphas_cumprod[t - 1]) / (1 - schedule.alphas_cumprod[t])
    assert schedule.posterior_variance[t].item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="betas"):
        NoiseSchedule(torch.tensor([0.1, 1.5]))


def test_add_noise_per_sample_timesteps():
    schedule = NoiseSchedule.cosine()
    x0, noise = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    t = torch.tensor([0, 500, 999])
    x_t = DDIMScheduler().add_noise(x0, noise, t)
    for i in range(3):
        a = schedule.alphas_cumprod[t[i]].item()
        torch.testing.assert_close(x_t[i], math.sqrt(a) * x0[i] + math.sqrt(1 - a) * noise[i])
    with pytest.raises(ValueError, match="timesteps"):
        schedule.q_sample(x0, noise, torch.tensor([0, 1, 1000]))


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_timesteps_descending_and_in_range(spacing):
    for n in (1, 3, 7, 10, 50, 333, 1000):
        steps = spaced_timesteps(1000, n, spacing)
        assert steps.dtype == torch.long and steps.shape == (n,)
        assert bool((steps[1:] < steps[:-1]).all()) and 0 <= steps.min() and steps.max() <= 999
    assert spaced_timesteps(1000, 50, "trailing")[:2].tolist() == [999, 979]
    assert spaced_timesteps(1000, 50, "leading")[:2].tolist() == [980, 960]
    with pytest.raises(ValueError, match="num_inference_steps"):
        spaced_timesteps(1000, 1001, spacing)


def test_previous_timestep_and_bad_arguments():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(4)
    assert scheduler.timesteps.tolist() == [999, 749, 499, 249]
    assert [scheduler.previous_timestep(t) for t in scheduler.timesteps] == [749, 499, 249, -1]
    with pytest.raises(ValueError, match="not one of"):
        scheduler.previous_timestep(500)
    with pytest.raises(ValueError, match="timestep_spacing"):
        DDIMScheduler(timestep_spacing="even")
    with pytest.raises(ValueError, match="eta"):
        DDIMScheduler(eta=-1.0)


# ---------------------------------------------------------------- agreement with diffusers


def _diffusers(kind: str, spacing: str, float64_schedule: bool):
    diffusers = pytest.importorskip("diffusers")
    common = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "sample",
              "clip_sample": False, "timestep_spacing": spacing, "steps_offset": 0}
    if kind == "ddim":
        scheduler = diffusers.DDIMScheduler(set_alpha_to_one=True, **common)
    else:
        scheduler = diffusers.DDPMScheduler(variance_type="fixed_small", **common)
    if float64_schedule:
        # diffusers stores ᾱ in float32 (relative error up to ~1e-5 near t = 999 and a ~1e-3 error on 1 − ᾱ_0);
        # with our float64 ᾱ the comparison isolates the step formulas.
        scheduler.alphas_cumprod = NoiseSchedule.cosine().alphas_cumprod.clone()
    return scheduler


def test_schedule_matches_diffusers():
    reference = _diffusers("ddim", "leading", float64_schedule=False)
    ours = NoiseSchedule.cosine()
    torch.testing.assert_close(reference.betas, ours.betas.to(torch.float32), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(reference.alphas_cumprod.double(), ours.alphas_cumprod, rtol=5e-5, atol=1e-9)


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_timesteps_match_diffusers(spacing):
    reference = _diffusers("ddim", spacing, float64_schedule=False)
    for n in (1, 3, 7, 10, 30, 50, 999, 1000):
        reference.set_timesteps(n)
        assert torch.equal(reference.timesteps, spaced_timesteps(1000, n, spacing)), (spacing, n)


def _compare_chain(reference, ours, num_steps, dtype, *, eta=None, consistent=False, seed=0):
    """Run diffusers' chain on random model outputs; at every step compare our step from the same x_t, using
    identically seeded generators for the step noise. Returns the largest absolute difference."""
    reference.set_timesteps(num_steps)
    ours.set_timesteps(num_steps)
    assert torch.equal(reference.timesteps, ours.timesteps)
    gen = torch.Generator().manual_seed(seed)
    x0_true = torch.randn(2, 8, 5, generator=gen, dtype=dtype)
    x_t = torch.randn(2, 8, 5, generator=gen, dtype=dtype)
    gen_ref, gen_ours = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    worst = 0.0
    for t in reference.timesteps:
        noise = torch.randn(2, 8, 5, generator=gen, dtype=dtype)
        x0_pred = x0_true + 0.1 * noise if consistent else noise
        kwargs = {} if eta is None else {"eta": eta}
        expected = reference.step(x0_pred, t, x_t, generator=gen_ref, **kwargs).prev_sample
        got = ours.step(x0_pred, t, x_t, generator=gen_ours)
        assert got.dtype == dtype
        worst = max(worst, (expected - got).abs().max().item())
        x_t = expected
    return worst


@pytest.mark.parametrize("spacing", ["trailing", "leading"])
@pytest.mark.parametrize("num_steps", [10, 50])
@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_matches_diffusers_float64(spacing, num_steps, eta):
    reference = _diffusers("ddim", spacing, float64_schedule=True)
    ours = DDIMScheduler(eta=eta, timestep_spacing=spacing)
    assert _compare_chain(reference, ours, num_steps, torch.float64, eta=eta) < 1e-10


@pytest.mark.parametrize("spacing", ["trailing", "leading"])
@pytest.mark.parametrize("num_steps", [10, 50])
def test_ddim_matches_diffusers_float32(spacing, num_steps):
    """diffusers as shipped (float32 ᾱ), float32 samples, model outputs near a true x₀."""
    reference = _diffusers("ddim", spacing, float64_schedule=False)
    ours = DDIMScheduler(timestep_spacing=spacing)
    assert _compare_chain(reference, ours, num_steps, torch.float32, consistent=True) < 3e-5


def test_ddpm_matches_diffusers_1000_steps():
    reference = _diffusers("ddpm", "leading", float64_schedule=True)
    assert _compare_chain(reference, DDPMScheduler(), 1000, torch.float64) < 1e-10


@pytest.mark.parametrize("spacing", ["trailing", "leading"])
def test_ddpm_respaced_matches_diffusers(spacing):
    reference = _diffusers("ddpm", spacing, float64_schedule=True)
    # diffusers adds √1e-20 · ε on a final step from t > 0 (a variance clamp), hence 1e-8 rather than 1e-10.
    assert _compare_chain(reference, DDPMScheduler(timestep_spacing=spacing), 50, torch.float64) < 1e-8


def test_ddpm_fixed_small_variance():
    scheduler, schedule = DDPMScheduler(), NoiseSchedule.cosine()
    x0, x_t = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 3, 4, dtype=torch.float64)
    for t in (999, 500, 1):
        mean = scheduler.step(x0, t, x_t, noise=torch.zeros_like(x0))
        shifted = scheduler.step(x0, t, x_t, noise=torch.ones_like(x0))
        torch.testing.assert_close(shifted - mean, torch.full_like(x0, schedule.posterior_variance[t].sqrt().item()))
        a_t, a_p, beta = schedule.alphas_cumprod[t], schedule.alphas_cumprod[t - 1], schedule.betas[t]
        expected = (a_p.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - a_p) * x_t) / (1 - a_t)
        torch.testing.assert_close(mean, expected)
    # the last step adds no noise and draws none
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    scheduler.step(x0, 0, x_t, generator=gen)
    assert torch.equal(gen.get_state(), state)


# ---------------------------------------------------------------- the loop


@pytest.mark.parametrize("spacing", ["trailing", "leading"])
@pytest.mark.parametrize("num_steps", [1, 3, 10, 37, 1000])
def test_ddim_with_constant_denoiser_returns_target_exactly(spacing, num_steps):
    target = torch.randn(2, 6, F, generator=torch.Generator().manual_seed(0))
    out = sample(constant_denoiser(target), (2, 6, F), DDIMScheduler(timestep_spacing=spacing),
                 num_steps=num_steps, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, target, rtol=0, atol=0)


@pytest.mark.parametrize("num_steps", [50, 1000])
def test_ddpm_with_constant_denoiser_ends_near_target(num_steps):
    target = torch.randn(2, 6, F, generator=torch.Generator().manual_seed(0))
    out = sample(constant_denoiser(target), (2, 6, F), DDPMScheduler(), num_steps=num_steps,
                 generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, target, rtol=0, atol=1e-5)


def test_sample_is_reproducible_and_ddim_deterministic():
    def denoise(x_t, t, conditional):  # a contraction, so outputs depend on x_T
        return 0.5 * x_t

    x_T = torch.randn(1, 5, F, generator=torch.Generator().manual_seed(0))
    a = sample(denoise, (1, 5, F), DDIMScheduler(), num_steps=10, x_T=x_T, generator=torch.Generator().manual_seed(1))
    b = sample(denoise, (1, 5, F), DDIMScheduler(), num_steps=10, x_T=x_T, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    c = sample(denoise, (1, 5, F), DDPMScheduler(), num_steps=20, generator=torch.Generator().manual_seed(1))
    d = sample(denoise, (1, 5, F), DDPMScheduler(), num_steps=20, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(c, d)


def test_sample_rejects_bad_shapes():
    with pytest.raises(ValueError, match="x_T"):
        sample(constant_denoiser(torch.zeros(1)), (1, 4, F), DDIMScheduler(), num_steps=2, x_T=torch.zeros(1, 5, F))
    with pytest.raises(ValueError, match="denoiser returned"):
        sample(lambda x, t, c: x[:, :2], (1, 4, F), DDIMScheduler(), num_steps=2)


# ---------------------------------------------------------------- guidance


def test_guided_x0():
    cond, uncond = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    assert guided_x0(cond, uncond, 1.0) is cond
    torch.testing.assert_close(guided_x0(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(guided_x0(cond, uncond, 2.5), uncond + 2.5 * (cond - uncond))


def test_guidance_scale_one_calls_the_denoiser_once_per_step():
    cond, uncond = torch.full((1, 4, F), 1.0), torch.full((1, 4, F), -1.0)
    calls: list = []
    out = sample(constant_denoiser(cond, uncond, calls), (1, 4, F), DDIMScheduler(), num_steps=7,
                 guidance_scale=1.0)
    torch.testing.assert_close(out, cond)
    assert len(calls) == 7 and all(conditional for _, conditional in calls)
    assert [t for t, _ in calls] == spaced_timesteps(1000, 7, "trailing").tolist()


def test_guidance_moves_away_from_the_unconditional_prediction():
    cond = torch.randn(1, 4, F, generator=torch.Generator().manual_seed(0))
    uncond = torch.randn(1, 4, F, generator=torch.Generator().manual_seed(1))
    distances = []
    for scale in (1.0, 1.5, 2.5, 4.0):
        calls: list = []
        out = sample(constant_denoiser(cond, uncond, calls), (1, 4, F), DDIMScheduler(), num_steps=5,
                     guidance_scale=scale, generator=torch.Generator().manual_seed(2))
        assert len(calls) == (5 if scale == 1.0 else 10)
        torch.testing.assert_close(out, uncond + scale * (cond - uncond))
        distances.append((out - uncond).norm().item())
    assert all(a < b for a, b in itertools.pairwise(distances))
    with pytest.raises(ValueError, match="guidance_scale"):
        sample(constant_denoiser(cond), (1, 4, F), DDIMScheduler(), num_steps=2, guidance_scale=float("nan"))


# ---------------------------------------------------------------- long horizon


def gaussian_process_denoiser(window: int, length_scale: float = 5.0):
    """The exact posterior-mean denoiser for x₀ ~ GP(0, squared-exponential kernel over frames), independent per
    feature: x̂₀ = √ᾱ Σ (ᾱ Σ + (1 − ᾱ) I)⁻¹ x_t. Its samples are smooth motions."""
    frames = torch.arange(window, dtype=torch.float64)
    kernel = torch.exp(-((frames[:, None] - frames[None, :]) ** 2) / (2 * length_scale**2))
    kernel = kernel + 1e-6 * torch.eye(window, dtype=torch.float64)
    alphas_cumprod = NoiseSchedule.cosine().alphas_cumprod
    cache: dict[int, torch.Tensor] = {}

    def denoise(x_t, t, conditional):
        step = int(t[0])
        if step not in cache:
            a = alphas_cumprod[step]
            gain = a.sqrt() * kernel @ torch.linalg.inv(a * kernel + (1 - a) * torch.eye(window, dtype=torch.float64))
            cache[step] = gain.to(x_t.dtype)
        return torch.einsum("st,btf->bsf", cache[step], x_t)

    return denoise


def test_long_horizon_is_continuous_at_the_seams():
    """Stochastic (DDPM) sampling with a smooth denoiser: hard-inpainted overlaps leave no seam.

    (With deterministic 50-step DDIM, replacement inpainting does not harmonise the free frames with the
    constraint: the same setting gives seam jumps about 1.5x the largest jump inside a window.)
    """
    window, overlap, segments = 20, 8, [20, 15, 17]
    denoise = gaussian_process_denoiser(window)
    gen = torch.Generator().manual_seed(0)
    windows: list[torch.Tensor] = []
    inpaintings: list = []

    def sample_window(inpainting, segment):
        inpaintings.append(inpainting)
        windows.append(sample(denoise, (1, window, F), DDPMScheduler(), num_steps=1000, inpainting=inpainting,
                              generator=gen))
        return windows[-1]

    out = sample_long(sample_window, segments, window=window, overlap=overlap)
    assert out.shape == (1, 52, F)
    plan = window_plan(segments, window, overlap)
    for (start, new, end, _), motion in zip(plan, windows):  # hard overlaps: each window continues the previous
        torch.testing.assert_close(out[:, start:end], motion[:, : end - start], rtol=0, atol=0)
    jumps = (out[0, 1:] - out[0, :-1]).norm(dim=-1)  # jump from frame i to i + 1, (total − 1,)
    seams = torch.zeros_like(jumps, dtype=torch.bool)
    seams[[new - 1 for _, new, _, _ in plan[1:]]] = True
    assert jumps[seams].max() <= jumps[~seams].max()
    assert inpaintings[0] is None and all(isinstance(i, Inpainting) and i.hard for i in inpaintings[1:])


def test_long_horizon_length_and_segments():
    records: list[int] = []

    def sample_window(inpainting, segment):
        records.append(segment)
        return torch.full((1, 20, F), float(segment))

    out = sample_long(sample_window, [20, 15, 17], window=20, overlap=8)
    assert out.shape == (1, 52, F) and records == [0, 1, 1, 2, 2]
    # every frame of a segment is new in a window of that segment
    torch.testing.assert_close(out[0, :, 0], torch.tensor([0.0] * 20 + [1.0] * 15 + [2.0] * 17))

    for segments in ([7], [23], [3, 30], [20, 1], [33, 30, 4]):  # totals that are not window + k · stride
        records.clear()
        out = sample_long(sample_window, segments, window=20, overlap=8)
        assert out.shape == (1, sum(segments), F)
        assert sorted(set(records)) == list(range(len(segments))) and records == sorted(records)
        plan = window_plan(segments, 20, 8)
        assert all(0 <= start < new < end <= start + 20 and new - start <= 8 for start, new, end, _ in plan[1:])

    records.clear()
    sample_long(lambda inp, seg: records.append(seg) or torch.zeros(1, 60, F), [60, 50])  # reference two-stage
    assert records == [0, 1] and window_plan([60, 50], 60, 10) == [(0, 0, 60, 0), (50, 60, 110, 1)]


def test_long_horizon_chains_each_motion_of_a_batch_on_itself():
    inpaintings: list = []

    def sample_window(inpainting, segment):  # row b of window i is the constant 10 i + b, whatever the constraint
        inpaintings.append(inpainting)
        return (10.0 * (len(inpaintings) - 1) + torch.arange(3.0))[:, None, None].expand(3, 20, F)

    out = sample_long(sample_window, [20, 15], window=20, overlap=8)
    assert out.shape == (3, 35, F)
    for b in range(3):
        torch.testing.assert_close(out[b, :, 0], torch.tensor([0.0 + b] * 20 + [10.0 + b] * 12 + [20.0 + b] * 3))
        torch.testing.assert_close(inpaintings[1].values[b, :8, 0], torch.full((8,), float(b)))  # its own overlap
        torch.testing.assert_close(inpaintings[2].values[b, :8, 0], torch.full((8,), 10.0 + b))
    with pytest.raises(ValueError, match="with B = 3 as in the first window"):
        sample_long(lambda i, s: torch.zeros(3 if i is None else 2, 20, F), [20, 15], window=20, overlap=8)


def test_long_horizon_blends_soft_overlaps_linearly():
    inpaintings: list = []

    def sample_window(inpainting, segment):  # window i is the constant i, whatever the constraint
        inpaintings.append(inpainting)
        return torch.full((1, 20, F), float(len(inpaintings) - 1))

    out = sample_long(sample_window, [32], window=20, overlap=8, hard=False)
    assert out.shape == (1, 32, F)
    blend = torch.arange(1, 9, dtype=torch.float32) / 9
    torch.testing.assert_close(out[0, 12:20, 0], blend)  # (1 − a)·0 + a·1
    torch.testing.assert_close(out[0, 20:, 0], torch.ones(12))
    mask = inpaintings[1].mask[0, :, 0]
    torch.testing.assert_close(mask[:8], torch.tensor([0.85, 0.85, 0.85, 0.70, 0.55, 0.40, 0.25, 0.10]))
    assert bool((mask[8:] == 0).all()) and not inpaintings[1].hard


def test_long_horizon_rejects_bad_arguments():
    with pytest.raises(ValueError, match="overlap"):
        sample_long(lambda i, s: torch.zeros(1, 10, F), [30], window=10, overlap=10)
    with pytest.raises(ValueError, match="segments"):
        sample_long(lambda i, s: torch.zeros(1, 10, F), [], window=10, overlap=2)
    with pytest.raises(ValueError, match="sample_window returned"):
        sample_long(lambda i, s: torch.zeros(1, 9, F), [30], window=10, overlap=2)


def test_project_x0_is_what_the_scheduler_steps_with():
    target = torch.randn(2, 6, F, generator=torch.Generator().manual_seed(0))
    projected = torch.randn(2, 6, F, generator=torch.Generator().manual_seed(1))
    seen = []

    def project(x0_hat):
        seen.append(x0_hat.clone())
        return projected.clone()

    out = sample(constant_denoiser(target), (2, 6, F), DDIMScheduler(), num_steps=7, project_x0=project,
                 generator=torch.Generator().manual_seed(2))
    assert len(seen) == 7 and all(torch.equal(x, target) for x in seen)  # the guided x̂₀, once per step
    torch.testing.assert_close(out, projected, rtol=0, atol=1e-5)  # DDIM with a constant x̂₀ ends on it


# ---------------------------------------------------------------- generator: valid hands


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny diffusion run trained for a few steps on 4 synthetic clips: far from the data, so its raw samples
    have drifting bones."""
    from handx.synth.corpus import write_synthetic
    from handx.train.diffusion import TrainConfig, train_diffusion

    root = tmp_path_factory.mktemp("valid-hands")
    write_synthetic(4, 0, root / "store", progress=False)
    train_diffusion(TrainConfig(data=str(root / "store"), out=str(root / "run"), steps=20, batch_size=4, warmup=2,
                                save_every=20, log_every=10, split=None, preset="tiny"), progress=False)
    return root


def _bone_lengths(joints):
    import numpy as np

    from handx.skeleton import bone_lengths

    return bone_lengths(np.asarray(joints, dtype=np.float64))  # (..., T, 2, 20)


def test_generated_hands_keep_their_bone_lengths(tiny_run):
    import numpy as np

    from handx.kinematics import hand_lengths_for_size
    from handx.motion import Triplet
    from handx.sampling.generate import GenerateRequest, Generator

    generator = Generator.load(tiny_run / "run")
    texts = (Triplet("the left hand waves", "the right hand makes a fist", "the hands stay apart"),)
    raw = generator.generate(GenerateRequest(texts=texts, num=3, steps=8, projection="none")).joints
    assert np.ptp(_bone_lengths(raw), axis=1).max() > 1e-3  # the raw samples drift
    for projection in ("end", "x0"):
        generated = generator.generate(GenerateRequest(texts=texts, num=3, steps=8, projection=projection))
        assert generated.request.projection == projection
        lengths = _bone_lengths(generated.joints)  # (3, 60, 2, 20)
        np.testing.assert_allclose(lengths, np.broadcast_to(generator.skeleton, lengths.shape), rtol=0, atol=1e-6)
    end = generator.generate(GenerateRequest(texts=texts, num=3, steps=8)).joints
    np.testing.assert_array_equal(end[:, :, :, 0], raw[:, :, :, 0])  # the sampler's wrists are kept
    big = generator.generate(GenerateRequest(texts=texts, num=1, steps=8, hand_size=1.2)).joints
    np.testing.assert_allclose(_bone_lengths(big), np.broadcast_to(hand_lengths_for_size(1.2), (1, 60, 2, 20)),
                               rtol=0, atol=1e-6)
    batch = generator.generate_batch(texts * 2, steps=8, projection="x0")
    np.testing.assert_allclose(_bone_lengths(batch), np.broadcast_to(generator.skeleton, (2, 60, 2, 20)), atol=1e-6)


def test_conditioned_generation_keeps_constraints_exactly_on_valid_hands(tiny_run):
    import numpy as np

    from handx.io.store import Store
    from handx.kinematics import median_bone_lengths
    from handx.motion import Triplet
    from handx.sampling.condition import Condition
    from handx.sampling.generate import GenerateRequest, Generator

    generator = Generator.load(tiny_run / "run")
    clip = np.asarray(Store(tiny_run / "store").motion(1))  # (60, 2, 21, 3) float32
    own = median_bone_lengths(clip.astype(np.float64))  # (2, 20): the condition's skeleton
    texts = (Triplet("a", "b", "c"),)
    for projection in ("end", "x0"):
        given = generator.generate(GenerateRequest(texts=texts, num=2, steps=8, projection=projection,
                                                   condition=Condition("left-hand", clip))).joints
        np.testing.assert_array_equal(given[:, :, 0], np.broadcast_to(clip[:, 0], given[:, :, 0].shape))
        reacting = _bone_lengths(given[:, :, 1])  # (2, 60, 20)
        np.testing.assert_allclose(reacting, np.broadcast_to(own[1], reacting.shape), rtol=0, atol=1e-6)
    wrists = generator.generate(GenerateRequest(texts=texts, num=2, steps=8, condition=Condition("wrists", clip)))
    np.testing.assert_array_equal(wrists.joints[:, :, :, 0], np.broadcast_to(clip[:, :, 0], (2, 60, 2, 3)))
    np.testing.assert_allclose(_bone_lengths(wrists.joints), np.broadcast_to(own, (2, 60, 2, 20)), atol=1e-6)
    ends = generator.generate(GenerateRequest(texts=texts, steps=8, condition=Condition("inbetween", clip, k=5)))
    np.testing.assert_array_equal(ends.joints[0, :5], clip[:5])
    np.testing.assert_array_equal(ends.joints[0, -5:], clip[-5:])
    with pytest.raises(ValueError, match="hand_size"):
        GenerateRequest(texts=texts, hand_size=1.0, condition=Condition("wrists", clip))
    with pytest.raises(ValueError, match="projection"):
        GenerateRequest(texts=texts, projection="always")
    with pytest.raises(ValueError, match="hand_size"):
        GenerateRequest(texts=texts, hand_size=18.3)
