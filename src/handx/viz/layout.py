"""Pixel geometry of renders: :class:`RenderConfig` (how renders look) and :class:`Layout` (where each part of a
video frame or a still strip goes).

A panel (a clip in a video grid, or a row of a strip) stacks a title bar, its view(s), the three captions (when
any panel has texts) and the event timeline (videos, on request). Frame sizes are even, as H.264 needs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from handx.viz.panels import Panel
from handx.viz.timeline import NUM_ROWS, TimelineBox

GAP = 4  # pixels between panels


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """How renders look.

    Attributes:
        width: pixels of one panel (video) or one cell (strip).
        height: pixels of the 3D view of a panel or cell.
        elevation, azimuth: camera angles in degrees (:func:`handx.viz.camera.view_rotation`).
        perspective: False for an orthographic view.
        margin: free border around the framed motion, as a fraction of the view.
        columns: panels per row of a video grid (None: up to 4).
        caption_lines: lines per caption (longer texts end with an ellipsis).
        font_size: caption size in pixels.
        supersample: views are drawn this many times larger and reduced (antialiasing).
        floor: draw a floor grid below the hands.
    """

    width: int = 480
    height: int = 360
    elevation: float = 30.0
    azimuth: float = 0.0
    perspective: bool = True
    margin: float = 0.06
    columns: int | None = None
    caption_lines: int = 2
    font_size: int = 13
    supersample: int = 2
    floor: bool = True

    def __post_init__(self) -> None:
        if not (120 <= self.width <= 4096 and 90 <= self.height <= 4096):
            raise ValueError(f"RenderConfig.width must be in [120, 4096] and height in [90, 4096], got "
                             f"{self.width}×{self.height}")
        if not -89 <= self.elevation <= 89:
            raise ValueError(f"RenderConfig.elevation must be in [-89, 89] degrees, got {self.elevation}")
        if not 0 <= self.margin < 0.5:
            raise ValueError(f"RenderConfig.margin must be in [0, 0.5), got {self.margin}")
        if self.columns is not None and self.columns < 1:
            raise ValueError(f"RenderConfig.columns must be >= 1 or None, got {self.columns}")
        if not 1 <= self.caption_lines <= 10 or not 8 <= self.font_size <= 64:
            raise ValueError(f"RenderConfig.caption_lines must be in [1, 10] and font_size in [8, 64], got "
                             f"{self.caption_lines}, {self.font_size}")
        if not 1 <= self.supersample <= 4:
            raise ValueError(f"RenderConfig.supersample must be in [1, 4], got {self.supersample}")

    @property
    def line_width(self) -> float:
        """Bone width in view pixels."""
        return max(1.5, self.width / 170)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Pixel geometry of a video frame (a grid of panels) or of a still strip (a row of ``cells`` per panel).

    Each panel (or strip row) stacks a title bar, the view(s), the captions (when any panel has texts) and the
    timeline (``timeline_rows`` > 0).
    """

    config: RenderConfig
    count: int
    columns: int
    captions: bool
    timeline_rows: int = 0
    cells: int = 1

    @property
    def title_height(self) -> int:
        return self.config.font_size + 12

    @property
    def line_height(self) -> int:
        return self.config.font_size + 3

    @property
    def caption_height(self) -> int:
        return 3 * self.config.caption_lines * self.line_height + 10 if self.captions else 0

    @property
    def row_height(self) -> int:
        return max(9, self.config.font_size - 2)

    @property
    def timeline_height(self) -> int:
        return self.timeline_rows * self.row_height + 10 if self.timeline_rows else 0

    @property
    def panel_size(self) -> tuple[int, int]:
        c = self.config
        return (c.width * self.cells, self.title_height + c.height + self.caption_height + self.timeline_height)

    @property
    def size(self) -> tuple[int, int]:
        """Frame (or image) ``(width, height)``, both even."""
        w, h = self.panel_size
        rows = math.ceil(self.count / self.columns)
        width = self.columns * w + (self.columns - 1) * GAP
        height = rows * h + (rows - 1) * GAP
        return width + width % 2, height + height % 2

    def origin(self, i: int) -> tuple[int, int]:
        """Top-left pixel of panel ``i``."""
        w, h = self.panel_size
        r, c = divmod(i, self.columns)
        return c * (w + GAP), r * (h + GAP)

    def view_box(self, i: int, cell: int = 0) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` of the view of panel ``i`` (of its ``cell``-th frame in a strip)."""
        x, y = self.origin(i)
        x += cell * self.config.width
        top = y + self.title_height
        return x, top, x + self.config.width, top + self.config.height

    def timeline_box(self, i: int) -> TimelineBox:
        x, y = self.origin(i)
        top = y + self.title_height + self.config.height + self.caption_height + 4
        size = max(8, self.config.font_size - 3)
        return TimelineBox(x + 4, top, self.panel_size[0] - 8, self.row_height, int(size * 4.6), size)


def video_layout(panels: Sequence[Panel], config: RenderConfig = RenderConfig(), timeline: bool = False) -> Layout:
    """The layout :func:`render_video` uses for ``panels``."""
    columns = min(config.columns or 4, len(panels))
    rows = NUM_ROWS if timeline else 0
    return Layout(config, len(panels), columns, any(p.texts for p in panels), rows)


def strip_layout(panels: Sequence[Panel], frames: int, config: RenderConfig = RenderConfig()) -> Layout:
    """The layout :func:`render_strip` uses: one row of ``frames`` cells per panel."""
    return Layout(config, len(panels), 1, any(p.texts for p in panels), 0, frames)
