"""Renders of two-hand motion (reference §9.1, DESIGN.md ``viz/``): videos (mp4, GIF) and still strips (PNG).

A video shows a grid of :class:`~handx.viz.panels.Panel` s side by side, each with its title and a frame counter,
the view of both hands (:mod:`handx.viz.draw`) from one fixed camera per panel that frames every frame of the
clip (one scale for all panels, :mod:`handx.viz.camera`), the three captions, and optionally an event timeline
with a playhead (:mod:`handx.viz.timeline`). Clips shorter than the longest hold their last frame. A strip
shows ``frames`` evenly spaced frames of each clip in a row, one row per clip, with its captions, for papers.

Views are drawn ``supersample`` times larger and reduced, which antialiases the lines.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from handx.errors import HandxInputError
from handx.motion import FPS
from handx.viz import draw as dr
from handx.viz.camera import Camera
from handx.viz.layout import Layout, RenderConfig, strip_layout, video_layout
from handx.viz.panels import Panel, check_panel_count
from handx.viz.timeline import Row, draw_playhead, draw_timeline, timeline_rows
from handx.viz.video import output_kind, write_gif, write_mp4, write_png

CAPTION_LABELS = ("Left", "Right", "Both")


@dataclasses.dataclass(frozen=True)
class Rendered:
    """What a render wrote: ``frames`` video frames (strip: cells per row) of ``size`` ``(width, height)``."""

    path: Path
    kind: str
    frames: int
    size: tuple[int, int]
    fps: float | None


# ---------------------------------------------------------------------------------------------------------------
# Static parts


def _draw_title(draw: ImageDraw.ImageDraw, layout: Layout, i: int, title: str, reserve: int) -> None:
    x, y = layout.origin(i)
    w = layout.panel_size[0]
    draw.rectangle([x, y, x + w - 1, y + layout.title_height - 1], fill=(238, 238, 242))
    face = dr.font(layout.config.font_size + 1)
    draw.text((x + 6, y + layout.title_height / 2), dr.fit_text(title, face, w - 12 - reserve), font=face,
              fill=dr.TEXT, anchor="lm")


def _draw_captions(draw: ImageDraw.ImageDraw, layout: Layout, i: int, texts: tuple[str, str, str] | None) -> None:
    c = layout.config
    x, y = layout.origin(i)
    y += layout.title_height + c.height + 4
    face = dr.font(c.font_size)
    if texts is None:
        draw.text((x + 6, y), "(no description)", font=face, fill=dr.MUTED)
        return
    label_w = max(face.getlength(label) for label in CAPTION_LABELS) + 8
    width = layout.panel_size[0] - label_w - 12
    colours = (dr.hand_colour(0), dr.hand_colour(1), dr.TEXT)
    for k, (label, colour, text) in enumerate(zip(CAPTION_LABELS, colours, texts)):
        top = y + k * c.caption_lines * layout.line_height
        draw.text((x + 6, top), label, font=face, fill=colour)
        for n, line in enumerate(dr.wrap_text(text, face, width, c.caption_lines) or ["—"]):
            draw.text((x + 6 + label_w, top + n * layout.line_height), line, font=face, fill=dr.TEXT)


def panel_cameras(panels: Sequence[Panel], config: RenderConfig = RenderConfig()) -> list[Camera]:
    """The fixed camera of each panel's view (``config.width`` × ``config.height``): each frames every frame of
    its clip, all share one scale."""
    return Camera.fit_many([p.motion for p in panels], config.width, config.height, elevation=config.elevation,
                           azimuth=config.azimuth, margin=config.margin, perspective=config.perspective)


def _view_background(panel: Panel, camera: Camera, config: RenderConfig) -> Image.Image:
    """The empty view (floor grid) of a panel, supersampled."""
    big = camera.scaled(config.supersample)
    image = Image.new("RGB", (big.width, big.height), dr.PANEL_BACKGROUND)
    if config.floor:
        dr.draw_floor(ImageDraw.Draw(image), dr.floor_segments(panel.motion, big), config.supersample)
    return image


def _view(background: Image.Image, track: dr.SkeletonTrack, t: int, config: RenderConfig) -> Image.Image:
    image = background.copy()
    dr.draw_skeleton(ImageDraw.Draw(image), track, t, config.line_width * config.supersample)
    return image.reduce(config.supersample) if config.supersample > 1 else image


def _codes(panel: Panel) -> dict:
    if panel.codes is not None:
        return panel.codes
    from handx.features.codes import motion_codes

    try:
        return motion_codes(panel.motion)
    except ValueError as exc:
        raise HandxInputError(None, f"no motion codes for the timeline ({exc})", panel.title) from exc


# ---------------------------------------------------------------------------------------------------------------
# Videos


def iter_frames(panels: Sequence[Panel], *, config: RenderConfig = RenderConfig(), timeline: bool = False
                ) -> tuple[Layout, int, Iterator[np.ndarray]]:
    """The layout, the frame count (the longest panel) and an iterator of ``(H, W, 3)`` uint8 frames."""
    check_panel_count(len(panels))
    layout = video_layout(panels, config, timeline)
    total = max(p.frames for p in panels)
    cameras = panel_cameras(panels, config)
    backgrounds = [_view_background(p, cam, config) for p, cam in zip(panels, cameras)]
    tracks = [dr.SkeletonTrack.project(p.motion, cam.scaled(config.supersample), p.highlight)
              for p, cam in zip(panels, cameras)]
    counter_face = dr.font(config.font_size)
    reserve = int(counter_face.getlength(f"{total}/{total}")) + 8
    base = Image.new("RGB", layout.size, dr.BACKGROUND)
    draw = ImageDraw.Draw(base)
    rows: list[list[Row]] = []
    for i, p in enumerate(panels):
        x, y = layout.origin(i)
        draw.rectangle([x, y, x + layout.panel_size[0] - 1, y + layout.panel_size[1] - 1], fill=dr.PANEL_BACKGROUND)
        _draw_title(draw, layout, i, p.title, reserve)
        if layout.captions:
            _draw_captions(draw, layout, i, p.texts)
        if timeline:
            rows.append(timeline_rows(_codes(p)))
            draw_timeline(draw, layout.timeline_box(i), rows[-1], p.frames, FPS)

    def frames() -> Iterator[np.ndarray]:
        for t in range(total):
            image = base.copy()
            canvas = ImageDraw.Draw(image)
            for i, p in enumerate(panels):
                f = min(t, p.frames - 1)  # shorter clips hold their last frame
                image.paste(_view(backgrounds[i], tracks[i], f, config), layout.view_box(i)[:2])
                x, y = layout.origin(i)
                canvas.text((x + layout.panel_size[0] - 6, y + layout.title_height / 2), f"{f + 1}/{p.frames}",
                            font=counter_face, fill=dr.MUTED, anchor="rm")
                if timeline:
                    draw_playhead(canvas, layout.timeline_box(i), len(rows[i]), f, p.frames)
            yield np.asarray(image)

    return layout, total, frames()


def render_video(panels: Sequence[Panel], out: str | os.PathLike, *, fps: float = 30.0, timeline: bool = False,
                 config: RenderConfig = RenderConfig(), progress: bool = True) -> Rendered:
    """Write ``panels`` as an ``.mp4`` (H.264) or a looping ``.gif``: one frame per frame of the longest clip."""
    kind = output_kind(out)
    if kind == "png":
        raise HandxInputError(out, "a video is .mp4 or .gif; a .png is a still strip (render_strip)")
    if not fps > 0:
        raise HandxInputError(None, f"fps must be positive, got {fps}")
    layout, total, frames = iter_frames(panels, config=config, timeline=timeline)
    frames = tqdm(frames, total=total, desc=f"render {Path(out).name}", unit="frame", disable=not progress,
                  leave=False)
    count = write_mp4(frames, out, layout.size, fps) if kind == "mp4" else write_gif(frames, out, fps)
    return Rendered(Path(out), kind, count, layout.size, fps)


# ---------------------------------------------------------------------------------------------------------------
# Still strips


def strip_frames(num_frames: int, count: int) -> np.ndarray:
    """``count`` evenly spaced frame indices of a clip of ``num_frames`` frames, first and last included."""
    return np.round(np.linspace(0, num_frames - 1, count)).astype(np.int64)


def render_strip(panels: Sequence[Panel], out: str | os.PathLike, *, frames: int = 6,
                 config: RenderConfig = RenderConfig(), progress: bool = True) -> Rendered:
    """Write a ``.png`` of ``frames`` evenly spaced frames of each panel side by side, one row per panel, each
    cell labelled with its time (clips are at 30 fps)."""
    if output_kind(out) != "png":
        raise HandxInputError(out, "a still strip is a .png")
    if not 1 <= frames <= 32:
        raise HandxInputError(None, f"a strip shows 1 to 32 frames per clip, got {frames}")
    check_panel_count(len(panels))
    layout = strip_layout(panels, frames, config)
    cameras = panel_cameras(panels, config)
    image = Image.new("RGB", layout.size, dr.BACKGROUND)
    draw = ImageDraw.Draw(image)
    face = dr.font(max(8, config.font_size - 1))
    for i, p in enumerate(tqdm(panels, desc=f"render {Path(out).name}", unit="clip", disable=not progress,
                               leave=False)):
        x, y = layout.origin(i)
        draw.rectangle([x, y, x + layout.panel_size[0] - 1, y + layout.panel_size[1] - 1], fill=dr.PANEL_BACKGROUND)
        _draw_title(draw, layout, i, p.title, 0)
        if layout.captions:
            _draw_captions(draw, layout, i, p.texts)
        background = _view_background(p, cameras[i], config)
        track = dr.SkeletonTrack.project(p.motion, cameras[i].scaled(config.supersample), p.highlight)
        for k, f in enumerate(strip_frames(p.frames, frames).tolist()):
            box = layout.view_box(i, k)
            image.paste(_view(background, track, f, config), box[:2])
            draw.text((box[0] + 5, box[1] + 4), f"t = {f / FPS:.2f} s", font=face, fill=dr.MUTED)
            if k:
                draw.line([(box[0], box[1]), (box[0], box[3] - 1)], fill=dr.FLOOR, width=1)
    write_png(image, out)
    return Rendered(Path(out), "png", frames, layout.size, None)


def render(panels: Sequence[Panel], out: str | os.PathLike, *, fps: float = 30.0, timeline: bool = False,
           frames: int = 6, config: RenderConfig = RenderConfig(), progress: bool = True) -> Rendered:
    """:func:`render_video` for ``.mp4``/``.gif``, :func:`render_strip` (``frames`` per clip) for ``.png``."""
    if output_kind(out) == "png":
        return render_strip(panels, out, frames=frames, config=config, progress=progress)
    return render_video(panels, out, fps=fps, timeline=timeline, config=config, progress=progress)
