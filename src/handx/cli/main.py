"""The ``handx`` command: parses arguments and dispatches to one command group per module."""

from __future__ import annotations

import argparse
import logging
import sys

from handx import __version__
from handx.cli import annotate, data, eval as eval_cli, generate, train
from handx.cli import view as view_cli
from handx.cli import render as render_cli
from handx.cli import export as export_cli
from handx.cli import models as models_cli
from handx.errors import HandxInputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handx",
        description="Bimanual hand motion toolkit (HandX): import two-hand capture, build datasets, "
                    "annotate, generate and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"handx {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    data.register(groups)
    annotate.register(groups)
    train.register(groups)
    generate.register(groups)
    eval_cli.register(groups)
    view_cli.register(groups)
    render_cli.register(groups)
    export_cli.register(groups)
    models_cli.register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except HandxInputError as exc:
        print(f"handx: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("handx: interrupted; committed work is kept and re-running resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
