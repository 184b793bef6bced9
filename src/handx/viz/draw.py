"""Drawing primitives for renders: the palette, two-hand skeletons, the floor grid and wrapped text (Pillow).

Colours: the left hand is blue, the right hand orange (DESIGN.md canonical data: hand 0 = left); each finger
of a hand has its own shade (thumb darkest → pinky lightest, with a small hue step), joints are darker than
their bones, and constrained joints (a highlight mask) are larger green dots on either hand (their bones keep
the hand's colours, so a fully constrained hand is still recognisably left or right). Bones and joints of both
hands are drawn far-to-near from the camera (painter's order), so the nearer hand and finger stay on top.
The finger of each joint comes from :data:`handx.skeleton.CHAINS`.
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools

import numpy as np
from PIL import ImageDraw, ImageFont

from handx.skeleton import BONES, CHAINS, FINGERS, NUM_HANDS, NUM_JOINTS, WRIST
from handx.viz.camera import Camera

Colour = tuple[int, int, int]

BACKGROUND: Colour = (250, 250, 250)
PANEL_BACKGROUND: Colour = (255, 255, 255)
FLOOR: Colour = (222, 222, 226)
TEXT: Colour = (35, 35, 35)
MUTED: Colour = (130, 130, 130)
PLAYHEAD: Colour = (215, 30, 45)
#: Hue (degrees) of each hand, indexed by hand (0 = left, 1 = right), and of highlighted (constrained) joints.
HAND_HUES = (215.0, 25.0)
HIGHLIGHT_HUE = 130.0
#: Lightness of each finger's bones in ``FINGERS`` order (thumb → pinky) and the hue step between fingers.
FINGER_LIGHTNESS = (0.30, 0.38, 0.45, 0.52, 0.59)
FINGER_HUE_STEP = 5.0
SATURATION = 0.80


def hls(hue: float, lightness: float, saturation: float = SATURATION) -> Colour:
    r, g, b = colorsys.hls_to_rgb((hue % 360.0) / 360.0, lightness, saturation)
    return round(r * 255), round(g * 255), round(b * 255)


def finger_colours(hand: int) -> list[Colour]:
    """Bone colour of each finger of ``hand``, in ``FINGERS`` order."""
    return [hls(HAND_HUES[hand] + (k - 2) * FINGER_HUE_STEP, FINGER_LIGHTNESS[k]) for k in range(len(FINGERS))]


def hand_colour(hand: int) -> Colour:
    """The representative colour of ``hand`` (captions, timeline labels, the wrist)."""
    return hls(HAND_HUES[hand], 0.40)


HIGHLIGHT: Colour = hls(HIGHLIGHT_HUE, 0.42, 0.85)

#: Finger index (``FINGERS`` order) of each joint; the wrist belongs to no finger (-1).
JOINT_FINGER = np.full(NUM_JOINTS, -1, dtype=np.int64)
for _k, _finger in enumerate(FINGERS):
    JOINT_FINGER[list(CHAINS[_finger][1:])] = _k


def _palette() -> tuple[np.ndarray, np.ndarray]:
    """Bone colours ``(2, 20, 3)`` (by the child joint's finger) and joint colours ``(2, 21, 3)``."""
    bones = np.zeros((NUM_HANDS, len(BONES), 3), dtype=np.int64)
    joints = np.zeros((NUM_HANDS, NUM_JOINTS, 3), dtype=np.int64)
    for h in range(NUM_HANDS):
        fingers = np.array(finger_colours(h))  # (5, 3)
        bones[h] = fingers[JOINT_FINGER[BONES[:, 1]]]
        darker = np.array([hls(HAND_HUES[h] + (k - 2) * FINGER_HUE_STEP, FINGER_LIGHTNESS[k] - 0.10)
                           for k in range(len(FINGERS))])
        joints[h] = darker[np.maximum(JOINT_FINGER, 0)]
        joints[h, WRIST] = hand_colour(h)
    return bones, joints


BONE_COLOURS, JOINT_COLOURS = _palette()
NUM_ITEMS = NUM_HANDS * (len(BONES) + NUM_JOINTS)  # 82 things to draw per frame


@dataclasses.dataclass(frozen=True)
class SkeletonTrack:
    """A clip projected once for drawing every frame: pixel positions in the (supersampled) view.

    Attributes:
        uv: ``(T, 2, 21, 2)`` pixel positions.
        scale: ``(T, 2, 21)`` apparent size factor (perspective).
        order: ``(T, 82)`` drawing order of bones (items 0–39, hand-major) and joints (40–81), far first.
        highlight: ``(T, 2, 21)`` bool or None.
    """

    uv: np.ndarray
    scale: np.ndarray
    order: np.ndarray
    highlight: np.ndarray | None

    @classmethod
    def project(cls, motion: np.ndarray, camera: Camera, highlight: np.ndarray | None) -> "SkeletonTrack":
        uv = camera.project(motion)  # (T, 2, 21, 2)
        depth = camera.depth(motion)  # (T, 2, 21)
        bone_depth = (depth[..., BONES[:, 0]] + depth[..., BONES[:, 1]]) / 2  # (T, 2, 20)
        joint_depth = depth - 1e-4  # a joint sits on top of the bones that meet at it
        t = motion.shape[0]
        items = np.concatenate([bone_depth.reshape(t, -1), joint_depth.reshape(t, -1)], axis=1)  # (T, 82)
        order = np.argsort(-items, axis=1, kind="stable")
        return cls(uv, camera.scale(motion), order, highlight)


def draw_skeleton(draw: ImageDraw.ImageDraw, track: SkeletonTrack, t: int, line_width: float) -> None:
    """Draw frame ``t`` of ``track``: both hands, far bones and joints first."""
    uv, scale = track.uv[t], track.scale[t]  # (2, 21, 2), (2, 21)
    mark = track.highlight[t] if track.highlight is not None else np.zeros((NUM_HANDS, NUM_JOINTS), dtype=bool)
    n_bones = len(BONES)
    for item in track.order[t].tolist():
        if item < NUM_HANDS * n_bones:
            h, b = divmod(item, n_bones)
            p, c = BONES[b]
            width = max(1, round(line_width * (scale[h, p] + scale[h, c]) / 2))
            draw.line([tuple(uv[h, p]), tuple(uv[h, c])], fill=tuple(BONE_COLOURS[h, b]), width=width)
        else:
            h, j = divmod(item - NUM_HANDS * n_bones, NUM_JOINTS)
            radius = 0.62 * line_width * scale[h, j] * (1.6 if mark[h, j] else 1.0)
            x, y = uv[h, j]
            colour = HIGHLIGHT if mark[h, j] else tuple(JOINT_COLOURS[h, j])
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)


def floor_segments(points: np.ndarray, camera: Camera, max_lines: int = 14) -> np.ndarray:
    """A square grid on the floor below all ``points`` ``(..., 3)``, as pixel segments ``(n, 2, 2)``.

    The floor is the plane just below the lowest joint; spacing is the smallest of 2, 5, 10, 20, 50 cm that
    keeps at most ``max_lines`` lines per direction.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    lo, hi = p.min(axis=0) - 0.03, p.max(axis=0) + 0.03
    span = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    step = next((s for s in (0.02, 0.05, 0.1, 0.2, 0.5, 1.0) if span / s <= max_lines), span / max_lines)
    z = p[:, 2].min() - 0.01
    xs = np.arange(np.floor(lo[0] / step), np.ceil(hi[0] / step) + 1) * step
    ys = np.arange(np.floor(lo[1] / step), np.ceil(hi[1] / step) + 1) * step
    along_y = np.stack([np.stack([xs, np.full_like(xs, ys[0]), np.full_like(xs, z)], -1),
                        np.stack([xs, np.full_like(xs, ys[-1]), np.full_like(xs, z)], -1)], axis=1)  # (nx, 2, 3)
    along_x = np.stack([np.stack([np.full_like(ys, xs[0]), ys, np.full_like(ys, z)], -1),
                        np.stack([np.full_like(ys, xs[-1]), ys, np.full_like(ys, z)], -1)], axis=1)  # (ny, 2, 3)
    return camera.project(np.concatenate([along_y, along_x]))  # (n, 2, 2)


def draw_floor(draw: ImageDraw.ImageDraw, segments: np.ndarray, width: int) -> None:
    for a, b in segments.tolist():
        draw.line([tuple(a), tuple(b)], fill=FLOOR, width=width)


@functools.lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` pixels (no download)."""
    return ImageFont.load_default(size=size)


def fit_text(text: str, face: ImageFont.FreeTypeFont, width: float) -> str:
    """``text`` cut to ``width`` pixels, with an ellipsis when cut."""
    if face.getlength(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if face.getlength(text[:mid].rstrip() + "…") <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def wrap_text(text: str, face: ImageFont.FreeTypeFont, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap of ``text`` into at most ``max_lines`` lines of ``width`` pixels; the last line ends
    with an ellipsis when text was left out."""
    words = text.split()
    lines: list[str] = []
    current = ""
    for i, word in enumerate(words):
        candidate = f"{current} {word}" if current else word
        if face.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        if len(lines) == max_lines:
            break
    else:
        if current:
            lines.append(current)
        return [fit_text(line, face, width) for line in lines]
    # Ran out of lines: the last kept line gets what follows and is cut with an ellipsis.
    rest = " ".join([lines[max_lines - 1], *words[i:]])
    return [fit_text(line, face, width) for line in lines[:max_lines - 1]] + [fit_text(rest, face, width)]
