"""Leap Motion skeletal recordings from leapjs-playback (``*.json.lz``) → a two-hand :class:`~handx.motion.Sequence`.

The output follows reference §1.1 (21 joints, hand 0 left, hand 1 right, metres, 30 fps) and §1.2 (+x right,
+y forward, +z up).

File format
-----------
A recording is a JSON document compressed with LZ-String's ``compressToBase64`` (a plain ``.json`` text starting
with ``{`` is accepted too). The document is ``{"metadata": {...}, "frames": [...]}``. Two frame layouts exist:

* ``formatVersion`` 0.1 (every recording in ``shared/data/leap``): each frame is the Leap WebSocket JSON object
  (protocol 6): ``timestamp`` (µs, device clock), ``hands[]`` and ``pointables[]``.
  A hand has ``id``, ``type`` ("left"/"right"), ``confidence``, ``palmPosition``, ``palmNormal``, ``direction``,
  ``sphereCenter``, ``r``/``s``/``t`` (motion since the previous frame) and a few scalars. A pointable has
  ``handId``, ``type`` (0–4 = thumb, index, middle, ring, pinky), ``tool``, ``mcpPosition``, ``pipPosition``,
  ``dipPosition``, ``tipPosition`` (mm) and directions/velocities. These files carry **no** ``carpPosition``,
  ``wrist``, ``elbow``, ``armBasis`` or ``bases`` field, so the wrist has to be estimated (below).
* ``formatVersion`` 2 ("packed"): ``frames[0]`` is a packing structure, a list of key names in which a
  one-key object ``{"hands": [[...names...]]}`` describes a list of sub-records; every later frame is a list of
  values in that order. It is unpacked to the object layout above before anything else.

Joint mapping (:data:`FINGER_JOINTS`)
-------------------------------------
Pointables are paired with their hand by ``handId`` and ordered by ``type``. For index, middle, ring and pinky,
``mcp/pip/dip/tipPosition`` → our ``*_mcp``, ``*_pip``, ``*_dip``, ``*_tip``. Leap's thumb has a zero-length
metacarpal, so its ``mcpPosition`` is the base of the thumb metacarpal, i.e. our ``thumb_cmc``; then
``pip`` → ``thumb_mcp``, ``dip`` → ``thumb_ip``, ``tip`` → ``thumb_tip``. Both cases are the chain of
:data:`handx.skeleton.CHAINS` without the wrist. A hand missing any of its five fingers in a frame counts as
absent there; tool pointables are ignored.

Wrist estimate (:func:`estimate_wrist`)
--------------------------------------
Leap's palm is a rigid, scaled template: the five finger bases keep fixed coordinates in the hand frame spanned
by ``direction`` and ``palmNormal`` (constant to 1e-5 mm over every recording here), and ``direction`` is the
axis of the middle metacarpal (the middle MCP lies about 3 mm off the line through ``palmPosition``). The wrist is
placed on that axis behind the middle MCP::

    wrist = middle_mcp − direction · WRIST_TO_MIDDLE_MCP_RATIO · F,    F = |mcp→pip| + |pip→dip| + |dip→tip|

with ``F`` the hand's own middle-finger length (median over its frames) and the ratio 0.9: in the anthropometric
tables of Buchholz et al. (1992) the third metacarpal is ≈0.37 and the three middle phalanges ≈0.55 of hand
length (Leap's template follows the same proportions: thumb metacarpal / middle proximal phalanx = 42/47 mm vs
0.251/0.277), and the wrist joint centre lies about 2 cm (≈0.12 hand lengths) of carpus behind the metacarpal
base, so wrist → middle MCP ≈ (0.37 + 0.12) / 0.55 ≈ 0.9 F. On the recordings here this puts the wrist 80–84 mm
behind the middle MCP, 7.5–8 mm behind the level of the thumb CMC (Leap's ``thumb.mcpPosition``, at the carpal
row) and 25–26 mm from it, and gives hand lengths (wrist → middle tip) of 16.8–17.7 cm. ``palmPosition`` and
``palmNormal`` are not needed by the rule.

Coordinates
-----------
Leap's device frame has +x to the right as the user sees it, +y up from the device and +z towards the user.
Canonical is +x right, +y forward (away from the user), +z up, so ``canonical = (x, −z, y)`` — a proper rotation
of +90° about x (:data:`DEVICE_TO_CANONICAL`, determinant +1) — and millimetres become metres. Hands are then
resampled by timestamp to 30 fps with :func:`handx.motion.resample`; a hand is present in an output frame only if
it is tracked in both bracketing samples, and its joints are NaN elsewhere. Resampling never bridges a gap longer
than :data:`handx.io.importer.MAX_GAP_S` (0.25 s; the recordings here sample every 4–37 ms): the recording is
split there into segments (:func:`read_leap_segments`), each resampled on its own, and every gap is logged with
the file and the times on each side. A lone sample between two gaps is a one-frame segment.

Leap's skeleton has fixed bone lengths per hand (constant to 1e-5 in every recording), but interpolating positions
linearly shortens a bone that turns between two samples: in ``confidence2`` a left middle fingertip flips 164° in
35 ms at confidence 0.2, and its interpolated bone is 15 % short. After resampling every bone is therefore given
back its length (the hand's median over the recording) by re-chaining from the wrist along the interpolated bone
directions (:func:`handx.kinematics.project_to_skeleton`); this moves joints by at most 0.7 mm outside that glitch (6 mm in it).

Limits (hostile or corrupt files are refused before they can cost much memory or time)
---------------------------------------------------------------------------------------
* The file and its decompressed JSON may hold at most :data:`MAX_DOCUMENT_CHARS` (256 Mi) characters, and the
  JSON at most :data:`MAX_EXPANSION` (100) times as many characters as the compressed text: LZ-String expands
  these recordings 2.7–3.1×, and 13× for a degenerate one without hands, while a crafted stream can grow
  quadratically (a 130 kB file to gigabytes).
* At most :data:`MAX_FRAMES` (200,000) frames, about 30 minutes at 115 Hz; ``metadata.frames``, when given,
  must equal the number of frames in the file.
* Positions within ±:data:`MAX_ABS_MM` (10 m) of the device (it tracks within about 0.6 m); timestamps finite
  and within ±2⁵³ µs.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from handx import skeleton
from handx.errors import HandxInputError
from handx.io.importer import MAX_GAP_S, Segment, split_at_gaps
from handx.io.paths import find_files
from handx.kinematics import median_bone_lengths, median_over_present, project_to_skeleton
from handx.motion import FPS, Provenance, Sequence, resample

logger = logging.getLogger(__name__)

SUFFIX = ".json.lz"
MM_TO_M = 1e-3
#: Device axes → canonical axes: ``canonical = DEVICE_TO_CANONICAL @ device`` (+90° about x, det +1).
DEVICE_TO_CANONICAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: Distance wrist → middle MCP as a fraction of the middle finger's length (MCP → PIP → DIP → tip).
WRIST_TO_MIDDLE_MCP_RATIO = 0.9
#: The four positions of a Leap pointable, proximal to distal.
POSITION_FIELDS: tuple[str, ...] = ("mcpPosition", "pipPosition", "dipPosition", "tipPosition")
#: Our joint index for Leap finger type 0–4 (rows, = ``skeleton.FINGERS``) × ``POSITION_FIELDS`` (columns): (5, 4).
FINGER_JOINTS = skeleton.CHAIN_ARRAY[:, 1:]
_SIDES = {"left": skeleton.LEFT, "right": skeleton.RIGHT}
#: Most characters a recording may hold, compressed or decompressed (JSON text).
MAX_DOCUMENT_CHARS = 256 * 2**20
#: Most decompressed characters per compressed character (these recordings: 2.7-3.1; no hands at all: 13).
MAX_EXPANSION = 100
#: Most frames in a recording (about 30 minutes at Leap's fastest 115 Hz).
MAX_FRAMES = 200_000
#: Largest coordinate accepted, in mm from the device (the device tracks within about 600 mm).
MAX_ABS_MM = 1e4
#: Largest timestamp magnitude accepted (µs): every integer up to it is exact in float64.
MAX_ABS_TIMESTAMP_US = float(2**53)
_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_BASE64_VALUE = {c: i for i, c in enumerate(_BASE64)}
#: Each base64 value as its six bits, most significant first (the padding "=" is 64 and carries no bits).
_SIX_BITS = [format(v & 63, "06b") for v in range(len(_BASE64))]
_MIDDLE = skeleton.FINGERS.index("middle")


def discover(path: str | os.PathLike) -> list[Path]:
    """Leap recordings at ``path``: the file itself, or every ``*.json.lz`` below a directory, sorted."""
    return find_files(path, SUFFIX)


def read_leap_segments(path: str | os.PathLike, *, dataset: str = "leap-playback",
                       license: str = "Apache-2.0") -> list[Segment]:
    """Read one leapjs-playback recording as canonical 30 fps segments, split at gaps longer than
    :data:`~handx.io.importer.MAX_GAP_S` (see the module docstring).

    Raises :class:`HandxInputError` naming the file for undecodable data, invalid JSON, malformed frames,
    non-increasing timestamps, values beyond the module's limits and recordings without any hand.
    """
    path = Path(path)
    return segments_from_document(load_document(path), path, dataset=dataset, license=license)


def read_leap(path: str | os.PathLike, *, dataset: str = "leap-playback", license: str = "Apache-2.0") -> Sequence:
    """Read a recording without gaps as one canonical 30 fps sequence (:func:`read_leap_segments` for the rest).

    Raises :class:`HandxInputError` as :func:`read_leap_segments` does, and for a recording with a gap longer
    than :data:`~handx.io.importer.MAX_GAP_S`.
    """
    path = Path(path)
    return _one_segment(read_leap_segments(path, dataset=dataset, license=license), path)


def load_document(path: str | os.PathLike) -> dict[str, Any]:
    """Decompress and parse a recording; the result has ``metadata`` and unpacked, object-style ``frames``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_CHARS:
            raise HandxInputError(path, f"file of {size} bytes is larger than the {MAX_DOCUMENT_CHARS} accepted")
        text = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise HandxInputError(path, f"cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise HandxInputError(path, f"not LZ-String base64 text (non-ASCII byte at offset {exc.start})") from exc
    if not text:
        raise HandxInputError(path, "empty file")
    raw = text if text.startswith("{") else decompress_base64(text, path)
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HandxInputError(path, f"decompressed data is not valid JSON ({exc.msg} at char {exc.pos})") from exc
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits; nesting too deep
        raise HandxInputError(path, f"decompressed data is not usable JSON ({type(exc).__name__}: "
                                    f"{str(exc)[:120]})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("frames"), list):
        raise HandxInputError(path, "expected a JSON object with a 'frames' list (leapjs-playback recording)")
    document["frames"] = _unpack_frames(document["frames"], path)
    if len(document["frames"]) > MAX_FRAMES:
        raise HandxInputError(path, f"{len(document['frames'])} frames, more than the {MAX_FRAMES} accepted")
    metadata = document.get("metadata")
    declared = metadata.get("frames") if isinstance(metadata, dict) else None
    if declared is not None and declared != len(document["frames"]):
        raise HandxInputError(path, f"metadata declares {_short(declared)} frames but the file has "
                                    f"{len(document['frames'])}")
    return document


def decompress_base64(text: str, path: str | os.PathLike | None = None) -> str:
    """LZ-String ``decompressFromBase64``, with the output bounded (module docstring, "Limits").

    The decoder is LZ-String's (the ``lzstring`` package's ``_decompress``, identical output, tested), reading
    codes from one string of bits instead of bit by bit: 3-5× faster than the package's decoder fed from a
    precomputed table, itself 4× faster than its public call. It stops with an error as soon as the output
    would pass ``min(MAX_DOCUMENT_CHARS, MAX_EXPANSION × len(text))`` characters.
    """
    try:
        bits = "".join([_SIX_BITS[_BASE64_VALUE[c]] for c in text])
    except KeyError as exc:
        raise HandxInputError(path, f"not LZ-String base64: invalid character {exc.args[0]!r}") from exc
    result = _lz_decode(bits, min(MAX_DOCUMENT_CHARS, MAX_EXPANSION * len(text)), path)
    if not result:
        raise HandxInputError(path, "LZ-String data decompresses to nothing")
    return result


def _lz_decode(bits: str, limit: int, path: str | os.PathLike | None) -> str:
    """LZ-String's decoder over ``bits`` (the stream's bits in order), refusing more than ``limit`` characters.

    A code of ``n`` bits is stored least significant bit first, so it is a slice of the reversed stream read
    as a binary number. Codes 0 and 1 bring a new 8- or 16-bit character, 2 ends the stream, any other is a
    dictionary entry (or, one past the end, the previous entry plus its own first character).
    """
    stream = bits[::-1]
    end = len(stream)
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > end:
            raise HandxInputError(path, "corrupt LZ-String data (it ends inside a code)")
        value = int(stream[end - pos - n:end - pos], 2)
        pos += n
        return value

    kind = read(2)
    if kind == 2:
        return ""
    if kind == 3:
        raise HandxInputError(path, "corrupt LZ-String data (unknown first code 3)")
    dictionary = ["", "", "", chr(read(8 if kind == 0 else 16))]  # codes 0-2 are commands
    w = dictionary[3]
    out = [w]
    size = 1
    num_bits, enlarge_in = 3, 4
    while True:
        code = read(num_bits)
        if code == 2:
            return "".join(out)
        if code < 2:
            dictionary.append(chr(read(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in, num_bits = 1 << num_bits, num_bits + 1
        if code < len(dictionary):
            entry = dictionary[code]
        elif code == len(dictionary):
            entry = w + w[0]
        else:
            raise HandxInputError(path, f"corrupt LZ-String data (code {code} past the dictionary)")
        size += len(entry)
        if size > limit:
            raise HandxInputError(path, f"LZ-String data expands to more than {limit} characters (the limit for "
                                        f"{end // 6} compressed ones): refused as a decompression bomb")
        out.append(entry)
        dictionary.append(w + entry[0])
        w = entry
        enlarge_in -= 1
        if enlarge_in == 0:
            enlarge_in, num_bits = 1 << num_bits, num_bits + 1


def _unpack_frames(frames: list, path: Path) -> list:
    """Expand the packed layout (``frames[0]`` = packing structure) to object frames; others pass through."""
    if not frames or not isinstance(frames[0], list):
        return frames
    structure = frames[0]
    try:
        return [_unpack(structure, frame) for frame in frames[1:]]
    except (TypeError, IndexError, KeyError, AttributeError, ValueError, RecursionError) as exc:
        raise HandxInputError(path, f"packed frames do not match their packing structure ({exc})"[:300]) from exc


def _unpack(structure: list, data: list) -> dict[str, Any] | list:
    """One packed record: names take values by position; ``{key: sub}`` nests; ``[[names]]`` is a list of records."""
    if len(structure) == 1 and isinstance(structure[0], list):
        return [_unpack(structure[0], item) for item in data]
    out: dict[str, Any] = {}
    for i, entry in enumerate(structure):
        if isinstance(entry, str):
            out[entry] = data[i]
        else:
            (key, sub), = entry.items()
            out[key] = _unpack(sub, data[i])
    return out


def segments_from_document(document: dict[str, Any], path: str | os.PathLike, *, dataset: str = "leap-playback",
                           license: str = "Apache-2.0") -> list[Segment]:
    """Turn a loaded recording (:func:`load_document`) into canonical 30 fps segments, split at long gaps."""
    path = Path(path)
    times_us, points, direction, present = _gather(document["frames"], path)
    if not present.any():
        raise HandxInputError(path, "no hands in any frame")
    if times_us.shape[0] < 2:
        raise HandxInputError(path, f"need at least two frames to resample, got {times_us.shape[0]}")
    bad = np.flatnonzero(np.diff(times_us) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        problem = f"timestamps must increase strictly ({times_us[i - 1]:.0f} then {times_us[i]:.0f} µs)"
        raise HandxInputError(path, problem, f"frame {i}")

    joints_mm = np.full(present.shape + (skeleton.NUM_JOINTS, 3), np.nan)  # (N, 2, 21, 3)
    joints_mm[:, :, FINGER_JOINTS, :] = points  # (N, 2, 5, 4, 3) into 20 joints
    joints_mm[:, :, skeleton.WRIST, :] = estimate_wrist(points, direction, present)
    joints = np.einsum("ij,nhkj->nhki", DEVICE_TO_CANONICAL, joints_mm) * MM_TO_M  # (N, 2, 21, 3)
    lengths = median_bone_lengths(joints, present)  # (2, 20), over the whole recording

    seconds = (times_us - times_us[0]) * 1e-6  # (N,)
    name = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem
    segments = []
    for run in split_at_gaps(seconds):
        if run.stop - run.start == 1:  # a lone sample between two gaps: one frame, nothing to interpolate
            out, out_present = joints[run], present[run]
        else:
            out, out_present = resample(joints[run], present[run], seconds[run], FPS)  # (T, 2, 21, 3), (T, 2)
        out = project_to_skeleton(out, lengths).astype(np.float32)
        sequence = Sequence(out, out_present, Provenance(dataset, name, license, "metric"))
        segments.append(Segment(sequence, float(seconds[run.start]), float(seconds[run.stop - 1])))
    if len(segments) > 1:
        logger.warning("%s: %d gap(s) longer than %g s not bridged (resampled as %d separate segments): %s", path,
                       len(segments) - 1, MAX_GAP_S, len(segments),
                       ", ".join(f"{a.end_s:.3f} s to {b.start_s:.3f} s" for a, b in zip(segments, segments[1:])))
    frames = sum(seg.sequence.num_frames for seg in segments)
    logger.info("%s: %d frames over %.2f s → %d frames at %d fps in %d segment(s); hands present %s of output "
                "frames", path, len(seconds), seconds[-1], frames, FPS, len(segments),
                "/".join(f"{n} {int(c)}" for n, c in zip(
                    skeleton.HAND_NAMES, sum(seg.sequence.present.sum(axis=0) for seg in segments))))
    return segments


def sequence_from_document(document: dict[str, Any], path: str | os.PathLike, *, dataset: str = "leap-playback",
                           license: str = "Apache-2.0") -> Sequence:
    """Turn a loaded recording without gaps into one canonical 30 fps sequence (see :func:`read_leap`)."""
    return _one_segment(segments_from_document(document, path, dataset=dataset, license=license), Path(path))


def _one_segment(segments: list[Segment], path: Path) -> Sequence:
    if len(segments) > 1:
        gaps = ", ".join(f"{a.end_s:.3f} s to {b.start_s:.3f} s" for a, b in zip(segments, segments[1:]))
        raise HandxInputError(path, f"{len(segments) - 1} gap(s) longer than {MAX_GAP_S} s ({gaps}): read it as "
                                    "segments (read_leap_segments) rather than one sequence")
    return segments[0].sequence


def estimate_wrist(points: np.ndarray, direction: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The documented wrist rule: behind the middle MCP along ``-direction`` by 0.9 × the middle finger length.

    Args:
        points: ``(N, 2, 5, 4, 3)`` finger positions (Leap finger type × mcp/pip/dip/tip), any length unit.
        direction: ``(N, 2, 3)`` Leap hand ``direction`` (palm → fingers), normalised here.
        present: ``(N, 2)`` which hands were tracked.

    Returns:
        ``(N, 2, 3)`` wrist positions, NaN where a hand is absent.
    """
    middle = points[:, :, _MIDDLE]  # (N, 2, 4, 3)
    finger = np.linalg.norm(np.diff(middle, axis=2), axis=-1).sum(axis=-1)  # (N, 2)
    per_hand = median_over_present(finger, present)  # (2,)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = direction / np.linalg.norm(direction, axis=-1, keepdims=True)  # (N, 2, 3)
    wrist = middle[:, :, 0] - unit * (WRIST_TO_MIDDLE_MCP_RATIO * per_hand)[None, :, None]  # (N, 2, 3)
    return np.where(present[..., None], wrist, np.nan)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _vector(value: Any, path: Path, item: str, field: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 3 or not all(_is_number(v) for v in value):
        raise HandxInputError(path, f"{field} must be a list of 3 numbers, got {_short(value)}", item)
    if not all(abs(v) <= MAX_ABS_MM for v in value):  # also refuses inf and NaN; a huge int may not fit a float
        raise HandxInputError(path, f"{field} {_short(value)} is not within ±{MAX_ABS_MM:g} mm of the device", item)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _timestamp(frame: dict, path: Path, item: str) -> float:
    stamp = frame.get("timestamp")
    if not _is_number(stamp):
        raise HandxInputError(path, f"missing or non-numeric timestamp {_short(stamp)}", item)
    if not abs(stamp) <= MAX_ABS_TIMESTAMP_US:
        raise HandxInputError(path, f"timestamp {_short(stamp)} is not a finite number within ±2^53 µs", item)
    return float(stamp)


def _gather(frames: list, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arrays from the JSON frames: timestamps ``(N,)`` µs, finger points ``(N, 2, 5, 4, 3)`` mm (device frame),
    hand directions ``(N, 2, 3)`` and presence ``(N, 2)``."""
    n = len(frames)
    times = np.empty(n)
    points = np.full((n, skeleton.NUM_HANDS, len(skeleton.FINGERS), len(POSITION_FIELDS), 3), np.nan)
    direction = np.full((n, skeleton.NUM_HANDS, 3), np.nan)
    present = np.zeros((n, skeleton.NUM_HANDS), dtype=bool)
    for i, frame in enumerate(frames):
        item = f"frame {i}"
        if not isinstance(frame, dict):
            raise HandxInputError(path, f"a frame must be a JSON object, got {type(frame).__name__}", item)
        times[i] = _timestamp(frame, path, item)
        hands = frame.get("hands") or []
        pointables = frame.get("pointables") or []
        if not isinstance(hands, list) or not isinstance(pointables, list):
            raise HandxInputError(path, "'hands' and 'pointables' must be lists", item)
        chosen: dict[int, dict] = {}
        for hand in hands:
            kind = hand.get("type") if isinstance(hand, dict) else None
            side = _SIDES.get(kind) if isinstance(kind, str) else None
            if side is None:
                logger.warning("%s: %s: skipping a hand without type left/right", path, item)
                continue
            confidence = hand.get("confidence", 0)
            if not _is_number(confidence):
                raise HandxInputError(path, f"hand confidence must be a number, got {_short(confidence)}", item)
            if side in chosen:
                logger.warning("%s: %s: two %s hands; keeping the more confident one", path, item, kind)
                if confidence <= chosen[side].get("confidence", 0):
                    continue
            chosen[side] = hand
        for side, hand in chosen.items():
            hand_item = f"{item}, {skeleton.HAND_NAMES[side]} hand"
            fingers = {}
            for p in pointables:
                if not isinstance(p, dict) or p.get("handId") != hand.get("id") or p.get("tool", False):
                    continue
                kind = p.get("type")
                if not isinstance(kind, int) or isinstance(kind, bool):
                    raise HandxInputError(path, f"pointable type must be a whole number, got {_short(kind)}",
                                          hand_item)
                fingers[kind] = p
            if sorted(fingers) != list(range(len(skeleton.FINGERS))):
                logger.debug("%s: %s: finger types %s, not 0-4; hand treated as absent", path, hand_item,
                             sorted(fingers))
                continue
            points[i, side] = [[_vector(fingers[f].get(k), path, hand_item, k) for k in POSITION_FIELDS]
                               for f in range(len(skeleton.FINGERS))]
            direction[i, side] = _vector(hand.get("direction"), path, hand_item, "direction")
            present[i, side] = True
    if np.any(np.linalg.norm(direction[present], axis=-1) < 1e-6):
        raise HandxInputError(path, "a hand direction is the zero vector")
    return times, points, direction, present
