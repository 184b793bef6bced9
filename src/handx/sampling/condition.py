"""What a conditioned generation keeps (reference §5): the conditioning modes and :class:`Condition`, the mode
with the motion that supplies the constrained values; and how many frames chained windows of a long take share.

Family-independent: every generator family (:mod:`handx.pipelines`) takes a :class:`Condition` as its
``constraints`` and says which :data:`MODES` it supports, so callers (``handx generate``, the viewer, eval)
build one without importing a family. How a family honours it is its own business (the diffusion family
inpaints, :mod:`handx.sampling.modes`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: Every conditioning mode of reference §5 that generation offers.
MODES = ("left-hand", "right-hand", "wrists", "inbetween", "continue", "keyframes")
#: Frames shared by consecutive windows of a long take (reference §5, long horizon), unless asked otherwise.
DEFAULT_OVERLAP = 10


@dataclasses.dataclass(frozen=True)
class Condition:
    """A conditioning mode (reference §5) with the motion that supplies the constrained values.

    ``motion`` is a ``(T, 2, 21, 3)`` clip in metres (T = the window length). ``mode``: ``left-hand`` /
    ``right-hand`` (the given hand is kept, the other reacts), ``wrists`` (both wrist paths), ``inbetween``
    (first and last ``k`` frames), ``continue`` (the first ``k`` frames; the motion goes on from them; the first
    half of in-betweening), ``keyframes`` (the listed ``frames``, all joints; a contact keyframe is a
    keyframe at a contact frame). ``hard`` masks reproduce the values exactly; soft masks follow the reference
    ramp.
    """

    mode: str
    motion: np.ndarray
    frames: tuple[int, ...] = ()
    k: int = 10
    hard: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Condition.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "keyframes" and not self.frames:
            raise ValueError("Condition.frames must list at least one frame for mode 'keyframes'")
