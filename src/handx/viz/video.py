"""Writing rendered frames: mp4 through the ffmpeg binary of ``imageio-ffmpeg`` (libx264, yuv420p), GIF and PNG
through Pillow. Every writer writes beside the target and renames on success (DESIGN.md: atomic writes).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from handx.errors import HandxInputError

#: Output kinds by file extension.
KINDS = {".mp4": "mp4", ".gif": "gif", ".png": "png"}


def output_kind(path: str | os.PathLike) -> str:
    """``"mp4"``, ``"gif"`` or ``"png"`` from the extension of ``path``; anything else is an input error."""
    suffix = Path(path).suffix.lower()
    if suffix not in KINDS:
        raise HandxInputError(path, f"unknown output type {suffix or '(no extension)'!r}; expected "
                                    f"{', '.join(KINDS)}")
    return KINDS[suffix]


@contextlib.contextmanager
def _beside(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` with the same extension, renamed over ``path`` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")  # the writer creates it
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike, size: tuple[int, int], fps: float) -> int:
    """Encode ``(H, W, 3)`` uint8 frames of ``size`` ``(W, H)`` (both even) as H.264; returns the frame count."""
    import imageio_ffmpeg

    if size[0] % 2 or size[1] % 2:
        raise ValueError(f"mp4 frames need an even size, got {size}")
    count = 0
    with _beside(Path(path)) as tmp:
        writer = imageio_ffmpeg.write_frames(os.fspath(tmp), size, fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                             pix_fmt_out="yuv420p", quality=8, macro_block_size=2,
                                             output_params=["-movflags", "+faststart"])
        writer.send(None)  # start ffmpeg
        try:
            for frame in frames:
                writer.send(np.ascontiguousarray(frame, dtype=np.uint8))
                count += 1
        finally:
            writer.close()
    return count


def gif_durations(frames: int, fps: float) -> list[int]:
    """Per-frame durations in ms on GIF's 10 ms grid, rounded cumulatively so the total time is right."""
    ticks = np.round(np.arange(frames + 1) * 100.0 / fps)  # centiseconds at each frame boundary
    return [max(int(d), 1) * 10 for d in np.diff(ticks)]


def write_gif(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float) -> int:
    """Frames as a looping GIF (each quantised to its own 256-colour palette); returns the frame count.

    GIF keeps every frame in memory while writing: it suits short clips; use mp4 for long ones.
    """
    images = [Image.fromarray(f).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
              for f in frames]
    if not images:
        raise ValueError("no frames to write")
    with _beside(Path(path)) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], loop=0,
                       duration=gif_durations(len(images), fps), disposal=1, optimize=False)
    return len(images)


def write_png(image: Image.Image, path: str | os.PathLike) -> None:
    with _beside(Path(path)) as tmp:
        image.save(tmp, format="PNG", optimize=True)
