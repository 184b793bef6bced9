"""``handx render``: videos (mp4, GIF) and still strips (PNG) of clips from stores and motion files."""

from __future__ import annotations

import argparse
from pathlib import Path


class _ClipsAction(argparse.Action):
    """``--clips IDS [FILE_OR_STORE ...]``: pick clips from the input just before; inputs after IDS follow it."""

    def __call__(self, parser, namespace, values, option_string=None):
        sources = getattr(namespace, self.dest, None)
        if sources is None:
            sources = [[path, None] for path in (getattr(namespace, "inputs", None) or [])]
        if not sources:
            parser.error("--clips must follow the file or store it picks clips from")
        ids, *more = values
        if sources[-1][1] is not None:
            parser.error(f"two --clips for {sources[-1][0]}; list the ids once, comma-separated")
        sources[-1][1] = [i for i in ids.split(",") if i]
        sources += [[Path(p), None] for p in more]
        setattr(namespace, self.dest, sources)


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 480x360, got {text!r}") from None
    return width, height


def register(groups: argparse._SubParsersAction) -> None:
    p = groups.add_parser(
        "render", help="render clips as a video or a still strip",
        description="Render two-hand motion: both hands as skeletons (left blue, right orange, one shade per "
                    "finger) from a fixed camera behind and above the subject that frames every frame, with the "
                    "clip id and the three descriptions. Several clips are shown side by side (at most 16; "
                    "shorter clips hold their last frame). OUT.mp4 (H.264) or OUT.gif: one frame per frame; "
                    "OUT.png: a still strip of --frames evenly spaced frames per clip, one row per clip. "
                    "Inputs: dataset stores, handx generate outputs (.npz), HandX release .npz files, or "
                    ".npy/.npz clips. Example: handx render gt_store --clips X generated.npz --out cmp.mp4 "
                    "(clip X of the store, then every sample of generated.npz).")
    p.add_argument("inputs", nargs="+", type=Path, metavar="FILE_OR_STORE", help="where the clips come from")
    p.add_argument("--clips", nargs="+", action=_ClipsAction, dest="sources", metavar=("IDS", "FILE_OR_STORE"),
                   help="comma-separated clip ids to take from the input just before (default: all its clips); "
                        "further inputs may follow the ids")
    p.add_argument("--out", type=Path, required=True, metavar="OUT.{mp4,gif,png}", help="file to write")
    p.add_argument("--fps", type=float, default=30.0, help="video frame rate (default 30, the data rate)")
    p.add_argument("--timeline", action="store_true",
                   help="add an event timeline (motion codes: finger flexion, pinches, wrist moves, two-hand "
                        "contacts) with a playhead under each clip (videos)")
    p.add_argument("--frames", type=int, default=6, help="frames per clip in a .png strip (default 6)")
    p.add_argument("--variant", type=int, default=0,
                   help="which description variant to caption (default 0, the most concise)")
    p.add_argument("--size", type=_size, default=(480, 360), metavar="WxH",
                   help="pixels of each clip's view (default 480x360); captions add height")
    p.add_argument("--columns", type=int, help="clips per row of a video grid (default: up to 4)")
    p.add_argument("--elevation", type=float, default=30.0, help="camera elevation in degrees (default 30)")
    p.add_argument("--azimuth", type=float, default=0.0,
                   help="camera turn about the vertical in degrees (default 0: from behind the subject)")
    p.add_argument("--orthographic", action="store_true", help="orthographic instead of perspective view")
    p.add_argument("--no-floor", action="store_true", help="leave out the floor grid")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_render)


def _render(args: argparse.Namespace) -> int:
    from handx.errors import HandxInputError
    from handx.viz.panels import load_panels
    from handx.viz.render import RenderConfig, render
    from handx.viz.video import output_kind

    output_kind(args.out)  # refuse an unknown output type before reading anything
    try:
        config = RenderConfig(width=args.size[0], height=args.size[1], elevation=args.elevation,
                              azimuth=args.azimuth, perspective=not args.orthographic, columns=args.columns,
                              floor=not args.no_floor)
    except ValueError as exc:
        raise HandxInputError(None, str(exc)) from exc
    sources = args.sources or [[path, None] for path in args.inputs]
    panels = load_panels([(path, ids) for path, ids in sources], variant=args.variant)
    result = render(panels, args.out, fps=args.fps, timeline=args.timeline, frames=args.frames, config=config,
                    progress=not args.no_progress)
    what = f"{result.frames} frames per clip" if result.kind == "png" else f"{result.frames} frames at {args.fps:g} fps"
    print(f"rendered {len(panels)} clip(s) into {result.path} ({what}, {result.size[0]}x{result.size[1]})")
    return 0
