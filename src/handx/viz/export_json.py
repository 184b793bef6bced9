"""JSON export of a two-hand clip: joints, texts and motion codes in one self-describing file.

Schema (``format`` ``"handx-clip"``, ``version`` 1)::

    {"format": "handx-clip", "version": 1,
     "id": str, "fps": float, "frames": T,
     "joint_names": [21 names, skeleton order], "hands": ["left", "right"],
     "bones": [[parent, child], ...],            # 20 index pairs, handx.skeleton.BONES
     "joints": T × 2 × 21 × 3 nested lists,      # metres, canonical frame (reference §1.2), rounded to 0.1 mm
     "texts": {"left": [...], "right": [...], "two_hands_relation": [...]},
     "codes": {...},                             # handx.features.codes.motion_codes (reference §2.5)
     "source": str,                              # the file or store the clip came from
     "provenance": {...} | null}                 # the store record's source (dataset, sequence, licence)

Joints are rounded to 4 decimals (0.1 mm), so a read-back clip is within 0.05 mm of the original; the codes are
computed from the unrounded clip.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import numpy as np

from handx import skeleton
from handx.errors import HandxInputError
from handx.features.codes import motion_codes
from handx.io.atomic import atomic_open
from handx.io.sources import Clip
from handx.motion import BRANCHES, FPS, Texts, validate_clip

FORMAT = "handx-clip"
VERSION = 1
JOINT_DECIMALS = 4


class ClipJson(NamedTuple):
    """A clip read by :func:`read_clip_json`.

    Attributes:
        motion: float32 ``(T, 2, 21, 3)`` metres, canonical frame.
        texts: the clip's descriptions.
        codes: its motion codes (the schema of :mod:`handx.features.codes`).
    """

    motion: np.ndarray
    texts: Texts
    codes: dict[str, Any]


def clip_json(clip: Clip, fps: float = FPS) -> dict[str, Any]:
    """The JSON document of one clip (schema in the module docstring)."""
    motion = validate_clip(clip.motion, path=clip.source, item=clip.id)
    if not fps > 0:
        raise HandxInputError(clip.source, f"fps must be positive, got {fps}", clip.id)
    provenance = clip.extra.get("source")
    return {
        "format": FORMAT,
        "version": VERSION,
        "id": clip.id,
        "fps": float(fps),
        "frames": int(motion.shape[0]),
        "joint_names": list(skeleton.JOINT_NAMES),
        "hands": list(skeleton.HAND_NAMES),
        "bones": skeleton.BONES.tolist(),
        "joints": np.round(motion.astype(np.float64), JOINT_DECIMALS).tolist(),
        "texts": clip.texts.to_json(),
        "codes": motion_codes(motion, fps),
        "source": clip.source,
        "provenance": dict(provenance) if isinstance(provenance, dict) else None,
    }


def export_json(clip: Clip, path: str | os.PathLike, fps: float = FPS) -> None:
    """Write one clip as compact JSON (schema in the module docstring; no indentation, as nested joint lists
    would take one line per number), atomically."""
    data = clip_json(clip, fps)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, separators=(",", ":"))
        handle.write("\n")


def read_clip_json(path: str | os.PathLike) -> ClipJson:
    """Read and validate a file written by :func:`export_json`.

    Raises :class:`HandxInputError` naming the file and the field for anything that does not match the schema:
    another format or version, a different skeleton, joints of the wrong shape or not finite, a frame count that
    disagrees, texts that are not three equal-length lists of strings, codes that are not an object.
    """
    path_str = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise HandxInputError(path_str, f"cannot read file: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise HandxInputError(path_str, f"not JSON ({exc.msg})", f"line {exc.lineno}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise HandxInputError(path_str, f"not a handx clip: format is {found!r}, expected {FORMAT!r}")
    if data.get("version") != VERSION:
        raise HandxInputError(path_str, f"unsupported version {data.get('version')!r}, expected {VERSION}", "version")
    for key, expected in (("joint_names", list(skeleton.JOINT_NAMES)), ("hands", list(skeleton.HAND_NAMES))):
        if data.get(key) != expected:
            raise HandxInputError(path_str, f"{key} is {data.get(key)!r}, expected {expected!r}", key)
    try:
        joints = np.asarray(data.get("joints"), dtype=np.float64)
    except (TypeError, ValueError):
        raise HandxInputError(path_str, "joints must be a T x 2 x 21 x 3 array of numbers", "joints") from None
    motion = validate_clip(joints, path=path_str, item="joints")
    if data.get("frames") != motion.shape[0]:
        raise HandxInputError(path_str, f"frames is {data.get('frames')!r} but joints has {motion.shape[0]} frames",
                              "frames")
    texts = data.get("texts") or {}
    if not isinstance(texts, dict) or not all(
            isinstance(texts.get(b, []), list) and all(isinstance(t, str) for t in texts.get(b, []))
            for b in BRANCHES):
        raise HandxInputError(path_str, "texts must map left, right and two_hands_relation to lists of strings",
                              "texts")
    try:
        parsed = Texts.from_json(texts)
    except ValueError as exc:
        raise HandxInputError(path_str, str(exc), "texts") from None
    codes = data.get("codes")
    if not isinstance(codes, dict):
        raise HandxInputError(path_str, f"codes must be an object, got {type(codes).__name__}", "codes")
    return ClipJson(motion, parsed, codes)
