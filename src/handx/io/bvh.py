"""BVH motion files: a general parser, forward kinematics, and the ManipNet two-hand importer.

Placeholder header; the full docstring is written below once the ManipNet conventions are settled.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from handx.errors import HandxInputError

logger = logging.getLogger(__name__)

_POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
_ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
_CHANNEL_CANON = {name.lower(): name for name in _POSITION_CHANNELS + _ROTATION_CHANNELS}
_AXIS = {"X": 0, "Y": 1, "Z": 2}


@dataclasses.dataclass(frozen=True)
class BvhFile:
    """A parsed BVH file.

    Attributes:
        path: the file it was read from.
        names: joint names, ``J`` of them, in file (depth-first) order; parents come before children.
        parents: int ``(J,)``, index of each joint's parent, ``-1`` for the root.
        offsets: float64 ``(J, 3)``, each joint's OFFSET in its parent's frame (file units).
        channels: per joint, its channel names in file order (``"Xposition"``, ..., ``"Zrotation"``).
        end_site_parents: int ``(E,)``, the joint that owns each End Site.
        end_site_offsets: float64 ``(E, 3)``, each End Site's OFFSET in its joint's frame.
        frame_time: seconds between frames.
        motion: float64 ``(F, C)``, one row per frame, ``C = sum(len(c) for c in channels)`` columns in file order.
    """

    path: str
    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    end_site_parents: np.ndarray
    end_site_offsets: np.ndarray
    frame_time: float
    motion: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_channels(self) -> int:
        return int(sum(len(c) for c in self.channels))

    @property
    def channel_starts(self) -> np.ndarray:
        """int ``(J,)``: the first motion column of each joint."""
        counts = np.array([len(c) for c in self.channels], dtype=np.int64)
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    def index(self, name: str) -> int:
        """Index of the joint called ``name``; raises :class:`HandxInputError` if there is none."""
        try:
            return self.names.index(name)
        except ValueError:
            raise HandxInputError(self.path, f"no joint named {name!r} (joints: {', '.join(self.names)})") from None


# ----------------------------------------------------------------------------------------------------------------
# Parsing


def _tokens(lines: list[str]) -> list[tuple[str, int]]:
    """Whitespace tokens of the hierarchy section with their 1-based line numbers; braces are their own tokens."""
    out: list[tuple[str, int]] = []
    for lineno, line in enumerate(lines, start=1):
        for tok in line.replace("{", " { ").replace("}", " } ").split():
            out.append((tok, lineno))
    return out


def _float(path: str, tok: str, lineno: int, what: str) -> float:
    try:
        return float(tok)
    except ValueError:
        raise HandxInputError(path, f"{what}: expected a number, got {tok!r}", f"line {lineno}") from None


def parse_bvh(path: str | os.PathLike) -> BvhFile:
    """Read a BVH file: hierarchy (joints, offsets, channels, End Sites) and motion ``(F, C)``.

    Raises :class:`HandxInputError` naming the file, the line and the problem for any malformed input: missing
    HIERARCHY or MOTION, a CHANNELS count that does not match its names, unknown channel names, a frame row with
    the wrong number of values, a ``Frames:`` count that does not match the rows, non-numeric values.
    """
    path_str = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HandxInputError(path_str, f"cannot read file: {exc.strerror or exc}") from None
    lines = text.splitlines()

    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or lines[first].split()[0].upper() != "HIERARCHY":
        raise HandxInputError(path_str, "missing HIERARCHY: not a BVH file", "line 1" if first is None else f"line {first + 1}")
    motion_line = next((i for i, line in enumerate(lines) if line.strip().upper() == "MOTION"), None)
    if motion_line is None:
        raise HandxInputError(path_str, "missing MOTION section (truncated file?)")

    names, parents, offsets, channels, es_parents, es_offsets = _parse_hierarchy(
        path_str, lines[first + 1:motion_line], line_base=first + 1
    )
    frame_time, motion = _parse_motion(path_str, lines, motion_line, sum(len(c) for c in channels))
    return BvhFile(
        path=path_str,
        names=tuple(names),
        parents=np.asarray(parents, dtype=np.int64),
        offsets=np.asarray(offsets, dtype=np.float64).reshape(-1, 3),
        channels=tuple(tuple(c) for c in channels),
        end_site_parents=np.asarray(es_parents, dtype=np.int64),
        end_site_offsets=np.asarray(es_offsets, dtype=np.float64).reshape(-1, 3),
        frame_time=frame_time,
        motion=motion,
    )


def _parse_hierarchy(path: str, lines: list[str], line_base: int):
    """Recursive-descent parse of the lines between HIERARCHY and MOTION (``line_base`` = lines before them)."""
    toks = [(t, n + line_base) for t, n in _tokens(lines)]
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    es_parents: list[int] = []
    es_offsets: list[list[float]] = []
    pos = 0
    last_line = toks[-1][1] if toks else line_base

    def take(what: str) -> tuple[str, int]:
        nonlocal pos
        if pos >= len(toks):
            raise HandxInputError(path, f"hierarchy ends early: expected {what}", f"line {last_line}")
        tok = toks[pos]
        pos += 1
        return tok

    def expect(word: str) -> None:
        tok, line = take(repr(word))
        if tok != word:
            raise HandxInputError(path, f"expected {word!r}, got {tok!r}", f"line {line}")

    def offset(owner: str) -> list[float]:
        tok, line = take("OFFSET")
        if tok.upper() != "OFFSET":
            raise HandxInputError(path, f"{owner}: expected OFFSET, got {tok!r}", f"line {line}")
        vals = []
        for _ in range(3):
            t, n = take("3 OFFSET values")
            if n != line:
                raise HandxInputError(path, f"{owner}: OFFSET needs 3 values", f"line {line}")
            vals.append(_float(path, t, n, f"{owner} OFFSET"))
        return vals

    def joint(name: str, parent: int) -> None:
        nonlocal pos
        index = len(names)
        names.append(name)
        parents.append(parent)
        expect("{")
        offsets.append(offset(name))
        chans: list[str] = []
        if pos < len(toks) and toks[pos][0].upper() == "CHANNELS":
            _, line = take("CHANNELS")
            count_tok, n = take("a channel count")
            if n != line or not count_tok.isdigit():
                raise HandxInputError(path, f"{name}: CHANNELS needs a count, got {count_tok!r}", f"line {line}")
            listed = []
            while pos < len(toks) and toks[pos][1] == line:
                listed.append(take("channel")[0])
            if len(listed) != int(count_tok):
                raise HandxInputError(
                    path, f"joint {name}: CHANNELS says {count_tok} channels but lists {len(listed)} ({' '.join(listed)})",
                    f"line {line}",
                )
            for ch in listed:
                canon = _CHANNEL_CANON.get(ch.lower())
                if canon is None:
                    raise HandxInputError(
                        path, f"joint {name}: unknown channel {ch!r} (expected X/Y/Z position or rotation)", f"line {line}"
                    )
                chans.append(canon)
            if len(set(chans)) != len(chans):
                raise HandxInputError(path, f"joint {name}: repeated channel in {' '.join(listed)}", f"line {line}")
        channels.append(chans)
        while True:
            tok, line = take("'}'")
            key = tok.upper()
            if tok == "}":
                return
            if key == "JOINT":
                child, _ = take("a joint name")
                joint(child, index)
            elif key == "END":
                site, sline = take("'Site'")
                if site.upper() != "SITE":
                    raise HandxInputError(path, f"expected 'End Site', got 'End {site}'", f"line {sline}")
                expect("{")
                es_parents.append(index)
                es_offsets.append(offset(f"{name} End Site"))
                expect("}")
            else:
                raise HandxInputError(path, f"joint {name}: unexpected {tok!r}", f"line {line}")

    tok, line = take("ROOT")
    if tok.upper() != "ROOT":
        raise HandxInputError(path, f"expected ROOT, got {tok!r}", f"line {line}")
    root, _ = take("a root name")
    joint(root, -1)
    if pos < len(toks):
        tok, line = toks[pos]
        raise HandxInputError(path, f"unexpected {tok!r} after the root joint (several roots are not supported)", f"line {line}")
    return names, parents, offsets, channels, es_parents, es_offsets


def _parse_motion(path: str, lines: list[str], motion_line: int, num_channels: int) -> tuple[float, np.ndarray]:
    """Parse ``Frames:``, ``Frame Time:`` and the value rows after the MOTION line (0-based ``motion_line``)."""
    header: dict[str, tuple[str, int]] = {}
    i = motion_line + 1
    while i < len(lines) and len(header) < 2:
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        key, sep, value = line.partition(":")
        key = " ".join(key.split()).lower()
        if not sep or key not in ("frames", "frame time"):
            raise HandxInputError(path, f"expected 'Frames:' and 'Frame Time:' after MOTION, got {line[:40]!r}", f"line {i}")
        header[key] = (value.strip(), i)
    for key in ("frames", "frame time"):
        if key not in header:
            raise HandxInputError(path, f"missing '{key.title()}:' after MOTION (truncated file?)", f"line {i}")
    frames_tok, frames_line = header["frames"]
    if not frames_tok.isdigit():
        raise HandxInputError(path, f"Frames: expected a whole number, got {frames_tok!r}", f"line {frames_line}")
    declared = int(frames_tok)
    time_tok, time_line = header["frame time"]
    frame_time = _float(path, time_tok, time_line, "Frame Time")
    if not frame_time > 0:
        raise HandxInputError(path, f"Frame Time must be positive, got {frame_time}", f"line {time_line}")

    rows: list[list[str]] = []
    row_lines: list[int] = []
    for lineno in range(i, len(lines)):
        vals = lines[lineno].split()
        if not vals:
            continue
        if len(vals) != num_channels:
            raise HandxInputError(
                path, f"frame {len(rows)} has {len(vals)} values, expected {num_channels}", f"line {lineno + 1}"
            )
        rows.append(vals)
        row_lines.append(lineno + 1)
    if len(rows) != declared:
        raise HandxInputError(path, f"'Frames: {declared}' but the file has {len(rows)} frame rows", f"line {frames_line}")
    try:
        motion = np.array(rows, dtype=np.float64).reshape(len(rows), num_channels)  # (F, C)
    except ValueError:
        for frame, (vals, lineno) in enumerate(zip(rows, row_lines)):
            for v in vals:
                try:
                    float(v)
                except ValueError:
                    raise HandxInputError(path, f"frame {frame}: non-numeric value {v!r}", f"line {lineno}") from None
        raise
    if not np.isfinite(motion).all():
        frame = int(np.flatnonzero(~np.isfinite(motion).all(axis=1))[0])
        raise HandxInputError(path, f"frame {frame}: non-finite value", f"line {row_lines[frame]}")
    return frame_time, motion


# ----------------------------------------------------------------------------------------------------------------
# Forward kinematics


def _axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices about coordinate ``axis`` by ``angle`` radians: ``(F,)`` → ``(F, 3, 3)``."""
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


def local_transforms(bvh: BvhFile) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame local rotation and translation of every joint.

    Rotations compose in the order the channels are listed (intrinsic): ``Yrotation Xrotation Zrotation`` gives
    ``R = R_y @ R_x @ R_z``; angles are degrees. The translation is OFFSET plus any position channels.

    Returns:
        rotations ``(F, J, 3, 3)`` and translations ``(F, J, 3)``.
    """
    F, J = bvh.num_frames, len(bvh.names)
    rot = np.broadcast_to(np.eye(3), (F, J, 3, 3)).copy()  # (F, J, 3, 3)
    trans = np.broadcast_to(bvh.offsets, (F, J, 3)).copy()  # (F, J, 3)
    for j, (start, chans) in enumerate(zip(bvh.channel_starts, bvh.channels)):
        for k, ch in enumerate(chans):
            column = bvh.motion[:, start + k]  # (F,)
            if ch.endswith("position"):
                trans[:, j, _AXIS[ch[0]]] += column
            else:
                rot[:, j] = rot[:, j] @ _axis_rotation(_AXIS[ch[0]], np.deg2rad(column))
    return rot, trans


def _world_transforms(bvh: BvhFile) -> tuple[np.ndarray, np.ndarray]:
    """World rotations ``(F, J, 3, 3)`` and positions ``(F, J, 3)`` of every joint."""
    rot, trans = local_transforms(bvh)
    world_rot = np.empty_like(rot)
    world_pos = np.empty_like(trans)
    for j, p in enumerate(bvh.parents):
        if p < 0:
            world_rot[:, j] = rot[:, j]
            world_pos[:, j] = trans[:, j]
        else:
            world_rot[:, j] = world_rot[:, p] @ rot[:, j]
            world_pos[:, j] = world_pos[:, p] + np.einsum("fab,fb->fa", world_rot[:, p], trans[:, j])
    return world_rot, world_pos


def forward_kinematics(bvh: BvhFile) -> np.ndarray:
    """World positions of every joint in every frame, in file units: ``(F, J, 3)``."""
    return _world_transforms(bvh)[1]
