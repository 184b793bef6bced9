"""Option value types shared by the ``handx`` commands: a bad value is refused while the command line is parsed,
with a message naming the option (argparse adds it) and the values it takes."""

from __future__ import annotations

import argparse


def device(text: str) -> str:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N``; CUDA only where torch sees a GPU."""
    if text == "cpu":
        return text
    import torch

    try:
        parsed = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}") from None
    if parsed.type != "cuda":
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    if not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: torch sees no CUDA GPU on this machine; use cpu")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return text


def device_or_auto(text: str) -> str:
    """``--device`` of training: ``auto`` (CUDA when there is a GPU) or a :func:`device`."""
    return text if text == "auto" else device(text)


def text_encoder(text: str) -> str:
    """``--text-encoder``: one of :data:`handx.text.TEXT_ENCODER_SPECS` (``hf:`` followed by a name or path)."""
    from handx.text import TEXT_ENCODER_SPECS

    if text in TEXT_ENCODER_SPECS or (text.startswith("hf:") and text[3:]):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(TEXT_ENCODER_SPECS)}, got {text!r}")


def count(text: str) -> int:
    """A whole number >= 0 (e.g. ``--n`` clips)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1] (e.g. ``--test`` of a split)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value
