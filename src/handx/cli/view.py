"""``handx view``: browse a store or generated motion in the local web viewer, and generate from it."""

from __future__ import annotations

import argparse
from pathlib import Path

from handx.cli import options


def register(groups: argparse._SubParsersAction) -> None:
    p = groups.add_parser(
        "view", help="browse clips in a local web viewer (and generate from it with --generate)",
        description="Serve a web page to browse PATH: a dataset store, a .npz/.npy clip file (e.g. handx generate "
                    "output) or a directory of such files. The page lists the clips with search over ids and "
                    "texts, plays both hands in 3D (drag to orbit, wheel to zoom, space to play/pause), shows all "
                    "text variants and the motion-code events on a timeline. With --generate it also shows a "
                    "generate panel: type the left-hand, right-hand and two-hands texts, optionally keep part of "
                    "the open clip (a conditioning mode), press Generate, and the generated motion plays beside "
                    "the clip. The server binds 127.0.0.1 (this machine only), serves only files under PATH and "
                    "stops with Ctrl-C.")
    p.add_argument("path", type=Path, metavar="PATH", help="store directory, clip file, or directory of clip files")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; 0.0.0.0 exposes PATH to the network, and answers then "
                        "name files relative to PATH, never by their absolute path)")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.add_argument("--generate", action="store_true",
                   help="load a generator model (any family) at start and show the generate panel (one "
                        "generation at a time); without --ckpt the default built-in generator, and the viewer "
                        "refuses to start if it is not installed (see handx models)")
    p.add_argument("--ckpt", metavar="RUN",
                   help="with --generate: the model, a run directory (handx train diffusion) or a built-in "
                        "model's name (handx models lists them)")
    p.add_argument("--device", default=None, type=options.device,
                   help="with --generate: where the model runs, cpu or cuda (default cpu)")
    p.set_defaults(func=_view)


def _view(args: argparse.Namespace) -> int:
    from handx.errors import HandxInputError
    from handx.viz.viewer import ViewerServer

    if not 0 <= args.port <= 65535:
        raise HandxInputError(None, f"--port must be in [0, 65535], got {args.port}")
    if not args.generate and (args.ckpt is not None or args.device is not None):
        raise HandxInputError(None, "--ckpt and --device choose the model of --generate; add --generate")
    try:
        server = ViewerServer(args.path, host=args.host, port=args.port, generate=args.generate, ckpt=args.ckpt,
                              device=args.device or "cpu")
    except OSError as exc:
        raise HandxInputError(None, f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
                                    "try another --port, or --port 0 for a free one") from exc
    print(f"handx viewer: {len(server.catalog)} clip(s) from {server.catalog.root} at {server.url} "
          "(Ctrl-C to stop)", flush=True)
    if server.generator is not None:
        print(f"handx viewer: generate panel on, model {server.generator.run}", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("handx viewer: stopped")
    finally:
        server.close()
    return 0
