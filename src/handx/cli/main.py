"""The ``handx`` command: parses arguments and dispatches to one command group per module.

Every expected failure ends in one line ``handx: error: <file or option>: <problem>`` on stderr and an exit
status: 2 for a usage error (a bad option value, an unknown name, input handx cannot accept), 1 for a failure
while working (I/O, the runtime). ``-v``/``--verbose`` (before or after the command) also prints the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import traceback
from pathlib import Path

from handx import __version__
from handx.cli import annotate, data, eval as eval_cli, generate, train
from handx.cli import view as view_cli
from handx.cli import render as render_cli
from handx.cli import export as export_cli
from handx.cli import models as models_cli
from handx.cli import scale as scale_cli
from handx.errors import HandxInputError

USAGE_ERROR = 2
FAILURE = 1
INTERRUPTED = 130
#: A config field opening a library message (``TrainConfig.steps must be ...``), shown as the option that sets it.
_CONFIG_FIELD = re.compile(r"[A-Z]\w*(?:Config|Request)\.([a-z_][a-z0-9_]*)\b")
#: Temporary names of handx's writers (``.x.npz.123-ab12cd34.k2j4h5g6.tmp``, ``.x.4343.partial.png``): an
#: error about one is an error about writing into its directory.
_TEMP_NAME = re.compile(r"^\..+\.(tmp|partial)(\.\w+)?$")
_VERBOSE_HELP = "also print the traceback of an error, and log debug messages"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handx",
        description="Bimanual hand motion toolkit (HandX): import two-hand capture, build datasets, "
                    "annotate, generate and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"handx {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    data.register(groups)
    annotate.register(groups)
    train.register(groups)
    generate.register(groups)
    scale_cli.register(groups)
    eval_cli.register(groups)
    view_cli.register(groups)
    render_cli.register(groups)
    export_cli.register(groups)
    models_cli.register(groups)
    for leaf in _leaf_parsers(parser):  # -v after the command works too (``handx train diffusion ... -v``)
        leaf.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [p for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for p in dict.fromkeys(action.choices.values())]


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    children = _subparsers(parser)
    return [leaf for child in children for leaf in _leaf_parsers(child)] if children else [parser]


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--long`` option of the command line, all commands together."""
    found = {s for action in parser._actions for s in action.option_strings if s.startswith("--")}
    for child in _subparsers(parser):
        found |= _options(child)
    return found


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _os_error(exc: OSError) -> str:
    """``<file>: <problem>``; an error about a writer's temporary file names the directory it was written into."""
    problem = exc.strerror or str(exc)
    if exc.filename is None:
        return problem
    name = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes, os.PathLike)) else str(exc.filename)
    if _TEMP_NAME.match(Path(name).name):
        return f"{Path(name).parent}: cannot write a file into this directory ({problem})"
    if exc.filename2 is not None:
        return f"{name} -> {os.fsdecode(exc.filename2)}: {problem}"
    return f"{name}: {problem}"


def describe_error(exc: BaseException, options: set[str] = frozenset()) -> tuple[int, str]:
    """The exit status and the one-line message for an exception that ends a command.

    ``options``: the command line's ``--long`` options; a message that opens with a config field
    (``TrainConfig.steps``) and names no file opens with the option of the same name (``--steps``) when there is
    one.
    """
    def as_option(message: str) -> str:
        """A message that opens with a config field (not one about a file) opens with its option instead."""
        match = _CONFIG_FIELD.match(message)
        flag = "--" + match.group(1).replace("_", "-") if match else ""
        return flag + message[match.end():] if flag in options else message

    if isinstance(exc, HandxInputError):
        return USAGE_ERROR, _one_line(as_option(str(exc)) if exc.path is None else str(exc))
    if isinstance(exc, KeyError):  # a name that is not there; the message without the repr's quotes
        key = exc.args[0] if exc.args else ""
        message = str(key) if isinstance(key, str) and " " in key.strip() else f"not found: {key}"
        return USAGE_ERROR, _one_line(message)
    if isinstance(exc, ValueError):
        return USAGE_ERROR, _one_line(as_option(str(exc)) or type(exc).__name__)
    if isinstance(exc, OSError):
        return FAILURE, _one_line(_os_error(exc))
    if isinstance(exc, MemoryError):
        return FAILURE, "out of memory" + (f" ({_one_line(str(exc))})" if str(exc) else "")
    if isinstance(exc, RuntimeError):  # torch and friends: the first line says what went wrong
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        return FAILURE, _one_line(first)
    return FAILURE, (f"unexpected {type(exc).__name__}: {_one_line(str(exc))} (a bug in handx; run it again "
                     "with -v for the traceback and report it)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("handx: interrupted; committed work is kept and re-running resumes", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # stdout closed early (``handx data info S | head``): nothing left to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return FAILURE
    except Exception as exc:  # noqa: BLE001 (every error ends in one line; -v shows where it came from)
        status, message = describe_error(exc, _options(parser))
        if args.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"handx: error: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
