"""``handx generate``: text (and constraints) → two-hand motion with a trained run of any generator family,
through :mod:`handx.pipelines` (a long take with ``generate_take``, saved with :mod:`handx.pipelines.io`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from handx.cli import options
from handx.sampling.condition import MODES


def register(groups: argparse._SubParsersAction) -> None:
    p = groups.add_parser(
        "generate", help="generate motion from text with a trained run",
        description="Generate two-hand motion for a description triplet (--left, --right, --relation) with the EMA "
                    "weights of a run's newest checkpoint. Output: an .npz with joints (K, T, 2, 21, 3) in metres, "
                    "the texts and the settings. Long takes: give several triplets (repeat the three options, one "
                    "triplet per segment) and/or --length; windows are chained with --overlap frames. "
                    "Conditioning (reference §5): --condition CLIP --mode left-hand|right-hand|wrists|inbetween|"
                    "continue|keyframes keeps the given hand, both wrist paths, the first and last --k frames, the "
                    "first --k frames (the motion continues from them), or the "
                    "--frames listed (a contact keyframe is a keyframe at a contact frame) from CLIP, a .npy or "
                    ".npz (key 'motion' or 'joints') holding one (60, 2, 21, 3) clip; constrained joints are "
                    "reproduced exactly (--soft: the reference's 0.85 soft mask with a 5-frame ramp). Generated "
                    "hands keep their bone lengths (--projection): each hand is put on one skeleton, the condition "
                    "clip's, else --hand-size, else the training set's median hand (the nominal adult hand for "
                    "runs that did not record one). Sampler options that a run's family does not have are ignored; "
                    "those not given take the family's defaults.")
    p.add_argument("--ckpt", default=None, metavar="RUN",
                   help="run directory (handx train diffusion or handx train ar) or built-in model name (handx models); default: the "
                        "built-in generator handx-cpu")
    p.add_argument("--checkpoint", type=Path, help="a specific checkpoint directory (default: the newest)")
    p.add_argument("--left", action="append", required=True, help="what the left hand does (repeat per segment)")
    p.add_argument("--right", action="append", required=True, help="what the right hand does")
    p.add_argument("--relation", action="append", required=True, help="how the two hands relate")
    p.add_argument("--num", type=int, default=1, help="samples to draw (default 1)")
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default=None, help="ddim (few steps, default) or ddpm")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default 50; ddpm uses up to 1000)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (default 2.5; 1 = off)")
    p.add_argument("--greedy", action="store_true", default=None,
                   help="autoregressive runs: the most likely code at every step (one motion per text)")
    p.add_argument("--temperature", type=float, default=None, help="autoregressive runs: sampling temperature (1)")
    p.add_argument("--top-k", type=int, default=None, help="autoregressive runs: sample among the K likeliest codes")
    p.add_argument("--top-p", type=float, default=None,
                   help="autoregressive runs: nucleus sampling, the smallest set of codes holding P of the "
                        "probability (default 0.95)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--length", type=int, help="frames to generate (default 60 per triplet minus overlaps)")
    p.add_argument("--overlap", type=int, default=10, help="frames shared by chained windows (default 10)")
    p.add_argument("--condition", type=Path, metavar="CLIP", help="motion supplying the constrained values")
    p.add_argument("--mode", choices=list(MODES),
                   help="conditioning mode (with --condition); each family supports its own (autoregressive "
                        "runs: continue)")
    p.add_argument("--frames", help="keyframes, comma-separated (mode keyframes), e.g. 0,30,59")
    p.add_argument("--k", type=int, default=10,
                   help="frames fixed at each end (mode inbetween) or at the start (mode continue); default 10")
    p.add_argument("--soft", action="store_true", help="soft masks (reference ramp) instead of exact constraints")
    p.add_argument("--projection", choices=["end", "x0", "none"], default=None,
                   help="how generated hands are made rigid (wrists and bone directions kept, bone lengths fixed, "
                        "constrained joints exact): 'end' projects the final sample once (default), 'x0' also "
                        "the denoiser's estimate before every step (no smoother, measured in docs/diffusion.md), "
                        "'none' keeps the raw sample (bones drift)")
    p.add_argument("--hand-size", type=float, metavar="FACTOR",
                   help="hand size as a factor of the nominal adult hand (1.0 = 18.3 cm from wrist to middle "
                        "fingertip; 0.5-2), e.g. 0.9 for a smaller hand; default: the training set's median "
                        "hand. Not with --condition (the condition clip's hands set the size)")
    p.add_argument("--smoothing", type=float, default=None, metavar="SIGMA",
                   help="Gaussian low-pass of the generated joints over time, σ in frames (default 1.5; 0 = off): "
                        "removes the sampler's frame-to-frame noise; constrained joints stay exact")
    p.add_argument("--device", default="cpu", type=options.device, help="cpu or cuda (default cpu)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.npz")
    p.add_argument("--render", type=Path, metavar="OUT.{mp4,gif,png}",
                   help="also render what was generated: every sample side by side with the texts as captions "
                        "(with --condition: constrained joints in green and the condition clip as an extra "
                        "panel); .png is a still strip")
    p.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    from handx.errors import HandxInputError
    from handx.pipelines import load_pipeline, make_settings, pipeline_class
    from handx.pipelines.io import generation_record, save_generation, triplets
    from handx.runs import open_run
    from handx.sampling.condition import Condition

    condition = None
    if args.render is not None:
        _check_render(args)
    if (args.condition is None) != (args.mode is None):
        raise HandxInputError(None, "--condition and --mode go together")
    if args.condition is not None:
        from handx.cli.annotate import _load_clip

        try:
            frames = tuple(int(f) for f in args.frames.split(",")) if args.frames else ()
        except ValueError:
            raise HandxInputError(None, f"--frames: expected frame numbers separated by commas, e.g. 0,30,59, "
                                        f"got {args.frames!r}") from None
        clip = _load_clip(args.condition, 0)  # its errors name the file already
        try:
            condition = Condition(args.mode, clip, frames=frames, k=args.k, hard=not args.soft)
        except ValueError as exc:
            raise HandxInputError(args.condition, str(exc)) from exc
    from handx.assets import DEFAULT_GENERATOR, default_run, resolve_run

    try:
        segments = triplets(args.left, args.right, args.relation)
    except ValueError as exc:
        raise HandxInputError(None, str(exc)) from exc
    run = open_run(default_run("generator") if args.ckpt is None else resolve_run(args.ckpt, kind="generator"))
    try:
        settings = make_settings(pipeline_class(run), sampler=args.sampler, steps=args.steps,
                                 guidance=args.guidance, projection=args.projection, smoothing=args.smoothing,
                                 hand_size=args.hand_size, greedy=args.greedy, temperature=args.temperature,
                                 top_k=args.top_k, top_p=args.top_p)  # checked before the weights are loaded
    except ValueError as exc:
        raise HandxInputError(None, str(exc)) from exc
    if args.ckpt is None:
        print(f"no --ckpt given: using the built-in generator {DEFAULT_GENERATOR}")
    pipeline = load_pipeline(run, checkpoint=args.checkpoint, device=args.device)
    joints = pipeline.generate_take(segments, length=args.length, overlap=args.overlap, num=args.num,
                                    seed=args.seed, constraints=condition, settings=settings)
    record = generation_record(pipeline.family, settings, joints, seed=args.seed, constraints=condition,
                               run=str(args.ckpt or DEFAULT_GENERATOR))
    save_generation(args.out, joints, segments, record)
    print(f"generated {joints.shape[0]} motion(s) of {joints.shape[1]} frames into {args.out}")
    if args.render is not None:
        _render(args, pipeline, joints, segments, condition)
    return 0


def _check_render(args: argparse.Namespace) -> None:
    """Refuse a render that cannot be made before spending time on sampling."""
    from handx.viz.panels import check_panel_count
    from handx.viz.video import output_kind

    output_kind(args.render)
    check_panel_count(args.num + (args.condition is not None))


def _render(args: argparse.Namespace, pipeline, joints, segments, condition) -> None:
    from handx.viz.panels import generation_panels
    from handx.viz.render import render

    highlight = None if condition is None else pipeline.constrained_joints(condition)  # (T, 2, 21)
    texts = [(t.left, t.right, t.relation) for t in segments]
    panels = generation_panels(joints, texts, highlight=highlight,
                               condition=None if condition is None else condition.motion)
    result = render(panels, args.render, progress=True)
    print(f"rendered {len(panels)} panel(s) into {result.path}")
