"""BVH motion files: a general parser, vectorised forward kinematics, and the ManipNet two-hand importer.

Output follows DESIGN.md "Canonical data" and reference §1.1–1.2: float32 ``(T, 2, 21, 3)`` in metres at 30 fps,
hand 0 left, hand 1 right, joints in the order of :mod:`handx.skeleton`, frame +x subject's right, +y forward,
+z up, left hand on −x.

General BVH (:func:`parse_bvh`, :func:`forward_kinematics`)
    Each joint's rotation channels compose in the order the file lists them, intrinsically, as standard BVH:
    ``CHANNELS 3 Yrotation Xrotation Zrotation`` gives ``R = R_y(a1) @ R_x(a2) @ R_z(a3)`` (degrees). A joint's
    translation in its parent's frame is its OFFSET plus its position channels (in whatever order they are
    listed; the usual root has a zero OFFSET, so this equals the common "channels replace OFFSET" reading).
    ``world_R[j] = world_R[parent] @ R[j]`` and ``world_p[j] = world_p[parent] + world_R[parent] @ t[j]``,
    evaluated for all frames at once (a loop over joints only).

ManipNet pairs (:func:`read_bvh_pair`, data README "manipnet")
    *Joint mapping.* ``WRIST`` → wrist; ``{INDEX,MIDDLE,RING,PINKY}_MCP`` / ``_PIP_FE`` / ``_DIP_FE`` → that
    finger's mcp / pip / dip; ``THUMB_CMC_FE`` → thumb_cmc, ``THUMB_MCP_FE`` → thumb_mcp, ``THUMB_IP_FE`` →
    thumb_ip; ``THUMB_CMC_AA`` is dropped. Why FE and not AA: ``THUMB_CMC_FE`` is a child of the wrist, so it is
    fixed in the palm like MANO's thumb1 and the other knuckle bases, 2.6 cm from the wrist at the proximal
    edge of the palm (carpometacarpal level); ``THUMB_CMC_AA`` sits 2.8 cm further along the thumb ray, half way
    to the thumb MCP, and moves with the FE rotation (up to ~4 mm relative to the palm), i.e. it is a point on
    the moving metacarpal, not a pivot. Consequence: thumb_cmc → thumb_mcp is not one rigid offset (the AA
    rotation acts part-way along it) and its length varies by a few percent (≤ 4 % from the median in the
    shipped clips).

    *Units.* The median wrist → middle_mcp distance, taken in metres, decimetres, centimetres or millimetres,
    must land in the anatomical range ``PLAUSIBLE_PALM_LENGTH_M`` (0.06–0.16 m, adult ~0.09–0.11 m); the one
    power of ten that does is used (ManipNet: 1.07 file units → decimetres, 10.7 cm). Nothing plausible → a
    :class:`HandxInputError` that gives the measured length. Both files of a pair must agree.

    *Fingertips.* ManipNet End Sites are zero. A tip is extrapolated from the finger's distal joint (DIP; thumb
    IP) along the incoming bone's direction rotated by the distal joint's own rotation — in the world,
    ``world_R[distal] @ unit(OFFSET[distal])``, i.e. the incoming bone's direction in the parent's frame carried
    into the distal joint's frame, so a zero distal rotation continues the finger straight and a DIP flexion
    bends the tip by that angle — with length ``TIP_RATIO`` (0.8) × the incoming bone (middle phalanx; thumb:
    proximal phalanx). ManipNet tip segments are then 18–30 mm. A file whose End Site has a non-zero offset
    uses that End Site instead.

    *World → canonical.* ManipNet worlds are Unity worlds: Y up, **left-handed** (the dataset's Unity visualiser
    loads the BVH into Unity transforms unchanged, and ``Yrotation Xrotation Zrotation`` is Unity's Euler
    order). Determined from the data: in four clips every joint stays above a table plane at Y ≈ 0.26 m, and in
    three the palms mostly face −Y; fingers point along −Z in four clips and the left hand lies on +X; and, read as a
    right-handed frame, ``leftHand.bvh`` has right-hand chirality (finger flexion points along ``f × s``, with
    ``f`` = wrist → middle_mcp, ``s`` = pinky_mcp → index_mcp) while ``rightHand.bvh`` has left-hand chirality,
    in > 98 % of frames of every clip. The coordinates therefore change basis with ``MANIPNET_BASIS``:
    ``(x, y, z) = (−X, −Z, Y)``. As a 3×3 matrix its determinant is −1 because the *source* basis is
    left-handed; as a map of physical space it is a proper rotation (it keeps each hand's chirality: a matrix
    with determinant +1 here would turn the left hand into a right hand lying on the right). Then a heading, a
    quarter turn ``k × 90°`` about +z, is chosen per clip from the data: the one that best points the left →
    right wrist vector along +x and the wrist → middle_mcp vectors along +y (the continuous optimum, rounded).
    Four clips need 0°; ``cube_med2`` was recorded facing the world's −X and needs 90°. This is reference
    §1.2's axis-flip rule extended from half turns to quarter turns; :func:`handx.motion.canonical_flips`
    finds no flip on the result.

    *Time.* Frame ``i`` is at ``i × Frame Time`` (120 fps); :func:`handx.motion.resample` gives 30 fps. Both
    files of a pair must have the same frame count and frame time, between 0.1 ms and
    :data:`handx.io.importer.MAX_GAP_S` (0.25 s: resampling never bridges more), checked before anything else
    (a ``Frame Time`` of 1e9 would otherwise ask for billions of output frames).

Limits
    The parser reads the hierarchy with an explicit stack (no recursion) and refuses more than
    :data:`MAX_JOINTS` (1024) joints or :data:`MAX_DEPTH` (64) levels, naming the line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from handx import skeleton
from handx.errors import HandxInputError
from handx.io.importer import check_frame_time
from handx.kinematics import world_transforms
from handx.motion import Provenance, Sequence, resample

logger = logging.getLogger(__name__)

_POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
_ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
_CHANNEL_CANON = {name.lower(): name for name in _POSITION_CHANNELS + _ROTATION_CHANNELS}
_AXIS = {"X": 0, "Y": 1, "Z": 2}
#: Most joints in a hierarchy, and most levels from the root (a hand has 5 levels below the wrist, a body with
#: fingers about 12).
MAX_JOINTS = 1024
MAX_DEPTH = 64


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
        value = float(tok)
    except ValueError:
        raise HandxInputError(path, f"{what}: expected a number, got {tok!r}", f"line {lineno}") from None
    if not np.isfinite(value):
        raise HandxInputError(path, f"{what}: expected a finite number, got {tok!r}", f"line {lineno}")
    return value


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
        where = "line 1" if first is None else f"line {first + 1}"
        raise HandxInputError(path_str, "missing HIERARCHY: not a BVH file", where)
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
    """Parse the lines between HIERARCHY and MOTION (``line_base`` = lines before them), with an explicit stack of
    open joints, at most :data:`MAX_JOINTS` joints and :data:`MAX_DEPTH` levels."""
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

    def open_joint(name: str, parent: int, depth: int, line: int) -> int:
        """Read a joint's ``{``, OFFSET and CHANNELS; its children and ``}`` follow in the main loop."""
        if len(names) >= MAX_JOINTS:
            raise HandxInputError(path, f"more than {MAX_JOINTS} joints", f"line {line}")
        if depth > MAX_DEPTH:
            raise HandxInputError(path, f"joint {name}: hierarchy deeper than {MAX_DEPTH} joints", f"line {line}")
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
                    path,
                    f"joint {name}: CHANNELS says {count_tok} channels but lists {len(listed)} ({' '.join(listed)})",
                    f"line {line}",
                )
            for ch in listed:
                canon = _CHANNEL_CANON.get(ch.lower())
                if canon is None:
                    raise HandxInputError(
                        path, f"joint {name}: unknown channel {ch!r} (expected X/Y/Z position or rotation)",
                        f"line {line}",
                    )
                chans.append(canon)
            if len(set(chans)) != len(chans):
                raise HandxInputError(path, f"joint {name}: repeated channel in {' '.join(listed)}", f"line {line}")
        channels.append(chans)
        return index

    tok, line = take("ROOT")
    if tok.upper() != "ROOT":
        raise HandxInputError(path, f"expected ROOT, got {tok!r}", f"line {line}")
    root, _ = take("a root name")
    open_joints = [open_joint(root, -1, 1, line)]  # the chain from the root to the joint being read
    while open_joints:  # a loop, not recursion: a hierarchy thousands deep is refused, not a RecursionError
        current = open_joints[-1]
        tok, line = take("'}'")
        key = tok.upper()
        if tok == "}":
            open_joints.pop()
        elif key == "JOINT":
            child, _ = take("a joint name")
            open_joints.append(open_joint(child, current, len(open_joints) + 1, line))
        elif key == "END":
            site, sline = take("'Site'")
            if site.upper() != "SITE":
                raise HandxInputError(path, f"expected 'End Site', got 'End {site}'", f"line {sline}")
            expect("{")
            es_parents.append(current)
            es_offsets.append(offset(f"{names[current]} End Site"))
            expect("}")
        else:
            raise HandxInputError(path, f"joint {names[current]}: unexpected {tok!r}", f"line {line}")
    if pos < len(toks):
        tok, line = toks[pos]
        raise HandxInputError(
            path, f"unexpected {tok!r} after the root joint (several roots are not supported)", f"line {line}"
        )
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
            raise HandxInputError(
                path, f"expected 'Frames:' and 'Frame Time:' after MOTION, got {line[:40]!r}", f"line {i}"
            )
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
        raise HandxInputError(
            path, f"'Frames: {declared}' but the file has {len(rows)} frame rows", f"line {frames_line}"
        )
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


def axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
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
                rot[:, j] = rot[:, j] @ axis_rotation(_AXIS[ch[0]], np.deg2rad(column))
    return rot, trans


def _world_transforms(bvh: BvhFile) -> tuple[np.ndarray, np.ndarray]:
    """World rotations ``(F, J, 3, 3)`` and positions ``(F, J, 3)`` of every joint
    (:func:`handx.kinematics.world_transforms`)."""
    return world_transforms(bvh.parents, *local_transforms(bvh))


def forward_kinematics(bvh: BvhFile) -> np.ndarray:
    """World positions of every joint in every frame, in file units: ``(F, J, 3)``."""
    return _world_transforms(bvh)[1]


# ----------------------------------------------------------------------------------------------------------------
# ManipNet two-hand pairs

#: Our joint name → ManipNet BVH joint name (the 16 measured joints; tips are extrapolated).
MANIPNET_JOINTS: dict[str, str] = {
    "wrist": "WRIST",
    "index_mcp": "INDEX_MCP", "index_pip": "INDEX_PIP_FE", "index_dip": "INDEX_DIP_FE",
    "middle_mcp": "MIDDLE_MCP", "middle_pip": "MIDDLE_PIP_FE", "middle_dip": "MIDDLE_DIP_FE",
    "pinky_mcp": "PINKY_MCP", "pinky_pip": "PINKY_PIP_FE", "pinky_dip": "PINKY_DIP_FE",
    "ring_mcp": "RING_MCP", "ring_pip": "RING_PIP_FE", "ring_dip": "RING_DIP_FE",
    "thumb_cmc": "THUMB_CMC_FE", "thumb_mcp": "THUMB_MCP_FE", "thumb_ip": "THUMB_IP_FE",
}
#: Tip segment length as a fraction of the bone that enters the distal joint (middle phalanx; thumb: proximal).
TIP_RATIO = 0.8
#: Plausible wrist → middle_mcp distance in metres, used to infer the file's unit.
PLAUSIBLE_PALM_LENGTH_M: tuple[float, float] = (0.06, 0.16)
#: Candidate units: name → metres per file unit.
UNITS: dict[str, float] = {"metres": 1.0, "decimetres": 0.1, "centimetres": 0.01, "millimetres": 0.001}
#: ManipNet (Unity: left-handed, Y up, subject facing −Z) → canonical basis: (x, y, z) = (−X, −Z, Y).
MANIPNET_BASIS = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _hand_joints(bvh: BvhFile) -> np.ndarray:
    """The 21 joints of one ManipNet hand in file units and the file's world frame: ``(F, 21, 3)``."""
    missing = [name for name in MANIPNET_JOINTS.values() if name not in bvh.names]
    if missing:
        raise HandxInputError(
            bvh.path, f"not a ManipNet hand: missing joint(s) {', '.join(missing)} (found {', '.join(bvh.names)})"
        )
    world_rot, world_pos = _world_transforms(bvh)  # (F, J, 3, 3), (F, J, 3)
    out = np.empty((bvh.num_frames, skeleton.NUM_JOINTS, 3))  # (F, 21, 3)
    for ours, theirs in MANIPNET_JOINTS.items():
        out[:, skeleton.JOINT_INDEX[ours]] = world_pos[:, bvh.index(theirs)]
    for finger in skeleton.FINGERS:
        distal_name = skeleton.JOINT_NAMES[skeleton.CHAINS[finger][-2]]
        distal = bvh.index(MANIPNET_JOINTS[distal_name])
        end_sites = np.flatnonzero(bvh.end_site_parents == distal)
        site = bvh.end_site_offsets[end_sites[0]] if len(end_sites) else np.zeros(3)
        if np.linalg.norm(site) > 0:
            local_tip = site  # (3,) the file gives the tip
        else:
            incoming = bvh.offsets[distal]  # (3,) in the parent's frame
            length = np.linalg.norm(incoming)
            if length == 0:
                raise HandxInputError(
                    bvh.path, f"joint {bvh.names[distal]} has a zero OFFSET: cannot extrapolate its tip"
                )
            local_tip = TIP_RATIO * incoming  # same direction, carried into the distal joint's own frame
        tip = world_pos[:, distal] + np.einsum("fab,b->fa", world_rot[:, distal], local_tip)  # (F, 3)
        out[:, skeleton.TIPS[finger]] = tip
    return out


def _infer_unit(path: str, joints: np.ndarray) -> tuple[str, float]:
    """Pick the power-of-ten unit that makes the median wrist → middle_mcp distance anatomical."""
    palm = float(np.median(np.linalg.norm(
        joints[:, skeleton.JOINT_INDEX["middle_mcp"]] - joints[:, skeleton.WRIST], axis=-1)))
    lo, hi = PLAUSIBLE_PALM_LENGTH_M
    for name, scale in UNITS.items():
        if lo <= palm * scale <= hi:
            return name, scale
    raise HandxInputError(
        path,
        f"cannot infer the length unit: wrist to middle MCP is {palm:.6g} file units, which is no plausible hand "
        f"({lo}-{hi} m) in any of {', '.join(UNITS)}",
    )


def _rot_z(quarter_turns: int) -> np.ndarray:
    c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][quarter_turns % 4]
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _heading(joints: np.ndarray, label: str) -> int:
    """Quarter turns about +z that put the left hand on −x and the fingers along +y: ``(F, 2, 21, 3)`` → k."""
    wrist, middle = skeleton.WRIST, skeleton.JOINT_INDEX["middle_mcp"]
    lr = _unit(joints[:, skeleton.RIGHT, wrist, :2] - joints[:, skeleton.LEFT, wrist, :2])  # (F, 2)
    fingers = _unit(joints[:, :, middle, :2] - joints[:, :, wrist, :2])  # (F, 2, 2)
    a, b = lr.mean(axis=0), fingers.mean(axis=(0, 1))  # wanted along +x and +y
    # Rotating by θ scores cos θ (a_x + b_y) + sin θ (b_x − a_y): maximised at θ*, then rounded to a quarter turn.
    theta = float(np.degrees(np.arctan2(b[0] - a[1], a[0] + b[1])))
    k = int(np.round(theta / 90.0)) % 4
    off = abs((theta - 90.0 * k + 180.0) % 360.0 - 180.0)
    if off > 35.0:
        logger.warning("%s: heading is ambiguous (best %.0f deg, using %d deg)", label, theta, 90 * k)
    logger.debug("%s: heading %.1f deg, rotating by %d deg about +z", label, theta, 90 * k)
    return k


def read_bvh_pair(left_path: str | os.PathLike, right_path: str | os.PathLike, *, dataset: str = "manipnet",
                  license: str = "CC BY-NC 4.0") -> Sequence:
    """Read a ManipNet ``leftHand.bvh`` / ``rightHand.bvh`` pair into a canonical 30 fps :class:`Sequence`.

    The steps (joint mapping, unit inference, fingertip extrapolation, world → canonical frame, resampling) are
    described in the module docstring. The sequence id is the name of the left file's folder.
    """
    left, right = parse_bvh(left_path), parse_bvh(right_path)
    for bvh in (left, right):
        check_frame_time(bvh.frame_time, bvh.path, "Frame Time")  # before any work that scales with duration
    if left.num_frames != right.num_frames or not np.isclose(left.frame_time, right.frame_time, rtol=1e-6, atol=0):
        raise HandxInputError(
            left.path,
            f"left/right pair does not match: {left.path} has {left.num_frames} frames every {left.frame_time:g} s, "
            f"{right.path} has {right.num_frames} frames every {right.frame_time:g} s",
        )
    if left.num_frames < 2:
        raise HandxInputError(left.path, f"need at least 2 frames to resample, got {left.num_frames}")
    hands = []
    units = []
    for bvh in (left, right):
        joints = _hand_joints(bvh)  # (F, 21, 3) file units
        unit, scale = _infer_unit(bvh.path, joints)
        units.append(unit)
        hands.append(joints * scale)
    if units[0] != units[1]:
        raise HandxInputError(left.path, f"left/right pair uses different units: {left.path} in {units[0]}, "
                                         f"{right.path} in {units[1]}")
    joints = np.stack(hands, axis=1) @ MANIPNET_BASIS.T  # (F, 2, 21, 3) metres, canonical basis
    label = Path(left.path).parent.name
    joints = joints @ _rot_z(_heading(joints, label)).T  # (F, 2, 21, 3)
    timestamps = np.arange(left.num_frames) * left.frame_time  # (F,)
    present = np.ones((left.num_frames, skeleton.NUM_HANDS), dtype=bool)  # (F, 2)
    out, present = resample(joints, present, timestamps)  # (T, 2, 21, 3), (T, 2)
    logger.info("%s: %d frames in %s at %.0f fps -> %d frames at 30 fps", label, left.num_frames, units[0],
                1.0 / left.frame_time, out.shape[0])
    return Sequence(out.astype(np.float32), present, Provenance(dataset, label, license))


# ----------------------------------------------------------------------------------------------------------------
# Finding pairs


def _hand_files(folder: Path) -> tuple[list[Path], list[Path]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".bvh")
    lefts = [p for p in files if "left" in p.stem.lower() and "right" not in p.stem.lower()]
    rights = [p for p in files if "right" in p.stem.lower() and "left" not in p.stem.lower()]
    return lefts, rights


def discover(path: str | os.PathLike, *, errors: list[HandxInputError] | None = None) -> list[tuple[Path, Path]]:
    """Every (left, right) BVH pair at or below ``path``, sorted by folder.

    ``path`` is a directory, or one file of a pair (its folder is used). A pair is a folder holding exactly one
    ``.bvh`` file with "left" in its name and one with "right" (case-insensitive). A folder with only one of
    the two, or several candidates for a hand, is a bad item: it is appended to ``errors`` when a list is given
    (and skipped), otherwise :class:`HandxInputError` is raised naming the folder.
    """
    root = Path(path)
    if not root.exists():
        raise HandxInputError(root, "no such file or directory")
    if root.is_file():
        if root.suffix.lower() != ".bvh":
            raise HandxInputError(root, "not a .bvh file")
        folders = [root.parent]
    else:
        folders = sorted({p.parent for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".bvh"})
    pairs: list[tuple[Path, Path]] = []
    for folder in folders:
        lefts, rights = _hand_files(folder)
        problem = None
        if len(lefts) > 1 or len(rights) > 1:
            problem = f"ambiguous pair: left {[p.name for p in lefts]}, right {[p.name for p in rights]}"
        elif lefts and not rights:
            problem = f"no matching right-hand file for {lefts[0].name}"
        elif rights and not lefts:
            problem = f"no matching left-hand file for {rights[0].name}"
        elif not lefts:
            continue  # BVH files that are not hands (e.g. objects)
        if problem is not None:
            error = HandxInputError(folder, problem)
            if errors is None:
                raise error
            errors.append(error)
            logger.warning("%s", error)
            continue
        pairs.append((lefts[0], rights[0]))
    return pairs
