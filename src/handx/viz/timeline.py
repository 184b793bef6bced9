"""An event timeline under a rendered clip: motion-code events (reference §2.3–2.5) as bars, with a playhead.

:func:`timeline_rows` turns the dict of :func:`handx.features.codes.motion_codes` into labelled rows; each bar
spans the event's frames (state and wrist events end exclusive, contacts inclusive, as in the codes schema):

=========  ======================================================================  ==================
row        events                                                                  lanes (colour)
=========  ======================================================================  ==================
L flex     finger flexion changes of the left hand (constant states are left out)  one per finger
L pinch    left fingertip–thumb-tip contacts                                       one per finger
L wrist    left wrist moves along x, y, z                                          one per axis
R ...      the same for the right hand
L-R tips   fingertip contacts between the hands                                    one per left finger
palms      palm–palm distance: contact (dark), near (mid), approach/separate       one
=========  ======================================================================  ==================

Finger lanes use the finger colours of the skeleton, so a bar and the finger that made it match.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from PIL import ImageDraw

from handx.features.codes import WRIST_AXES
from handx.skeleton import FINGERS, HAND_NAMES
from handx.viz.draw import HAND_HUES, MUTED, PLAYHEAD, TEXT, Colour, finger_colours, font, hls

PALM_STATES: dict[str, Colour] = {"Contact": (70, 70, 78), "Near": (150, 150, 160)}
PALM_CHANGE: Colour = (200, 200, 208)
TIP_CONTACT: Colour = (95, 80, 120)
SHORT = ("L", "R")
#: Rows of every timeline: flex, pinch and wrist per hand, then two-hand tips and palms.
NUM_ROWS = 3 * len(HAND_NAMES) + 2


@dataclasses.dataclass(frozen=True)
class Bar:
    """Frames ``[start, end)`` of one event, drawn in ``lane`` of ``lanes`` sub-rows."""

    start: int
    end: int
    colour: Colour
    lane: int = 0
    lanes: int = 1


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    colour: Colour
    bars: tuple[Bar, ...]


def _hand_rows(h: int, events: dict[str, Any]) -> list[Row]:
    colours = finger_colours(h)
    base = colours[2]
    flex = []
    for key, evs in events["finger_flexing"].items():
        k = FINGERS.index(key.split("_")[0])
        flex += [Bar(e["start"], e["end"], colours[k], k, len(FINGERS)) for e in evs if "constant_des" not in e]
    pinch = []
    for key, evs in events["finger_tip_contact"].items():
        k = FINGERS.index(key.split("_")[0])
        pinch += [Bar(e["start"], e["end"] + 1, colours[k], k - 1, len(FINGERS) - 1) for e in evs]
    wrist = []
    shades = [hls(HAND_HUES[h], light) for light in (0.35, 0.50, 0.65)]
    for axis, evs in events["wrist_trajectory"].items():
        a = WRIST_AXES.index(axis)
        wrist += [Bar(e["start"], e["end"], shades[a], a, len(WRIST_AXES)) for e in evs]
    s = SHORT[h]
    return [Row(f"{s} flex", base, tuple(flex)), Row(f"{s} pinch", base, tuple(pinch)),
            Row(f"{s} wrist", base, tuple(wrist))]


def timeline_rows(codes: dict[str, Any]) -> list[Row]:
    """Rows of bars from one clip's motion codes (see the module docstring)."""
    rows = []
    for h, name in enumerate(HAND_NAMES):
        rows += _hand_rows(h, codes[f"{name}_hand_events"])
    two = codes["two_hand_relationships"]
    tips = []
    for key, evs in two["finger_tip_contact"].items():
        k = FINGERS.index(key.split(",")[0].removeprefix("left_").split("_")[0])
        tips += [Bar(e["start"], e["end"] + 1, TIP_CONTACT, k, len(FINGERS)) for e in evs]
    palms = []
    for evs in two["palm_palm_distance"].values():
        for e in evs:
            state = e.get("constant_des")
            if state is None:
                palms.append(Bar(e["start"], e["end"], PALM_CHANGE))
            elif state in PALM_STATES:
                palms.append(Bar(e["start"], e["end"], PALM_STATES[state]))
    rows += [Row("L-R tips", TEXT, tuple(tips)), Row("palms", TEXT, tuple(palms))]
    return rows


@dataclasses.dataclass(frozen=True)
class TimelineBox:
    """Where a timeline goes: its top-left corner, width, row height and label column, in pixels."""

    x: int
    y: int
    width: int
    row_height: int
    label_width: int
    font_size: int

    def height(self, rows: int) -> int:
        return rows * self.row_height + 4

    @property
    def track(self) -> tuple[int, int]:
        """Left and right pixel of the time axis."""
        return self.x + self.label_width, self.x + self.width - 6

    def frame_x(self, t: float, frames: int) -> float:
        """Pixel column of the middle of frame ``t`` of a clip of ``frames`` frames."""
        x0, x1 = self.track
        return x0 + (t + 0.5) / frames * (x1 - x0)


def draw_timeline(draw: ImageDraw.ImageDraw, box: TimelineBox, rows: Sequence[Row], frames: int,
                  fps: float) -> None:
    """The static part: labels, a light line per second, the bars."""
    face = font(box.font_size)
    x0, x1 = box.track
    bottom = box.y + len(rows) * box.row_height
    for second in range(1, int(frames / fps) + 1):
        x = x0 + second * fps / frames * (x1 - x0)
        draw.line([(x, box.y), (x, bottom)], fill=(232, 232, 236), width=1)
    for r, row in enumerate(rows):
        top = box.y + r * box.row_height
        draw.text((box.x + 2, top + box.row_height / 2), row.label, font=face, fill=row.colour, anchor="lm")
        draw.line([(x0, top + box.row_height - 1), (x1, top + box.row_height - 1)], fill=(238, 238, 240))
        inner = box.row_height - 2
        for bar in row.bars:
            lane_h = inner / bar.lanes
            y0 = top + 1 + bar.lane * lane_h
            left = x0 + bar.start / frames * (x1 - x0)
            right = max(x0 + min(bar.end, frames) / frames * (x1 - x0), left + 1)
            draw.rectangle([left, y0, right, y0 + max(lane_h - 0.5, 1)], fill=bar.colour)
    if not rows:
        draw.text((x0, box.y), "no events", font=face, fill=MUTED)


def draw_playhead(draw: ImageDraw.ImageDraw, box: TimelineBox, rows: int, t: int, frames: int) -> None:
    x = box.frame_x(t, frames)
    draw.line([(x, box.y), (x, box.y + rows * box.row_height)], fill=PLAYHEAD, width=2)
