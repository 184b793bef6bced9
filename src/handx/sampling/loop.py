"""The sampling loop (one function over any scheduler, denoiser, guidance and inpainting) and the
long-horizon mode that chains windows (reference §4.3–4.4 and §5).

:func:`sample` runs the reverse chain: for each scheduled t, x̂₀ from the denoiser (guided, one call per step at
scale 1), optionally ``project_x0`` on x̂₀ (e.g. onto valid hands, :mod:`handx.sampling.generate`),
``scheduler.step`` to the previous timestep, then the inpainting constraint.

:func:`sample_long` generates a motion of any length as windows of ``window`` frames that start every
``window − overlap`` frames or less: every segment of the motion (its own text) is covered by windows of that
segment, and each window after the first is generated with its first ``overlap`` frames (fewer at the very
start) inpainted from the motion so far (hard by default; soft is the reference's ``run_two_stage.py``: core on
the first ``overlap − 5`` frames, ramp on the rest of the overlap). Frames of a window past the end of its
segment (or of the motion) are discarded, so any total length works. In the stitched result each overlap frame
is taken once, as the linear blend ``(1 − a_j) · previous + a_j · next`` with ``a_j = (j + 1)/(k + 1)``,
j = 0 … k − 1 over the k overlap frames, under a soft mask (it removes the seam); under a hard mask both sides
are equal and the frames stay as they are.

Replacement inpainting harmonises the free frames with the constraint only through the sampler's noise. With
the exact posterior-mean denoiser of a smooth Gaussian prior (``tests/test_sampling.py``; window 20, overlap 8,
8 seeds), the largest seam jump over the largest jump inside windows is 0.78–0.84 with 1000-step DDPM, 1.1–1.3
with 50-step DDIM at eta = 1 and 1.5 with 50-step DDIM at eta = 0: prefer DDPM for long horizons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from handx.sampling.guidance import Denoiser, check_scale, guided_prediction
from handx.sampling.inpaint import CORE, RAMP, Inpainting
from handx.sampling.modes import prefix
from handx.sampling.schedule import Scheduler, randn

#: ``sample_window(inpainting or None, segment_index) -> (B, window, F)``: one window of each of B motions, e.g. a
#: call of :func:`sample` with the text of segment ``segment_index``.
WindowSampler = Callable[[Inpainting | None, int], Tensor]


@torch.no_grad()
def sample(
    denoise: Denoiser,
    shape: tuple[int, int, int],
    scheduler: Scheduler,
    *,
    num_steps: int,
    guidance_scale: float = 1.0,
    inpainting: Inpainting | None = None,
    generator: torch.Generator | None = None,
    x_T: Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
    project_x0: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Generate x₀ ``(B, T, F)`` = ``shape``.

    ``x_T`` is the starting noise (default: N(0, I) from ``generator`` on ``device`` with ``dtype``).
    ``guidance_scale`` s: x̂₀ = u + s(c − u) (1 = conditional only, one denoiser call per step).
    ``project_x0`` maps every (guided) x̂₀ ``(B, T, F)`` to the x̂₀ the scheduler steps with, same shape.
    """
    scale = check_scale(guidance_scale)
    if len(shape) != 3:
        raise ValueError(f"sample: shape must be (B, T, F), got {tuple(shape)}")
    if x_T is None:
        x = randn(tuple(shape), generator=generator, like=torch.empty(0, device=device, dtype=dtype))
    elif tuple(x_T.shape) != tuple(shape):
        raise ValueError(f"sample: x_T has shape {tuple(x_T.shape)}, expected {tuple(shape)}")
    else:
        x = x_T
    scheduler.set_timesteps(num_steps)
    for t in tqdm(scheduler.timesteps.tolist(), desc="sampling", disable=not progress, leave=False):
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)  # (B,)
        x0_hat = guided_prediction(denoise, x, t_batch, scale)  # (B, T, F)
        if x0_hat.shape != x.shape:
            raise ValueError(f"sample: the denoiser returned shape {tuple(x0_hat.shape)} for input {tuple(x.shape)}")
        if project_x0 is not None:
            x0_hat = project_x0(x0_hat)  # (B, T, F)
        x = scheduler.step(x0_hat, t, x, generator=generator)  # x_{t_prev}
        if inpainting is not None:
            x = inpainting.apply(x, scheduler.previous_timestep(t), scheduler, generator)
    return x


def window_plan(segments: Sequence[int], window: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(start, first new frame, end, segment) of each window, in order.

    Every frame of segment s is new in a window of segment s. A window starts ``overlap`` frames before its new
    frames (fewer at the start of the motion) and keeps its frames up to ``end`` (at most ``start + window``,
    at most the end of its segment); the rest of the window is discarded.
    """
    plan = []
    position = 0
    for segment, length in enumerate(segments):
        segment_end = position + length
        while position < segment_end:
            start = max(0, position - overlap) if plan else 0
            end = min(start + window, segment_end)
            plan.append((start, position, end, segment))
            position = end
    return plan


def sample_long(
    sample_window: WindowSampler,
    segments: Sequence[int],
    *,
    window: int = 60,
    overlap: int = 10,
    hard: bool = True,
    core: float = CORE,
    ramp: int = RAMP,
    progress: bool = False,
) -> Tensor:
    """B motions ``(B, sum(segments), F)`` whose segment s (``segments[s]`` frames) follows text s.

    Windows are planned by :func:`window_plan` and generated by ``sample_window(inpainting, s)``, B motions at a
    time (B: the batch of the first window; each motion's overlap is inpainted from itself); the first gets
    ``inpainting=None``. ``segments=[60, 50]`` is the reference's two stages (60 frames from text 1, then
    60 from text 2 whose first 10 are the last 10 of stage 1).
    """
    if not segments or any(int(n) != n or n < 1 for n in segments):
        raise ValueError(f"sample_long: segments must be a non-empty list of frame counts >= 1, got {list(segments)}")
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(
            f"sample_long: need window >= 1 and 0 <= overlap < window, got window={window}, overlap={overlap}"
        )
    plan = window_plan([int(n) for n in segments], window, overlap)
    total = plan[-1][2]
    out: Tensor | None = None
    for start, new, end, segment in tqdm(plan, desc="windows", disable=not progress, leave=False):
        inpainting = None
        if out is not None and new > start:
            known = torch.zeros((out.shape[0], window, out.shape[-1]), dtype=out.dtype, device=out.device)
            known[:, : new - start] = out[:, start:new]  # (B, window, F)
            inpainting = prefix(known, new - start, hard=hard, core=core, ramp=ramp)
        motion = sample_window(inpainting, segment)
        batch = out.shape[0] if out is not None else (motion.shape[0] if motion.ndim == 3 else 0)
        if motion.ndim != 3 or motion.shape[:2] != (batch, window) or batch < 1:
            raise ValueError(
                f"sample_long: sample_window returned shape {tuple(motion.shape)}, expected (B, {window}, F)"
                + ("" if out is None else f" with B = {batch} as in the first window")
            )
        if out is None:
            shape = (batch, total, motion.shape[-1])  # (B, total, F)
            out = torch.zeros(shape, dtype=motion.dtype, device=motion.device)
        k = new - start  # overlap frames of this window
        if not hard:  # under a hard mask the overlap frames already agree exactly
            blend = torch.arange(1, k + 1, dtype=motion.dtype, device=motion.device) / (k + 1)  # a_j, (k,)
            blend = blend[None, :, None]  # (1, k, 1)
            out[:, start:new] = (1 - blend) * out[:, start:new] + blend * motion[:, :k]
        out[:, new:end] = motion[:, k : end - start]
    assert out is not None
    return out
