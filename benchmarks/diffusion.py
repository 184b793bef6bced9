"""Diffusion generator benchmark: sampling cost of DDPM-1000 against DDIM-50 at the base preset, and training
throughput (samples/s) of the tiny and base presets, on CPU or GPU (bf16 autocast on GPU).

Both samplers call the same denoiser once per step and per guidance pass, so a DDPM step costs what a DDIM step
costs; on CPU the 1000-step run is measured on its first ``--ddpm-steps`` steps and scaled to 1000 (stated in
the output). Text features are random tensors of the text encoder's width: the encoder is frozen and its
features cached, so it is not part of the per-step cost. Training throughput is the network step (forward,
loss, backward, clipping, AdamW, EMA) on random batches; the data pipeline is excluded.

    python benchmarks/diffusion.py --device cpu            # prints one JSON line
    python benchmarks/diffusion.py --device cuda           # on a GPU machine
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from handx.models.diffusion import DiffusionConfig, TrebleDenoiser  # noqa: E402
from handx.sampling.ddim import DDIMScheduler  # noqa: E402
from handx.sampling.ddpm import DDPMScheduler  # noqa: E402
from handx.sampling.loop import sample  # noqa: E402
from handx.train.losses import diffusion_loss  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_sampling(model, device, clips, steps, scheduler, guidance, max_steps=None) -> float:
    """Seconds per clip for ``steps`` sampling steps (measured on ``max_steps`` of them when given)."""
    tokens = torch.randn(3, clips, 16, model.config.text_dim, device=device)
    mask = torch.ones(3, clips, 16, dtype=torch.bool, device=device)
    drop = torch.ones(3, clips, dtype=torch.bool, device=device)

    @torch.no_grad()
    def denoise(x_t, t, conditional):
        with autocast(device):
            return model(x_t, t, tokens, mask, None if conditional else drop).float()

    run_steps = min(steps, max_steps or steps)
    shape = (clips, model.config.frames, model.config.features)
    gen = torch.Generator().manual_seed(0)
    sample(denoise, shape, scheduler, num_steps=min(steps, 3), guidance_scale=guidance, generator=gen,
           device=device)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    if run_steps == steps:
        sample(denoise, shape, scheduler, num_steps=steps, guidance_scale=guidance, generator=gen, device=device)
        sync(device)
        return (time.perf_counter() - t0) / clips
    scheduler.set_timesteps(steps)  # the warm-up changed it
    x = torch.randn(shape, device=device)
    for t in scheduler.timesteps[:run_steps]:
        tt = torch.full((clips,), int(t), device=device, dtype=torch.long)
        x0 = denoise(x, tt, True)
        if guidance != 1.0:
            u = denoise(x, tt, False)
            x0 = u + guidance * (x0 - u)
        x = scheduler.step(x0, int(t), x, generator=gen)
    sync(device)
    return (time.perf_counter() - t0) / clips * steps / run_steps


def autocast(device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def time_training(config, device, batch, steps) -> float:
    model = TrebleDenoiser(config).to(device)
    ema = TrebleDenoiser(config).to(device).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95))
    x0 = torch.randn(batch, config.frames, config.features, device=device)
    tokens = torch.randn(3, batch, 16, config.text_dim, device=device)
    mask = torch.ones(3, batch, 16, dtype=torch.bool, device=device)

    def step():
        t = torch.randint(0, 1000, (batch,), device=device)
        drop = torch.rand(3, batch, device=device) < 0.1
        with autocast(device):
            pred = model(x0 + torch.randn_like(x0), t, tokens, mask, drop)
        loss = diffusion_loss(x0, pred.float()).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), model.parameters()):
                pe.lerp_(p, 0.001)

    for _ in range(2):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clips", type=int, default=8, help="clips sampled together")
    parser.add_argument("--ddpm-steps", type=int, default=100, help="DDPM steps actually run on CPU (scaled to 1000)")
    parser.add_argument("--train-steps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    base = DiffusionConfig.preset("base")
    model = TrebleDenoiser(base).to(device).eval()
    gpu = device.type == "cuda"
    ddim = time_sampling(model, device, args.clips, 50, DDIMScheduler(), 2.5)
    ddpm = time_sampling(model, device, args.clips, 1000, DDPMScheduler(), 2.5,
                         max_steps=None if gpu else args.ddpm_steps)
    result = {
        "device": torch.cuda.get_device_name() if gpu else "cpu",
        "torch": torch.__version__, "precision": "bf16 autocast" if gpu else "fp32",
        "clips": args.clips, "ddim50_s_per_clip": ddim, "ddpm1000_s_per_clip": ddpm,
        "ddpm_measured_steps": 1000 if gpu else args.ddpm_steps,
        "train_tiny_samples_per_s": time_training(DiffusionConfig.preset("tiny"), device, 64 if gpu else 16,
                                                  args.train_steps * (4 if gpu else 1)),
        "train_base_samples_per_s": time_training(base, device, 256 if gpu else 8, args.train_steps),
        "train_batch": {"tiny": 64 if gpu else 16, "base": 256 if gpu else 8},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
